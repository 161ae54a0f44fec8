// Task records for the unit tests.

import { TaskRecord } from '../model';

export function task(overrides: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id: 1,
    state: 'running',
    agent: 'shell',
    image: 'busybox:local',
    prompt: 'TODO: greet loudly\n\nFile: greet.py',
    title: 'greet loudly',
    branch: 'handoff/1-greet-loudly',
    base_commit: 'a'.repeat(40),
    head_commit: null,
    files_changed: [],
    error: null,
    origin: { path: 'greet.py', line: 1 },
    created_at: '2026-01-01T10:00:00Z',
    started_at: '2026-01-01T10:00:01Z',
    finished_at: null,
    ...overrides,
  };
}

export function done(overrides: Partial<TaskRecord> = {}): TaskRecord {
  return task({
    state: 'done',
    head_commit: 'b'.repeat(40),
    files_changed: ['greet.py'],
    finished_at: '2026-01-01T10:00:05Z',
    ...overrides,
  });
}
