// Which of the server's commands (run from its code actions and lenses) the extension
// takes over before they reach the server, and how. No VS Code API here.

/**
 * "Delegate selection to background agent…" comes without an instruction: the server
 * would ask with a message box offering fixed choices, the extension asks with an
 * input box instead.
 */
export function needsInstruction(command: string, args: readonly unknown[]): boolean {
  const first = args[0] as { kind?: unknown; instruction?: unknown } | undefined;
  return (
    command === 'handoff.delegate' &&
    first?.kind === 'selection' &&
    (typeof first.instruction !== 'string' || first.instruction.trim() === '')
  );
}

export function withInstruction(args: readonly unknown[], instruction: string): unknown[] {
  return [{ ...(args[0] as object), instruction }, ...args.slice(1)];
}

/**
 * "Open diff" (`handoff.showDiff`) of a task: the server writes a unified diff file;
 * the extension shows VS Code's diff editor instead when it knows the task's commits.
 */
export function diffRequest(command: string, args: readonly unknown[]): { task: number; uri?: string } | undefined {
  const first = args[0] as { task?: unknown; uri?: unknown } | undefined;
  if (command !== 'handoff.showDiff' || typeof first?.task !== 'number') {
    return undefined;
  }
  return { task: first.task, uri: typeof first.uri === 'string' ? first.uri : undefined };
}

/**
 * "Comment on this change (Handoff #N)…" runs `handoff.comment` without text: the
 * extension asks for it (it sets `initializationOptions.commentInput`). Returns the
 * hunk it is about, or undefined for any other command.
 */
export function commentRequest(
  command: string,
  args: readonly unknown[],
): { task: number; uri: string; hunk: number } | undefined {
  const first = args[0] as { task?: unknown; uri?: unknown; hunk?: unknown; text?: unknown } | undefined;
  if (
    command !== 'handoff.comment' ||
    typeof first?.task !== 'number' ||
    typeof first.uri !== 'string' ||
    typeof first.hunk !== 'number' ||
    (typeof first.text === 'string' && first.text.trim() !== '')
  ) {
    return undefined;
  }
  return { task: first.task, uri: first.uri, hunk: first.hunk };
}

export function withCommentText(args: readonly unknown[], text: string): unknown[] {
  return [{ ...(args[0] as object), text }, ...args.slice(1)];
}

/**
 * The commands that send a task's pending review comments to its agent: "Send
 * comments" (`handoff.sendComments`, from a lens or action) and any reply
 * (`handoff.reply`: the comments go with it). Returns the task, or undefined.
 */
export function sendsComments(command: string, args: readonly unknown[]): { task: number; uri?: string } | undefined {
  const first = args[0] as { task?: unknown; uri?: unknown } | undefined;
  if ((command !== 'handoff.sendComments' && command !== 'handoff.reply') || typeof first?.task !== 'number') {
    return undefined;
  }
  return { task: first.task, uri: typeof first.uri === 'string' ? first.uri : undefined };
}
