// Review comments in VS Code's own comment threads (`vscode.comments`): on the hunks of
// the inline diff (working files) and on the result side of a task's diff editor. A
// comment added in a thread is kept by the server as pending (`handoff.comment`); the
// thread shows it until "Send comments" (`handoff.sendComments`) sends the task's
// pending comments as its next turn; then the thread says they were sent, and goes
// when that turn ends.

import * as path from 'path';
import * as vscode from 'vscode';
import { canonical, run } from './git';
import { catFileArgs, fromUriParts, SCHEME as GIT_SCHEME } from './gitUri';
import { hunkLines } from './hunks';
import { InlineDiff } from './inlineDiff';
import { changedRegions, placeInResult, Region, splitLines } from './lineDiff';
import { isTerminal, RepoTask, TaskRecord } from './model';
import { entryKey, ReviewComments, ReviewEntry, threadLabel } from './reviewComments';
import { Server } from './server';
import { TaskStore } from './store';

/** A hunk where a document shows it, for a thread. */
interface Placement {
  /** The working file's URI, as a string. */
  file: string;
  repository: string;
  task: number;
  hunk: number;
  conflict: boolean;
  range: vscode.Range;
}

/** A result side of a diff editor: the file at a task's head commit. */
interface ResultDoc {
  repository: string;
  task: number;
  file: vscode.Uri;
  base: string[];
  result: string[];
  regions: Region[] | undefined;
}

export class ReviewThreads implements vscode.Disposable {
  private readonly model = new ReviewComments();
  private readonly controller = vscode.comments.createCommentController('handoff', 'Handoff review');
  /** `${document}|${entry key}` → the thread showing that entry in that document. */
  private readonly threads = new Map<string, vscode.CommentThread>();
  private readonly resultDocs = new Map<string, ResultDoc>();
  /** Threads the user is adding a comment in, kept while the server answers. */
  private readonly drafts = new Set<vscode.CommentThread>();
  private readonly changed = new vscode.EventEmitter<void>();
  /** The pending comments (counts, states) changed. */
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly server: Server,
    private readonly store: TaskStore,
    private readonly inlineDiff: InlineDiff,
  ) {
    this.controller.options = {
      prompt: 'Comment on this change for the agent…',
      placeHolder: 'What should the agent do about these lines? Comments are sent together with "Send comments".',
    };
    this.refreshRanges();
    this.disposables.push(
      this.controller,
      this.changed,
      inlineDiff.onDidChange((uri) => this.onHunks(uri)),
      store.onDidChange((change) => {
        let any = false;
        for (const rt of change.changed) {
          const now = store.get(rt.repository, rt.task.id);
          const changed = now
            ? this.model.taskState(rt.repository, now.task.id, now.task.state)
            : this.model.taskRemoved(rt.repository, rt.task.id);
          any = changed || any;
        }
        if (any) {
          this.sync();
        }
      }),
      vscode.workspace.onDidCloseTextDocument((doc) => this.resultDocs.delete(doc.uri.toString())),
    );
  }

  /** The comments of a task waiting to be sent. */
  pendingCount(rt: RepoTask): number {
    return this.model.pendingCount(rt.repository, rt.task.id);
  }

  // --- what the server publishes ------------------------------------------------------

  private onHunks(uri: vscode.Uri): void {
    if (uri.scheme !== 'file') {
      return;
    }
    const repository = this.store.repositoryOf(canonical(uri.fsPath));
    if (!repository) {
      return;
    }
    const hunks = this.inlineDiff.hunksIn(uri).map((h) => ({ task: h.view.task, hunk: h.view.hunk, comments: h.view.comments }));
    this.model.published(uri.toString(), repository, hunks);
    this.refreshRanges();
    this.sync();
  }

  /**
   * Setting the provider again is what makes VS Code ask for the commenting ranges
   * again (the API has no event for it): hunks come and go after a document opens.
   */
  private refreshRanges(): void {
    this.controller.commentingRangeProvider = {
      provideCommentingRanges: (doc) => this.commentingRanges(doc),
    };
  }

  // --- where hunks are ------------------------------------------------------------------

  private async commentingRanges(doc: vscode.TextDocument): Promise<vscode.Range[]> {
    if (doc.uri.scheme === GIT_SCHEME) {
      await this.learnResultDoc(doc);
    }
    return this.placements(doc.uri)
      .filter((p) => !p.conflict)
      .map((p) => p.range);
  }

  /** The hunks a document shows: the inline diff's in a working file, else the result side's. */
  private placements(uri: vscode.Uri): Placement[] {
    if (uri.scheme === 'file') {
      const repository = this.store.repositoryOf(canonical(uri.fsPath));
      if (!repository) {
        return [];
      }
      return this.inlineDiff.hunksIn(uri).map((h) => {
        const lines = hunkLines(h.range, h.view);
        const first = 'insertAt' in lines ? Math.max(0, lines.insertAt - 1) : lines.first;
        const last = 'insertAt' in lines ? first : lines.last;
        return {
          file: uri.toString(),
          repository,
          task: h.view.task,
          hunk: h.view.hunk,
          conflict: h.view.conflict,
          range: new vscode.Range(first, 0, last, 0),
        };
      });
    }
    const result = this.resultDocs.get(uri.toString());
    if (!result) {
      return [];
    }
    const hunks = this.inlineDiff.hunksIn(result.file).filter((h) => h.view.task === result.task && !h.view.conflict);
    const placed = placeInResult(
      result.base,
      result.result,
      hunks.map((h) => ({ hunk: h.view.hunk, removed: h.view.removed, added: h.view.added })),
      result.regions,
    );
    const out: Placement[] = [];
    for (const [hunk, at] of placed) {
      // A deletion takes no lines of the result: the line where it was stands for it.
      const first = Math.max(0, Math.min(at.count === 0 ? at.start - 1 : at.start, result.result.length - 1));
      const last = Math.max(first, at.start + at.count - 1);
      out.push({
        file: result.file.toString(),
        repository: result.repository,
        task: result.task,
        hunk,
        conflict: false,
        range: new vscode.Range(first, 0, last, 0),
      });
    }
    return out;
  }

  /**
   * A document of the diff editor: when it is a task's result, opens the working file
   * (the server publishes hunks for open documents only) and diffs base and result.
   */
  private async learnResultDoc(doc: vscode.TextDocument): Promise<void> {
    const key = doc.uri.toString();
    if (this.resultDocs.has(key)) {
      return;
    }
    let ref;
    try {
      ref = fromUriParts(doc.uri.path, doc.uri.query);
    } catch {
      return;
    }
    const repository = canonical(ref.repository);
    const rt = this.store.all().find((t) => t.repository === repository && t.task.head_commit === ref.commit);
    if (!rt || !isTerminal(rt.task.state)) {
      return;
    }
    const file = vscode.Uri.file(path.join(rt.repository, ref.path));
    let base: string;
    try {
      base = (await run('git', catFileArgs({ ...ref, commit: rt.task.base_commit }))).stdout.toString('utf8');
    } catch {
      base = ''; // A file the task created.
    }
    try {
      await vscode.workspace.openTextDocument(file);
    } catch {
      return; // Deleted in the working tree: no hunks to comment on.
    }
    await this.inlineDiff.waitForHunks(file, rt.task.id, 5000);
    const baseLines = splitLines(base);
    const resultLines = splitLines(doc.getText());
    this.resultDocs.set(key, {
      repository: rt.repository,
      task: rt.task.id,
      file,
      base: baseLines,
      result: resultLines,
      regions: changedRegions(baseLines, resultLines),
    });
    this.refreshRanges();
    this.sync();
  }

  // --- threads ------------------------------------------------------------------------

  /** Makes the threads show the model: one per entry in each document that places it. */
  private sync(): void {
    const wanted = new Set<string>();
    const docs = new Set<string>(
      vscode.workspace.textDocuments
        .filter((d) => d.uri.scheme === 'file' || this.resultDocs.has(d.uri.toString()))
        .map((d) => d.uri.toString()),
    );
    for (const key of this.threads.keys()) {
      docs.add(key.slice(0, key.indexOf('|')));
    }
    for (const doc of docs) {
      const uri = vscode.Uri.parse(doc);
      const placed = new Map(this.placements(uri).map((p) => [entryKey(p.file, p.task, p.hunk), p]));
      for (const entry of this.model.all()) {
        const key = entryKey(entry.file, entry.task, entry.hunk);
        const threadKey = `${doc}|${key}`;
        const at = placed.get(key);
        let thread = this.threads.get(threadKey);
        if (!thread && at) {
          thread = this.controller.createCommentThread(uri, at.range, []);
          thread.collapsibleState = vscode.CommentThreadCollapsibleState.Expanded;
          this.threads.set(threadKey, thread);
        }
        if (thread) {
          if (at && !thread.range?.isEqual(at.range)) {
            thread.range = at.range;
          }
          this.show(thread, entry);
          wanted.add(threadKey);
        }
      }
    }
    for (const [key, thread] of this.threads) {
      if (!wanted.has(key) && !this.drafts.has(thread)) {
        thread.dispose();
        this.threads.delete(key);
      }
    }
    this.changed.fire();
  }

  private show(thread: vscode.CommentThread, entry: ReviewEntry): void {
    const pending = this.model.pendingCount(entry.repository, entry.task);
    const sent = entry.state === 'sent';
    thread.comments = entry.comments.map((text) => ({
      body: text,
      mode: vscode.CommentMode.Preview,
      author: { name: 'You' },
      label: sent ? 'sent' : 'not sent yet',
      contextValue: entry.state,
    }));
    thread.label = threadLabel(entry.task, entry.state, pending);
    // No thread state (resolved or not): VS Code collapses a resolved thread, and a
    // sent one is to say so where the user just clicked.
    if (thread.contextValue !== entry.state) {
      thread.contextValue = entry.state;
      thread.canReply = !sent;
    }
  }

  /** The hunk under a thread's first line, where its document shows the hunk now. */
  private hunkOf(thread: vscode.CommentThread): Placement | undefined {
    const line = thread.range?.start.line;
    if (line === undefined) {
      return undefined;
    }
    return this.placements(thread.uri).find((p) => p.range.start.line <= line && line <= p.range.end.line);
  }

  /** The task a thread is about. */
  taskOf(thread: vscode.CommentThread): RepoTask | undefined {
    for (const [key, t] of this.threads) {
      if (t === thread) {
        const entry = this.model.get(key.slice(key.indexOf('|') + 1));
        return entry && this.store.get(entry.repository, entry.task);
      }
    }
    const p = this.hunkOf(thread);
    return p && this.store.get(p.repository, p.task);
  }

  // --- commands -------------------------------------------------------------------------

  /** "Add Comment" in a thread: keeps the comment on the thread's hunk as pending. */
  async addComment(reply: vscode.CommentReply): Promise<boolean> {
    const text = reply.text.trim();
    if (text === '') {
      return false;
    }
    const at = this.hunkOf(reply.thread);
    if (!at) {
      void vscode.window.showWarningMessage(
        'Handoff: these lines are no longer a change waiting for review, so there is nothing to comment on here.',
      );
      if (reply.thread.comments.length === 0) {
        reply.thread.dispose();
      }
      return false;
    }
    // The thread the user typed in shows the comment: the server publishes the hunk
    // with it before it answers, and the thread must not be dropped meanwhile.
    const key = entryKey(at.file, at.task, at.hunk);
    const threadKey = `${reply.thread.uri.toString()}|${key}`;
    const existing = this.threads.get(threadKey);
    if (!existing) {
      reply.thread.range = at.range;
      this.threads.set(threadKey, reply.thread);
      this.drafts.add(reply.thread);
    }
    let res: { pending: number } | undefined;
    try {
      res = await this.server.execute<{ pending: number }>('handoff.comment', {
        task: at.task,
        uri: at.file,
        hunk: at.hunk,
        text,
      });
    } finally {
      this.drafts.delete(reply.thread);
    }
    if (!res) {
      if (!existing && !this.model.get(key)) {
        this.threads.delete(threadKey);
      }
      return false;
    }
    this.model.commented(at.file, at.repository, at.task, at.hunk, text, res.pending);
    if (existing && existing !== reply.thread) {
      reply.thread.dispose();
    }
    this.sync();
    return true;
  }

  /** `handoff.comment` from the code action, with the text asked for: the server republishes. */
  noteCommented(uri: string, task: number, hunk: number, text: string, pending: number): void {
    // Keyed as VS Code writes the document's URI (the server's spelling may differ).
    const file = vscode.Uri.parse(uri);
    const repository = this.store.repositoryOf(canonical(file.fsPath));
    if (repository) {
      this.model.commented(file.toString(), repository, task, hunk, text, pending);
      this.sync();
    }
  }

  /**
   * Runs `send`, a server command that sends the task's pending comments (any reply
   * does), with its threads shown sent meanwhile: the server republishes the hunks as
   * it takes the comments, which must not read as the comments being removed. The
   * threads are pending again if it fails.
   */
  async whileSending<T>(repository: string, task: number, send: () => Promise<T | undefined>): Promise<T | undefined> {
    const marked = this.model.sending(repository, task);
    if (marked.length > 0) {
      this.sync();
    }
    let res: T | undefined;
    try {
      res = await send();
    } finally {
      if (res === undefined && marked.length > 0) {
        this.model.unsent(marked);
        this.sync();
      }
    }
    return res;
  }

  /** The server answered handoff.sendComments (or a reply) with the task's record. */
  noteTask(repository: string, task: TaskRecord): void {
    if (this.model.taskState(repository, task.id, task.state)) {
      this.sync();
    }
  }

  dispose(): void {
    for (const thread of this.threads.values()) {
      thread.dispose();
    }
    this.threads.clear();
    for (const d of this.disposables) {
      d.dispose();
    }
  }
}
