// What a failed server command says beside its message (docs/protocol.md, "Errors"):
// `data.kind` names the kind of failure, `data.shown` that the server has shown the
// message to the user already. No VS Code API here.

/** Whether the server has shown the failure's message already (`window/showMessage`). */
export function shownByServer(data: unknown): boolean {
  return !!data && typeof data === 'object' && (data as { shown?: unknown }).shown === true;
}
