import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { shownByServer } from '../errors';

describe('error data', () => {
  it('says whether the server showed the message', () => {
    assert.equal(shownByServer({ kind: 'conflict', shown: true }), true);
    assert.equal(shownByServer({ kind: 'conflict', shown: false }), false);
    assert.equal(shownByServer(undefined), false);
    assert.equal(shownByServer('shown'), false);
  });
});
