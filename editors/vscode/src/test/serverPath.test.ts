import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findServer } from '../serverPath';

const exists = (...paths: string[]) => (p: string) => paths.includes(p);

describe('findServer', () => {
  it('uses the setting when it names an executable', () => {
    const found = findServer('/opt/handoff/bin/handoff', { PATH: '/usr/bin' }, [], exists('/opt/handoff/bin/handoff', '/usr/bin/handoff'));
    assert.deepEqual(found, { ok: true, path: '/opt/handoff/bin/handoff', source: 'setting' });
  });

  it('expands ~ and ${workspaceFolder}, and resolves relative paths from the folder', () => {
    const env = { HOME: '/home/me', PATH: '' };
    assert.equal(findServer('~/bin/handoff', env, [], exists('/home/me/bin/handoff')).ok, true);
    const wf = findServer('${workspaceFolder}/target/debug/handoff', env, ['/w'], exists('/w/target/debug/handoff'));
    assert.deepEqual(wf, { ok: true, path: '/w/target/debug/handoff', source: 'setting' });
    const rel = findServer('target/debug/handoff', env, ['/w'], exists('/w/target/debug/handoff'));
    assert.deepEqual(rel, { ok: true, path: '/w/target/debug/handoff', source: 'setting' });
  });

  it('says what to fix when the setting is wrong, without falling back to PATH', () => {
    const found = findServer('/nope/handoff', { PATH: '/usr/bin' }, [], exists('/usr/bin/handoff'));
    assert.equal(found.ok, false);
    if (!found.ok) {
      assert.equal(found.fix, 'setting');
      assert.match(found.message, /handoff\.serverPath.*\/nope\/handoff.*not executable/);
    }
  });

  it('searches PATH in order when the setting is empty', () => {
    const found = findServer('  ', { PATH: '/a::/b:/c' }, [], exists('/b/handoff', '/c/handoff'));
    assert.deepEqual(found, { ok: true, path: '/b/handoff', source: 'PATH' });
  });

  it('tells how to install when neither works', () => {
    const found = findServer(undefined, { PATH: '/a:/b' }, [], exists());
    assert.equal(found.ok, false);
    if (!found.ok) {
      assert.equal(found.fix, 'install');
      assert.match(found.message, /not on PATH/);
      assert.match(found.message, /cargo install --path server/);
      assert.match(found.message, /handoff\.serverPath/);
    }
  });
});
