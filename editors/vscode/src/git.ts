// Small helpers around the user's git repository, run with the `git` executable.

import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export interface ExecResult {
  stdout: Buffer;
  stderr: string;
}

/** Runs a program without a shell; rejects with its stderr when it fails. */
export function run(program: string, args: string[], cwd?: string, timeoutMs = 30_000): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(
      program,
      args,
      { cwd, encoding: 'buffer', maxBuffer: 256 * 1024 * 1024, timeout: timeoutMs, windowsHide: true },
      (error, stdout, stderr) => {
        const err = stderr.toString('utf8').trim();
        if (error) {
          reject(new Error(err || error.message));
        } else {
          resolve({ stdout, stderr: err });
        }
      },
    );
  });
}

/** The path with symlinks resolved and no trailing slash, as far as it exists. */
export function canonical(p: string): string {
  try {
    return fs.realpathSync.native(p);
  } catch {
    return path.resolve(p);
  }
}

const roots = new Map<string, Promise<string | undefined>>();

/** The working tree root of the repository containing `dir`, or undefined. */
export function repositoryRoot(dir: string): Promise<string | undefined> {
  let root = roots.get(dir);
  if (!root) {
    root = run('git', ['-C', dir, 'rev-parse', '--show-toplevel'])
      .then((r) => canonical(r.stdout.toString('utf8').trim()))
      .catch(() => {
        // Not (yet) a repository: ask again next time.
        roots.delete(dir);
        return undefined;
      });
    roots.set(dir, root);
  }
  return root;
}

/** `file` relative to `repository`, with forward slashes. */
export function relativePath(repository: string, file: string): string {
  return path.relative(canonical(repository), canonical(file)).split(path.sep).join('/');
}
