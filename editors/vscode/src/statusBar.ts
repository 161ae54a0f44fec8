// The status bar item: tasks running and ready to review ("Handoff ⟳ 1  ✓ 2").

import * as vscode from 'vscode';
import { countTasks, statusText, statusTooltip } from './model';
import { TaskStore } from './store';

export class TaskStatus implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('handoff.status', vscode.StatusBarAlignment.Left, 50);
  private readonly subscription: { dispose(): void };

  private serverDown = false;

  constructor(
    private readonly store: TaskStore,
    private readonly onCounts: (toReview: number) => void,
  ) {
    this.item.name = 'Handoff';
    this.subscription = store.onDidChange(() => this.update());
    this.update();
  }

  /**
   * Whether the language server runs; when it does not, the item says so. The item
   * shows from the first start on (not in windows where Handoff was never started).
   */
  setServerRunning(running: boolean): void {
    this.serverDown = !running;
    this.update();
    this.item.show();
  }

  update(): void {
    if (this.serverDown) {
      this.item.text = '$(warning) Handoff';
      this.item.tooltip = 'Handoff: the language server is not running — click to restart it (details in the "Handoff" output)';
      this.item.command = 'handoff.ui.restartServer';
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
      return;
    }
    this.item.command = 'handoff.ui.showTasks';
    const counts = countTasks(this.store.all(), (t) => this.store.isReviewed(t));
    this.item.text = statusText(counts);
    this.item.tooltip = statusTooltip(counts);
    this.item.backgroundColor =
      counts.failed > 0 ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.onCounts(counts.toReview);
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}
