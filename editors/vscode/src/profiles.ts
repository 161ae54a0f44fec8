// Agent profiles the user can pick when starting a task: the built-in ones plus those
// declared in `.handoff.toml` (repository) and `~/.config/handoff/config.toml` (user),
// read without running `handoff doctor`. Only the few keys a picker needs are read:
// `default_agent` and the names (and images) of `[agents.NAME]` tables.

export interface AgentChoice {
  name: string;
  /** Where it comes from: "built-in", ".handoff.toml", "~/.config/handoff/config.toml". */
  source: string;
  image?: string;
  isDefault: boolean;
}

export interface ConfigText {
  source: string;
  text: string;
}

export interface ParsedConfig {
  defaultAgent?: string;
  agents: Map<string, { image?: string }>;
}

export const BUILTIN_AGENTS: ReadonlyArray<{ name: string; detail: string }> = [
  { name: 'claude', detail: 'Claude Code (needs ANTHROPIC_API_KEY)' },
  { name: 'codex', detail: 'Codex CLI (needs OPENAI_API_KEY)' },
  { name: 'shell', detail: 'runs the prompt as a shell command' },
];

const BUILTIN_DEFAULT = 'claude';

/** Reads `default_agent` and the `[agents.NAME]` tables of a TOML file. */
export function parseConfig(text: string): ParsedConfig {
  const result: ParsedConfig = { agents: new Map() };
  // undefined: top level; 'agents': the [agents] table; otherwise [agents.NAME].
  let table: string | undefined;
  let agent: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = stripComment(raw).trim();
    if (line === '') {
      continue;
    }
    const header = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (header) {
      const path = splitKey(header[1]);
      table = path.join('.');
      agent = undefined;
      if (path[0] === 'agents' && path.length === 2) {
        agent = path[1];
        if (!result.agents.has(agent)) {
          result.agents.set(agent, {});
        }
      } else if (path[0] === 'agents' && path.length === 1) {
        table = 'agents';
      }
      continue;
    }
    const kv = /^("[^"]*"|'[^']*'|[A-Za-z0-9_.\-" ]+?)\s*=\s*(.*)$/.exec(line);
    if (!kv) {
      continue;
    }
    const key = splitKey(kv[1]);
    const value = kv[2];
    if (table === undefined) {
      if (key.length === 1 && key[0] === 'default_agent') {
        result.defaultAgent = stringValue(value);
      } else if (key[0] === 'agents' && key.length >= 2) {
        // agents.fmt.image = "…" or agents.fmt = { … } at top level.
        noteAgent(result, key[1], key.slice(2), value);
      }
    } else if (table === 'agents') {
      noteAgent(result, key[0], key.slice(1), value);
    } else if (agent !== undefined && key.length === 1 && key[0] === 'image') {
      const entry = result.agents.get(agent);
      if (entry) {
        entry.image = stringValue(value);
      }
    }
  }
  return result;
}

function noteAgent(result: ParsedConfig, name: string, rest: string[], value: string): void {
  const entry = result.agents.get(name) ?? {};
  result.agents.set(name, entry);
  if (rest.length === 1 && rest[0] === 'image') {
    entry.image = stringValue(value);
  } else if (rest.length === 0) {
    const image = /\bimage\s*=\s*("[^"]*"|'[^']*')/.exec(value);
    if (image) {
      entry.image = stringValue(image[1]);
    }
  }
}

function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\' && quote === '"') {
        i++;
      } else if (c === quote) {
        quote = undefined;
      }
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#') {
      return line.slice(0, i);
    }
  }
  return line;
}

/** `agents."my agent".image` → ["agents", "my agent", "image"]. */
function splitKey(key: string): string[] {
  const parts: string[] = [];
  const re = /\s*("([^"]*)"|'([^']*)'|([^.\s]+))\s*(\.|$)/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(key)) !== null && m[0] !== '') {
    parts.push(m[2] ?? m[3] ?? m[4]);
    if (m[5] === '') {
      break;
    }
  }
  return parts;
}

function stringValue(value: string): string | undefined {
  const m = /^"((?:[^"\\]|\\.)*)"|^'([^']*)'/.exec(value.trim());
  if (!m) {
    return undefined;
  }
  return m[2] ?? m[1].replace(/\\(.)/g, '$1');
}

/**
 * The agents to offer, the default first, then the rest by name. The repository's
 * file overrides the user's; both extend the built-in profiles.
 */
export function agentChoices(configs: ConfigText[]): AgentChoice[] {
  const byName = new Map<string, AgentChoice>();
  for (const b of BUILTIN_AGENTS) {
    byName.set(b.name, { name: b.name, source: 'built-in', isDefault: false });
  }
  let defaultAgent = BUILTIN_DEFAULT;
  // Lowest precedence first: later files override earlier ones.
  for (const config of configs) {
    const parsed = parseConfig(config.text);
    if (parsed.defaultAgent) {
      defaultAgent = parsed.defaultAgent;
    }
    for (const [name, entry] of parsed.agents) {
      const known = byName.get(name);
      byName.set(name, {
        name,
        source: config.source,
        image: entry.image ?? known?.image,
        isDefault: false,
      });
    }
  }
  const choices = [...byName.values()];
  const def = byName.get(defaultAgent);
  if (def) {
    def.isDefault = true;
  } else {
    choices.push({ name: defaultAgent, source: 'default_agent (profile not found)', isDefault: true });
  }
  return choices.sort((a, b) =>
    a.isDefault !== b.isDefault ? (a.isDefault ? -1 : 1) : a.name.localeCompare(b.name),
  );
}

export function builtinDetail(name: string): string | undefined {
  return BUILTIN_AGENTS.find((b) => b.name === name)?.detail;
}
