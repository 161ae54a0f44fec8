// The tasks the extension knows, per repository, fed by `handoff.listTasks` and
// `handoff/taskChanged`; and which finished tasks the user has dealt with. Views (the
// tree, the status bar) listen to it. No VS Code API here.

import * as path from 'path';
import { isTerminal, justEnded, RepoTask, TaskRecord } from './model';

/** Where the store keeps what must survive a reload (VS Code's workspaceState). */
export interface KeyValue {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): PromiseLike<void> | void;
}

export interface StoreChange {
  /** Tasks added or changed; empty when only the review marks changed. */
  changed: RepoTask[];
  /** Tasks that ended with this change (to notify about). */
  ended: RepoTask[];
}

const REVIEWED_KEY = 'handoff.reviewed';

export function taskKey(repository: string, id: number): string {
  return `${repository}#${id}`;
}

export class TaskStore {
  private readonly tasks = new Map<string, RepoTask>();
  private readonly listeners = new Set<(change: StoreChange) => void>();
  private readonly reviewed: Set<string>;
  /** Per task: the files in which hunks of it were seen pending, and how many now. */
  private readonly hunksSeen = new Map<string, Map<string, number>>();

  constructor(private readonly memory?: KeyValue) {
    this.reviewed = new Set(memory?.get<string[]>(REVIEWED_KEY) ?? []);
  }

  onDidChange(listener: (change: StoreChange) => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** A `handoff/taskChanged` notification. */
  update(repository: string, task: TaskRecord): StoreChange {
    const key = taskKey(repository, task.id);
    const previous = this.tasks.get(key)?.task;
    const entry = { repository, task };
    this.tasks.set(key, entry);
    this.reopenIfRunningAgain(key, previous, task);
    const change: StoreChange = {
      changed: [entry],
      ended: justEnded(previous, task) ? [entry] : [],
    };
    this.fire(change);
    return change;
  }

  /**
   * The full list of a repository's tasks (`handoff.listTasks`, at start and after a
   * server restart). Tasks that ended meanwhile count as ended; tasks that are gone
   * (removed with `handoff rm`) are dropped.
   */
  load(repository: string, tasks: TaskRecord[], notifyEnded: boolean): StoreChange {
    const change: StoreChange = { changed: [], ended: [] };
    const seen = new Set<string>();
    for (const task of tasks) {
      const key = taskKey(repository, task.id);
      seen.add(key);
      const previous = this.tasks.get(key)?.task;
      const entry = { repository, task };
      this.tasks.set(key, entry);
      this.reopenIfRunningAgain(key, previous, task);
      if (previous === undefined || JSON.stringify(previous) !== JSON.stringify(task)) {
        change.changed.push(entry);
        if (notifyEnded && previous !== undefined && justEnded(previous, task)) {
          change.ended.push(entry);
        }
      }
    }
    for (const [key, entry] of this.tasks) {
      if (entry.repository === repository && !seen.has(key)) {
        this.tasks.delete(key);
        change.changed.push(entry);
      }
    }
    this.fire(change);
    return change;
  }

  remove(repository: string, id: number): void {
    const key = taskKey(repository, id);
    const entry = this.tasks.get(key);
    if (entry) {
      this.tasks.delete(key);
      this.fire({ changed: [entry], ended: [] });
    }
  }

  get(repository: string, id: number): RepoTask | undefined {
    return this.tasks.get(taskKey(repository, id));
  }

  /** Newest first, grouped by repository. */
  all(): RepoTask[] {
    return [...this.tasks.values()].sort((a, b) =>
      a.repository === b.repository ? b.task.id - a.task.id : a.repository.localeCompare(b.repository),
    );
  }

  repositories(): string[] {
    return [...new Set([...this.tasks.values()].map((t) => t.repository))].sort();
  }

  /** The known repository that contains `file` (the deepest one), if any. */
  repositoryOf(file: string): string | undefined {
    let best: string | undefined;
    for (const repo of this.repositories()) {
      if (isInside(file, repo) && (best === undefined || repo.length > best.length)) {
        best = repo;
      }
    }
    return best;
  }

  /** A task by id, when `id` is unique across repositories or `file` names the repository. */
  find(id: number, file?: string): RepoTask | undefined {
    const repo = file !== undefined ? this.repositoryOf(file) : undefined;
    if (repo !== undefined) {
      return this.get(repo, id);
    }
    const matches = [...this.tasks.values()].filter((t) => t.task.id === id);
    return matches.length === 1 ? matches[0] : undefined;
  }

  isReviewed(t: RepoTask): boolean {
    return this.reviewed.has(taskKey(t.repository, t.task.id));
  }

  markReviewed(t: RepoTask): void {
    const key = taskKey(t.repository, t.task.id);
    if (!this.reviewed.has(key)) {
      this.reviewed.add(key);
      void this.memory?.update(REVIEWED_KEY, [...this.reviewed]);
      this.fire({ changed: [], ended: [] });
    }
  }

  /**
   * The pending hunks of `task` now shown in `file` (repository-relative). When every
   * file the task changed has shown hunks and none is left, the user has decided on all
   * of them: the task counts as reviewed.
   */
  noteHunks(repository: string, id: number, file: string, pending: number): void {
    const key = taskKey(repository, id);
    let files = this.hunksSeen.get(key);
    if (!files) {
      if (pending === 0) {
        return;
      }
      files = new Map();
      this.hunksSeen.set(key, files);
    }
    if (!files.has(file) && pending === 0) {
      return;
    }
    files.set(file, pending);
    const entry = this.tasks.get(key);
    if (!entry) {
      return;
    }
    const allSeen = entry.task.files_changed.every((f) => files.has(f));
    const noneLeft = [...files.values()].every((n) => n === 0);
    if (allSeen && noneLeft) {
      this.markReviewed(entry);
    }
  }

  /** Tasks with hunks noted in `file`, so a change of its diagnostics can be tracked. */
  tasksWithHunksIn(repository: string, file: string): number[] {
    const ids: number[] = [];
    for (const [key, files] of this.hunksSeen) {
      if (key.startsWith(`${repository}#`) && files.has(file)) {
        ids.push(Number(key.slice(repository.length + 1)));
      }
    }
    return ids;
  }

  /**
   * A finished task at work again (a reply, review comments) will have a new result:
   * its old hunks leave the editor without a decision, and it is to review again.
   */
  private reopenIfRunningAgain(key: string, previous: TaskRecord | undefined, task: TaskRecord): void {
    if (previous && isTerminal(previous.state) && !isTerminal(task.state)) {
      this.hunksSeen.delete(key);
      if (this.reviewed.delete(key)) {
        void this.memory?.update(REVIEWED_KEY, [...this.reviewed]);
      }
    }
  }

  private fire(change: StoreChange): void {
    for (const listener of this.listeners) {
      listener(change);
    }
  }
}

export function isInside(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
