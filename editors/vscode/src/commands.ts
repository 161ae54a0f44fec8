// The extension's commands: the palette entries ("Handoff: Start background task…",
// "Delegate selection…", "Show tasks", …) and the task view's context menu. Each one
// gathers what the user wants with VS Code's own input boxes and pickers, then runs a
// server command (docs/protocol.md).

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { agentSpec, MAX_ATTEMPTS, othersInGroup, parseAttempts } from './attempts';
import { canonical, relativePath, repositoryRoot, run } from './git';
import { openTaskDiff } from './gitContent';
import { InlineDiff } from './inlineDiff';
import {
  formatElapsed,
  elapsedSeconds,
  hasResult,
  isPending,
  isTerminal,
  plural,
  RepoTask,
  stateIcon,
  TaskRecord,
} from './model';
import { agentChoices, builtinDetail, ConfigText } from './profiles';
import { ReviewThreads } from './reviewThreads';
import { message, Server } from './server';
import { TaskStore } from './store';
import { TreeNode } from './tree';
import { trustDialog, trustOutcome, TrustQuestion, TrustResult } from './trust';

export interface CommandContext {
  server: Server;
  store: TaskStore;
  inlineDiff: InlineDiff;
  reviewThreads: ReviewThreads;
  reloadTasks(): Promise<void>;
}

export function registerCommands(ctx: CommandContext): vscode.Disposable[] {
  const c = (id: string, fn: (...args: any[]) => unknown) => vscode.commands.registerCommand(id, fn);
  return [
    c('handoff.ui.startTask', () => startTask(ctx)),
    c('handoff.ui.delegateSelection', () => delegateSelection(ctx)),
    c('handoff.ui.showTasks', () => vscode.commands.executeCommand('handoff.tasks.focus')),
    c('handoff.ui.showLog', async (arg?: unknown) => {
      const rt = await resolveTask(ctx, arg, () => true, 'Show the log of which task?');
      if (rt) {
        await ctx.server.execute('handoff.showLog', { task: rt.task.id, uri: repoUri(rt) });
      }
    }),
    c('handoff.ui.cancelTask', async (arg?: unknown) => {
      const rt = await resolveTask(ctx, arg, (t) => isPending(t.task.state), 'Cancel which task?', 'No task is queued or running.');
      if (rt) {
        await ctx.server.execute('handoff.cancel', { task: rt.task.id, uri: repoUri(rt) });
      }
    }),
    c('handoff.ui.replyTask', async (arg?: unknown) => {
      const rt = await resolveTask(ctx, arg, () => true, 'Reply to which task?');
      if (!rt) {
        return;
      }
      const text = await vscode.window.showInputBox({
        title: `Handoff: reply to task #${rt.task.id}`,
        prompt: `A follow-up instruction for the agent of #${rt.task.id} (${rt.task.title})`,
        placeHolder: 'e.g. also handle the empty list',
        ignoreFocusOut: true,
        validateInput: (v) => (v.trim() === '' ? 'Type an instruction for the agent.' : undefined),
      });
      if (text) {
        // Pending review comments go with it.
        await ctx.reviewThreads.whileSending(rt.repository, rt.task.id, () =>
          ctx.server.execute<TaskRecord>('handoff.reply', { task: rt.task.id, message: text, uri: repoUri(rt) }),
        );
      }
    }),
    c('handoff.ui.acceptAll', (arg?: unknown) => decideAll(ctx, arg, 'accept')),
    c('handoff.ui.rejectAll', (arg?: unknown) => decideAll(ctx, arg, 'reject')),
    c('handoff.ui.openDiff', async (arg?: unknown) => {
      const rt = await resolveTask(ctx, arg, (t) => t.task.head_commit !== null, 'Open the diff of which task?', 'No task has a result yet.');
      if (rt) {
        const file = isNode(arg) && arg.kind === 'file' ? arg.file : undefined;
        await openTaskDiff(rt, file);
      }
    }),
    c('handoff.ui.copyBranch', async (arg?: unknown) => {
      const rt = await resolveTask(ctx, arg, () => true, 'Copy the branch of which task?');
      if (rt) {
        await vscode.env.clipboard.writeText(rt.task.branch);
        vscode.window.setStatusBarMessage(`Copied ${rt.task.branch}`, 4000);
      }
    }),
    c('handoff.ui.removeTask', (arg?: unknown) => removeTask(ctx, arg)),
    c('handoff.ui.keepAttempt', (arg?: unknown) => keepAttempt(ctx, arg)),
    c('handoff.ui.addComment', (reply: vscode.CommentReply) => ctx.reviewThreads.addComment(reply)),
    c('handoff.ui.sendComments', (arg?: unknown) => sendComments(ctx, arg)),
    c('handoff.ui.review', async (arg?: unknown) => {
      const rt = await resolveTask(ctx, arg, (t) => isTerminal(t.task.state), 'Review which task?');
      if (rt) {
        await review(ctx, rt);
      }
    }),
    c('handoff.ui.refresh', () => ctx.reloadTasks()),
    c('handoff.ui.restartServer', () => ctx.server.restart()),
    c('handoff.ui.trust', async () => {
      const target = await targetFolder();
      if (!target) {
        void vscode.window.showErrorMessage('Handoff: open a folder inside a git repository first; its configuration is what is trusted.');
        return;
      }
      await trustRepository(ctx.server, target.repository);
    }),
  ];
}

// --- trust --------------------------------------------------------------------------

/**
 * The server's question about a repository's untrusted configuration, asked like VS
 * Code's Workspace Trust: a modal warning that lists the settings ignored until then.
 * "Trust" runs `handoff.trust`; Cancel is "Not now" (asked again for other content).
 */
export async function askTrust(server: Server, question: TrustQuestion): Promise<void> {
  const { message, detail } = trustDialog(question);
  const pick = await vscode.window.showWarningMessage(message, { modal: true, detail }, 'Trust');
  if (pick === 'Trust') {
    await trustRepository(server, question.repository, question.sha256);
  }
}

/**
 * Trusts the repository's configuration as it is now — only the content with hash
 * `sha256` when given (what the user was shown) — and says what applies now.
 */
async function trustRepository(server: Server, repository: string, sha256?: string): Promise<void> {
  const result = await server.execute<TrustResult>('handoff.trust', {
    uri: vscode.Uri.file(repository).toString(),
    ...(sha256 ? { sha256 } : {}),
  });
  if (result) {
    void vscode.window.showInformationMessage(trustOutcome(result));
  }
}

// --- starting tasks ---------------------------------------------------------------

async function startTask(ctx: CommandContext): Promise<void> {
  const target = await targetFolder();
  if (!target) {
    void vscode.window.showErrorMessage(
      'Handoff: open a folder inside a git repository first; the task works on that repository.',
    );
    return;
  }
  const prompt = await vscode.window.showInputBox({
    title: 'Handoff: Start background task (1/3)',
    prompt: 'What should the agent do? It works on a snapshot of the whole repository, on its own branch.',
    placeHolder: 'e.g. Upgrade serde to 1.0.220 and fix what breaks',
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() === '' ? 'Describe the task for the agent.' : undefined),
  });
  if (!prompt) {
    return;
  }
  const count = await vscode.window.showInputBox({
    title: 'Handoff: Start background task (2/3) · Attempts',
    prompt: `How many attempts? Several start from the same snapshot, to compare and keep the best (1 to ${MAX_ATTEMPTS}).`,
    value: '1',
    ignoreFocusOut: true,
    validateInput: (v) => {
      const parsed = parseAttempts(v);
      return 'error' in parsed ? parsed.error : undefined;
    },
  });
  const parsed = count === undefined ? undefined : parseAttempts(count);
  if (!parsed || 'error' in parsed) {
    return;
  }
  const attempts = parsed.attempts;
  const title = 'Handoff: Start background task (3/3)';
  const agent = attempts > 1 ? await pickAgents(target.repository, title) : await pickAgent(target.repository, title);
  if (agent === undefined) {
    return;
  }
  const task = await ctx.server.execute<TaskRecord>('handoff.delegate', {
    kind: 'prompt',
    prompt,
    agent,
    uri: target.uri.toString(),
    ...(attempts > 1 ? { attempts } : {}),
  });
  if (task) {
    ctx.store.update(target.repository, task);
    vscode.window.setStatusBarMessage(
      attempts > 1
        ? `$(sync~spin) Handoff g${task.group ?? task.id}: ${attempts} attempts started`
        : `$(sync~spin) Handoff #${task.id} started on ${task.branch}`,
      5000,
    );
  }
}

/** The repository the palette command works on: the active file's, else the first folder's. */
async function targetFolder(): Promise<{ uri: vscode.Uri; repository: string } | undefined> {
  const candidates: vscode.Uri[] = [];
  const active = vscode.window.activeTextEditor?.document.uri;
  if (active?.scheme === 'file') {
    candidates.push(active);
  }
  for (const f of vscode.workspace.workspaceFolders ?? []) {
    if (f.uri.scheme === 'file') {
      candidates.push(f.uri);
    }
  }
  for (const uri of candidates) {
    const dir = uri === active ? path.dirname(uri.fsPath) : uri.fsPath;
    const repository = await repositoryRoot(dir);
    if (repository) {
      return { uri, repository };
    }
  }
  return undefined;
}

interface AgentItem extends vscode.QuickPickItem {
  agent: string | null | 'other';
}

/** The agent profiles a picker offers: the built-in ones and those of the configuration files. */
async function agentItems(repository: string): Promise<AgentItem[]> {
  const configs: ConfigText[] = [];
  const userConfig = path.join(process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'handoff', 'config.toml');
  for (const [source, file] of [
    ['~/.config/handoff/config.toml', userConfig],
    ['.handoff.toml', path.join(repository, '.handoff.toml')],
  ]) {
    try {
      configs.push({ source, text: await fs.promises.readFile(file, 'utf8') });
    } catch {
      // No such file: nothing to add.
    }
  }
  return agentChoices(configs).map((a) => ({
    label: a.name,
    description: [a.isDefault ? 'default' : '', a.source].filter((s) => s !== '').join(' · '),
    detail: a.image ? `image ${a.image}` : builtinDetail(a.name),
    agent: a.source.startsWith('default_agent') ? null : a.name,
    picked: a.isDefault,
  }));
}

const OTHER_AGENT: AgentItem = { label: '$(edit) Other agent profile…', agent: 'other', alwaysShow: true };
const PLACEHOLDER = 'Which agent profile runs the task? (profiles: built-in, ~/.config/handoff/config.toml, .handoff.toml)';

/** The agent profile to use: a name, null for the configured default, undefined if dismissed. */
async function pickAgent(repository: string, title: string): Promise<string | null | undefined> {
  const items = (await agentItems(repository)).map((i) => ({ ...i, picked: undefined }));
  const picked = await vscode.window.showQuickPick([...items, OTHER_AGENT], {
    title,
    placeHolder: PLACEHOLDER,
    ignoreFocusOut: true,
    matchOnDescription: true,
  });
  if (!picked) {
    return undefined;
  }
  return picked.agent !== 'other' ? picked.agent : askProfileNames(title, false);
}

/**
 * The agent profiles that take several attempts in turn (a multi-select, the default
 * picked): the `agent` argument of handoff.delegate, or undefined if dismissed.
 */
async function pickAgents(repository: string, title: string): Promise<string | null | undefined> {
  const picked = await vscode.window.showQuickPick([...(await agentItems(repository)), OTHER_AGENT], {
    title,
    placeHolder: 'Which agent profiles take the attempts? Several take them in turn.',
    ignoreFocusOut: true,
    matchOnDescription: true,
    canPickMany: true,
  });
  if (!picked) {
    return undefined;
  }
  const names: Array<string | null> = picked.filter((p) => p.agent !== 'other').map((p) => p.agent as string | null);
  if (picked.some((p) => p.agent === 'other')) {
    const more = await askProfileNames(title, true);
    if (more === undefined) {
      return undefined;
    }
    names.push(...more.split(','));
  }
  return agentSpec(names);
}

async function askProfileNames(title: string, several: boolean): Promise<string | undefined> {
  const name = await vscode.window.showInputBox({
    title,
    prompt: several
      ? 'Names of agent profiles, comma-separated ([agents.NAME] tables of your configuration)'
      : 'The name of an agent profile (an [agents.NAME] table of your configuration)',
    ignoreFocusOut: true,
    validateInput: (v) =>
      (several ? v.split(',') : [v]).every((n) => /^[A-Za-z0-9_.-]+$/.test(n.trim()))
        ? undefined
        : 'A profile name: letters, digits, "_", "-", "."',
  });
  return name ? name.split(',').map((n) => n.trim()).join(',') : undefined;
}

/** Asks what to do with a selection; undefined if dismissed. */
export async function askInstruction(): Promise<string | undefined> {
  const text = await vscode.window.showInputBox({
    title: 'Handoff: Delegate selection to background agent',
    prompt: 'What should the agent do with the selected code?',
    placeHolder: 'e.g. Add tests for these cases · Fix the off-by-one · Document this function',
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() === '' ? 'Type an instruction for the agent.' : undefined),
  });
  return text?.trim() || undefined;
}

async function delegateSelection(ctx: CommandContext): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.selection.isEmpty) {
    void vscode.window.showInformationMessage('Handoff: select the code the agent should work on first.');
    return;
  }
  const doc = editor.document;
  if (doc.uri.scheme !== 'file') {
    void vscode.window.showErrorMessage('Handoff: save this file inside a git repository to delegate from it.');
    return;
  }
  const selection = editor.selection;
  const instruction = await askInstruction();
  if (!instruction) {
    return;
  }
  const task = await ctx.server.execute<TaskRecord>('handoff.delegate', {
    kind: 'selection',
    uri: doc.uri.toString(),
    range: {
      start: { line: selection.start.line, character: selection.start.character },
      end: { line: selection.end.line, character: selection.end.character },
    },
    version: doc.version,
    instruction,
    agent: null,
  });
  if (task) {
    const repository = await repositoryRoot(path.dirname(doc.uri.fsPath));
    if (repository) {
      ctx.store.update(repository, task);
    }
    vscode.window.setStatusBarMessage(`$(sync~spin) Handoff #${task.id} started on ${task.branch}`, 5000);
  }
}

// --- acting on tasks -------------------------------------------------------------

function isNode(arg: unknown): arg is TreeNode {
  return typeof arg === 'object' && arg !== null && 'kind' in arg && ('rt' in arg || 'repository' in arg);
}

function repoUri(rt: RepoTask): string {
  return vscode.Uri.file(rt.repository).toString();
}

/**
 * The task a command is about: the tree item it was invoked on, `{task, uri}` from a
 * link, or the user's pick among the tasks that `filter` accepts.
 */
async function resolveTask(
  ctx: CommandContext,
  arg: unknown,
  filter: (t: RepoTask) => boolean,
  placeHolder: string,
  none = 'There are no Handoff tasks yet.',
): Promise<RepoTask | undefined> {
  if (isNode(arg) && (arg.kind === 'task' || arg.kind === 'file')) {
    return ctx.store.get(arg.rt.repository, arg.rt.task.id) ?? arg.rt;
  }
  if (typeof arg === 'object' && arg !== null && typeof (arg as { task?: unknown }).task === 'number') {
    const { task, uri } = arg as { task: number; uri?: string };
    const file = typeof uri === 'string' ? vscode.Uri.parse(uri).fsPath : undefined;
    const found = ctx.store.find(task, file && canonical(file));
    if (found) {
      return found;
    }
  }
  const candidates = ctx.store.all().filter(filter);
  if (candidates.length === 0) {
    void vscode.window.showInformationMessage(`Handoff: ${none}`);
    return undefined;
  }
  const many = ctx.store.repositories().length > 1;
  const now = Date.now();
  const picked = await vscode.window.showQuickPick(
    candidates.map((rt) => ({
      label: `$(${stateIcon(rt.task.state)}) #${rt.task.id} ${rt.task.title}`,
      description: [rt.task.state, formatElapsed(elapsedSeconds(rt.task, now)), rt.task.agent]
        .filter((s) => s !== '')
        .join(' · '),
      detail: many ? rt.repository : undefined,
      rt,
    })),
    { placeHolder, matchOnDescription: true },
  );
  return picked?.rt;
}

/** "Accept all" / "Reject all": every pending hunk of the task, file by file. */
async function decideAll(ctx: CommandContext, arg: unknown, decision: 'accept' | 'reject'): Promise<void> {
  const rt = await resolveTask(
    ctx,
    arg,
    (t) => hasResult(t.task),
    `${decision === 'accept' ? 'Accept' : 'Reject'} all changes of which task?`,
    'No finished task has changes to review.',
  );
  if (!rt) {
    return;
  }
  const task = rt.task;
  let decided = 0;
  let conflicts = 0;
  const created: string[] = [];
  const skipped: string[] = [];
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Handoff #${task.id}: ${decision === 'accept' ? 'accepting' : 'rejecting'} all changes` },
    async () => {
      for (const file of task.files_changed) {
        // Tool, editor, agent and CI settings are read and accepted one by one.
        if (decision === 'accept' && (task.sensitive_files ?? []).includes(file)) {
          skipped.push(`${file} (it configures tools: review and accept its changes one by one)`);
          continue;
        }
        const full = path.join(rt.repository, file);
        if (!fs.existsSync(full)) {
          // A file the agent created: accepting it creates it empty (an undoable
          // workspace edit), and its one hunk then fills it like any other; rejecting
          // it leaves nothing to do.
          if (decision === 'reject' || !task.head_commit || !(await existsAt(rt.repository, task.head_commit, file))) {
            continue;
          }
          const edit = new vscode.WorkspaceEdit();
          edit.createFile(vscode.Uri.file(full), { ignoreIfExists: true });
          if (!(await vscode.workspace.applyEdit(edit))) {
            skipped.push(`${file} (could not create it)`);
            continue;
          }
          created.push(file);
        }
        const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(full));
        await vscode.window.showTextDocument(doc, { preview: false, preserveFocus: true });
        const hunks = await ctx.inlineDiff.waitForHunks(doc.uri, task.id, 5000);
        if (hunks.length === 0) {
          continue; // Already decided.
        }
        const result = await ctx.server.execute<{ accepted?: number[]; rejected?: number[]; conflicts?: number }>(
          `handoff.${decision}`,
          { task: task.id, uri: doc.uri.toString() },
        );
        if (result === undefined) {
          conflicts += hunks.length;
          continue;
        }
        decided += (result.accepted ?? result.rejected ?? []).length;
        conflicts += result.conflicts ?? 0;
      }
    },
  );
  const verb = decision === 'accept' ? 'accepted' : 'rejected';
  let text = `Handoff #${task.id}: ${verb} ${decided} change${decided === 1 ? '' : 's'}`;
  if (created.length > 0) {
    text += `; created ${created.join(', ')}`;
  }
  if (conflicts > 0) {
    text += `; ${conflicts} left for review (you edited their lines)`;
  }
  if (skipped.length > 0) {
    text += `; skipped ${skipped.join(', ')}`;
  }
  if (decision === 'accept' && decided + created.length > 0) {
    text += '. The edits are in your editors, unsaved.';
  }
  if (conflicts === 0 && skipped.length === 0) {
    ctx.store.markReviewed(rt);
  }
  void vscode.window.showInformationMessage(text);
}

/** Whether `file` exists at `commit`. */
async function existsAt(repository: string, commit: string, file: string): Promise<boolean> {
  try {
    await run('git', ['-C', repository, 'cat-file', '-e', `${commit}:${file}`]);
    return true;
  } catch {
    return false;
  }
}

async function removeTask(ctx: CommandContext, arg: unknown): Promise<void> {
  const rt = await resolveTask(ctx, arg, (t) => isTerminal(t.task.state), 'Remove which task?', 'No finished task to remove.');
  if (!rt) {
    return;
  }
  if (!isTerminal(rt.task.state)) {
    void vscode.window.showInformationMessage(`Handoff: task #${rt.task.id} is ${rt.task.state}; cancel it before removing it.`);
    return;
  }
  const keep = 'Remove';
  const drop = 'Remove and Delete Branch';
  const pick = await vscode.window.showWarningMessage(
    `Remove task #${rt.task.id} (${rt.task.title})?`,
    {
      modal: true,
      detail: `Its record, container and scratch files are deleted. The branch ${rt.task.branch} stays unless you delete it too.`,
    },
    keep,
    drop,
  );
  if (!pick) {
    return;
  }
  if (!(await ctx.server.ensureStarted())) {
    return;
  }
  try {
    // The server says why when it refuses; it also announces the removal
    // (handoff/taskRemoved) to every client.
    const done = await ctx.server.execute<{ removed: number }>('handoff.removeTask', {
      task: rt.task.id,
      deleteBranch: pick === drop,
      uri: repoUri(rt),
    });
    if (!done) {
      return;
    }
    ctx.store.remove(rt.repository, rt.task.id);
    vscode.window.setStatusBarMessage(`Removed Handoff #${rt.task.id}`, 4000);
  } catch (e) {
    void vscode.window.showErrorMessage(`Handoff: removing task #${rt.task.id} failed: ${message(e)}`);
  }
}

/**
 * "Keep this one" on an attempt: removes the other tasks of its group (cancelling those
 * still at work), as `handoff pick ID` does; their branches stay.
 */
async function keepAttempt(ctx: CommandContext, arg: unknown): Promise<void> {
  const rt = await resolveTask(
    ctx,
    arg,
    (t) => othersInGroup(ctx.store.all(), t).length > 0,
    'Keep which attempt (the others of its group are removed)?',
    'No task is one of several attempts.',
  );
  if (!rt) {
    return;
  }
  const others = othersInGroup(ctx.store.all(), rt);
  if (others.length === 0) {
    void vscode.window.showInformationMessage(`Handoff: task #${rt.task.id} is the only attempt left in its group.`);
    return;
  }
  const ids = others.map((o) => `#${o.task.id}`).join(', ');
  const running = others.filter((o) => isPending(o.task.state));
  const confirm = 'Remove the Others';
  const pick = await vscode.window.showWarningMessage(
    `Keep task #${rt.task.id} (${rt.task.agent}) and remove the other attempts of g${rt.task.group}: ${ids}?`,
    {
      modal: true,
      detail:
        (running.length > 0 ? `${running.map((o) => `#${o.task.id}`).join(', ')} still at work will be cancelled. ` : '') +
        'Their records, containers and scratch files are deleted; their branches stay.',
    },
    confirm,
  );
  if (pick !== confirm) {
    return;
  }
  const removed: string[] = [];
  for (const other of others) {
    if (isPending(other.task.state)) {
      const cancelled = await ctx.server.execute<TaskRecord>('handoff.cancel', { task: other.task.id, uri: repoUri(other) });
      if (!cancelled) {
        continue;
      }
    }
    const done = await ctx.server.execute<{ removed: number }>('handoff.removeTask', {
      task: other.task.id,
      deleteBranch: false,
      uri: repoUri(other),
    });
    if (done) {
      ctx.store.remove(other.repository, other.task.id);
      removed.push(`#${other.task.id}`);
    }
  }
  if (removed.length > 0) {
    vscode.window.setStatusBarMessage(`Kept Handoff #${rt.task.id}; removed ${removed.join(', ')} (their branches stay)`, 6000);
  }
}

function isCommentReply(arg: unknown): arg is vscode.CommentReply {
  return typeof arg === 'object' && arg !== null && 'thread' in arg && typeof (arg as { text?: unknown }).text === 'string';
}

function isCommentThread(arg: unknown): arg is vscode.CommentThread {
  return typeof arg === 'object' && arg !== null && 'uri' in arg && 'comments' in arg && 'canReply' in arg;
}

/**
 * "Send comments": a task's pending review comments go to its agent as the next turn.
 * From a thread (with a comment typed in its box: added first), the task view, or the
 * palette.
 */
async function sendComments(ctx: CommandContext, arg: unknown): Promise<void> {
  let rt: RepoTask | undefined;
  if (isCommentReply(arg)) {
    if (arg.text.trim() !== '' && !(await ctx.reviewThreads.addComment(arg))) {
      return;
    }
    rt = ctx.reviewThreads.taskOf(arg.thread);
  } else if (isCommentThread(arg)) {
    rt = ctx.reviewThreads.taskOf(arg);
  } else {
    rt = await resolveTask(
      ctx,
      arg,
      (t) => ctx.reviewThreads.pendingCount(t) > 0,
      'Send the review comments of which task?',
      'No task has review comments waiting to be sent.',
    );
  }
  if (!rt) {
    return;
  }
  const pending = ctx.reviewThreads.pendingCount(rt);
  const target = rt;
  const task = await ctx.reviewThreads.whileSending(rt.repository, rt.task.id, () =>
    ctx.server.execute<TaskRecord>('handoff.sendComments', { task: target.task.id, uri: repoUri(target) }),
  );
  if (task) {
    ctx.store.update(rt.repository, task);
    ctx.reviewThreads.noteTask(rt.repository, task);
    const what = pending > 0 ? plural(pending, 'comment') : 'the comments';
    vscode.window.setStatusBarMessage(`$(sync~spin) Sent ${what} to Handoff #${task.id}; its next turn runs`, 6000);
  }
}

/** "Review": the task's first changed file, at its first pending hunk; else its diff or log. */
export async function review(ctx: CommandContext, rt: RepoTask): Promise<void> {
  const task = rt.task;
  if (task.files_changed.length === 0 || !task.head_commit) {
    await ctx.server.execute('handoff.showLog', { task: task.id, uri: repoUri(rt) });
    return;
  }
  for (const file of task.files_changed) {
    const full = path.join(rt.repository, file);
    if (!fs.existsSync(full)) {
      continue;
    }
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(full));
    const editor = await vscode.window.showTextDocument(doc, { preview: false });
    const hunks = await ctx.inlineDiff.waitForHunks(doc.uri, task.id, 5000);
    if (hunks.length > 0) {
      const at = hunks[0].range.start;
      editor.selection = new vscode.Selection(at, at);
      editor.revealRange(hunks[0].range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
      return;
    }
  }
  await openTaskDiff(rt);
}

/** The repository-relative path of a document, when it is in `repository`. */
export function relativeIn(repository: string, uri: vscode.Uri): string | undefined {
  const rel = relativePath(repository, uri.fsPath);
  return rel.startsWith('..') || path.isAbsolute(rel) ? undefined : rel;
}
