import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addedPreview, diffBlock, hunkFromData, hunkLines } from '../hunks';

const range = (l1: number, c1: number, l2: number, c2: number) => ({
  start: { line: l1, character: c1 },
  end: { line: l2, character: c2 },
});

describe('hunkFromData', () => {
  it('reads the removed and added lines from the data, without line ends', () => {
    const view = hunkFromData({
      task: 1,
      hunk: 0,
      conflict: false,
      oldLines: ['    # TODO: greet loudly\n', '    return "hello, " + name\r\n'],
      newLines: ['    return ("hello, " + name).upper()'],
    });
    assert.deepEqual(view, {
      task: 1,
      hunk: 0,
      conflict: false,
      removed: ['    # TODO: greet loudly', '    return "hello, " + name'],
      added: ['    return ("hello, " + name).upper()'],
    });
  });

  it('reads empty lines and conflicts, whatever the message says', () => {
    const view = hunkFromData({ task: 12, hunk: 3, conflict: true, oldLines: ['\n', '\n'], newLines: ['x\n'] });
    assert.equal(view?.task, 12);
    assert.equal(view?.hunk, 3);
    assert.equal(view?.conflict, true);
    assert.deepEqual(view?.removed, ['', '']);
    assert.deepEqual(view?.added, ['x']);
  });

  it('ignores diagnostics that are not hunks', () => {
    assert.equal(hunkFromData(undefined), undefined);
    assert.equal(hunkFromData({ task: 1 }), undefined);
    assert.equal(hunkFromData({ task: 1, hunk: 0, oldLines: 'x', newLines: [] }), undefined);
  });
});

describe('hunkLines', () => {
  const view = (removed: number) => ({
    task: 1,
    hunk: 0,
    conflict: false,
    removed: Array(removed).fill('x'),
    added: ['y'],
  });
  const cases: Array<[string, ReturnType<typeof range>, ReturnType<typeof view>, object]> = [
    ['a two-line replacement', range(1, 0, 2, 30), view(2), { first: 1, last: 2 }],
    ['a pure insertion', range(4, 0, 4, 0), view(0), { insertAt: 4 }],
    ['a replaced empty line (an empty range too)', range(4, 0, 4, 0), view(1), { first: 4, last: 4 }],
    ['a long hunk, from the count of its lines', range(3, 0, 40, 2), view(38), { first: 3, last: 40 }],
  ];
  for (const [name, r, v, want] of cases) {
    it(name, () => assert.deepEqual(hunkLines(r, v), want));
  }
});

describe('rendering', () => {
  const base = { task: 1, hunk: 0, conflict: false };
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
