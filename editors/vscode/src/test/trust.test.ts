import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { trustDialog, trustOutcome, trustQuestion } from '../trust';

describe('the trust question', () => {
  const question = { repository: '/home/me/src/app/', ignored: ['image', 'agents.x (a new profile)'], sha256: '9f2c' };
  const cases: Array<[string, unknown, unknown]> = [
    [
      "the server's question",
      { type: 3, message: 'Handoff: …', actions: [{ title: 'Trust', ...question }, { title: 'Not now' }] },
      question,
    ],
    ['another question', { type: 3, message: 'Which?', actions: [{ title: 'Add tests' }, { title: 'Fix it' }] }, undefined],
    ['"Trust" without data', { type: 3, message: 'Trust?', actions: [{ title: 'Trust' }, { title: 'Not now' }] }, undefined],
    ['ignored not a list', { actions: [{ title: 'Trust', repository: '/r', ignored: 'image', sha256: '9f2c' }] }, undefined],
    ['no content hash', { actions: [{ title: 'Trust', repository: '/r', ignored: ['image'] }] }, undefined],
    ['no actions', { type: 3, message: 'x', actions: null }, undefined],
  ];
  for (const [name, params, want] of cases) {
    it(`is recognised by its data: ${name}`, () => assert.deepEqual(trustQuestion(params as never), want));
  }

  it('names the repository and lists every ignored setting in the detail', () => {
    const { message, detail } = trustDialog(question);
    assert.equal(message, 'Do you trust the Handoff configuration of "app"?');
    assert.match(detail, /\n• image\n• agents\.x \(a new profile\)\n/);
    assert.match(detail, /asks again/);
    assert.match(detail, /handoff trust` in \/home\/me\/src\/app\./);
  });

  it('says what applies once trusted', () => {
    assert.equal(
      trustOutcome({ repository: '/r/', trusted: true, applied: ['image', 'env'] }),
      'Handoff: trusted the configuration of /r as it is now; now applied: image, env.',
    );
    assert.equal(trustOutcome({ repository: '/r', trusted: true, applied: [] }), 'Handoff: trusted the configuration of /r as it is now.');
    assert.match(trustOutcome({ repository: '/r', trusted: false, applied: [] }), /nothing to trust/);
  });
});
