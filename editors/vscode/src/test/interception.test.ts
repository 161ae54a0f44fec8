import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commentRequest, diffRequest, needsInstruction, sendsComments, withCommentText, withInstruction } from '../interception';

const selection = { kind: 'selection', uri: 'file:///r/a.py', range: {}, version: 3, agent: null };

describe('interception of server commands', () => {
  const cases: Array<[string, string, unknown[], boolean]> = [
    ['a selection without instruction', 'handoff.delegate', [{ ...selection, instruction: null }], true],
    ['a selection with a blank instruction', 'handoff.delegate', [{ ...selection, instruction: '  ' }], true],
    ['a selection with an instruction', 'handoff.delegate', [{ ...selection, instruction: 'Fix it' }], false],
    ['a TODO', 'handoff.delegate', [{ kind: 'todo', uri: 'file:///r/a.py', line: 1 }], false],
    ['another command', 'handoff.accept', [{ kind: 'selection' }], false],
    ['no arguments', 'handoff.delegate', [], false],
  ];
  for (const [name, command, args, want] of cases) {
    it(`asks for an instruction: ${name} → ${want}`, () => assert.equal(needsInstruction(command, args), want));
  }

  it('adds the instruction and keeps the rest', () => {
    assert.deepEqual(withInstruction([{ ...selection, instruction: null }], 'Add tests'), [
      { ...selection, instruction: 'Add tests' },
    ]);
  });

  it('takes over "Open diff" of a task', () => {
    assert.deepEqual(diffRequest('handoff.showDiff', [{ task: 3, uri: 'file:///r/a.py' }]), { task: 3, uri: 'file:///r/a.py' });
    assert.deepEqual(diffRequest('handoff.showDiff', [{ task: 3, uri: null }]), { task: 3, uri: undefined });
    assert.equal(diffRequest('handoff.showLog', [{ task: 3 }]), undefined);
    assert.equal(diffRequest('handoff.showDiff', [{}]), undefined);
  });

  it('asks for the text of "Comment on this change…", and only then', () => {
    const hunk = { task: 3, uri: 'file:///r/a.py', hunk: 1 };
    assert.deepEqual(commentRequest('handoff.comment', [{ ...hunk, text: null }]), hunk);
    assert.deepEqual(commentRequest('handoff.comment', [{ ...hunk }]), hunk);
    assert.deepEqual(commentRequest('handoff.comment', [{ ...hunk, text: ' ' }]), hunk);
    assert.equal(commentRequest('handoff.comment', [{ ...hunk, text: 'use y' }]), undefined);
    assert.equal(commentRequest('handoff.sendComments', [{ task: 3, uri: 'file:///r/a.py' }]), undefined);
    assert.equal(commentRequest('handoff.comment', [{ task: 3, uri: 'file:///r/a.py' }]), undefined);
    assert.deepEqual(withCommentText([{ ...hunk, text: null }], 'use y'), [{ ...hunk, text: 'use y' }]);
  });

  it('knows the commands that send pending comments', () => {
    assert.deepEqual(sendsComments('handoff.sendComments', [{ task: 3, uri: 'file:///r/a.py' }]), { task: 3, uri: 'file:///r/a.py' });
    assert.deepEqual(sendsComments('handoff.reply', [{ task: 3, message: 'x', uri: null }]), { task: 3, uri: undefined });
    assert.equal(sendsComments('handoff.comment', [{ task: 3 }]), undefined);
    assert.equal(sendsComments('handoff.reply', [{}]), undefined);
  });
});
