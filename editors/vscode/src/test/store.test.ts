import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoreChange, TaskStore } from '../store';
import { done, task } from './fixtures';

function memory() {
  const data = new Map<string, unknown>();
  return {
    data,
    get: <T>(k: string) => data.get(k) as T | undefined,
    update: (k: string, v: unknown) => void data.set(k, v),
  };
}

describe('TaskStore', () => {
  it('reports changes and, once, the end of a task', () => {
    const store = new TaskStore();
    const seen: StoreChange[] = [];
    store.onDidChange((c) => seen.push(c));
    store.update('/r', task({ state: 'queued', started_at: null }));
    store.update('/r', task());
    store.update('/r', done());
    store.update('/r', done());
    assert.deepEqual(
      seen.map((c) => [c.changed.length, c.ended.map((e) => e.task.id)]),
      [
        [1, []],
        [1, []],
        [1, [1]],
        [1, []],
      ],
    );
  });

  it('loads a repository: new tasks are not announced, tasks that ended meanwhile are, removed ones go', () => {
    const store = new TaskStore();
    store.load('/r', [task({ id: 1 }), done({ id: 2 }), task({ id: 3 })], true);
    const change = store.load('/r', [done({ id: 1 }), done({ id: 2 }), task({ id: 4 })], true);
    assert.deepEqual(change.ended.map((e) => e.task.id), [1]);
    assert.deepEqual(store.all().map((t) => t.task.id), [4, 2, 1]);
    assert.deepEqual(
      change.changed.map((c) => c.task.id).sort(),
      [1, 3, 4],
      'task 3 is gone, 1 changed, 4 is new',
    );
  });

  it('keeps repositories apart and finds a task by a file inside its repository', () => {
    const store = new TaskStore();
    store.update('/a', task({ id: 1, title: 'in a' }));
    store.update('/a/vendor/b', task({ id: 1, title: 'in b' }));
    assert.deepEqual(store.repositories(), ['/a', '/a/vendor/b']);
    assert.equal(store.find(1, '/a/vendor/b/src/x.rs')?.task.title, 'in b');
    assert.equal(store.find(1, '/a/src/x.rs')?.task.title, 'in a');
    assert.equal(store.find(1), undefined, 'ambiguous without a file');
    assert.equal(store.repositoryOf('/elsewhere/x'), undefined);
  });

  it('marks a task reviewed once every changed file showed hunks and none is left', () => {
    const mem = memory();
    const store = new TaskStore(mem);
    const rt = store.update('/r', done({ files_changed: ['a.py', 'b.py'] })).changed[0];
    store.noteHunks('/r', 1, 'a.py', 0); // a.py opened before its hunks arrived: nothing yet
    assert.equal(store.isReviewed(rt), false);
    store.noteHunks('/r', 1, 'a.py', 2);
    store.noteHunks('/r', 1, 'a.py', 0); // both accepted; b.py never seen
    assert.equal(store.isReviewed(rt), false);
    store.noteHunks('/r', 1, 'b.py', 1);
    assert.deepEqual(store.tasksWithHunksIn('/r', 'b.py'), [1]);
    store.noteHunks('/r', 1, 'b.py', 0);
    assert.equal(store.isReviewed(rt), true);
    assert.deepEqual(mem.data.get('handoff.reviewed'), ['/r#1']);
    assert.equal(new TaskStore(mem).isReviewed(rt), true, 'survives a reload');
  });

  it('a reviewed task at work again (a reply, review comments) is to review again', () => {
    const mem = memory();
    const store = new TaskStore(mem);
    const rt = store.update('/r', done()).changed[0];
    store.noteHunks('/r', 1, 'greet.py', 1);
    // The new turn's hunks leave the editor before the server says the task is queued.
    store.noteHunks('/r', 1, 'greet.py', 0);
    assert.equal(store.isReviewed(rt), true);
    store.update('/r', { ...rt.task, state: 'queued' });
    assert.equal(store.isReviewed(rt), false);
    assert.deepEqual(mem.data.get('handoff.reviewed'), []);
    assert.deepEqual(store.tasksWithHunksIn('/r', 'greet.py'), []);
  });
});
