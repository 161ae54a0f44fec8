// A pending hunk as the server publishes it: a diagnostic of severity Hint, source
// "handoff", whose `data` holds the change (docs/protocol.md, "Diagnostics"):
// `{task, hunk, conflict, oldLines, newLines}`. This module turns it into what the
// inline diff draws. The diagnostic's message is for people and is never parsed.
// No VS Code API here.

export interface HunkView {
  task: number;
  hunk: number;
  conflict: boolean;
  /** Lines of the current buffer the agent replaces, without line ends. */
  removed: string[];
  /** Lines the agent proposes instead, without line ends. */
  added: string[];
}

export interface LineRange {
  start: { line: number; character: number };
  end: { line: number; character: number };
}

/** The hunk a Handoff diagnostic's `data` describes, or undefined for any other data. */
export function hunkFromData(data: unknown): HunkView | undefined {
  if (!data || typeof data !== 'object') {
    return undefined;
  }
  const d = data as { task?: unknown; hunk?: unknown; conflict?: unknown; oldLines?: unknown; newLines?: unknown };
  if (typeof d.task !== 'number' || typeof d.hunk !== 'number' || !isLines(d.oldLines) || !isLines(d.newLines)) {
    return undefined;
  }
  return {
    task: d.task,
    hunk: d.hunk,
    conflict: d.conflict === true,
    removed: d.oldLines.map(withoutLineEnd),
    added: d.newLines.map(withoutLineEnd),
  };
}

function isLines(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((l) => typeof l === 'string');
}

function withoutLineEnd(line: string): string {
  return line.replace(/\r?\n$|\r$/, '');
}

/**
 * The buffer lines (0-based, inclusive) the hunk replaces, or `insertAt` for a pure
 * insertion. The diagnostic's range cannot tell a one-line hunk on an empty line from
 * an insertion (both are empty ranges), so the count of removed lines decides.
 */
export function hunkLines(
  range: LineRange,
  view: HunkView,
): { first: number; last: number } | { insertAt: number } {
  const first = range.start.line;
  return view.removed.length === 0 ? { insertAt: first } : { first, last: first + view.removed.length - 1 };
}

/** The one-line preview of the proposed lines drawn after the hunk. */
export function addedPreview(view: HunkView, max = 120): string {
  if (view.added.length === 0) {
    return view.removed.length === 1 ? '⟶ (line deleted)' : `⟶ (${view.removed.length} lines deleted)`;
  }
  const first = view.added.find((l) => l.trim() !== '') ?? view.added[0];
  let text = `⟶ ${first.trim()}`;
  if (text.length > max) {
    text = `${text.slice(0, max - 1)}…`;
  }
  const more = view.added.length - 1;
  if (more > 0) {
    text += `   (+${more} more line${more === 1 ? '' : 's'}: hover to see)`;
  }
  return text;
}

/** The hunk as a fenced `diff` block for a Markdown hover. */
export function diffBlock(view: HunkView): string {
  const lines = [...view.removed.map((l) => `- ${l}`), ...view.added.map((l) => `+ ${l}`)];
  const fence = lines.some((l) => l.includes('```')) ? '~~~~' : '```';
  return `${fence}diff\n${lines.join('\n')}\n${fence}`;
}
