// Handoff for VS Code: starts `handoff lsp` and adds what plain LSP cannot show — the
// task view, the status bar, notifications with buttons, the inline diff, a real diff
// editor and review comments in comment threads. Code actions, CodeLens ("Accept |
// Reject") and edits come from the server through vscode-languageclient.

import * as vscode from 'vscode';
import { Middleware } from 'vscode-languageclient/node';
import { askInstruction, askTrust, CommandContext, registerCommands, relativeIn, review } from './commands';
import { canonical, repositoryRoot } from './git';
import { GitContent, openTaskDiff } from './gitContent';
import { InlineDiff } from './inlineDiff';
import { commentRequest, diffRequest, needsInstruction, sendsComments, withCommentText, withInstruction } from './interception';
import { endMessage, hasResult, RepoTask, TaskRecord } from './model';
import { ReviewThreads } from './reviewThreads';
import { message, Server } from './server';
import { TaskStatus } from './statusBar';
import { TaskStore } from './store';
import { TaskTree } from './tree';

let server: Server | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const config = () => vscode.workspace.getConfiguration('handoff');
  const output = vscode.window.createOutputChannel('Handoff');
  const store = new TaskStore(context.workspaceState);
  const inlineDiff = new InlineDiff(() => config().get<boolean>('inlineDiff', true));
  let reviewThreads: ReviewThreads | undefined;

  const middleware: Middleware = {
    // Commands of the server's code actions and lenses run through here.
    executeCommand: async (command, args, next) => {
      try {
        if (needsInstruction(command, args)) {
          const instruction = await askInstruction();
          if (!instruction) {
            return undefined;
          }
          args = withInstruction(args, instruction);
        }
        const comment = commentRequest(command, args);
        if (comment) {
          const text = await askComment(comment.task);
          if (!text) {
            return undefined;
          }
          args = withCommentText(args, text);
          const res = (await next(command, args)) as { pending?: unknown } | undefined;
          if (typeof res?.pending === 'number') {
            reviewThreads?.noteCommented(comment.uri, comment.task, comment.hunk, text, res.pending);
          }
          return res;
        }
        const sends = sendsComments(command, args);
        const sender = sends && store.find(sends.task, sends.uri ? canonical(vscode.Uri.parse(sends.uri).fsPath) : undefined);
        if (sender && reviewThreads) {
          const sent = args;
          return await reviewThreads.whileSending(sender.repository, sender.task.id, () => next(command, sent));
        }
        const diff = diffRequest(command, args);
        if (diff) {
          const file = diff.uri ? canonical(vscode.Uri.parse(diff.uri).fsPath) : undefined;
          const rt = store.find(diff.task, file);
          if (rt?.task.head_commit) {
            await openTaskDiff(rt);
            return undefined;
          }
        }
        return await next(command, args);
      } catch (e) {
        // The server has shown its message already (window/showMessage).
        output.appendLine(`${command}: ${message(e)}`);
        return undefined;
      }
    },
    handleDiagnostics: (uri, diagnostics, next) => {
      next(uri, diagnostics);
      inlineDiff.update(uri, diagnostics);
    },
  };

  let reloading: Promise<void> | undefined;
  const reloadTasks = (): Promise<void> => {
    reloading ??= loadTasks().finally(() => (reloading = undefined));
    return reloading;
  };
  const loadTasks = async (): Promise<void> => {
    const repos = new Set<string>(store.repositories());
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      if (folder.uri.scheme === 'file') {
        const repo = await repositoryRoot(folder.uri.fsPath);
        if (repo) {
          repos.add(repo);
        }
      }
    }
    for (const repo of repos) {
      const tasks = await server?.execute<TaskRecord[]>('handoff.listTasks', { uri: vscode.Uri.file(repo).toString() });
      if (Array.isArray(tasks)) {
        store.load(repo, tasks, true);
      }
    }
  };

  server = new Server(output, {
    middleware,
    onTaskChanged: (params) => store.update(canonical(params.repository), params.task),
    onTaskRemoved: (params) => store.remove(canonical(params.repository), params.task),
    onReady: () => void reloadTasks(),
    onTrustQuestion: (question) => server && void askTrust(server, question),
  });

  reviewThreads = new ReviewThreads(server, store, inlineDiff);
  const ctx: CommandContext = { server, store, inlineDiff, reviewThreads, reloadTasks };
  const tree = new TaskTree(store, reviewThreads);
  const view = vscode.window.createTreeView('handoff.tasks', { treeDataProvider: tree, showCollapseAll: true });
  const status = new TaskStatus(store, (toReview) => {
    view.badge = toReview > 0 ? { value: toReview, tooltip: `${toReview} Handoff task(s) ready to review` } : undefined;
  });

  context.subscriptions.push(
    server.onDidChangeRunning((running) => status.setServerRunning(running)),
    output,
    inlineDiff,
    reviewThreads,
    tree,
    view,
    status,
    server,
    vscode.workspace.registerTextDocumentContentProvider(GitContent.scheme, new GitContent()),
    ...registerCommands(ctx),
    store.onDidChange((change) => {
      for (const rt of change.ended) {
        void notifyEnded(ctx, rt, config().get<string>('notifications', 'all'));
      }
    }),
    inlineDiff.onDidChange((uri) => trackReview(store, inlineDiff, uri)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('handoff.serverPath')) {
        void server?.restart();
      }
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => void startIfInRepository(ctx).then(() => reloadTasks())),
  );

  void startIfInRepository(ctx);
}

/**
 * Starts the server when a workspace folder is inside a git repository. Elsewhere
 * (an empty window, a folder outside git) it starts with the first Handoff command,
 * so a window that has nothing to do with Handoff gets no message about it.
 */
async function startIfInRepository(ctx: CommandContext): Promise<void> {
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    if (folder.uri.scheme === 'file' && (await repositoryRoot(folder.uri.fsPath))) {
      await ctx.server.ensureStarted();
      return;
    }
  }
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}

/** The text of a review comment for "Comment on this change (Handoff #N)…"; undefined if dismissed. */
async function askComment(task: number): Promise<string | undefined> {
  const text = await vscode.window.showInputBox({
    title: `Handoff: comment on this change (Handoff #${task})`,
    prompt: 'What should the agent change here? Comments wait until you send them together (Send comments).',
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() === '' ? 'Type a comment for the agent.' : undefined),
  });
  return text?.trim() || undefined;
}

/** The notification when a task ends, with "Review" and "Show Log". */
async function notifyEnded(ctx: CommandContext, rt: RepoTask, mode: string): Promise<void> {
  const task = rt.task;
  if (mode === 'off' || (mode === 'failures' && task.state !== 'failed')) {
    return;
  }
  const actions = hasResult(task) ? ['Review', 'Show Log'] : ['Show Log'];
  const show =
    task.state === 'failed'
      ? vscode.window.showErrorMessage
      : task.state === 'cancelled'
        ? vscode.window.showWarningMessage
        : vscode.window.showInformationMessage;
  const pick = await show(endMessage(task), ...actions);
  if (pick === 'Review') {
    await review(ctx, rt);
  } else if (pick === 'Show Log') {
    await ctx.server.execute('handoff.showLog', { task: task.id, uri: vscode.Uri.file(rt.repository).toString() });
  }
}

/** A task whose hunks have all been accepted or rejected in the editor is reviewed. */
function trackReview(store: TaskStore, inlineDiff: InlineDiff, uri: vscode.Uri): void {
  if (uri.scheme !== 'file') {
    return;
  }
  // A closed document loses its diagnostics without any decision being made.
  if (!vscode.workspace.textDocuments.some((d) => d.uri.toString() === uri.toString())) {
    return;
  }
  const file = canonical(uri.fsPath);
  const repository = store.repositoryOf(file);
  if (!repository) {
    return;
  }
  const rel = relativeIn(repository, uri);
  if (rel === undefined || rel.split('/').includes('.git')) {
    return;
  }
  const counts = new Map<number, number>();
  for (const h of inlineDiff.hunksIn(uri)) {
    counts.set(h.view.task, (counts.get(h.view.task) ?? 0) + 1);
  }
  const ids = new Set([...counts.keys(), ...store.tasksWithHunksIn(repository, rel)]);
  for (const id of ids) {
    store.noteHunks(repository, id, rel, counts.get(id) ?? 0);
  }
}
