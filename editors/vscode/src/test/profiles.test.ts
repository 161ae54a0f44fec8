import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { agentChoices, parseConfig } from '../profiles';

describe('parseConfig', () => {
  it('reads default_agent and agent tables with their images', () => {
    const parsed = parseConfig(`
default_agent = "scripted"   # a comment
max_parallel = 4
[agents.scripted]
image = "handoff-test/busybox-git:abc"
command = ["sh", "-c", "echo # not a comment"]
[agents."my agent"]
image = 'rust:1'
[agents.fmt.extra]
x = 1
`);
    assert.equal(parsed.defaultAgent, 'scripted');
    assert.deepEqual([...parsed.agents.keys()], ['scripted', 'my agent']);
    assert.equal(parsed.agents.get('scripted')?.image, 'handoff-test/busybox-git:abc');
    assert.equal(parsed.agents.get('my agent')?.image, 'rust:1');
  });

  it('reads the [agents] table with inline tables and dotted keys', () => {
    const parsed = parseConfig(`
agents.top.image = "alpine"
[agents]
fmt = { image = "rust:1", command = ["cargo", "fmt"] }
lint.image = "node:22"
`);
    assert.deepEqual(
      [...parsed.agents.entries()].map(([k, v]) => [k, v.image]),
      [
        ['top', 'alpine'],
        ['fmt', 'rust:1'],
        ['lint', 'node:22'],
      ],
    );
  });

  it('ignores default_agent inside a table and tolerates CRLF and junk', () => {
    const parsed = parseConfig('[agents.a]\r\ndefault_agent = "nope"\r\nthis is not toml\r\n');
    assert.equal(parsed.defaultAgent, undefined);
    assert.deepEqual([...parsed.agents.keys()], ['a']);
  });
});

describe('agentChoices', () => {
  it('offers the built-in profiles with claude as the default when nothing is configured', () => {
    const choices = agentChoices([]);
    assert.deepEqual(
      choices.map((c) => [c.name, c.isDefault]),
      [
        ['claude', true],
        ['codex', false],
        ['shell', false],
      ],
    );
  });

  it('puts the configured default first; the repository overrides the user', () => {
    const choices = agentChoices([
      { source: '~/.config/handoff/config.toml', text: 'default_agent = "codex"\n[agents.mine]\nimage = "a"\n' },
      { source: '.handoff.toml', text: 'default_agent = "scripted"\n[agents.scripted]\nimage = "b"\n[agents.shell]\nimage = "c"\n' },
    ]);
    assert.deepEqual(
      choices.map((c) => `${c.name}${c.isDefault ? '*' : ''} ${c.source} ${c.image ?? ''}`.trim()),
      [
        'scripted* .handoff.toml b',
        'claude built-in',
        'codex built-in',
        'mine ~/.config/handoff/config.toml a',
        'shell .handoff.toml c',
      ],
    );
  });

  it('still offers a default that names no known profile', () => {
    const choices = agentChoices([{ source: '.handoff.toml', text: 'default_agent = "ghost"\n' }]);
    assert.equal(choices[0].name, 'ghost');
    assert.equal(choices[0].isDefault, true);
  });
});
