// "Open diff": the task's files at its base commit and at its result, side by side in
// VS Code's diff editor, read from the user's repository with git (the commits are in
// the task record).

import * as path from 'path';
import * as vscode from 'vscode';
import { catFileArgs, diffTitle, fromUriParts, GitRef, SCHEME, toUriParts } from './gitUri';
import { run } from './git';
import { RepoTask } from './model';

export class GitContent implements vscode.TextDocumentContentProvider {
  static readonly scheme = SCHEME;

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const ref = fromUriParts(uri.path, uri.query);
    try {
      const { stdout } = await run('git', catFileArgs(ref));
      return stdout.toString('utf8');
    } catch {
      // The file does not exist on that side (added or deleted by the agent).
      return '';
    }
  }
}

export function gitUri(ref: GitRef): vscode.Uri {
  return vscode.Uri.from(toUriParts(ref));
}

/** Opens the diff of one file of the task, or of all its files. */
export async function openTaskDiff(rt: RepoTask, file?: string): Promise<void> {
  const task = rt.task;
  if (!task.head_commit) {
    void vscode.window.showInformationMessage(
      `Handoff #${task.id} has no result yet (${task.state}); its diff is available once it has finished.`,
    );
    return;
  }
  const files = file !== undefined ? [file] : task.files_changed;
  if (files.length === 0) {
    void vscode.window.showInformationMessage(`Handoff #${task.id} changed no files.`);
    return;
  }
  const sides = (f: string) => ({
    left: gitUri({ repository: rt.repository, commit: task.base_commit, path: f }),
    right: gitUri({ repository: rt.repository, commit: task.head_commit as string, path: f }),
  });
  if (files.length === 1) {
    const { left, right } = sides(files[0]);
    await vscode.commands.executeCommand('vscode.diff', left, right, diffTitle(files[0], task.id), {
      preview: false,
    });
    return;
  }
  const resources = files.map((f) => {
    const { left, right } = sides(f);
    return [vscode.Uri.file(path.join(rt.repository, f)), left, right];
  });
  try {
    await vscode.commands.executeCommand('vscode.changes', `Handoff #${task.id}: ${task.title}`, resources);
  } catch {
    // An older workbench without the multi-file diff editor: one file at a time.
    const pick = await vscode.window.showQuickPick(files, { title: `Handoff #${task.id}: which file?` });
    if (pick) {
      await openTaskDiff(rt, pick);
    }
  }
}
