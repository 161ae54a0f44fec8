// The "Tasks" view of the Handoff activity bar container: one item per task (state
// icon, elapsed time, files changed), the files it changed below it, grouped by
// repository when there are several; the attempts of one prompt together under their
// group, compared (state, check, files, lines, cost). Live: it redraws on every store
// change and every second while a task runs, for the elapsed time.

import * as path from 'path';
import * as vscode from 'vscode';
import { attemptDescription, attemptLabel, groupLabel, listEntries, ListEntry } from './attempts';
import {
  hasResult,
  isPending,
  RepoTask,
  stateColor,
  stateIcon,
  taskDescription,
  taskLabel,
  taskTooltip,
} from './model';
import { TaskStore } from './store';

export type TreeNode =
  | { kind: 'repository'; repository: string }
  | { kind: 'group'; repository: string; group: number }
  | { kind: 'task'; rt: RepoTask; attempt?: boolean }
  | { kind: 'file'; rt: RepoTask; file: string };

/** What the view shows of review comments: the task's count waiting to be sent. */
export interface CommentCounts {
  pendingCount(rt: RepoTask): number;
  readonly onDidChange: vscode.Event<void>;
}

export class TaskTree implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private timer: NodeJS.Timeout | undefined;
  private readonly subscriptions: Array<{ dispose(): void }>;

  constructor(
    private readonly store: TaskStore,
    private readonly comments: CommentCounts,
  ) {
    this.subscriptions = [store.onDidChange(() => this.refresh()), comments.onDidChange(() => this.refresh())];
  }

  refresh(): void {
    this.changed.fire(undefined);
    const running = this.store.all().some((t) => isPending(t.task.state));
    if (running && !this.timer) {
      this.timer = setInterval(() => this.refresh(), 1000);
    } else if (!running && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  getChildren(node?: TreeNode): TreeNode[] {
    if (!node) {
      const repos = this.store.repositories();
      if (repos.length > 1) {
        return repos.map((repository) => ({ kind: 'repository', repository }));
      }
      return listEntries(this.store.all()).map(toNode);
    }
    if (node.kind === 'repository') {
      return listEntries(this.store.all().filter((rt) => rt.repository === node.repository)).map(toNode);
    }
    if (node.kind === 'group') {
      return this.groupTasks(node).map((rt) => ({ kind: 'task', rt, attempt: true }));
    }
    if (node.kind === 'task') {
      const current = this.store.get(node.rt.repository, node.rt.task.id) ?? node.rt;
      return current.task.files_changed.map((file) => ({ kind: 'file', rt: current, file }));
    }
    return [];
  }

  private groupTasks(node: { repository: string; group: number }): RepoTask[] {
    const entry = listEntries(this.store.all().filter((rt) => rt.repository === node.repository)).find(
      (e) => e.kind === 'group' && e.group === node.group,
    );
    return entry?.kind === 'group' ? entry.tasks : [];
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    switch (node.kind) {
      case 'repository': {
        const item = new vscode.TreeItem(path.basename(node.repository), vscode.TreeItemCollapsibleState.Expanded);
        item.id = `repo:${node.repository}`;
        item.description = node.repository;
        item.iconPath = new vscode.ThemeIcon('repo');
        item.contextValue = 'repository';
        return item;
      }
      case 'group': {
        const tasks = this.groupTasks(node);
        const item = new vscode.TreeItem(groupLabel(node.group, tasks), vscode.TreeItemCollapsibleState.Expanded);
        item.id = `group:${node.repository}#g${node.group}`;
        item.description = groupStates(tasks);
        item.iconPath = new vscode.ThemeIcon('layers');
        item.tooltip = 'Several attempts at one prompt: review them, then "Keep this one" on the best removes the others.';
        item.contextValue = 'group';
        item.accessibilityInformation = { label: `Handoff group ${node.group}: ${item.label as string}` };
        return item;
      }
      case 'task': {
        const rt = this.store.get(node.rt.repository, node.rt.task.id) ?? node.rt;
        const task = rt.task;
        const now = Date.now();
        const item = new vscode.TreeItem(
          node.attempt ? attemptLabel(task) : taskLabel(task),
          task.files_changed.length > 0
            ? vscode.TreeItemCollapsibleState.Collapsed
            : vscode.TreeItemCollapsibleState.None,
        );
        item.id = `task:${rt.repository}#${task.id}`;
        const description = node.attempt ? attemptDescription(task, now) : taskDescription(task, now);
        const comments = this.comments.pendingCount(rt);
        item.description = comments > 0 ? `${description} · 💬 ${comments} to send` : description;
        const color = stateColor(task.state);
        item.iconPath = new vscode.ThemeIcon(stateIcon(task.state), color ? new vscode.ThemeColor(color) : undefined);
        item.tooltip = new vscode.MarkdownString(taskTooltip(task, rt.repository, now));
        item.contextValue = contextValue(rt, this.store, node.attempt === true, comments);
        item.accessibilityInformation = { label: `Handoff task ${task.id}, ${task.state}: ${task.title}` };
        return item;
      }
      case 'file': {
        const item = new vscode.TreeItem(path.posix.basename(node.file), vscode.TreeItemCollapsibleState.None);
        item.id = `file:${node.rt.repository}#${node.rt.task.id}:${node.file}`;
        item.resourceUri = vscode.Uri.file(path.join(node.rt.repository, node.file));
        item.description = path.posix.dirname(node.file) === '.' ? '' : path.posix.dirname(node.file);
        item.contextValue = 'file';
        item.command = {
          command: 'handoff.ui.openDiff',
          title: 'Open Diff',
          arguments: [node],
        };
        return item;
      }
    }
  }

  getParent(node: TreeNode): TreeNode | undefined {
    if (node.kind === 'file') {
      return { kind: 'task', rt: node.rt, attempt: this.inGroup(node.rt) };
    }
    if (node.kind === 'task' && node.attempt && typeof node.rt.task.group === 'number') {
      return { kind: 'group', repository: node.rt.repository, group: node.rt.task.group };
    }
    if ((node.kind === 'task' || node.kind === 'group') && this.store.repositories().length > 1) {
      return { kind: 'repository', repository: node.kind === 'task' ? node.rt.repository : node.repository };
    }
    return undefined;
  }

  dispose(): void {
    if (this.timer) {
      clearInterval(this.timer);
    }
    for (const s of this.subscriptions) {
      s.dispose();
    }
    this.changed.dispose();
  }

  private inGroup(rt: RepoTask): boolean {
    const g = rt.task.group;
    return typeof g === 'number' && this.groupTasks({ repository: rt.repository, group: g }).length > 1;
  }
}

function toNode(entry: ListEntry): TreeNode {
  return entry.kind === 'group'
    ? { kind: 'group', repository: entry.repository, group: entry.group }
    : { kind: 'task', rt: entry.rt };
}

/** `2 done · 1 running`. */
function groupStates(tasks: readonly RepoTask[]): string {
  const counts = new Map<string, number>();
  for (const rt of tasks) {
    counts.set(rt.task.state, (counts.get(rt.task.state) ?? 0) + 1);
  }
  return [...counts].map(([state, n]) => `${n} ${state}`).join(' · ');
}

/** Words the view's `when` clauses match on (`viewItem =~ /\bpending\b/`). */
function contextValue(rt: RepoTask, store: TaskStore, attempt: boolean, comments: number): string {
  const words = ['task', rt.task.state];
  words.push(isPending(rt.task.state) ? 'pending' : 'finished');
  if (hasResult(rt.task)) {
    words.push('result');
  }
  if (store.isReviewed(rt)) {
    words.push('reviewed');
  }
  if (attempt) {
    words.push('attempt');
  }
  if (comments > 0) {
    words.push('comments');
  }
  return words.join(' ');
}
