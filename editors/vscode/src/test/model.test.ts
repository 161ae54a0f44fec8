import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  codeBlock,
  countTasks,
  elapsedSeconds,
  endMessage,
  formatElapsed,
  hasResult,
  justEnded,
  statusText,
  taskDescription,
  taskLabel,
  taskTooltip,
} from '../model';
import { done, task } from './fixtures';

const at = (iso: string) => Date.parse(iso);

describe('elapsed time', () => {
  // The same table as the server's (server/src/lsp/wording.rs): one way to write a duration.
  const table: Array<[number, string]> = JSON.parse(
    fs.readFileSync(path.join(__dirname, '..', '..', 'src', 'test', 'durations.json'), 'utf8'),
  );
  it('reads the shared table', () => assert.ok(table.length >= 8));
  for (const [secs, want] of table) {
    it(`formats ${secs} as "${want}"`, () => assert.equal(formatElapsed(secs), want));
  }
  it('formats an unknown duration as nothing', () => assert.equal(formatElapsed(undefined), ''));

  it('counts from start to now while running, to the end once finished', () => {
    assert.equal(elapsedSeconds(task(), at('2026-01-01T10:01:33Z')), 92);
    assert.equal(elapsedSeconds(done(), at('2026-01-01T11:00:00Z')), 4);
    assert.equal(elapsedSeconds(task({ state: 'queued', started_at: null }), Date.now()), undefined);
  });
});

describe('labels', () => {
  it('names a task by id and title, falling back to the prompt', () => {
    assert.equal(taskLabel(task()), '#1 greet loudly');
    assert.equal(taskLabel(task({ title: '', prompt: 'first line\nsecond' })), '#1 first line');
  });

  it('describes state, elapsed time, files and agent', () => {
    assert.equal(taskDescription(task(), at('2026-01-01T10:00:43Z')), 'running 42s · shell');
    assert.equal(taskDescription(done({ files_changed: ['a', 'b'] }), 0), 'done 4s · 2 files · shell');
    assert.equal(taskDescription(done(), 0), 'done 4s · 1 file · shell');
    assert.equal(taskDescription(task({ state: 'queued', started_at: null }), 0), 'queued · shell');
  });
});

describe('tooltip', () => {
  it('shows the prompt verbatim, whatever backticks it holds', () => {
    assert.equal(codeBlock('a\nb'), '```text\na\nb\n```');
    assert.equal(codeBlock('x ```py\ny\n``` z'), '````text\nx ```py\ny\n``` z\n````');
    const tip = taskTooltip(done({ error: 'boom' }), '/repo', 0);
    assert.match(tip, /\*\*Handoff #1\*\* — done \(4s\)/);
    assert.match(tip, /Branch: `handoff\/1-greet-loudly`/);
    assert.match(tip, /Files changed: `greet.py`/);
    assert.match(tip, /Error: boom/);
    assert.match(tip, /```text\nTODO: greet loudly\n\nFile: greet.py\n```$/);
  });
});

describe('results and counts', () => {
  it('has a result only when finished with commits and changed files', () => {
    assert.equal(hasResult(done()), true);
    assert.equal(hasResult(done({ files_changed: [] })), false);
    assert.equal(hasResult(task()), false);
    assert.equal(hasResult(done({ state: 'failed' })), true, 'partial work of a failed task can be reviewed');
  });

  it('counts running, to-review and failed tasks', () => {
    const tasks = [
      { repository: '/r', task: task({ id: 1 }) },
      { repository: '/r', task: task({ id: 2, state: 'queued' }) },
      { repository: '/r', task: done({ id: 3 }) },
      { repository: '/r', task: done({ id: 4 }) },
      { repository: '/r', task: done({ id: 5, files_changed: [] }) },
      { repository: '/r', task: task({ id: 6, state: 'failed', finished_at: '2026-01-01T10:00:02Z' }) },
    ];
    const counts = countTasks(tasks, (t) => t.task.id === 4);
    assert.deepEqual(counts, { running: 2, toReview: 1, failed: 1 });
    assert.equal(statusText(counts), 'Handoff $(sync~spin) 2  $(check) 1  $(error) 1');
    assert.equal(statusText({ running: 0, toReview: 0, failed: 0 }), 'Handoff $(sync) 0  $(check) 0');
  });
});

describe('ending', () => {
  it('notices the first record of a finished task only', () => {
    assert.equal(justEnded(task(), done()), true);
    assert.equal(justEnded(undefined, done()), true);
    assert.equal(justEnded(done(), done()), false);
    assert.equal(justEnded(task({ state: 'queued' }), task()), false);
  });

  it('words the end of a task', () => {
    assert.equal(endMessage(done()), 'Handoff #1 done: greet loudly — 1 file changed (greet.py).');
    assert.equal(endMessage(done({ files_changed: [] })), 'Handoff #1 done: greet loudly — no files changed.');
    assert.equal(
      endMessage(task({ state: 'failed', error: 'the agent exited with status 2' })),
      'Handoff #1 failed: greet loudly — the agent exited with status 2',
    );
  });

});
