// Where a task's hunks are in its result, for comments in the diff editor (base ↔
// result). The server publishes hunks for the working file only, placed in the
// buffer; the diff editor shows the result commit. A line diff of base and result
// (Myers, as the server's) finds the changed regions, and each published hunk is
// matched to the region with the same lines. A hunk without a match (the diff split
// differently) is simply not commentable there; the inline view still is. No VS Code
// API here.

export interface Region {
  /** 0-based first line and count in the base. */
  oldStart: number;
  oldCount: number;
  /** 0-based first line and count in the result. */
  newStart: number;
  newCount: number;
}

/** A text's lines without their ends, split at `\n`, `\r\n` and a lone `\r` (as the server splits). */
export function splitLines(text: string): string[] {
  if (text === '') {
    return [];
  }
  const lines = text.split(/\r\n|\r|\n/);
  if (lines[lines.length - 1] === '') {
    lines.pop();
  }
  return lines;
}

/**
 * The regions where `a` and `b` differ, in order; undefined when they differ in more
 * than `maxEdits` lines (the diff would cost too much time and memory).
 */
export function changedRegions(a: readonly string[], b: readonly string[], maxEdits = 2000): Region[] | undefined {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) {
    pre++;
  }
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) {
    suf++;
  }
  const A = a.slice(pre, a.length - suf);
  const B = b.slice(pre, b.length - suf);
  const matches = myersMatches(A, B, maxEdits);
  if (!matches) {
    return undefined;
  }
  const regions: Region[] = [];
  let i = 0;
  let j = 0;
  for (const [mi, mj] of [...matches, [A.length, B.length] as [number, number]]) {
    if (mi > i || mj > j) {
      regions.push({ oldStart: pre + i, oldCount: mi - i, newStart: pre + j, newCount: mj - j });
    }
    i = mi + 1;
    j = mj + 1;
  }
  return regions;
}

/** The pairs of equal lines of a shortest edit script from A to B, in order. */
function myersMatches(A: readonly string[], B: readonly string[], maxEdits: number): Array<[number, number]> | undefined {
  const N = A.length;
  const M = B.length;
  const max = N + M;
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  // trace[d]: v for k in [-d-1, d+1] before step d.
  const trace: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= max && found < 0; d++) {
    if (d > maxEdits) {
      return undefined;
    }
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]) ? v[offset + k + 1] : v[offset + k - 1] + 1;
      let y = x - k;
      while (x < N && y < M && A[x] === B[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= N && y >= M) {
        found = d;
        break;
      }
    }
  }
  const matches: Array<[number, number]> = [];
  let x = N;
  let y = M;
  for (let d = found; d > 0; d--) {
    const before = trace[d];
    const at = (k: number) => before[k + d + 1];
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    // The snake after the edit: equal lines.
    const startX = prevK === k + 1 ? prevX : prevX + 1;
    while (x > startX) {
      x--;
      y--;
      matches.push([x, y]);
    }
    x = prevX;
    y = prevY;
  }
  while (x > 0 && y > 0) {
    x--;
    y--;
    matches.push([x, y]);
  }
  return matches.reverse();
}

export interface HunkContent {
  hunk: number;
  /** The lines it replaces (the base's, for a hunk that is not a conflict). */
  removed: readonly string[];
  added: readonly string[];
}

/**
 * The lines of the result each hunk's change takes: `{start, count}` by hunk index,
 * for the hunks whose lines match a changed region of base → result (in order).
 * `regions` may be given when known (they depend on the two texts only).
 */
export function placeInResult(
  base: readonly string[],
  result: readonly string[],
  hunks: readonly HunkContent[],
  regions: readonly Region[] | undefined = changedRegions(base, result),
): Map<number, { start: number; count: number }> {
  const placed = new Map<number, { start: number; count: number }>();
  if (!regions) {
    return placed;
  }
  let next = 0;
  for (const h of [...hunks].sort((p, q) => p.hunk - q.hunk)) {
    for (let r = next; r < regions.length; r++) {
      const region = regions[r];
      if (
        sameLines(base, region.oldStart, region.oldCount, h.removed) &&
        sameLines(result, region.newStart, region.newCount, h.added)
      ) {
        placed.set(h.hunk, { start: region.newStart, count: region.newCount });
        next = r + 1;
        break;
      }
    }
  }
  return placed;
}

function sameLines(lines: readonly string[], start: number, count: number, expected: readonly string[]): boolean {
  if (count !== expected.length) {
    return false;
  }
  for (let i = 0; i < count; i++) {
    if (lines[start + i] !== expected[i]) {
      return false;
    }
  }
  return true;
}
