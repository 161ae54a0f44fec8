import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { agentSpec, attemptDescription, groupLabel, listEntries, othersInGroup, parseAttempts } from '../attempts';
import { RepoTask } from '../model';
import { done, task } from './fixtures';

const rt = (repository: string, t = task()): RepoTask => ({ repository, task: t });

describe('attempts in the task view', () => {
  // Newest first, as the store lists them.
  const tasks = [
    rt('/r', done({ id: 6, group: null })),
    rt('/r', done({ id: 5, group: 3, agent: 'codex' })),
    rt('/r', task({ id: 4, group: 3 })),
    rt('/r', done({ id: 3, group: 3, title: 'greet loudly' })),
    rt('/r', done({ id: 2, group: 1 })),
    rt('/r', done({ id: 1 })),
  ];

  it('puts a group where its newest task is, its tasks in the order they were started', () => {
    const shown = listEntries(tasks).map((e) => (e.kind === 'task' ? `#${e.rt.task.id}` : `g${e.group}[${e.tasks.map((t) => t.task.id)}]`));
    // g1 has one task left (the others removed): a plain task again.
    assert.deepEqual(shown, ['#6', 'g3[3,4,5]', '#2', '#1']);
  });

  it('keeps groups of different repositories apart', () => {
    const entries = listEntries([rt('/a', done({ id: 2, group: 1 })), rt('/b', done({ id: 2, group: 1 }))]);
    assert.deepEqual(entries.map((e) => e.kind), ['task', 'task']);
  });

  it('labels a group with its count and title', () => {
    assert.equal(groupLabel(3, tasks.slice(1, 4).reverse()), 'g3: 3 attempts — greet loudly');
  });

  const now = Date.parse('2026-01-01T10:10:00Z');
  const cases: Array<[string, Parameters<typeof done>[0], string]> = [
    ['done, with check, lines and cost', { check: { command: 'make test', exit_code: 0, passed: true }, lines_added: 10, lines_removed: 3, spent: { turns: 4, cost_usd: 0.123 }, files_changed: ['a', 'b'] }, 'done 4s · check passed · 2 files · +10 −3 · $0.12'],
    ['a failed check, no cost reported', { check: { command: 'make test', exit_code: 1, passed: false }, lines_added: 1, lines_removed: 0 }, 'done 4s · check failed · 1 file · +1 −0'],
    ['a record without line counts', {}, 'done 4s · 1 file · +0 −0'],
    ['failed without a result', { state: 'failed', head_commit: null, files_changed: [] }, 'failed 4s · 0 files'],
  ];
  for (const [name, overrides, want] of cases) {
    it(`compares an attempt: ${name}`, () => assert.equal(attemptDescription(done(overrides), now), want));
  }
  it('compares a running attempt by its state and time', () => {
    assert.equal(attemptDescription(task({ started_at: '2026-01-01T10:09:00Z' }), now), 'running 1m00s');
  });

  it('"Keep this one" removes the other tasks of the group only', () => {
    const keep = tasks[2];
    assert.deepEqual(othersInGroup([...tasks, rt('/other', done({ id: 9, group: 3 }))], keep).map((t) => t.task.id), [3, 5]);
    assert.deepEqual(othersInGroup(tasks, tasks[0]), []);
  });
});

describe('starting attempts', () => {
  const counts: Array<[string, number | string]> = [
    ['1', 1],
    [' 3 ', 3],
    ['16', 16],
    ['0', 'error'],
    ['17', 'error'],
    ['2.5', 'error'],
    ['', 'error'],
    ['three', 'error'],
  ];
  for (const [text, want] of counts) {
    it(`reads the attempts "${text}"`, () => {
      const got = parseAttempts(text);
      assert.equal('attempts' in got ? got.attempts : 'error', want);
    });
  }

  it('names the agents that take the attempts in turn', () => {
    assert.equal(agentSpec([]), null);
    assert.equal(agentSpec([null]), null);
    assert.equal(agentSpec(['claude']), 'claude');
    assert.equal(agentSpec(['claude', 'codex']), 'claude,codex');
    assert.equal(agentSpec([null, 'codex']), ',codex');
  });
});
