// The connection to `handoff lsp`: finding the binary, starting the language client,
// restarting it when it dies, and sending Handoff's commands. Custom notifications go
// to the task store; everything else is plain LSP handled by vscode-languageclient.

import * as fs from 'fs';
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  MessageActionItem,
  Middleware,
  ResponseError,
  RevealOutputChannelOn,
  ServerOptions,
  ShowMessageRequest,
  ShowMessageRequestParams,
  MessageType,
  State,
} from 'vscode-languageclient/node';
import { shownByServer } from './errors';
import { TaskRecord } from './model';
import { RestartPolicy } from './restartPolicy';
import { findServer, ServerLookup } from './serverPath';
import { TrustQuestion, trustQuestion } from './trust';


export interface TaskChangedParams {
  repository: string;
  task: TaskRecord;
}

export interface TaskRemovedParams {
  repository: string;
  task: number;
}

export interface ServerHooks {
  onTaskChanged(params: TaskChangedParams): void;
  /** A task's record is gone (`handoff rm` from anywhere, or `handoff.removeTask`). */
  onTaskRemoved(params: TaskRemovedParams): void;
  /** The client is running (first start or after a restart): reload what it knows. */
  onReady(): void;
  /**
   * The server asks whether to trust a repository's configuration: the extension asks
   * the user its own way (the server has its answer, `null`, already).
   */
  onTrustQuestion(question: TrustQuestion): void;
  /** Lets the extension take over commands the server's code actions and lenses run. */
  middleware: Middleware;
}

export class Server implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private readonly policy = new RestartPolicy();
  private starting: Promise<boolean> | undefined;
  /** The binary in use, for the CLI calls the protocol has no command for (`rm`). */
  binary: string | undefined;
  private readonly stateChanged = new vscode.EventEmitter<boolean>();
  /** Fires with `running` whenever the server starts or stops. */
  readonly onDidChangeRunning = this.stateChanged.event;

  constructor(
    readonly output: vscode.OutputChannel,
    private readonly hooks: ServerHooks,
  ) {}

  get running(): boolean {
    return this.client?.state === State.Running;
  }

  /** Starts the client unless it runs; false (after telling the user) if it cannot. */
  ensureStarted(): Promise<boolean> {
    if (this.running) {
      return Promise.resolve(true);
    }
    if (this.client?.state === State.Starting && !this.starting) {
      // The client is restarting the server after a crash: wait for it.
      return this.whenStarted(this.client, 30_000);
    }
    if (!this.starting) {
      this.starting = this.start().finally(() => (this.starting = undefined));
    }
    return this.starting;
  }

  private whenStarted(client: LanguageClient, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        sub.dispose();
        resolve(client.state === State.Running);
      }, timeoutMs);
      const sub = client.onDidChangeState((e) => {
        if (e.newState !== State.Starting) {
          clearTimeout(timer);
          sub.dispose();
          resolve(e.newState === State.Running);
        }
      });
    });
  }

  private lookup(): ServerLookup {
    const setting = vscode.workspace.getConfiguration('handoff').get<string>('serverPath', '');
    const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
    return findServer(setting, { PATH: process.env.PATH, HOME: process.env.HOME }, folders, isExecutable);
  }

  private async start(): Promise<boolean> {
    await this.stop();
    const found = this.lookup();
    if (!found.ok) {
      this.stateChanged.fire(false);
      this.output.appendLine(found.message);
      void this.explainMissing(found);
      return false;
    }
    this.binary = found.path;
    this.output.appendLine(`Starting ${found.path} lsp (found through ${found.source === 'setting' ? 'handoff.serverPath' : 'PATH'})`);
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const serverOptions: ServerOptions = {
      command: found.path,
      args: ['lsp'],
      options: { cwd: folder, env: process.env },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }],
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      // The extension tells the user a task ended itself, with buttons; the server's
      // own "task ended" messages would say it twice. It handles handoff/taskChanged
      // and handoff/taskRemoved, which the server sends only on request, and asks for
      // the text of review comments itself (docs/protocol.md, "Initialization options").
      initializationOptions: { taskMessages: false, handoffNotifications: true, commentInput: true },
      middleware: this.hooks.middleware,
      errorHandler: {
        error: (_error, _message, count) => ({
          action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
          handled: true,
        }),
        closed: () => {
          if (this.policy.crashed(Date.now())) {
            this.output.appendLine(
              `The Handoff language server stopped; restarting it (${this.policy.recentCrashes} in the last 3 minutes).`,
            );
            return { action: CloseAction.Restart, handled: true };
          }
          void this.explainCrashes();
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
    };
    const client = new LanguageClient('handoff', 'Handoff', serverOptions, clientOptions);
    client.onNotification('handoff/taskChanged', (params: TaskChangedParams) => this.hooks.onTaskChanged(params));
    client.onNotification('handoff/taskRemoved', (params: TaskRemovedParams) => this.hooks.onTaskRemoved(params));
    // Replaces the client's own handler (registered before it, at the connection's start).
    client.onRequest(ShowMessageRequest.type, async (params): Promise<MessageActionItem | null> => {
      const question = trustQuestion(params);
      if (question) {
        this.hooks.onTrustQuestion(question);
        return null;
      }
      return showMessageRequest(params);
    });
    client.onDidChangeState((e) => {
      if (e.newState !== State.Starting) {
        this.stateChanged.fire(e.newState === State.Running);
      }
      if (e.newState === State.Running) {
        this.hooks.onReady();
      }
    });
    this.client = client;
    try {
      await client.start();
      return true;
    } catch (e) {
      this.output.appendLine(`Cannot start the Handoff language server: ${message(e)}`);
      const pick = await vscode.window.showErrorMessage(
        `Handoff: the language server (${found.path} lsp) did not start: ${message(e)}`,
        'Show Output',
        'Open Settings',
      );
      if (pick === 'Show Output') {
        this.output.show(true);
      } else if (pick === 'Open Settings') {
        void vscode.commands.executeCommand('workbench.action.openSettings', 'handoff.serverPath');
      }
      return false;
    }
  }

  async restart(): Promise<boolean> {
    this.policy.reset();
    await this.stop();
    return this.ensureStarted();
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client && client.state !== State.Stopped) {
      try {
        await client.stop(5000);
      } catch (e) {
        this.output.appendLine(`Stopping the language server: ${message(e)}`);
      }
    }
  }

  /**
   * Runs one of the server's commands (docs/protocol.md). Returns undefined when it
   * failed: the server has told the user why (window/showMessage); other failures are
   * shown here.
   */
  async execute<T>(command: string, args: object): Promise<T | undefined> {
    if (!(await this.ensureStarted()) || !this.client) {
      return undefined;
    }
    try {
      return (await this.client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [args] })) as T;
    } catch (e) {
      this.output.appendLine(`${command} failed: ${message(e)}`);
      if (!(e instanceof ResponseError && shownByServer(e.data))) {
        void vscode.window.showErrorMessage(`Handoff: ${command} failed: ${message(e)}`);
      }
      return undefined;
    }
  }

  private async explainMissing(found: Extract<ServerLookup, { ok: false }>): Promise<void> {
    const actions = found.fix === 'setting' ? ['Open Settings', 'Retry'] : ['Set Path…', 'Open Settings', 'Retry'];
    const pick = await vscode.window.showErrorMessage(found.message, ...actions);
    if (pick === 'Open Settings') {
      void vscode.commands.executeCommand('workbench.action.openSettings', 'handoff.serverPath');
    } else if (pick === 'Set Path…') {
      const chosen = await vscode.window.showOpenDialog({
        title: 'Handoff: choose the handoff binary',
        canSelectMany: false,
        canSelectFolders: false,
      });
      if (chosen?.[0]) {
        await vscode.workspace
          .getConfiguration('handoff')
          .update('serverPath', chosen[0].fsPath, vscode.ConfigurationTarget.Global);
        void this.restart();
      }
    } else if (pick === 'Retry') {
      void this.restart();
    }
  }

  private async explainCrashes(): Promise<void> {
    const pick = await vscode.window.showErrorMessage(
      'Handoff: the language server keeps stopping (5 times in 3 minutes), so it is not restarted any more. ' +
        'Its log is in the "Handoff" output and in ~/.local/state/handoff/lsp.log.',
      'Restart',
      'Show Output',
    );
    if (pick === 'Restart') {
      void this.restart();
    } else if (pick === 'Show Output') {
      this.output.show(true);
    }
  }

  dispose(): void {
    void this.stop();
    this.stateChanged.dispose();
  }
}

/** Any other question of the server, as vscode-languageclient shows it. */
async function showMessageRequest(params: ShowMessageRequestParams): Promise<MessageActionItem | null> {
  const show =
    params.type === MessageType.Error
      ? vscode.window.showErrorMessage
      : params.type === MessageType.Warning
        ? vscode.window.showWarningMessage
        : vscode.window.showInformationMessage;
  return (await show<MessageActionItem>(params.message, ...(params.actions ?? []))) ?? null;
}

function isExecutable(p: string): boolean {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) {
      return false;
    }
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
