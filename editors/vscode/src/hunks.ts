// A pending hunk as the server publishes it: a diagnostic of severity Hint, source
// "handoff", code "handoff#N", data {task, hunk}, and a message listing the change as
// "- old" / "+ new" lines (docs/protocol.md, "Diagnostics"). This module turns it into
// what the inline diff draws. No VS Code API here.

export interface HunkView {
  task: number;
  hunk: number | undefined;
  conflict: boolean;
  /** Lines of the current buffer the agent replaces. */
  removed: string[];
  /** Lines the agent proposes instead. */
  added: string[];
  /** The server shortens long hunks: the lists above are then incomplete. */
  truncated: boolean;
}

export interface LineRange {
  start: { line: number; character: number };
  end: { line: number; character: number };
}

export function parseHunk(message: string, code: unknown, data: unknown): HunkView | undefined {
  const [head, ...rest] = message.split('\n');
  const task = taskOf(code, data, head);
  if (task === undefined) {
    return undefined;
  }
  const view: HunkView = {
    task,
    hunk: hunkOf(data),
    conflict: /^Handoff #\d+: conflict\b/.test(head),
    removed: [],
    added: [],
    truncated: false,
  };
  for (const line of rest) {
    if (line === '…') {
      view.truncated = true;
    } else if (line.startsWith('-')) {
      view.removed.push(line.startsWith('- ') ? line.slice(2) : line.slice(1));
    } else if (line.startsWith('+')) {
      view.added.push(line.startsWith('+ ') ? line.slice(2) : line.slice(1));
    }
  }
  return view;
}

function taskOf(code: unknown, data: unknown, head: string): number | undefined {
  if (data && typeof data === 'object' && typeof (data as { task?: unknown }).task === 'number') {
    return (data as { task: number }).task;
  }
  const text = typeof code === 'object' && code !== null ? String((code as { value?: unknown }).value) : String(code);
  const m = /^handoff#(\d+)$/.exec(text) ?? /^Handoff #(\d+)/.exec(head);
  return m ? Number(m[1]) : undefined;
}

function hunkOf(data: unknown): number | undefined {
  if (data && typeof data === 'object' && typeof (data as { hunk?: unknown }).hunk === 'number') {
    return (data as { hunk: number }).hunk;
  }
  return undefined;
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
  if (!view.truncated) {
    return view.removed.length === 0 ? { insertAt: first } : { first, last: first + view.removed.length - 1 };
  }
  const empty = range.start.line === range.end.line && range.start.character === range.end.character;
  return empty ? { insertAt: first } : { first, last: Math.max(first, range.end.line) };
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
  if (more > 0 || view.truncated) {
    text += `   (+${more}${view.truncated ? '…' : ''} more line${more === 1 ? '' : 's'}: hover to see)`;
  }
  return text;
}

/** The hunk as a fenced `diff` block for a Markdown hover. */
export function diffBlock(view: HunkView): string {
  const lines = [...view.removed.map((l) => `- ${l}`), ...view.added.map((l) => `+ ${l}`)];
  if (view.truncated) {
    lines.push('…');
  }
  const fence = lines.some((l) => l.includes('```')) ? '~~~~' : '```';
  return `${fence}diff\n${lines.join('\n')}\n${fence}`;
}
