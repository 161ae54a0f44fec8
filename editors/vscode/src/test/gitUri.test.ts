import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { catFileArgs, diffTitle, fromUriParts, toUriParts } from '../gitUri';

describe('gitUri', () => {
  const ref = { repository: '/home/me/my repo', commit: 'abc123def', path: 'src/a b.rs' };

  it('round-trips through URI parts and keeps the path for language detection', () => {
    const parts = toUriParts(ref);
    assert.equal(parts.scheme, 'handoff-git');
    assert.equal(parts.path, '/src/a b.rs');
    assert.deepEqual(fromUriParts(parts.path, parts.query), ref);
  });

  it('refuses what it did not make', () => {
    assert.throws(() => fromUriParts('/a', 'not json'), /not a handoff-git address/);
    assert.throws(() => fromUriParts('/a', JSON.stringify({ repository: '/r', commit: 'HEAD; rm -rf /' })), /not a handoff-git address/);
  });

  it('reads the blob without filters, in the right repository', () => {
    assert.deepEqual(catFileArgs(ref), ['-C', '/home/me/my repo', 'cat-file', 'blob', 'abc123def:src/a b.rs']);
  });

  it('titles the diff editor', () => {
    assert.equal(diffTitle('src/greet.py', 3), 'greet.py (Handoff #3: base ↔ result)');
  });
});
