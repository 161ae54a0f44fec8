// The inline diff of finished tasks. The server publishes each pending hunk of an open
// document as a Hint diagnostic (and its "Accept | Reject" CodeLens); this draws it:
// the lines the agent replaces struck through on a red background, the lines it
// proposes after them in green, and the whole change with Accept / Reject / Open diff
// links in a hover.

import * as vscode from 'vscode';
import { addedPreview, diffBlock, hunkFromData, hunkLines, HunkView } from './hunks';

export interface PlacedHunk {
  range: vscode.Range;
  view: HunkView;
}

export class InlineDiff implements vscode.Disposable {
  private readonly hunks = new Map<string, PlacedHunk[]>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  /** The pending hunks of a document changed. */
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [];

  private readonly removed = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor('diffEditor.removedLineBackground'),
    textDecoration: 'line-through',
    overviewRulerColor: new vscode.ThemeColor('editorOverviewRuler.deletedForeground'),
    overviewRulerLane: vscode.OverviewRulerLane.Left,
  });
  private readonly added = vscode.window.createTextEditorDecorationType({
    after: {
      color: new vscode.ThemeColor('gitDecoration.addedResourceForeground'),
      backgroundColor: new vscode.ThemeColor('diffEditor.insertedTextBackground'),
      margin: '0 0 0 2em',
      fontStyle: 'italic',
    },
    overviewRulerColor: new vscode.ThemeColor('editorOverviewRuler.addedForeground'),
    overviewRulerLane: vscode.OverviewRulerLane.Left,
  });
  private readonly conflict = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor('inputValidation.warningBackground'),
    after: {
      color: new vscode.ThemeColor('editorWarning.foreground'),
      margin: '0 0 0 2em',
      fontStyle: 'italic',
    },
    overviewRulerColor: new vscode.ThemeColor('editorOverviewRuler.warningForeground'),
    overviewRulerLane: vscode.OverviewRulerLane.Left,
  });

  constructor(private readonly enabled: () => boolean) {
    this.disposables.push(
      vscode.window.onDidChangeVisibleTextEditors(() => this.redrawAll()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('handoff.inlineDiff')) {
          this.redrawAll();
        }
      }),
    );
  }

  /** Called with every diagnostics publication of the server (client middleware). */
  update(uri: vscode.Uri, diagnostics: readonly vscode.Diagnostic[]): void {
    const placed: PlacedHunk[] = [];
    for (const d of diagnostics) {
      if (d.source !== 'handoff') {
        continue;
      }
      const view = hunkFromData((d as { data?: unknown }).data);
      if (view) {
        placed.push({ range: d.range, view });
      }
    }
    const key = uri.toString();
    if (placed.length === 0) {
      this.hunks.delete(key);
    } else {
      this.hunks.set(key, placed);
    }
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document.uri.toString() === key) {
        this.draw(editor);
      }
    }
    this.changed.fire(uri);
  }

  hunksIn(uri: vscode.Uri): PlacedHunk[] {
    return this.hunks.get(uri.toString()) ?? [];
  }

  /** Resolves with the hunks of `task` in `uri` once the server has published them. */
  waitForHunks(uri: vscode.Uri, task: number, timeoutMs: number): Promise<PlacedHunk[]> {
    const mine = () => this.hunksIn(uri).filter((h) => h.view.task === task);
    if (mine().length > 0) {
      return Promise.resolve(mine());
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        sub.dispose();
        resolve(mine());
      }, timeoutMs);
      const sub = this.onDidChange((changed) => {
        if (changed.toString() === uri.toString() && mine().length > 0) {
          clearTimeout(timer);
          sub.dispose();
          resolve(mine());
        }
      });
    });
  }

  private redrawAll(): void {
    for (const editor of vscode.window.visibleTextEditors) {
      this.draw(editor);
    }
  }

  private draw(editor: vscode.TextEditor): void {
    const removed: vscode.DecorationOptions[] = [];
    const added: vscode.DecorationOptions[] = [];
    const conflicts: vscode.DecorationOptions[] = [];
    if (this.enabled()) {
      const doc = editor.document;
      const lastLine = Math.max(0, doc.lineCount - 1);
      for (const h of this.hunksIn(doc.uri)) {
        const hover = hoverFor(doc.uri, h.view);
        const lines = hunkLines(h.range, h.view);
        if (h.view.conflict) {
          const first = 'insertAt' in lines ? Math.min(lines.insertAt, lastLine) : lines.first;
          const last = 'insertAt' in lines ? first : Math.min(lines.last, lastLine);
          conflicts.push({
            range: new vscode.Range(first, 0, last, 0),
            hoverMessage: hover,
            renderOptions: {
              after: { contentText: `⚠ Handoff #${h.view.task}: conflict — you edited these lines; open the diff to merge` },
            },
          });
          continue;
        }
        let anchor: number;
        if ('insertAt' in lines) {
          // Shown after the line above the insertion point (or on the first line).
          anchor = Math.min(Math.max(0, lines.insertAt - 1), lastLine);
        } else {
          const first = Math.min(lines.first, lastLine);
          const last = Math.min(lines.last, lastLine);
          removed.push({ range: new vscode.Range(first, 0, last, doc.lineAt(last).text.length), hoverMessage: hover });
          anchor = last;
        }
        const end = doc.lineAt(anchor).range.end;
        added.push({
          range: new vscode.Range(end, end),
          hoverMessage: hover,
          renderOptions: { after: { contentText: addedPreview(h.view) } },
        });
      }
    }
    editor.setDecorations(this.removed, removed);
    editor.setDecorations(this.added, added);
    editor.setDecorations(this.conflict, conflicts);
  }

  dispose(): void {
    for (const d of this.disposables) {
      d.dispose();
    }
    this.removed.dispose();
    this.added.dispose();
    this.conflict.dispose();
    this.changed.dispose();
  }
}

function commandLink(title: string, command: string, arg: unknown): string {
  return `[${title}](command:${command}?${encodeURIComponent(JSON.stringify([arg]))})`;
}

function hoverFor(uri: vscode.Uri, view: HunkView): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  md.isTrusted = { enabledCommands: ['handoff.accept', 'handoff.reject', 'handoff.ui.openDiff'] };
  md.appendMarkdown(
    view.conflict
      ? `**Handoff #${view.task}**: conflict — you edited the lines this change replaces; it cannot be applied here.\n\n`
      : `**Handoff #${view.task}** proposes:\n\n`,
  );
  md.appendMarkdown(`${diffBlock(view)}\n\n`);
  const links: string[] = [];
  const hunkArg = { task: view.task, uri: uri.toString(), hunk: view.hunk };
  if (!view.conflict) {
    links.push(commandLink('$(check) Accept', 'handoff.accept', hunkArg));
  }
  links.push(commandLink('$(close) Reject', 'handoff.reject', hunkArg));
  links.push(commandLink('$(diff) Open diff', 'handoff.ui.openDiff', { task: view.task, uri: uri.toString() }));
  md.appendMarkdown(links.join(' · '));
  return md;
}
