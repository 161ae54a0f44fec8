import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changedRegions, placeInResult, splitLines } from '../lineDiff';

/** `a b c` → lines. */
const L = (s: string) => (s === '' ? [] : s.split(' '));

describe('changed regions of base and result', () => {
  const cases: Array<[string, string, string, string]> = [
    ['nothing changed', 'a b c', 'a b c', ''],
    ['one line replaced', 'a b c', 'a X c', '1+1→1+1'],
    ['a line inserted', 'a b c', 'a b X c', '2+0→2+1'],
    ['a line deleted', 'a b c', 'a c', '1+1→1+0'],
    ['two separate changes', 'a b c d e', 'A b c d E', '0+1→0+1 4+1→4+1'],
    ['everything new', 'a b', 'x y z', '0+2→0+3'],
    ['from empty', '', 'x y', '0+0→0+2'],
    ['to empty', 'a b', '', '0+2→0+0'],
    ['repeated lines', 'x a x a x', 'x a x b x a x', '3+0→3+2'],
  ];
  for (const [name, base, result, want] of cases) {
    it(name, () => {
      const regions = changedRegions(L(base), L(result)) ?? [];
      const shown = regions.map((r) => `${r.oldStart}+${r.oldCount}→${r.newStart}+${r.newCount}`).join(' ');
      assert.equal(shown, want);
    });
  }

  it('gives up past its budget of edits', () => {
    assert.equal(changedRegions(L('a b c d'), L('w x y z'), 3), undefined);
  });

  it('applying the regions to the base gives the result', () => {
    const base = L('f ( x ) { return x + 1 } g ( ) { } h');
    const result = L('f ( y ) { let z = y return z + 1 } h i');
    const regions = changedRegions(base, result) ?? [];
    const out: string[] = [];
    let at = 0;
    for (const r of regions) {
      out.push(...base.slice(at, r.oldStart), ...result.slice(r.newStart, r.newStart + r.newCount));
      at = r.oldStart + r.oldCount;
    }
    out.push(...base.slice(at));
    assert.deepEqual(out, result);
  });

  it('splits lines as the server does', () => {
    assert.deepEqual(splitLines('a\nb\r\nc\rd\n'), ['a', 'b', 'c', 'd']);
    assert.deepEqual(splitLines('a\n\n'), ['a', '']);
    assert.deepEqual(splitLines(''), []);
  });
});

describe('placing published hunks in the result', () => {
  const base = L('a b c d e f');
  const result = L('a B c d e F G');

  it('finds each hunk by its lines, whatever hunks are left', () => {
    const placed = placeInResult(base, result, [
      { hunk: 0, removed: ['b'], added: ['B'] },
      { hunk: 1, removed: ['f'], added: ['F', 'G'] },
    ]);
    assert.deepEqual([...placed], [[0, { start: 1, count: 1 }], [1, { start: 5, count: 2 }]]);
    // Hunk 0 accepted or rejected: only hunk 1 is published.
    assert.deepEqual([...placeInResult(base, result, [{ hunk: 1, removed: ['f'], added: ['F', 'G'] }])], [[1, { start: 5, count: 2 }]]);
  });

  it('leaves out a hunk whose lines match no region', () => {
    assert.deepEqual([...placeInResult(base, result, [{ hunk: 0, removed: ['b'], added: ['other'] }])], []);
  });

  it('places a deletion where it was', () => {
    assert.deepEqual([...placeInResult(L('a b c'), L('a c'), [{ hunk: 0, removed: ['b'], added: [] }])], [[0, { start: 1, count: 0 }]]);
  });
});
