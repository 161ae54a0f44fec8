// Finding the `handoff` binary: the `handoff.serverPath` setting, else `handoff` on
// PATH. When neither works the user gets a message that says what to do.

import * as path from 'path';

export type ServerLookup =
  | { ok: true; path: string; source: 'setting' | 'PATH' }
  | { ok: false; message: string; fix: 'setting' | 'install' };

export interface Environment {
  PATH?: string;
  HOME?: string;
}

/**
 * `setting`: the value of `handoff.serverPath` ("" when unset); `~` and
 * `${workspaceFolder}` are expanded and a relative path is taken from the first
 * workspace folder. `isExecutable` tells whether a path is an executable file.
 */
export function findServer(
  setting: string | undefined,
  env: Environment,
  workspaceFolders: string[],
  isExecutable: (p: string) => boolean,
): ServerLookup {
  const configured = (setting ?? '').trim();
  if (configured !== '') {
    const resolved = expand(configured, env, workspaceFolders);
    if (isExecutable(resolved)) {
      return { ok: true, path: resolved, source: 'setting' };
    }
    return {
      ok: false,
      fix: 'setting',
      message:
        `Handoff: the language server set in "handoff.serverPath" (${resolved}) ` +
        'does not exist or is not executable. Point the setting at the `handoff` binary, or clear it to use `handoff` from PATH.',
    };
  }
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') {
      continue;
    }
    const candidate = path.join(dir, 'handoff');
    if (isExecutable(candidate)) {
      return { ok: true, path: candidate, source: 'PATH' };
    }
  }
  return {
    ok: false,
    fix: 'install',
    message:
      'Handoff: cannot find the `handoff` language server: it is not on PATH and "handoff.serverPath" is not set. ' +
      'Install it (`cargo install --path server` in the Handoff repository) or set "handoff.serverPath" to the binary.',
  };
}

function expand(p: string, env: Environment, workspaceFolders: string[]): string {
  let out = p;
  if (workspaceFolders.length > 0) {
    out = out.replace(/\$\{workspaceFolder\}/g, workspaceFolders[0]);
  }
  if ((out === '~' || out.startsWith('~/')) && env.HOME) {
    out = path.join(env.HOME, out.slice(1));
  }
  if (!path.isAbsolute(out) && workspaceFolders.length > 0) {
    out = path.resolve(workspaceFolders[0], out);
  }
  return out;
}
