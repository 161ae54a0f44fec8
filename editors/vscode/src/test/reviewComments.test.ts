import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { entryKey, ReviewComments, threadLabel } from '../reviewComments';

const FILE = 'file:///r/greet.py';
const OTHER = 'file:///r/other.py';

/** The model's entries as `task:hunk state [comments]`, in a stable order. */
function shown(m: ReviewComments): string[] {
  return m
    .all()
    .map((e) => `${e.file === FILE ? '' : 'other '}${e.task}:${e.hunk} ${e.state} [${e.comments.join('|')}]`)
    .sort();
}

describe('review comments', () => {
  it('shows what the diagnostics say is pending on each hunk', () => {
    const m = new ReviewComments();
    assert.equal(m.published(FILE, '/r', [{ task: 3, hunk: 0, comments: ['use y'] }, { task: 3, hunk: 1, comments: [] }]), true);
    assert.deepEqual(shown(m), ['3:0 pending [use y]']);
    assert.equal(m.published(FILE, '/r', [{ task: 3, hunk: 0, comments: ['use y'] }]), false, 'nothing new');
    m.published(FILE, '/r', [{ task: 3, hunk: 0, comments: ['use y', 'and z'] }]);
    assert.deepEqual(shown(m), ['3:0 pending [use y|and z]']);
    assert.equal(m.pendingCount('/r', 3), 2);
    assert.ok(m.get(entryKey(FILE, 3, 0)));
  });

  it('keeps comments whose hunk left the editor, until the task takes them', () => {
    const m = new ReviewComments();
    m.published(FILE, '/r', [{ task: 3, hunk: 0, comments: ['use y'] }]);
    m.published(OTHER, '/r', [{ task: 3, hunk: 2, comments: ['and here'] }]);
    // Sent: the server drops the hunks first, then says the task is queued.
    m.published(FILE, '/r', []);
    assert.deepEqual(shown(m), ['3:0 pending [use y]', 'other 3:2 pending [and here]']);
    assert.equal(m.taskState('/r', 3, 'queued'), true);
    assert.deepEqual(shown(m), ['3:0 sent [use y]', 'other 3:2 sent [and here]']);
    assert.equal(m.pendingCount('/r', 3), 0);
    // The turn ends: its new hunks are under review, the sent comments go.
    assert.equal(m.taskState('/r', 3, 'done'), true);
    assert.deepEqual(shown(m), []);
  });

  it('drops a pending comment the server no longer shows on a published hunk', () => {
    const m = new ReviewComments();
    m.published(FILE, '/r', [{ task: 3, hunk: 0, comments: ['use y'] }]);
    m.published(FILE, '/r', [{ task: 3, hunk: 0, comments: [] }]);
    assert.deepEqual(shown(m), []);
  });

  it('shows a comment just made even before the hunk is published with it, once', () => {
    const m = new ReviewComments();
    m.commented(FILE, '/r', 3, 1, 'use y', 1);
    assert.deepEqual(shown(m), ['3:1 pending [use y]']);
    // Published (before or after the answer): the server's list wins, no duplicate.
    m.published(FILE, '/r', [{ task: 3, hunk: 1, comments: ['use y'] }]);
    m.commented(FILE, '/r', 3, 1, 'use y', 1);
    assert.deepEqual(shown(m), ['3:1 pending [use y]']);
  });

  it('counts what the server counted when it knows more (comments in files not open)', () => {
    const m = new ReviewComments();
    m.commented(FILE, '/r', 3, 1, 'use y', 4);
    assert.equal(m.pendingCount('/r', 3), 4);
    m.taskState('/r', 3, 'running');
    assert.equal(m.pendingCount('/r', 3), 0);
  });

  it('keeps tasks of different repositories apart, and forgets a removed task', () => {
    const m = new ReviewComments();
    m.published(FILE, '/r', [{ task: 3, hunk: 0, comments: ['a'] }]);
    m.published('file:///s/x.py', '/s', [{ task: 3, hunk: 0, comments: ['b'] }]);
    m.taskState('/s', 3, 'queued');
    assert.equal(m.pendingCount('/r', 3), 1);
    assert.equal(m.taskRemoved('/r', 3), true);
    assert.equal(m.pendingCount('/r', 3), 0);
    assert.equal(m.all().length, 1);
  });

  it('labels threads', () => {
    assert.equal(threadLabel(3, 'pending', 2), 'Handoff #3 · 2 comments to send');
    assert.equal(threadLabel(3, 'pending', 1), 'Handoff #3 · 1 comment to send');
    assert.equal(threadLabel(3, 'sent', 0), 'Handoff #3 · sent to the agent');
  });

  it('comments being sent stay sent while the server takes them', () => {
    const m = new ReviewComments();
    m.published(FILE, '/r', [{ task: 3, hunk: 0, comments: ['use y'] }]);
    const marked = m.sending('/r', 3);
    assert.deepEqual(shown(m), ['3:0 sent [use y]']);
    // The server republishes before and after it marks them sent, then drops the hunks.
    m.published(FILE, '/r', [{ task: 3, hunk: 0, comments: ['use y'] }]);
    m.published(FILE, '/r', [{ task: 3, hunk: 0, comments: [] }]);
    m.published(FILE, '/r', []);
    assert.deepEqual(shown(m), ['3:0 sent [use y]']);
    // Refused: pending again.
    m.unsent(marked);
    assert.deepEqual(shown(m), ['3:0 pending [use y]']);
  });
});
