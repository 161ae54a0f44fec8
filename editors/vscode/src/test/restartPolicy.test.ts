import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RestartPolicy } from '../restartPolicy';

describe('RestartPolicy', () => {
  it('restarts five times within three minutes, then stops', () => {
    const p = new RestartPolicy();
    const decisions = [0, 1000, 2000, 3000, 4000, 5000].map((t) => p.crashed(t));
    assert.deepEqual(decisions, [true, true, true, true, true, false]);
  });

  it('forgets crashes older than the window', () => {
    const p = new RestartPolicy(2, 1000);
    assert.equal(p.crashed(0), true);
    assert.equal(p.crashed(500), true);
    assert.equal(p.crashed(900), false);
    assert.equal(p.crashed(2000), true, 'the earlier crashes are out of the window');
  });

  it('starts afresh after a manual restart', () => {
    const p = new RestartPolicy(1, 10_000);
    assert.equal(p.crashed(0), true);
    assert.equal(p.crashed(1), false);
    p.reset();
    assert.equal(p.crashed(2), true);
  });
});
