// End-to-end test of the Handoff extension in a real VS Code: code-server (VS Code
// 1.100: the Node extension host and the web workbench) driven through Debian's
// Chromium with playwright-core, the real `handoff lsp`, real git and real Docker
// running the small offline agent image. Run by scripts/e2e.sh, under `unshare -n`.
//
// Environment (set by scripts/e2e.sh):
//   E2E_DEPS      directory with node_modules/{code-server,playwright-core}
//   HANDOFF_BIN   the handoff binary
//   VSIX          the packaged extension
//   AGENT_IMAGE   the offline agent image (tests/images/busybox-git.sh)
//   ARTIFACTS     where screenshots and logs go
//   DOCS_SHOT     where to copy the screenshot of the accepted hunk (optional)
//
// Each test reads like the user story it checks. Waits are on DOM conditions, with
// generous timeouts (a 2-core CI machine shared with other jobs).

import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set (run editors/vscode/scripts/e2e.sh)`);
  }
  return v;
};
const DEPS = env('E2E_DEPS');
const HANDOFF_BIN = env('HANDOFF_BIN');
const VSIX = env('VSIX');
const AGENT_IMAGE = env('AGENT_IMAGE');
const ARTIFACTS = env('ARTIFACTS');
const DOCS_SHOT = process.env.DOCS_SHOT;

const require = createRequire(path.join(DEPS, 'package.json'));
const { chromium } = require('playwright-core');
const CODE_SERVER = path.join(DEPS, 'node_modules', '.bin', 'code-server');

const started = Date.now();
const log = (msg) => console.log(`[vscode e2e ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${msg}`);

// --- the repository the user works in ----------------------------------------------

const GREET = 'def greet(name):\n    # TODO: greet loudly\n    return "hello, " + name\n\nprint(greet("world"))\n';
const GREET_AFTER = 'def greet(name):\n    return ("hello, " + name).upper()\n\nprint(greet("world"))\n';
const NOTES_PROMPT = 'Write the release notes for version 0.2';
const VERSION = 'VERSION = "0.1"\n';
const VERSION_PROMPT = 'Set the version to 0.2';
const PASSED_VALUE = 'passed through once trusted';

function git(repo, ...args) {
  return execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], {
    cwd: repo,
    encoding: 'utf8',
  });
}

/** greet.py with a TODO; agents that edit files the same way every time. */
function makeRepo(dir, state) {
  fs.mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(dir, 'greet.py'), GREET);
  fs.writeFileSync(path.join(dir, 'version.py'), VERSION);
  const toml = String.raw`default_agent = "scripted"

# Resolves the TODO in greet.py as a real agent would, deterministically.
[agents.scripted]
image = "${AGENT_IMAGE}"
memory = "256m"
command = ["sh", "-c", "cat \"$HANDOFF_PROMPT_FILE\"; sed -i 's/return \"hello, \" + name/return (\"hello, \" + name).upper()/; /TODO: greet loudly/d' greet.py"]

# Writes the prompt to NOTES.md.
[agents.notes]
image = "${AGENT_IMAGE}"
memory = "256m"
command = ["sh", "-c", "printf '%s\\n' \"$HANDOFF_PROMPT\" > NOTES.md; echo wrote NOTES.md"]

# Sets the version to 0.2; asked again with review comments, takes a few seconds (the
# editor shows them sent meanwhile) and writes 0.2.0.
[agents.versions]
image = "${AGENT_IMAGE}"
memory = "256m"
command = ["sh", "-c", "cat \"$HANDOFF_PROMPT_FILE\"; if grep -q 'Review comments' \"$HANDOFF_PROMPT_FILE\"; then sleep 4; v=0.2.0; else v=0.2; fi; printf 'VERSION = \"%s\"\\n' $v > version.py"]

# Writes a one-line summary of the prompt to NOTES.md (a second way to do it).
[agents.summary]
image = "${AGENT_IMAGE}"
memory = "256m"
command = ["sh", "-c", "printf '# %s\\n' \"$HANDOFF_PROMPT\" > NOTES.md; echo wrote a summary"]

[agents.shell]
image = "${AGENT_IMAGE}"
memory = "256m"
`;
  fs.writeFileSync(path.join(dir, '.handoff.toml'), toml);
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'initial');
  // The repository's config names images and commands: trust it, for the CLI calls
  // below (their own config folder) and for the server code-server starts.
  fs.writeFileSync(path.join(dir, '.git', 'info', 'exclude'), '.no-user-config/\n');
  for (const home of [path.join(dir, '.no-user-config'), path.join(state, 'xdg-config')]) {
    execFileSync(HANDOFF_BIN, ['-C', dir, 'trust'], { env: { ...process.env, XDG_CONFIG_HOME: home } });
  }
}

// --- code-server ---------------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function stateEnv(state) {
  return {
    ...process.env,
    HOME: path.join(state, 'home'),
    XDG_CONFIG_HOME: path.join(state, 'xdg-config'),
    XDG_DATA_HOME: path.join(state, 'xdg-data'),
    XDG_CACHE_HOME: path.join(state, 'xdg-cache'),
    XDG_STATE_HOME: path.join(state, 'xdg-state'),
    TMPDIR: path.join(state, 'tmp'),
    // The default gallery is remote; nothing may leave the machine.
    EXTENSIONS_GALLERY: JSON.stringify({
      serviceUrl: 'http://127.0.0.1:9/gallery',
      itemUrl: 'http://127.0.0.1:9/item',
      resourceUrlTemplate: 'http://127.0.0.1:9/resource',
    }),
    // Keep the user's git configuration out, but keep git usable.
    GIT_CONFIG_NOSYSTEM: '1',
    // A variable of the user's that a repository's profile may pass to its agent only
    // once the user trusts that configuration.
    HANDOFF_E2E_PASSED: PASSED_VALUE,
  };
}

function prepareState(state) {
  for (const d of ['home', 'xdg-config', 'xdg-data', 'xdg-cache', 'xdg-state', 'tmp', 'extensions', 'user-data/User']) {
    fs.mkdirSync(path.join(state, d), { recursive: true });
  }
  fs.writeFileSync(path.join(state, 'config.yaml'), 'auth: none\ncert: false\n');
  const settings = {
    'handoff.serverPath': HANDOFF_BIN,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'security.workspace.trust.enabled': false,
    'git.enabled': false,
    'editor.minimap.enabled': false,
    'editor.fontSize': 15,
    'window.commandCenter': false,
    'chat.commandCenter.enabled': false,
    'files.autoSave': 'off',
    // The test types JSON into settings.json: no brackets or indentation added.
    'editor.autoClosingBrackets': 'never',
    'editor.autoClosingQuotes': 'never',
    'editor.autoIndent': 'none',
    'editor.formatOnType': false,
  };
  fs.writeFileSync(path.join(state, 'user-data', 'User', 'settings.json'), JSON.stringify(settings, null, 2));
}

function codeServerArgs(state) {
  return [
    '--config', path.join(state, 'config.yaml'),
    '--auth', 'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--user-data-dir', path.join(state, 'user-data'),
    '--extensions-dir', path.join(state, 'extensions'),
  ];
}

function installExtension(state) {
  execFileSync(CODE_SERVER, [...codeServerArgs(state), '--install-extension', VSIX], {
    env: stateEnv(state),
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 120_000,
  });
  const installed = fs.readdirSync(path.join(state, 'extensions'));
  if (!installed.some((d) => d.startsWith('handoff.handoff-'))) {
    throw new Error(`the extension is not in the extensions dir after --install-extension: ${installed.join(', ')}`);
  }
}

async function startCodeServer(state, folder) {
  const port = await freePort();
  const out = fs.openSync(path.join(ARTIFACTS, 'code-server.log'), 'w');
  const child = spawn(
    CODE_SERVER,
    [...codeServerArgs(state), '--bind-addr', `127.0.0.1:${port}`, folder],
    // Its own process group, so that the extension host and language servers it
    // starts end with it.
    { env: stateEnv(state), stdio: ['ignore', out, out], detached: true },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`code-server exited with ${child.exitCode}; see ${ARTIFACTS}/code-server.log`);
    }
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) {
        break;
      }
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      throw new Error('code-server did not answer on /healthz within 90 s');
    }
    await sleep(250);
  }
  return { child, url };
}

// --- driving the workbench ---------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` (async, returns a truthy value when met) until `timeoutMs`. */
async function until(what, timeoutMs, cond, intervalMs = 200) {
  const t0 = Date.now();
  const deadline = t0 + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await cond();
      if (v) {
        if (Date.now() - t0 > 5000) {
          log(`(${what}: ${((Date.now() - t0) / 1000).toFixed(1)}s)`);
        }
        return v;
      }
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    }
    await sleep(intervalMs);
  }
}

let shotIndex = 0;
async function shot(page, name) {
  const file = path.join(ARTIFACTS, `${String(++shotIndex).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file });
  log(`screenshot ${path.basename(file)}`);
  return file;
}

/** The text of the active editor, from the DOM (all lines are visible in these small files). */
async function editorText(page) {
  return page.evaluate(() => {
    const editor = document.querySelector('.editor-group-container.active .monaco-editor .view-lines');
    if (!editor) {
      return null;
    }
    const lines = [...editor.querySelectorAll(':scope > .view-line')]
      .map((el) => ({ top: parseFloat(el.style.top), text: el.textContent.replace(/\u00a0/g, ' ') }))
      .sort((a, b) => a.top - b.top);
    // Without the final newline's empty line: compare with the file's text trimmed.
    return lines.map((l) => l.text).join('\n').trimEnd();
  });
}

/** Runs a palette command; retries while the extension host is still scanning. */
async function runCommand(page, title) {
  await until(`the command "${title}" in the palette`, 60_000, async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 5000 });
    await input.fill(`>${title}`);
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
    try {
      await row.waitFor({ state: 'visible', timeout: 3000 });
    } catch {
      return false;
    }
    await page.keyboard.press('Enter');
    return true;
  }, 500);
}

/** Waits for the quick input whose title or placeholder says `what`, then types `text`. */
async function answerQuickInput(page, what, text, timeout = 20_000) {
  const widget = page.locator('.quick-input-widget');
  const input = widget.locator('.quick-input-box input');
  await until(`the input "${what}"`, timeout, async () => {
    if (!(await widget.isVisible())) {
      return false;
    }
    const title = (await widget.locator('.quick-input-title').textContent()) ?? '';
    const placeholder = (await input.getAttribute('placeholder')) ?? '';
    return title.includes(what) || placeholder.includes(what);
  });
  await input.fill(text);
}

/** The status bar item's counts: [running, to review]. */
async function statusCounts(page) {
  const text = (await page.locator('.statusbar-item', { hasText: 'Handoff' }).first().textContent()) ?? '';
  const m = /Handoff\s*(\d+)\s+(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * What the workbench shows, for the log when a step does not happen: where the keyboard
 * focus is, the quick input's rows, each editor group's tabs and visible editor, the
 * toasts, dialogs and menus.
 */
async function workbenchState(page) {
  return page.evaluate(() => {
    const text = (el) => (el?.textContent ?? '').replace(/\s+/g, ' ').trim();
    const visible = (el) => !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    const describe = (el) => {
      if (!el || el === document.body) {
        return 'body';
      }
      const part = el.closest('.part');
      const where = part ? [...part.classList].filter((c) => c !== 'part').join('.') : el.closest('.quick-input-widget') ? 'quick input' : '?';
      const label = el.getAttribute('aria-label') ?? '';
      return `<${el.tagName.toLowerCase()} class="${el.className}"${label ? ` aria-label="${label.slice(0, 80)}"` : ''}> in ${where}`;
    };
    const widget = document.querySelector('.quick-input-widget');
    const quickInput = visible(widget)
      ? {
          title: text(widget.querySelector('.quick-input-title')),
          value: widget.querySelector('.quick-input-box input')?.value,
          rows: [...widget.querySelectorAll('.monaco-list-row')]
            .sort((a, b) => Number(a.dataset.index) - Number(b.dataset.index))
            .map((r) => ({
              label: text(r.querySelector('.label-name')) || text(r),
              description: text(r.querySelector('.label-description')),
              aria: r.getAttribute('aria-label'),
              focused: r.classList.contains('focused'),
              highlighted: !!r.querySelector('.highlight'),
            })),
        }
      : 'hidden';
    const groups = [...document.querySelectorAll('.editor-group-container')].map((g) => {
      const tabs = [...g.querySelectorAll('.tabs-container .tab')];
      return {
        active: g.classList.contains('active'),
        activeTab: text(g.querySelector('.tabs-container .tab.active .label-name')),
        tabs: tabs.map((t) => `${text(t.querySelector('.label-name'))}${t.classList.contains('active') ? ' [active]' : ''}${t.classList.contains('dirty') ? ' [dirty]' : ''}`),
        editor: [...g.querySelectorAll('.monaco-diff-editor')].some(visible) ? 'diff' : [...g.querySelectorAll('.monaco-editor')].some(visible) ? 'text' : 'other',
      };
    });
    return {
      title: document.title,
      focus: describe(document.activeElement),
      quickInput,
      groupCount: groups.length,
      groups,
      toasts: [...document.querySelectorAll('.notifications-toasts .notification-toast')].filter(visible).map(text),
      dialogs: [...document.querySelectorAll('.monaco-dialog-box')].filter(visible).map(text),
      menus: [...document.querySelectorAll('.context-view .monaco-menu')].filter(visible).map(text),
    };
  });
}

/**
 * Opens a workspace file with Quick Open (Ctrl+P), as a user does: types its name, waits
 * for the list to show the file, moves the selection to it and presses Enter; then
 * checks that the active editor group shows it in a text editor.
 *
 * The list shown when Quick Open opens (recently opened editors, then files) stays on
 * screen after the name is typed, until the server's file search answers or for about
 * 200 ms, longer on a busy machine. That list may already hold a row for the file (not
 * highlighted, not focused): Enter pressed then opens the row focused there, the most
 * recent editor (seen in CI: NOTES.md again on every retry for 60 s). So the row must
 * be one matched against the typed name (highlighted), be the file itself (its name
 * exactly, in its folder; not a diff editor "greet.py (Handoff #1: …)"), and be focused
 * when Enter is pressed.
 */
async function openFile(page, file) {
  const name = path.posix.basename(file);
  const folder = path.posix.dirname(file) === '.' ? '' : path.posix.dirname(file);
  const isFile = (row) => row.highlighted && row.label === name && row.description === folder;
  let attempt = 0;
  await until(`${file} to open`, 60_000, async () => {
    attempt++;
    const failed = async (why) => {
      log(`openFile ${file}, attempt ${attempt}: ${why}; the workbench: ${JSON.stringify(await workbenchState(page))}`);
      if (attempt === 1) {
        await shot(page, `open-${name}-failed`);
      }
    };
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+P');
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 5000 });
    await input.fill(file);
    let selected = false;
    const t0 = Date.now();
    while (!selected && Date.now() - t0 < 15_000) {
      const qi = (await workbenchState(page)).quickInput;
      const rows = qi === 'hidden' || qi.value !== file ? [] : qi.rows;
      const target = rows.findIndex(isFile);
      const focused = rows.findIndex((r) => r.focused);
      if (target >= 0 && focused >= 0 && rows[focused].highlighted) {
        if (target === focused) {
          selected = true;
          break;
        }
        // Another match ranks first: move the selection to the file.
        await page.keyboard.press(target > focused ? 'ArrowDown' : 'ArrowUp');
      }
      await sleep(100);
    }
    if (!selected) {
      const why = `Quick Open did not list and select ${file} within 15s`;
      await failed(why);
      throw new Error(why);
    }
    await page.keyboard.press('Enter');
    try {
      await until(`${file} in the active editor`, 10_000, async () => {
        const group = (await workbenchState(page)).groups.find((g) => g.active);
        return group?.activeTab === name && group.editor === 'text';
      });
    } catch (e) {
      await failed(`not the active editor after Enter`);
      throw e;
    }
    return true;
  }, 500);
}

async function goToLine(page, line) {
  await page.keyboard.press('Control+G');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(`:${line}`);
  await page.keyboard.press('Enter');
  await until(`the cursor on line ${line}`, 10_000, async () => {
    const status = await page.locator('.statusbar-item', { hasText: /Ln \d+, Col \d+/ }).first().textContent();
    return status && status.includes(`Ln ${line},`);
  });
}

/**
 * Opens the Quick Fix menu (Ctrl+.) at the cursor and runs the action whose title
 * starts with `title`. The menu ignores mouse clicks: move the focus with the arrow
 * keys and press Enter. Retries while the server has not answered yet.
 */
async function quickFix(page, title, beforeEnter) {
  const menu = page.locator('.action-widget');
  await until(`"${title}" in the Quick Fix menu`, 60_000, async () => {
    // Escape only closes a menu left open: in the editor it would drop the selection.
    if (await menu.isVisible().catch(() => false)) {
      await page.keyboard.press('Escape');
    }
    await page.keyboard.press('Control+Period');
    try {
      await menu.locator('.monaco-list-row').first().waitFor({ state: 'visible', timeout: 5000 });
    } catch {
      return false;
    }
    const rows = await menu.locator('.monaco-list-row').allTextContents();
    if (!rows.some((r) => r.includes(title))) {
      return false;
    }
    for (let i = 0; i < rows.length + 2; i++) {
      const focused = (await menu.locator('.monaco-list-row.focused').textContent().catch(() => '')) ?? '';
      if (focused.includes(title)) {
        if (beforeEnter) {
          await beforeEnter();
        }
        await page.keyboard.press('Enter');
        return true;
      }
      await page.keyboard.press('ArrowDown');
      await sleep(100);
    }
    return false;
  }, 1000);
}

function codeLens(page, text) {
  return page.locator('.editor-group-container.active .codelens-decoration a', { hasText: text }).first();
}

function toast(page, text) {
  return page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
}

/** Shows the Handoff view container in the side bar ("HANDOFF: TASKS"). */
async function openHandoffView(page) {
  const title = page.locator('.part.sidebar .composite.title .title-label', { hasText: /handoff/i });
  if (await title.isVisible().catch(() => false)) {
    return;
  }
  // The item, not its icon: a badge ("1 task ready to review") lies over the icon.
  await page.locator('.activitybar .action-item:has(a[aria-label^="Handoff"])').first().click();
  await title.waitFor({ state: 'visible', timeout: 20_000 });
}

/**
 * Runs `label` from the context menu of `target`. A click while the menu is still
 * settling may only highlight the item, so: hover it, wait for the highlight, press
 * Enter, as a keyboard user would.
 */
/**
 * Chooses `label` in the context menu of `target` by hovering it and pressing Enter (a
 * mouse click right after the menu opens is sometimes taken for the release of the right
 * button and ignored by the workbench). `beforeChoosing` runs while the menu is open.
 */
async function contextMenu(page, target, label, beforeChoosing = async () => {}) {
  await target.click({ button: 'right' });
  const item = page.locator('.context-view .monaco-menu .action-item', { hasText: label }).first();
  await item.waitFor({ state: 'visible', timeout: 10_000 });
  await beforeChoosing();
  await item.hover();
  await page
    .locator('.context-view .monaco-menu .action-item.focused', { hasText: label })
    .waitFor({ state: 'visible', timeout: 10_000 });
  await page.keyboard.press('Enter');
}

function treeRow(page, id) {
  return page.locator(`.part.sidebar .monaco-list-row[aria-label^="Handoff task ${id},"]`).first();
}

async function dismissToasts(page) {
  const clear = page.locator('.notifications-toasts .notification-toast .codicon-notifications-clear');
  for (const el of await clear.all()) {
    await el.click({ timeout: 2000 }).catch(() => {});
  }
}

/** Replaces the user settings as a user would: in the settings.json editor, saved. */
async function editUserSettings(page, settings) {
  await runCommand(page, 'Preferences: Open User Settings (JSON)');
  await page.locator('.tabs-container .tab.active', { hasText: 'settings.json' }).waitFor({ state: 'visible', timeout: 20_000 });
  const editor = page.locator('.editor-group-container.active .monaco-editor .view-lines');
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(JSON.stringify(settings));
  await page.keyboard.press('Control+S');
  await page
    .locator('.tabs-container .tab.active.dirty', { hasText: 'settings.json' })
    .waitFor({ state: 'detached', timeout: 20_000 });
  await page.keyboard.press('Control+W');
}

function branches(repo, pattern) {
  return git(repo, 'branch', '--list', '--format=%(refname:short)', pattern)
    .split('\n')
    .filter((l) => l !== '');
}

/** `handoff lsp` processes started from this test's VS Code (their environment says so). */
function serverPids(state) {
  const marker = `XDG_STATE_HOME=${path.join(state, 'xdg-state')}`;
  const pids = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd[0] !== HANDOFF_BIN || cmd[1] !== 'lsp') {
        continue;
      }
      const environ = fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (environ.includes(marker)) {
        pids.push(Number(entry));
      }
    } catch {
      // The process ended meanwhile.
    }
  }
  return pids;
}

/** The handoff CLI in the repository (its own config folder, which trusts it), JSON decoded. */
function handoffJson(repo, ...args) {
  const env = { ...process.env, XDG_CONFIG_HOME: path.join(repo, '.no-user-config') };
  return JSON.parse(execFileSync(HANDOFF_BIN, ['-C', repo, ...args, '--json'], { encoding: 'utf8', env }));
}

function taskIds(repo) {
  return handoffJson(repo, 'list').map((t) => t.id);
}

/**
 * Starts a task from the palette flow: the prompt, the attempts, then the agent
 * profiles (one picked from the list, or several checked in the multi-select).
 */
async function startFromPalette(page, prompt, attempts, agents) {
  await runCommand(page, 'Handoff: Start background task…');
  await answerQuickInput(page, 'Start background task (1/3)', prompt);
  await page.keyboard.press('Enter');
  await answerQuickInput(page, 'Attempts', String(attempts));
  await page.keyboard.press('Enter');
  if (attempts === 1) {
    await answerQuickInput(page, 'Start background task (3/3)', agents[0]);
    await until(`the "${agents[0]}" profile to be focused`, 10_000, async () =>
      ((await page.locator('.quick-input-widget .monaco-list-row.focused').textContent()) ?? '').includes(agents[0]),
    );
    await shot(page, 'palette-agent-pick');
    await page.keyboard.press('Enter');
    return;
  }
  await answerQuickInput(page, 'Start background task (3/3)', '');
  // The multi-select: the default profile comes checked; check exactly `agents`.
  const rows = page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
  await until('the agent profiles to check', 10_000, async () => (await rows.count()) > 2);
  for (const row of await rows.all()) {
    const name = ((await row.locator('.label-name').first().textContent()) ?? '').trim();
    const box = row.locator('input[type=checkbox], .monaco-checkbox, .quick-input-list-checkbox').first();
    const checked = async () =>
      (await row.getAttribute('aria-checked')) === 'true' ||
      (await box.evaluate((el) => el.checked === true || el.classList.contains('checked')).catch(() => false));
    if ((await checked()) !== agents.includes(name)) {
      await box.click();
      await until(`"${name}" to be ${agents.includes(name) ? 'checked' : 'unchecked'}`, 5000, async () => (await checked()) === agents.includes(name));
    }
  }
  await shot(page, 'palette-agents-multi');
  await page.keyboard.press('Enter');
}

/** The comment thread widget (the review zone) that shows `text`, in the active editor group. */
function commentThread(page, text) {
  return page.locator('.editor-group-container.active .review-widget', { hasText: text }).first();
}

/**
 * Adds a review comment with the native thread UI on the cursor's line: "Comments: Add
 * Comment on Current Selection" opens a new thread's reply box (offered once the
 * extension has said the line is commentable), or, when a thread is there already, its
 * reply box takes the comment; then "Add Comment".
 */
async function addCommentInThread(page, text, thread) {
  let form;
  if (thread) {
    await thread.locator('.review-thread-reply-button').first().click();
    form = thread.locator('.comment-form-container');
  } else {
    await runCommand(page, 'Comments: Add Comment on Current Selection');
    form = page.locator('.editor-group-container.active .review-widget .comment-form-container').last();
  }
  const box = form.locator('.monaco-editor').first();
  await box.waitFor({ state: 'visible', timeout: 20_000 });
  await box.click();
  await page.keyboard.type(text);
  await shot(page, 'comment-typed');
  await form.locator('.form-actions .monaco-text-button', { hasText: 'Add Comment' }).first().click();
}

function assertEqual(actual, expected, what) {
  if (actual !== expected) {
    throw new Error(`${what}:\n--- expected\n${expected}\n--- actual\n${actual}`);
  }
}

function assert(cond, what) {
  if (!cond) {
    throw new Error(what);
  }
}

// --- the tests -------------------------------------------------------------------------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test('a TODO is delegated from the Quick Fix menu, and its hunk is accepted from the editor', async ({ page, repo }) => {
  await openFile(page, 'greet.py');
  await until('greet.py in the editor', 20_000, async () => (await editorText(page))?.includes('TODO: greet loudly'));
  await goToLine(page, 2);
  await quickFix(page, 'Delegate TODO to background agent', () => shot(page, 'quick-fix-delegate-todo'));

  log('waiting for task #1 to run in Docker and finish');
  await toast(page, 'Handoff #1 done').waitFor({ state: 'visible', timeout: 180_000 });
  const done = toast(page, 'Handoff #1 done');
  assert(await done.locator('.monaco-button', { hasText: 'Review' }).isVisible(), 'the notification has a "Review" button');
  assert(await done.locator('.monaco-button', { hasText: 'Show Log' }).isVisible(), 'the notification has a "Show Log" button');
  await codeLens(page, 'Accept (#1)').waitFor({ state: 'visible', timeout: 30_000 });
  await codeLens(page, 'Reject').waitFor({ state: 'visible', timeout: 5000 });
  await until('the status bar to count one task to review', 20_000, async () =>
    JSON.stringify(await statusCounts(page)) === '[0,1]',
  );
  // Said once: the extension asks the server not to send its own "task ended" message.
  const toasts = await page.locator('.notifications-toasts .notification-toast', { hasText: 'Handoff #1' }).count();
  assert(toasts === 1, `notifications about task #1: ${toasts}`);
  await shot(page, 'task-done-inline-diff');
  assertEqual(await editorText(page), GREET.trimEnd(), 'the buffer before accepting');

  // The inline diff: the proposed line is drawn after the replaced ones.
  const proposal = await page.evaluate(() =>
    [...document.querySelectorAll('.editor-group-container.active .view-lines span')]
      .map((s) => `${s.textContent} ${getComputedStyle(s, '::after').content} ${getComputedStyle(s, '::before').content}`)
      .find((t) => t.includes('⟶')),
  );
  assert(proposal && proposal.includes('upper()'), `the proposed line is drawn in the editor: ${proposal}`);

  // Hovering the hunk shows the whole change with Accept / Reject / Open diff links.
  const replaced = page.locator('.editor-group-container.active .view-lines .view-line', { hasText: 'return "hello, " + name' });
  const hover = page.locator('.monaco-hover', { hasText: 'Handoff #1' });
  await until('the hunk hover', 30_000, async () => {
    const box = await replaced.boundingBox();
    await page.mouse.move(box.x + 60, box.y + box.height / 2);
    await page.mouse.move(box.x + 70, box.y + box.height / 2);
    return hover.isVisible().catch(() => false);
  }, 1000);
  await until('the hover to offer Accept, Reject and Open diff', 10_000, async () => {
    const text = (await hover.textContent()) ?? '';
    return text.includes('Accept') && text.includes('Reject') && text.includes('Open diff') && text.includes('upper()');
  });
  await shot(page, 'hunk-hover');
  await page.mouse.move(5, 450);
  await page.keyboard.press('Escape');
  await until('the hover to close', 10_000, async () => !(await hover.isVisible().catch(() => false)));

  await dismissToasts(page);
  await codeLens(page, 'Accept (#1)').click();
  try {
    await until('the buffer to hold the accepted change', 15_000, async () => (await editorText(page)) === GREET_AFTER.trimEnd());
  } catch {
    log('the CodeLens click did not apply the change; using the Quick Fix "Accept change"');
    await goToLine(page, 2);
    await quickFix(page, 'Accept change (Handoff #1)');
    await until('the buffer to hold the accepted change', 20_000, async () => (await editorText(page)) === GREET_AFTER.trimEnd());
  }
  await until('the Accept lens to go', 20_000, async () => !(await codeLens(page, 'Accept (#1)').isVisible()));

  await openHandoffView(page);
  await treeRow(page, 1).waitFor({ state: 'visible', timeout: 20_000 });
  const label = await treeRow(page, 1).getAttribute('aria-label');
  assert(label.includes('done'), `the tree shows task #1 done: ${label}`);
  await until('the status bar to count nothing left to review', 20_000, async () =>
    JSON.stringify(await statusCounts(page)) === '[0,0]',
  );
  // The task's changed file below it, and back in the editor, for the picture.
  await treeRow(page, 1).locator('.monaco-tl-twistie').click();
  await page
    .locator('.part.sidebar .monaco-list-row', { hasText: 'greet.py' })
    .first()
    .waitFor({ state: 'visible', timeout: 10_000 });
  await page.locator('.editor-group-container.active .monaco-editor .view-lines').click({ position: { x: 400, y: 10 } });
  const accepted = await shot(page, 'hunk-accepted');
  if (DOCS_SHOT) {
    fs.copyFileSync(accepted, DOCS_SHOT);
  }

  // Saving writes the accepted text; the task's branch holds the agent's change.
  await page.keyboard.press('Control+S');
  await until('greet.py saved', 20_000, async () => fs.readFileSync(path.join(repo, 'greet.py'), 'utf8') === GREET_AFTER);
  const task1 = branches(repo, 'handoff/1-*');
  assert(task1.length === 1, `one branch handoff/1-*: ${task1.join(', ')}`);
  assertEqual(git(repo, 'show', `${task1[0]}:greet.py`), GREET_AFTER, `greet.py on ${task1[0]}`);
  assertEqual(git(repo, 'rev-parse', '--abbrev-ref', 'HEAD').trim(), 'main', 'the user stays on their branch');
});

test('a task started from the command palette shows in the Handoff view, with its diff', async ({ page, repo }) => {
  await runCommand(page, 'Handoff: Start background task…');
  await answerQuickInput(page, 'Start background task (1/3)', NOTES_PROMPT);
  await page.keyboard.press('Enter');
  await answerQuickInput(page, 'Attempts', '1');
  await page.keyboard.press('Enter');
  await answerQuickInput(page, 'Start background task (3/3)', 'notes');
  await until('the "notes" profile to be focused', 10_000, async () =>
    ((await page.locator('.quick-input-widget .monaco-list-row.focused').textContent()) ?? '').includes('notes'),
  );
  await shot(page, 'palette-agent-pick');
  await page.keyboard.press('Enter');

  await openHandoffView(page);
  await treeRow(page, 2).waitFor({ state: 'visible', timeout: 30_000 });
  log('waiting for task #2 to finish');
  await until('task #2 done in the tree', 180_000, async () =>
    ((await treeRow(page, 2).getAttribute('aria-label')) ?? '').includes(', done:'),
  );
  const description = await treeRow(page, 2).locator('.label-description').textContent();
  assert(/done .*1 file · notes/.test(description ?? ''), `the tree item says done, 1 file, agent notes: ${description}`);
  await shot(page, 'palette-task-in-tree');

  // Its context menu opens the diff of base and result.
  await contextMenu(page, treeRow(page, 2), 'Show diff', () => shot(page, 'tree-context-menu'));
  const diff = page.locator('.editor-group-container.active .monaco-diff-editor');
  await diff.waitFor({ state: 'visible', timeout: 20_000 });
  await until('the result side to show NOTES.md', 20_000, async () =>
    ((await diff.locator('.editor.modified .view-lines').textContent()) ?? '').replace(/\u00a0/g, ' ').includes(NOTES_PROMPT),
  );
  await shot(page, 'show-diff');

  const task2 = branches(repo, 'handoff/2-*');
  assert(task2.length === 1, `one branch handoff/2-*: ${task2.join(', ')}`);
  assert(git(repo, 'show', `${task2[0]}:NOTES.md`).includes(NOTES_PROMPT), 'NOTES.md on the branch holds the prompt');

  // "Accept all" from the context menu brings the file the agent created.
  await contextMenu(page, treeRow(page, 2), 'Accept all');
  await toast(page, 'Handoff #2: accepted 1 change; created NOTES.md').waitFor({ state: 'visible', timeout: 30_000 });
  await page.locator('.tabs-container .tab', { hasText: 'NOTES.md' }).last().click();
  await until('NOTES.md in the editor', 20_000, async () => (await editorText(page)) === NOTES_PROMPT);
  await runCommand(page, 'File: Save All Files');
  await until('NOTES.md saved in the working tree', 20_000, async () =>
    fs.existsSync(path.join(repo, 'NOTES.md')) && fs.readFileSync(path.join(repo, 'NOTES.md'), 'utf8') === `${NOTES_PROMPT}\n`,
  );
  await until('nothing left to review', 20_000, async () => JSON.stringify(await statusCounts(page)) === '[0,0]');
  await shot(page, 'accept-all-new-file');
  await dismissToasts(page);
});

test('a selection is delegated with an instruction typed in an input box', async ({ page, repo }) => {
  const instruction = 'Add a docstring to greet';
  await openFile(page, 'greet.py');
  await goToLine(page, 1);
  await page.keyboard.press('Shift+ArrowDown');
  await page.keyboard.press('Shift+ArrowDown');
  await quickFix(page, 'Delegate selection to background agent');
  await answerQuickInput(page, 'Delegate selection to background agent', instruction);
  await shot(page, 'selection-instruction');
  await page.keyboard.press('Enter');

  await openHandoffView(page);
  await treeRow(page, 3).waitFor({ state: 'visible', timeout: 30_000 });
  await until('task #3 done in the tree', 180_000, async () =>
    ((await treeRow(page, 3).getAttribute('aria-label')) ?? '').includes(', done:'),
  );
  await toast(page, 'Handoff #3 done').waitFor({ state: 'visible', timeout: 20_000 });
  await shot(page, 'selection-task-done');
  const record = JSON.parse(
    execFileSync(HANDOFF_BIN, ['-C', repo, 'show', '3', '--json'], { encoding: 'utf8', env: { ...process.env, XDG_CONFIG_HOME: path.join(repo, '.no-user-config') } }),
  );
  assert(record.prompt.includes(instruction), `the prompt carries the instruction: ${record.prompt}`);
  assert(record.prompt.includes('def greet(name):'), `the prompt carries the selected code: ${record.prompt}`);
  assert(record.origin?.path === 'greet.py' && record.origin.line === 0, `origin: ${JSON.stringify(record.origin)}`);
  await dismissToasts(page);
});

test('a reply from the view runs a second turn of the task on its branch', async ({ page, repo }) => {
  const env = { ...process.env, XDG_CONFIG_HOME: path.join(repo, '.no-user-config') };
  const show = () => JSON.parse(execFileSync(HANDOFF_BIN, ['-C', repo, 'show', '2', '--json'], { encoding: 'utf8', env }));
  await openHandoffView(page);
  await contextMenu(page, treeRow(page, 2), 'Reply to task');
  await answerQuickInput(page, 'reply to task #2', 'Notes for version 0.3');
  await shot(page, 'reply-input');
  await page.keyboard.press('Enter');
  const task = await until('task #2 done after its second turn', 120_000, async () => {
    const t = show();
    return t.state === 'done' && t.turns.length === 2 ? t : false;
  });
  assert(task.turns[1].prompt === 'Notes for version 0.3', `second turn: ${JSON.stringify(task.turns[1])}`);
  assert(git(repo, 'show', `${task.branch}:NOTES.md`) === 'Notes for version 0.3\n', 'NOTES.md on the branch after the reply');
  await until('task #2 done in the tree', 30_000, async () =>
    ((await treeRow(page, 2).getAttribute('aria-label')) ?? '').includes(', done:'),
  );
  await shot(page, 'reply-done');
  await dismissToasts(page);
});

test('a task removed in a terminal leaves the view, and one removed from the view keeps its branch', async ({ page, repo }) => {
  await openHandoffView(page);
  await treeRow(page, 3).waitFor({ state: 'visible', timeout: 20_000 });
  // `handoff rm` from a terminal: the server notices and tells the extension.
  execFileSync(HANDOFF_BIN, ['-C', repo, 'rm', '3'], { env: { ...process.env, XDG_CONFIG_HOME: path.join(repo, '.no-user-config') } });
  await treeRow(page, 3).waitFor({ state: 'detached', timeout: 30_000 });

  // "Remove task" from the view's context menu, answered "Remove" (branch kept).
  const branch = branches(repo, 'handoff/2-*');
  assert(branch.length === 1, `task #2's branch: ${branch.join(', ')}`);
  await contextMenu(page, treeRow(page, 2), 'Remove task');
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ state: 'visible', timeout: 10_000 });
  assert(((await dialog.textContent()) ?? '').includes('Remove task #2'), `dialog: ${await dialog.textContent()}`);
  await shot(page, 'remove-task-dialog');
  await dialog.getByRole('button', { name: 'Remove', exact: true }).click();
  await treeRow(page, 2).waitFor({ state: 'detached', timeout: 30_000 });
  const left = JSON.parse(
    execFileSync(HANDOFF_BIN, ['-C', repo, 'list', '--json'], { encoding: 'utf8', env: { ...process.env, XDG_CONFIG_HOME: path.join(repo, '.no-user-config') } }),
  );
  assert(JSON.stringify(left.map((t) => t.id)) === '[1]', `tasks left: ${left.map((t) => t.id)}`);
  assert(JSON.stringify(branches(repo, 'handoff/2-*')) === JSON.stringify(branch), 'the branch of #2 is kept');
  await shot(page, 'tasks-removed');
});

test('a review comment added in the thread UI of a hunk is sent to the agent, and its second turn shows', async ({ page, repo }) => {
  const before = taskIds(repo);
  await startFromPalette(page, VERSION_PROMPT, 1, ['versions']);
  const id = await until('the new task', 30_000, async () => taskIds(repo).find((t) => !before.includes(t)));
  log(`waiting for task #${id} to finish`);
  await until(`task #${id} done`, 180_000, async () => handoffJson(repo, 'show', String(id)).state === 'done');
  await dismissToasts(page);
  await openFile(page, 'version.py');
  await codeLens(page, `Accept (#${id})`).waitFor({ state: 'visible', timeout: 30_000 });

  // 1. In the editor: a comment on the hunk's line, with the native comment thread.
  await goToLine(page, 1);
  await addCommentInThread(page, 'use three numbers');
  const thread = commentThread(page, 'use three numbers');
  await thread.waitFor({ state: 'visible', timeout: 20_000 });
  await until('the thread to say the comment waits to be sent', 20_000, async () =>
    ((await thread.textContent()) ?? '').includes(`Handoff #${id} · 1 comment to send`),
  );
  await shot(page, 'comment-pending-inline');

  // The server's Quick Fix "Comment on this change (Handoff #N)…": the extension asks
  // for the text (it set initializationOptions.commentInput).
  await page.locator('.editor-group-container.active .view-lines .view-line', { hasText: 'VERSION' }).first().click();
  await goToLine(page, 1);
  await quickFix(page, `Comment on this change (Handoff #${id})`);
  await answerQuickInput(page, `comment on this change (Handoff #${id})`, 'keep the quotes');
  await page.keyboard.press('Enter');
  await until('the thread to show both comments', 20_000, async () => {
    const text = (await thread.textContent()) ?? '';
    return text.includes('keep the quotes') && text.includes(`Handoff #${id} · 2 comments to send`);
  });
  await shot(page, 'comment-from-quick-fix');

  // 2. In the diff editor (the task's context menu, "Show diff"): another comment on
  // the result side.
  await openHandoffView(page);
  await contextMenu(page, treeRow(page, id), 'Show diff');
  // Earlier tests' diff editors may still be in the group, hidden.
  const diff = page.locator('.editor-group-container.active .monaco-diff-editor').filter({ visible: true }).first();
  await diff.waitFor({ state: 'visible', timeout: 20_000 });
  await until('the result side to show version 0.2', 20_000, async () =>
    // The first: the threads' reply boxes are editors too.
    ((await diff.locator('.editor.modified .view-lines').first().textContent()) ?? '').includes('0.2'),
  );
  // The result side shows the hunk's thread too: a reply there adds to it.
  const diffThread = diff.locator('.editor.modified .review-widget', { hasText: 'use three numbers' }).first();
  await diffThread.waitFor({ state: 'visible', timeout: 30_000 });
  await addCommentInThread(page, 'and mention it in NOTES.md', diffThread);
  await until('the diff editor thread to count the three comments', 20_000, async () =>
    ((await diffThread.textContent()) ?? '').includes(`Handoff #${id} · 3 comments to send`),
  );
  const pending = handoffJson(repo, 'comment', String(id), '--list');
  assert(
    pending.length === 3 && pending.every((c) => c.file === 'version.py' && c.sent_in_turn === null),
    `the server keeps the comments as pending: ${JSON.stringify(pending)}`,
  );
  await until('the task view to count them', 20_000, async () =>
    ((await treeRow(page, id).locator('.label-description').textContent()) ?? '').includes('💬 3 to send'),
  );
  await shot(page, 'comment-pending-diff-editor');

  // 3. "Send comments" in the thread's title bar: the task's second turn runs.
  await diffThread.locator('.head .action-label[aria-label="Send comments"]').first().click();
  await until('the thread to say they were sent', 20_000, async () =>
    ((await diffThread.textContent()) ?? '').includes(`Handoff #${id} · sent to the agent`),
  );
  await until('the task view to count nothing to send', 20_000, async () =>
    !((await treeRow(page, id).locator('.label-description').textContent()) ?? '').includes('to send'),
  );
  await shot(page, 'comment-sent');
  const task = await until(`task #${id} done after its second turn`, 180_000, async () => {
    const t = handoffJson(repo, 'show', String(id));
    return t.state === 'done' && t.turns.length === 2 ? t : false;
  });
  const prompt = task.turns[1].prompt;
  assert(
    prompt.includes('Review comments on your changes (3)') &&
      ['use three numbers', 'keep the quotes', 'and mention it in NOTES.md'].every((c) => prompt.includes(c)),
    `the second turn's prompt quotes the comments:\n${prompt}`,
  );

  // 4. Back in version.py: the second turn's hunk, the sent threads gone.
  await page.keyboard.press('Control+W');
  await page.locator('.tabs-container .tab', { hasText: 'version.py' }).first().click();
  await until('the second turn\'s hunk in the editor', 60_000, async () => {
    const preview = await page.evaluate(() =>
      [...document.querySelectorAll('.editor-group-container.active .view-lines span')]
        .map((s) => `${s.textContent} ${getComputedStyle(s, '::after').content}`)
        .find((t) => t.includes('⟶')),
    );
    return preview && preview.includes('0.2.0');
  });
  await codeLens(page, `Accept (#${id})`).waitFor({ state: 'visible', timeout: 30_000 });
  await until('the sent threads to go', 20_000, async () =>
    (await page.locator('.editor-group-container.active .review-widget').count()) === 0,
  );
  await shot(page, 'comment-second-turn');
  await dismissToasts(page);
});

test('two attempts started from the palette show as a group, and "Keep this one" removes the other', async ({ page, repo }) => {
  const before = taskIds(repo);
  await startFromPalette(page, 'Summarise the changes of version 0.2', 2, ['notes', 'summary']);
  const ids = await until('the two attempts', 30_000, async () => {
    const added = taskIds(repo).filter((t) => !before.includes(t));
    return added.length === 2 ? added.sort((a, b) => a - b) : false;
  });
  const records = ids.map((i) => handoffJson(repo, 'show', String(i)));
  assert(records.every((t) => t.group === ids[0]), `both in group g${ids[0]}: ${records.map((t) => t.group)}`);
  assert(JSON.stringify(records.map((t) => t.agent)) === '["notes","summary"]', `agents in turn: ${records.map((t) => t.agent)}`);

  await openHandoffView(page);
  const group = page.locator(`.part.sidebar .monaco-list-row[aria-label^="Handoff group ${ids[0]}:"]`).first();
  await group.waitFor({ state: 'visible', timeout: 30_000 });
  assert(
    ((await group.getAttribute('aria-label')) ?? '').includes(`g${ids[0]}: 2 attempts — Summarise the changes of version 0.2`),
    `the group row: ${await group.getAttribute('aria-label')}`,
  );
  for (const i of ids) {
    await until(`attempt #${i} done in the tree`, 180_000, async () =>
      ((await treeRow(page, i).getAttribute('aria-label')) ?? '').includes(', done:'),
    );
  }
  const descriptions = await Promise.all(ids.map((i) => treeRow(page, i).locator('.label-description').textContent()));
  for (const d of descriptions) {
    assert(/^done \d+s · 1 file · \+\d+ −\d+$/.test(d ?? ''), `an attempt compares state, files and lines: ${d}`);
  }
  const labels = await Promise.all(ids.map((i) => treeRow(page, i).locator('.label-name').textContent()));
  assert(labels[0]?.includes('notes') && labels[1]?.includes('summary'), `attempt rows name their agents: ${labels}`);
  await shot(page, 'attempts-group');

  // Keep the second: the first is removed, its branch stays.
  const branch = records[0].branch;
  await contextMenu(page, treeRow(page, ids[1]), 'Keep this one');
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ state: 'visible', timeout: 10_000 });
  assert(((await dialog.textContent()) ?? '').includes(`Keep task #${ids[1]}`), `dialog: ${await dialog.textContent()}`);
  await shot(page, 'attempts-keep-dialog');
  await dialog.getByRole('button', { name: 'Remove the Others' }).click();
  await treeRow(page, ids[0]).waitFor({ state: 'detached', timeout: 30_000 });
  await group.waitFor({ state: 'detached', timeout: 30_000 });
  await treeRow(page, ids[1]).waitFor({ state: 'visible', timeout: 10_000 });
  const left = taskIds(repo);
  assert(left.includes(ids[1]) && !left.includes(ids[0]), `tasks left: ${left}`);
  assert(branches(repo, branch).length === 1, `the branch of #${ids[0]} stays`);
  await shot(page, 'attempts-kept');
  await dismissToasts(page);
});

test('the language server is restarted when it crashes', async ({ page, state }) => {
  const before = serverPids(state);
  assert(before.length === 1, `one handoff lsp process for this VS Code: ${before.join(', ')}`);
  process.kill(before[0], 'SIGKILL');
  log(`killed handoff lsp (pid ${before[0]})`);
  const after = await until('a new handoff lsp process', 30_000, async () => {
    const pids = serverPids(state).filter((p) => p !== before[0]);
    return pids.length === 1 ? pids : false;
  });
  log(`handoff lsp restarted (pid ${after[0]})`);
  // The new server answers: the task list is reloaded from it and the log opens.
  // A palette command typed while the client restarts was once lost (the task picker
  // never opened, the tasks view had the focus; CI of 2c4ef21): what this test asks is
  // whether the new server answers, so the command gets three tries, each said.
  for (let attempt = 1; ; attempt++) {
    await runCommand(page, 'Handoff: Show log');
    try {
      await answerQuickInput(page, 'Show the log of which task?', '#1', 10_000);
      break;
    } catch (e) {
      await shot(page, `show-log-try-${attempt}`);
      if (attempt === 3) {
        throw e;
      }
      log(`Show log, try ${attempt}: ${e.message}; again`);
    }
  }
  await until('task #1 in the picker', 10_000, async () =>
    ((await page.locator('.quick-input-widget .monaco-list-row.focused').textContent()) ?? '').includes('#1'),
  );
  await page.keyboard.press('Enter');
  await page.locator('.tabs-container .tab.active', { hasText: 'task-1.log' }).waitFor({ state: 'visible', timeout: 30_000 });
  await until('the log to show the prompt the agent got', 20_000, async () =>
    ((await editorText(page)) ?? '').includes('TODO: greet loudly'),
  );
  await shot(page, 'log-after-restart');
});

test('a handoff.serverPath that does not work is explained, and fixing it starts the server', async ({ page, state }) => {
  const settingsFile = path.join(state, 'user-data', 'User', 'settings.json');
  const settings = JSON.parse(fs.readFileSync(settingsFile, 'utf8'));
  const before = serverPids(state);
  await editUserSettings(page, { ...settings, 'handoff.serverPath': '/nonexistent/handoff' });
  const error = toast(page, 'does not exist or is not executable');
  await error.waitFor({ state: 'visible', timeout: 60_000 });
  assert(await error.locator('.monaco-button', { hasText: 'Open Settings' }).isVisible(), 'the message offers "Open Settings"');
  assert(await error.locator('.monaco-button', { hasText: 'Retry' }).isVisible(), 'the message offers "Retry"');
  await until('the old server to stop', 20_000, async () => serverPids(state).length === 0);
  await until('the status bar to say the server is down', 20_000, async () =>
    (await statusCounts(page)) === undefined,
  );
  await shot(page, 'server-path-wrong');

  await editUserSettings(page, settings);
  await until('a new handoff lsp process', 60_000, async () => {
    const pids = serverPids(state);
    return pids.length === 1 && !before.includes(pids[0]);
  });
  await dismissToasts(page);
  await until('the status bar to count the tasks again', 30_000, async () => (await statusCounts(page)) !== undefined);
});

/** VS Code's modal dialog that shows `text`. */
function dialog(page, text) {
  return page.locator('.monaco-dialog-box', { hasText: text }).first();
}

test('a changed repository configuration is asked about in a modal, and once trusted its new profile runs with its env', async ({ page, repo }) => {
  // Someone changes the configuration (a `git pull`): a new profile passes one of the
  // user's variables to its agent. It is not trusted as it is now.
  const config = path.join(repo, '.handoff.toml');
  fs.appendFileSync(
    config,
    String.raw`
[agents.envcheck]
image = "${AGENT_IMAGE}"
memory = "256m"
env = ["HANDOFF_E2E_PASSED"]
command = ["sh", "-c", "printf '%s\\n' \"$HANDOFF_E2E_PASSED\" > PASSED.md"]
`,
  );
  await dismissToasts(page);
  await openFile(page, '.handoff.toml');
  const modal = dialog(page, 'Do you trust the Handoff configuration of "project"?');
  await modal.waitFor({ state: 'visible', timeout: 30_000 });
  const detail = (await modal.locator('.dialog-message-detail').textContent()) ?? '';
  assert(detail.includes('• agents.envcheck (a new profile)'), `the dialog lists the new profile as ignored: ${detail}`);
  assert(detail.includes('asks again'), `the dialog says changes ask again: ${detail}`);
  await shot(page, 'trust-modal');
  await modal.locator('.dialog-buttons .monaco-button', { hasText: 'Trust' }).click();
  await toast(page, 'trusted the configuration of').waitFor({ state: 'visible', timeout: 30_000 });
  const said = (await toast(page, 'trusted the configuration of').textContent()) ?? '';
  assert(said.includes('agents.envcheck'), `the message says the new profile applies now: ${said}`);
  await dismissToasts(page);

  // The trusted profile runs, with the variable it passes.
  const before = branches(repo, 'handoff/*');
  await startFromPalette(page, 'Say what you were given', 1, ['envcheck']);
  const branch = await until('the envcheck task to have a branch', 30_000, async () =>
    branches(repo, 'handoff/*').find((b) => !before.includes(b)),
  );
  const passed = await until(`PASSED.md on ${branch}`, 180_000, async () => {
    try {
      return git(repo, 'show', `${branch}:PASSED.md`);
    } catch {
      return false;
    }
  }, 1000);
  assertEqual(passed, `${PASSED_VALUE}\n`, 'what the trusted profile was given');

  // Another pull changes it again and brings a new file: opening the file asks again
  // (VS Code keeps a closed file's document a while, so a new one). "Cancel" in the
  // dialog is "Not now"; the palette command trusts.
  fs.appendFileSync(config, '# changed again\n');
  fs.writeFileSync(path.join(repo, 'pulled.py'), 'print("pulled")\n');
  await dismissToasts(page);
  await openFile(page, 'pulled.py');
  await modal.waitFor({ state: 'visible', timeout: 30_000 });
  await modal.locator('.dialog-buttons .monaco-button', { hasText: 'Cancel' }).click();
  await modal.waitFor({ state: 'detached', timeout: 10_000 });
  await runCommand(page, "Handoff: Trust this repository's configuration");
  await toast(page, 'trusted the configuration of').waitFor({ state: 'visible', timeout: 30_000 });
  await shot(page, 'trusted-from-palette');
});

// --- the runner ------------------------------------------------------------------------

async function collectLogs(state) {
  const copy = (from, name) => {
    try {
      fs.copyFileSync(from, path.join(ARTIFACTS, name));
    } catch {
      // Not there.
    }
  };
  copy(path.join(state, 'xdg-state', 'handoff', 'lsp.log'), 'handoff-lsp.log');
  const logs = path.join(state, 'user-data', 'logs');
  const walk = (dir) =>
    fs.existsSync(dir)
      ? fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]))
      : [];
  for (const f of walk(logs)) {
    if (/exthost\.log$|Handoff\.log$|remoteagent\.log$/.test(f)) {
      copy(f, `vscode-${path.basename(path.dirname(f))}-${path.basename(f)}`);
    }
  }
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'handoff-vscode-e2e-'));
  const repo = path.join(state, 'project');
  let codeServer;
  let browser;
  let passed = 0;
  let failed = 0;
  try {
    makeRepo(repo, state);
    prepareState(state);
    log('installing the extension into code-server');
    installExtension(state);
    log('starting code-server');
    codeServer = await startCodeServer(state, repo);
    log(`code-server at ${codeServer.url}`);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage',
      ],
      timeout: 120_000,
    });
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.setDefaultTimeout(30_000);
    await page.goto(`${codeServer.url}/?folder=${encodeURIComponent(repo)}`, { timeout: 120_000 });
    await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 120_000 });
    await page
      .locator('.statusbar-item', { hasText: 'Handoff' })
      .first()
      .waitFor({ state: 'visible', timeout: 120_000 });
    log('the workbench is up and the extension active');
    await shot(page, 'workbench');

    // E2E_ONLY=substring runs only the matching tests (for debugging; later tests
    // expect the tasks of earlier ones).
    for (const t of tests.filter((t) => !process.env.E2E_ONLY || t.name.includes(process.env.E2E_ONLY))) {
      const t0 = Date.now();
      log(`TEST ${t.name}`);
      try {
        await t.fn({ page, repo, state });
        passed++;
        log(`PASS ${t.name} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
      } catch (e) {
        failed++;
        log(`FAIL ${t.name}: ${e.stack ?? e}`);
        await shot(page, 'failure').catch(() => {});
        // A failed test must not leave a menu or input open for the next one.
        await page.keyboard.press('Escape').catch(() => {});
      }
    }
  } catch (e) {
    failed = Math.max(1, tests.length - passed);
    log(`SETUP FAILED: ${e.stack ?? e}`);
  } finally {
    await collectLogs(state).catch(() => {});
    await browser?.close().catch(() => {});
    if (codeServer) {
      const group = -codeServer.child.pid;
      const signal = (sig) => {
        try {
          process.kill(group, sig);
        } catch {
          // The group is gone.
        }
      };
      signal('SIGTERM');
      await sleep(1000);
      signal('SIGKILL');
    }
    // A server whose extension host was killed may outlive it: end the ones this test started.
    for (const pid of serverPids(state)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    if (failed === 0 || !process.env.KEEP_STATE) {
      fs.rmSync(state, { recursive: true, force: true, maxRetries: 3 });
    } else {
      log(`state kept in ${state}`);
    }
  }
  const setup = Number(process.env.E2E_SETUP_SECONDS ?? 0);
  log(`done: setup ${setup}s + browser test ${((Date.now() - started) / 1000).toFixed(0)}s; screenshots and logs in ${ARTIFACTS}`);
  console.log(`vscode e2e: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  console.log('vscode e2e: 0 passed, 1 failed');
  process.exit(1);
});
