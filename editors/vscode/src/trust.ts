// The question about a repository's untrusted configuration (docs/protocol.md, "The
// trust question"): recognised by the data its "Trust" action carries, never by its
// wording, and asked the way VS Code asks about Workspace Trust. No VS Code API here.

/** What the server's trust question is about. */
export interface TrustQuestion {
  /** The repository's working tree. */
  repository: string;
  /** The settings of its configuration that are ignored until it is trusted. */
  ignored: string[];
  /** The content asked about: `handoff.trust` trusts only that. */
  sha256: string;
}

/** The result of `handoff.trust`. */
export interface TrustResult {
  repository: string;
  trusted: boolean;
  applied: string[];
}

interface MessageRequest {
  actions?: Array<{ title: string; [property: string]: unknown }> | null;
}

/** The trust question, when `params` (of `window/showMessageRequest`) is one. */
export function trustQuestion(params: MessageRequest): TrustQuestion | undefined {
  const trust = params.actions?.find((a) => a.title === 'Trust');
  const { repository, ignored, sha256 } = (trust ?? {}) as { repository?: unknown; ignored?: unknown; sha256?: unknown };
  if (
    typeof repository !== 'string' ||
    typeof sha256 !== 'string' ||
    !Array.isArray(ignored) ||
    !ignored.every((s) => typeof s === 'string')
  ) {
    return undefined;
  }
  return { repository, ignored, sha256 };
}

/** The modal dialog that asks: its message and its detail. */
export function trustDialog(question: TrustQuestion): { message: string; detail: string } {
  const name = question.repository.replace(/\/+$/, '').split('/').pop() || question.repository;
  return {
    message: `Do you trust the Handoff configuration of "${name}"?`,
    detail: [
      `The repository's own .handoff.toml (and .handoff/, its dev container) can widen the sandbox Handoff's agents run in. ` +
        `Until you trust it as it is now, these settings of it are ignored:`,
      '',
      ...question.ignored.map((s) => `• ${s}`),
      '',
      `Trust only a configuration you have read. Trust is for this exact content: when it changes, Handoff asks again. ` +
        `Same as \`handoff trust\` in ${question.repository.replace(/\/+$/, '')}.`,
    ].join('\n'),
  };
}

/** What the user is told once `handoff.trust` has answered. */
export function trustOutcome(result: TrustResult): string {
  if (!result.trusted) {
    return `Handoff: ${result.repository} has no configuration of its own; nothing to trust.`;
  }
  const applied = result.applied.length > 0 ? `; now applied: ${result.applied.join(', ')}` : '';
  return `Handoff: trusted the configuration of ${result.repository.replace(/\/+$/, '')} as it is now${applied}.`;
}
