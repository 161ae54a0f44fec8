// The task record as the server sends it (docs/protocol.md, "The task record"), and
// how the extension words it: labels, icons, elapsed time, counts. No VS Code API here,
// so the unit tests run under plain Node.

export type TaskState =
  | 'queued'
  | 'starting'
  | 'running'
  | 'finalizing'
  | 'done'
  | 'failed'
  | 'cancelled';

export interface Origin {
  /** Repository-relative path. */
  path: string;
  /** 0-based line. */
  line: number;
}

export interface TaskRecord {
  id: number;
  state: TaskState;
  agent: string;
  image?: string;
  prompt: string;
  title: string;
  branch: string;
  base_commit: string;
  head_commit: string | null;
  files_changed: string[];
  /** Changed files that configure tools, editors, agents or CI (never accepted in bulk). */
  sensitive_files?: string[];
  error: string | null;
  exit_code?: number | null;
  origin?: Origin | null;
  created_at?: string;
  started_at?: string | null;
  finished_at?: string | null;
}

/** A task and the repository (working tree path) it belongs to. */
export interface RepoTask {
  repository: string;
  task: TaskRecord;
}

export function isTerminal(state: TaskState): boolean {
  return state === 'done' || state === 'failed' || state === 'cancelled';
}

/** Queued or running: something the user may want to cancel. */
export function isPending(state: TaskState): boolean {
  return !isTerminal(state);
}

/** Finished with commits on its branch: there is something to review. */
export function hasResult(task: TaskRecord): boolean {
  return isTerminal(task.state) && task.head_commit !== null && task.files_changed.length > 0;
}

/** Seconds the agent has run (or ran), as the server's lens counts them. */
export function elapsedSeconds(task: TaskRecord, now: number): number | undefined {
  if (!task.started_at) {
    return undefined;
  }
  const start = Date.parse(task.started_at);
  const end = task.finished_at ? Date.parse(task.finished_at) : now;
  if (Number.isNaN(start) || Number.isNaN(end)) {
    return undefined;
  }
  return Math.max(0, Math.floor((end - start) / 1000));
}

/** `42s`, `1m32s`, `2h05m`, as the server writes them (shared table: src/test/durations.json). */
export function formatElapsed(seconds: number | undefined): string {
  if (seconds === undefined) {
    return '';
  }
  if (seconds < 60) {
    return `${seconds}s`;
  }
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  }
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

/** The codicon that shows a state (`sync~spin` spins while the task works). */
export function stateIcon(state: TaskState): string {
  switch (state) {
    case 'queued':
      return 'clock';
    case 'starting':
    case 'running':
    case 'finalizing':
      return 'sync~spin';
    case 'done':
      return 'pass';
    case 'failed':
      return 'error';
    case 'cancelled':
      return 'circle-slash';
  }
}

/** The theme color for a state's icon, or undefined for the default. */
export function stateColor(state: TaskState): string | undefined {
  switch (state) {
    case 'done':
      return 'testing.iconPassed';
    case 'failed':
      return 'testing.iconFailed';
    default:
      return undefined;
  }
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The tree item's label: `#3 greet loudly`. */
export function taskLabel(task: TaskRecord): string {
  return `#${task.id} ${task.title || firstLine(task.prompt)}`;
}

/** The tree item's description: `running 1m32s`, `done 4s · 2 files`. */
export function taskDescription(task: TaskRecord, now: number): string {
  const parts: string[] = [];
  const elapsed = formatElapsed(elapsedSeconds(task, now));
  parts.push(elapsed ? `${task.state} ${elapsed}` : task.state);
  if (isTerminal(task.state)) {
    parts.push(plural(task.files_changed.length, 'file'));
  }
  parts.push(task.agent);
  return parts.join(' · ');
}

/** A hover for the tree item, in Markdown. */
export function taskTooltip(task: TaskRecord, repository: string, now: number): string {
  const lines = [
    `**Handoff #${task.id}** — ${task.state}${elapsedSeconds(task, now) !== undefined ? ` (${formatElapsed(elapsedSeconds(task, now))})` : ''}`,
    '',
    `Agent: \`${task.agent}\`${task.image ? ` on \`${task.image}\`` : ''}`,
    `Branch: \`${task.branch}\``,
    `Repository: \`${repository}\``,
  ];
  if (task.origin) {
    lines.push(`From: \`${task.origin.path}:${task.origin.line + 1}\``);
  }
  if (task.files_changed.length > 0) {
    lines.push(`Files changed: ${task.files_changed.map((f) => `\`${f}\``).join(', ')}`);
  }
  if (task.error) {
    lines.push('', `Error: ${task.error}`);
  }
  lines.push('---', codeBlock(truncate(task.prompt, 600)));
  return lines.filter((l) => l !== '').join('\n\n');
}

/** Text shown as is in Markdown: a fence longer than any run of backticks inside. */
export function codeBlock(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}text\n${text}\n${fence}`;
}

export function firstLine(text: string): string {
  const line = text.split(/\r?\n/, 1)[0] ?? '';
  return truncate(line.trim(), 80);
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}


export interface Counts {
  /** Queued or working. */
  running: number;
  /** Finished with a result the user has not dealt with yet. */
  toReview: number;
  failed: number;
}

/**
 * What the status bar shows. `reviewed` says which finished tasks the user has dealt
 * with (accepted or rejected everything, or removed); they stop counting as "to review".
 */
export function countTasks(tasks: Iterable<RepoTask>, reviewed: (t: RepoTask) => boolean): Counts {
  const counts: Counts = { running: 0, toReview: 0, failed: 0 };
  for (const t of tasks) {
    if (isPending(t.task.state)) {
      counts.running++;
    } else if (hasResult(t.task) && !reviewed(t)) {
      counts.toReview++;
    } else if (t.task.state === 'failed' && !reviewed(t)) {
      counts.failed++;
    }
  }
  return counts;
}

/** The status bar's text, with codicons. */
export function statusText(counts: Counts): string {
  const parts = [`$(sync${counts.running > 0 ? '~spin' : ''}) ${counts.running}`];
  parts.push(`$(check) ${counts.toReview}`);
  if (counts.failed > 0) {
    parts.push(`$(error) ${counts.failed}`);
  }
  return `Handoff ${parts.join('  ')}`;
}

export function statusTooltip(counts: Counts): string {
  const parts = [`${counts.running} running`, `${counts.toReview} ready to review`];
  if (counts.failed > 0) {
    parts.push(`${counts.failed} failed`);
  }
  return `Handoff: ${parts.join(', ')} — click to show the tasks`;
}

/** True when `next` is the record that ended a task (first time seen as finished). */
export function justEnded(previous: TaskRecord | undefined, next: TaskRecord): boolean {
  return isTerminal(next.state) && (previous === undefined || !isTerminal(previous.state));
}

/** The notification shown when a task ends. */
export function endMessage(task: TaskRecord): string {
  const what = task.title || firstLine(task.prompt);
  switch (task.state) {
    case 'done':
      return task.files_changed.length === 0
        ? `Handoff #${task.id} done: ${what} — no files changed.`
        : `Handoff #${task.id} done: ${what} — ${plural(task.files_changed.length, 'file')} changed (${truncate(task.files_changed.join(', '), 120)}).`;
    case 'failed':
      return `Handoff #${task.id} failed: ${what}${task.error ? ` — ${task.error}` : ''}`;
    default:
      return `Handoff #${task.id} cancelled: ${what}${task.error ? ` — ${task.error}` : ''}`;
  }
}

