import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addedPreview, diffBlock, hunkLines, parseHunk } from '../hunks';

const range = (l1: number, c1: number, l2: number, c2: number) => ({
  start: { line: l1, character: c1 },
  end: { line: l2, character: c2 },
});

describe('parseHunk', () => {
  it('reads the removed and added lines of a proposal', () => {
    const view = parseHunk(
      'Handoff #1 proposes:\n-     # TODO: greet loudly\n-     return "hello, " + name\n+     return ("hello, " + name).upper()',
      'handoff#1',
      { task: 1, hunk: 0 },
    );
    assert.deepEqual(view, {
      task: 1,
      hunk: 0,
      conflict: false,
      removed: ['    # TODO: greet loudly', '    return "hello, " + name'],
      added: ['    return ("hello, " + name).upper()'],
      truncated: false,
    });
  });

  it('reads empty lines, conflicts and truncation', () => {
    const view = parseHunk(
      'Handoff #12: conflict, not applicable here (line 3 changed). Open the diff to merge by hand:\n- \n-\n+ x\n…',
      { value: 'handoff#12' },
      undefined,
    );
    assert.equal(view?.task, 12);
    assert.equal(view?.hunk, undefined);
    assert.equal(view?.conflict, true);
    assert.deepEqual(view?.removed, ['', '']);
    assert.deepEqual(view?.added, ['x']);
    assert.equal(view?.truncated, true);
  });

  it('ignores diagnostics that are not hunks', () => {
    assert.equal(parseHunk('something else', 'E0308', undefined), undefined);
  });
});

describe('hunkLines', () => {
  const view = (removed: number, truncated = false) => ({
    task: 1,
    hunk: 0,
    conflict: false,
    removed: Array(removed).fill('x'),
    added: ['y'],
    truncated,
  });
  const cases: Array<[string, ReturnType<typeof range>, ReturnType<typeof view>, object]> = [
    ['a two-line replacement', range(1, 0, 2, 30), view(2), { first: 1, last: 2 }],
    ['a pure insertion', range(4, 0, 4, 0), view(0), { insertAt: 4 }],
    ['a replaced empty line (an empty range too)', range(4, 0, 4, 0), view(1), { first: 4, last: 4 }],
    ['a truncated hunk, from the range', range(3, 0, 40, 2), view(30, true), { first: 3, last: 40 }],
  ];
  for (const [name, r, v, want] of cases) {
    it(name, () => assert.deepEqual(hunkLines(r, v), want));
  }
});

describe('rendering', () => {
  const base = { task: 1, hunk: 0, conflict: false, truncated: false };
  it('previews the first proposed line and counts the rest', () => {
    assert.equal(addedPreview({ ...base, removed: ['a'], added: ['   b  '] }), '⟶ b');
    assert.equal(addedPreview({ ...base, removed: ['a'], added: ['', 'b', 'c'] }), '⟶ b   (+2 more lines: hover to see)');
    assert.equal(addedPreview({ ...base, removed: ['a'], added: [] }), '⟶ (line deleted)');
    assert.equal(addedPreview({ ...base, removed: ['a', 'b'], added: [] }), '⟶ (2 lines deleted)');
    assert.equal(addedPreview({ ...base, removed: [], added: ['x'.repeat(300)] }).length, 120);
  });

  it('renders a diff block, with a longer fence when the code has one', () => {
    assert.equal(diffBlock({ ...base, removed: ['a'], added: ['b'] }), '```diff\n- a\n+ b\n```');
    assert.equal(diffBlock({ ...base, removed: ['```'], added: [] }), '~~~~diff\n- ```\n~~~~');
  });
});
