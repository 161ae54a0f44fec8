// The user's review comments on tasks' hunks, as the comment threads show them: pending
// (kept by the server, `handoff.comment`) until sent together as the task's next turn
// (`handoff.sendComments`), then sent until that turn ends. The server is the truth:
// a hunk's pending comments come in its diagnostic's `data.comments`; this model only
// remembers what the diagnostics no longer say (a hunk gone from the editor while its
// comments wait, or were just sent). No VS Code API here.

import { isTerminal, plural, TaskState } from './model';

export type CommentState = 'pending' | 'sent';

export interface ReviewEntry {
  /** The working file the hunk is in (its URI, as a string). */
  file: string;
  repository: string;
  task: number;
  hunk: number;
  comments: string[];
  state: CommentState;
}

/** A hunk as a diagnostics publication shows it: the comments on it not sent yet. */
export interface PublishedHunk {
  task: number;
  hunk: number;
  comments: readonly string[];
}

export function entryKey(file: string, task: number, hunk: number): string {
  return `${file}#${task}:${hunk}`;
}

function taskKey(repository: string, task: number): string {
  return `${repository}#${task}`;
}

export class ReviewComments {
  private readonly entries = new Map<string, ReviewEntry>();
  /** The server's count of a task's pending comments, from handoff.comment's answer. */
  private readonly counted = new Map<string, number>();

  all(): ReviewEntry[] {
    return [...this.entries.values()];
  }

  get(key: string): ReviewEntry | undefined {
    return this.entries.get(key);
  }

  /**
   * A diagnostics publication for `file`: the hunks published there now. A published
   * hunk's comments replace what was known; an entry whose hunk is no longer
   * published stays as it is (its comments wait to be sent, or were just sent).
   */
  published(file: string, repository: string, hunks: readonly PublishedHunk[]): boolean {
    let changed = false;
    for (const h of hunks) {
      const key = entryKey(file, h.task, h.hunk);
      const before = this.entries.get(key);
      if (h.comments.length === 0) {
        if (before?.state === 'pending') {
          this.entries.delete(key);
          changed = true;
        }
        continue;
      }
      // Unchanged, or sent already (a publication from before the server marked them sent).
      if (before && sameList(before.comments, h.comments)) {
        continue;
      }
      this.entries.set(key, { file, repository, task: h.task, hunk: h.hunk, comments: [...h.comments], state: 'pending' });
      changed = true;
    }
    return changed;
  }

  /**
   * handoff.comment succeeded: `pending` is the task's count of pending comments now.
   * The server has published the hunk with the comment already (before it answered);
   * a hunk not known to have comments gets an entry here, in case it has not.
   */
  commented(file: string, repository: string, task: number, hunk: number, text: string, pending: number): void {
    const key = entryKey(file, task, hunk);
    if (this.entries.get(key)?.state !== 'pending') {
      this.entries.set(key, { file, repository, task, hunk, comments: [text], state: 'pending' });
    }
    this.counted.set(taskKey(repository, task), pending);
  }

  /**
   * The user sends the task's comments (they go with any reply): they are sent from
   * now on, whatever the diagnostics say while the server takes them. Returns the
   * entries marked, for `unsent` if the server refuses.
   */
  sending(repository: string, task: number): string[] {
    const marked: string[] = [];
    for (const [key, e] of this.entries) {
      if (e.repository === repository && e.task === task && e.state === 'pending') {
        e.state = 'sent';
        marked.push(key);
      }
    }
    return marked;
  }

  unsent(keys: readonly string[]): void {
    for (const key of keys) {
      const e = this.entries.get(key);
      if (e) {
        e.state = 'pending';
      }
    }
  }

  /**
   * A task's state as its record says. A task at work again has taken its pending
   * comments (every reply carries them): they are sent. A task that has ended again
   * has answered them: the sent ones go, its new hunks are under review.
   */
  taskState(repository: string, task: number, state: TaskState): boolean {
    let changed = false;
    for (const [key, e] of this.entries) {
      if (e.repository !== repository || e.task !== task) {
        continue;
      }
      if (!isTerminal(state) && e.state === 'pending') {
        e.state = 'sent';
        changed = true;
      } else if (isTerminal(state) && e.state === 'sent') {
        this.entries.delete(key);
        changed = true;
      }
    }
    if (!isTerminal(state)) {
      changed = this.counted.delete(taskKey(repository, task)) || changed;
    }
    return changed;
  }

  taskRemoved(repository: string, task: number): boolean {
    let changed = this.counted.delete(taskKey(repository, task));
    for (const [key, e] of this.entries) {
      if (e.repository === repository && e.task === task) {
        this.entries.delete(key);
        changed = true;
      }
    }
    return changed;
  }

  /**
   * The task's comments waiting to be sent: those shown, or the server's count when it
   * knows more (comments on files not open here).
   */
  pendingCount(repository: string, task: number): number {
    let shown = 0;
    for (const e of this.entries.values()) {
      if (e.repository === repository && e.task === task && e.state === 'pending') {
        shown += e.comments.length;
      }
    }
    return Math.max(shown, this.counted.get(taskKey(repository, task)) ?? 0);
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A comment thread's label: `Handoff #3 · 2 comments to send` or `Handoff #3 · sent to the agent`. */
export function threadLabel(task: number, state: CommentState, pending: number): string {
  return state === 'sent'
    ? `Handoff #${task} · sent to the agent`
    : `Handoff #${task} · ${plural(Math.max(pending, 1), 'comment')} to send`;
}
