// Addresses of file contents at a commit, for the "Open diff" view: the URI
// `handoff-git:/src/a.rs?{"repository":"/repo","commit":"abc…"}` shows `src/a.rs` as
// it is in commit `abc…` of `/repo`. The path stays the URI's path so that VS Code
// picks the language from its extension.

export const SCHEME = 'handoff-git';

export interface GitRef {
  repository: string;
  commit: string;
  /** Repository-relative, with forward slashes. */
  path: string;
}

export function toUriParts(ref: GitRef): { scheme: string; path: string; query: string } {
  return {
    scheme: SCHEME,
    path: `/${ref.path.replace(/^\/+/, '')}`,
    query: JSON.stringify({ repository: ref.repository, commit: ref.commit }),
  };
}

export function fromUriParts(uriPath: string, query: string): GitRef {
  let parsed: unknown;
  try {
    parsed = JSON.parse(query);
  } catch {
    throw new Error(`not a ${SCHEME} address: bad query ${query}`);
  }
  const q = parsed as { repository?: unknown; commit?: unknown };
  if (typeof q.repository !== 'string' || typeof q.commit !== 'string' || !/^[0-9a-f]{4,64}$/i.test(q.commit)) {
    throw new Error(`not a ${SCHEME} address: ${query}`);
  }
  return { repository: q.repository, commit: q.commit, path: uriPath.replace(/^\/+/, '') };
}

/** `git cat-file` arguments that print the file's bytes at the commit, unfiltered. */
export function catFileArgs(ref: GitRef): string[] {
  return ['-C', ref.repository, 'cat-file', 'blob', `${ref.commit}:${ref.path}`];
}

/** The diff editor's title: `greet.py (Handoff #3: base ↔ result)`. */
export function diffTitle(path: string, task: number): string {
  const name = path.split('/').pop() ?? path;
  return `${name} (Handoff #${task}: base ↔ result)`;
}
