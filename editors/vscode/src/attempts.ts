// Several attempts at one prompt (`attempts` of handoff.delegate, `handoff run
// --attempts`): the tasks of a group side by side in the task view, what each one
// shows to compare them, and what "Keep this one" removes. No VS Code API here.

import { elapsedSeconds, formatElapsed, isTerminal, plural, RepoTask, TaskRecord } from './model';

/** Most attempts one start may ask for (the server's MAX_ATTEMPTS). */
export const MAX_ATTEMPTS = 16;

/** A row of the task view: a task on its own, or the attempts of one group. */
export type ListEntry =
  | { kind: 'task'; rt: RepoTask }
  | { kind: 'group'; repository: string; group: number; tasks: RepoTask[] };

/**
 * The rows for `tasks` (newest first): the tasks of a group with two or more left
 * together under one row, placed where its newest task would be, in the order they
 * were started. A group down to one task (the others removed) is a plain task again.
 */
export function listEntries(tasks: readonly RepoTask[]): ListEntry[] {
  const members = new Map<string, RepoTask[]>();
  for (const rt of tasks) {
    const key = groupKey(rt);
    if (key !== undefined) {
      members.set(key, [...(members.get(key) ?? []), rt]);
    }
  }
  const entries: ListEntry[] = [];
  const placed = new Set<string>();
  for (const rt of tasks) {
    const key = groupKey(rt);
    const group = key === undefined ? undefined : members.get(key);
    if (key === undefined || group === undefined || group.length < 2) {
      entries.push({ kind: 'task', rt });
    } else if (!placed.has(key)) {
      placed.add(key);
      entries.push({
        kind: 'group',
        repository: rt.repository,
        group: rt.task.group as number,
        tasks: [...group].sort((a, b) => a.task.id - b.task.id),
      });
    }
  }
  return entries;
}

function groupKey(rt: RepoTask): string | undefined {
  const g = rt.task.group;
  return typeof g === 'number' ? `${rt.repository}#g${g}` : undefined;
}

/** The group's row: `g3: 3 attempts — greet loudly`. */
export function groupLabel(group: number, tasks: readonly RepoTask[]): string {
  const first = tasks[0]?.task;
  return `g${group}: ${plural(tasks.length, 'attempt')}${first ? ` — ${first.title}` : ''}`;
}

/** An attempt's row under its group: `#4 claude`. */
export function attemptLabel(task: TaskRecord): string {
  return `#${task.id} ${task.agent}`;
}

/**
 * What compares the attempts: `done 1m02s · check passed · 2 files · +10 −3 · $0.12`
 * (the check, lines and cost only when known).
 */
export function attemptDescription(task: TaskRecord, now: number): string {
  const elapsed = formatElapsed(elapsedSeconds(task, now));
  const parts = [elapsed ? `${task.state} ${elapsed}` : task.state];
  if (task.check) {
    parts.push(task.check.passed ? 'check passed' : 'check failed');
  }
  if (isTerminal(task.state)) {
    parts.push(plural(task.files_changed.length, 'file'));
    if (task.head_commit) {
      parts.push(`+${task.lines_added ?? 0} −${task.lines_removed ?? 0}`);
    }
  }
  const cost = task.spent?.cost_usd ?? 0;
  if (cost > 0) {
    parts.push(`$${cost.toFixed(2)}`);
  }
  return parts.join(' · ');
}

/** The other tasks of `keep`'s group, which "Keep this one" removes. */
export function othersInGroup(tasks: readonly RepoTask[], keep: RepoTask): RepoTask[] {
  const group = keep.task.group;
  if (typeof group !== 'number') {
    return [];
  }
  return tasks
    .filter((rt) => rt.repository === keep.repository && rt.task.group === group && rt.task.id !== keep.task.id)
    .sort((a, b) => a.task.id - b.task.id);
}

/** The count typed in the "Attempts" input, or why it is not one. */
export function parseAttempts(text: string): { attempts: number } | { error: string } {
  const t = text.trim();
  if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > MAX_ATTEMPTS) {
    return { error: `A number of attempts from 1 to ${MAX_ATTEMPTS}.` };
  }
  return { attempts: Number(t) };
}

/**
 * The `agent` argument of handoff.delegate for the profiles picked, which take the
 * attempts in turn: their names comma-separated; null (the configured default) when
 * nothing is picked. A null in the list is the configured default, an empty slot
 * (`,codex`) for the server.
 */
export function agentSpec(picked: ReadonlyArray<string | null>): string | null {
  if (picked.every((a) => a === null)) {
    return null;
  }
  return picked.map((a) => a ?? '').join(',');
}
