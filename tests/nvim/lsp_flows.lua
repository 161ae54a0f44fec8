-- More user flows from a real headless Neovim against `handoff lsp`: the selection
-- action with an instruction picked from window/showMessageRequest, progress and
-- CodeLens while a task runs, a task started from the CLI showing up, "Open diff",
-- "Accept all changes from task #N", a follow-up with handoff.reply, and removing tasks
-- (handoff rm from the CLI, handoff.removeTask). Run by server/tests/nvim_e2e.rs with
-- HANDOFF_BIN and REPO (greet.py; the default agent sleeps 2 s, then edits it).

local bin, repo = os.getenv("HANDOFF_BIN"), os.getenv("REPO")
assert(bin and repo, "HANDOFF_BIN and REPO must be set")

local function check(cond, msg, ...)
  if not cond then error(string.format(msg, ...), 2) end
end
local function wait(ms, what, cond)
  check(vim.wait(ms, cond, 50), "timed out after %d ms waiting for %s", ms, what)
end

local changed, published, progress, asked, shown_docs = {}, false, {}, {}, {}
vim.lsp.handlers["handoff/taskChanged"] = function(_, r) changed[#changed + 1] = r.task end
local removed = {}
vim.lsp.handlers["handoff/taskRemoved"] = function(_, r) removed[#removed + 1] = r end
vim.lsp.handlers["$/progress"] = function(_, r) progress[#progress + 1] = r.value end
vim.lsp.handlers["window/showMessageRequest"] = function(_, r)
  asked[#asked + 1] = r
  return { title = "Add tests" }
end
vim.lsp.handlers["window/showDocument"] = function(_, r)
  shown_docs[#shown_docs + 1] = r.uri
  return { success = true }
end
local default_publish = vim.lsp.handlers["textDocument/publishDiagnostics"]
vim.lsp.handlers["textDocument/publishDiagnostics"] = function(...)
  published = true
  return default_publish(...)
end

vim.cmd.edit(repo .. "/greet.py")
local client_id = vim.lsp.start({
  name = "handoff",
  cmd = { bin, "lsp" },
  root_dir = repo,
  -- This script listens to handoff/taskChanged, sent only to clients that ask.
  init_options = { handoffNotifications = true },
})
local client = vim.lsp.get_client_by_id(client_id)
wait(15000, "the server to open the document", function() return published end)

local function request(method, params)
  local resp, err = client:request_sync(method, params, 20000, 0)
  check(resp, "%s: no response (%s)", method, tostring(err))
  check(not resp.err, "%s failed: %s", method, vim.inspect(resp.err))
  return resp.result
end
local uri = vim.uri_from_bufnr(0)
local function task_state(id)
  local last
  for _, t in ipairs(changed) do if t.id == id then last = t end end
  return last
end

-- 1. Selection → the instruction is asked with showMessageRequest → a task starts.
local sel = { start = { line = 0, character = 0 }, ["end"] = { line = 2, character = 27 } }
local actions = request("textDocument/codeAction", {
  textDocument = { uri = uri }, range = sel, context = { diagnostics = {} },
})
local delegate
for _, a in ipairs(actions) do
  if a.title == "Delegate selection to background agent…" then delegate = a end
end
check(delegate, "no selection action among %s", vim.inspect(vim.tbl_map(function(a) return a.title end, actions)))
local result = request("workspace/executeCommand", delegate.command)
check(result == nil or result == vim.NIL, "selection delegate answers at once with null, got %s", vim.inspect(result))
wait(10000, "the server to ask for an instruction", function() return #asked == 1 end)
local titles = vim.tbl_map(function(a) return a.title end, asked[1].actions)
check(vim.tbl_contains(titles, "Add tests") and vim.tbl_contains(titles, "Fix"), "offered: %s", vim.inspect(titles))

-- 2. While it runs: progress and a CodeLens on the selection's first line.
wait(15000, "task #1 running", function()
  local t = task_state(1)
  return t and t.state == "running"
end)
local lenses = request("textDocument/codeLens", { textDocument = { uri = uri } })
local running_lens
for _, l in ipairs(lenses) do
  if l.command and l.command.title:find("Handoff #1 running", 1, true) then running_lens = l end
end
check(running_lens and running_lens.range.start.line == 0, "lenses while running: %s", vim.inspect(lenses))
local has_cancel = false
for _, l in ipairs(lenses) do
  if l.command and l.command.title == "Cancel" then has_cancel = true end
end
check(has_cancel, "no Cancel lens: %s", vim.inspect(lenses))

-- 3. A task started from the command line shows up in the editor too.
local out = vim.fn.system({ bin, "-C", repo, "run", "echo from the cli > cli.txt" , "--agent", "shell" })
check(vim.v.shell_error == 0, "handoff run from the CLI failed: %s", out)
wait(30000, "the CLI task (#2) to be announced and finish", function()
  local t = task_state(2)
  return t and t.state == "done"
end)

-- 4. Task #1 ends: progress ends, the prompt carried the instruction and the selection.
wait(30000, "task #1 to finish", function()
  local t = task_state(1)
  return t and t.state == "done"
end)
local kinds = vim.tbl_map(function(v) return v.kind end, progress)
check(vim.tbl_contains(kinds, "begin") and vim.tbl_contains(kinds, "end"), "progress kinds: %s", vim.inspect(kinds))
local prompt = task_state(1).prompt
check(prompt:find("Add tests that cover the selected code", 1, true) and prompt:find("def greet", 1, true)
  and prompt:find("greet.py", 1, true), "prompt: %s", prompt)

-- 5. "Accept all changes from task #1" from the hunk, and "Open diff".
wait(10000, "hunk diagnostics", function()
  return #vim.tbl_filter(function(d) return d.source == "handoff" end, vim.diagnostic.get(0)) > 0
end)
local hunk_line = vim.tbl_filter(function(d) return d.source == "handoff" end, vim.diagnostic.get(0))[1].lnum
actions = request("textDocument/codeAction", {
  textDocument = { uri = uri },
  range = { start = { line = hunk_line, character = 0 }, ["end"] = { line = hunk_line, character = 0 } },
  context = { diagnostics = {} },
})
local accept_all
for _, a in ipairs(actions) do
  if a.title == "Accept all changes from task #1" then accept_all = a end
end
check(accept_all, "no Accept all: %s", vim.inspect(vim.tbl_map(function(a) return a.title end, actions)))
request("workspace/executeCommand", accept_all.command)
-- The command answers at once; the edit follows as workspace/applyEdit.
wait(5000, "the buffer to take every change", function()
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  return text:find('return ("hello, " + name).upper()', 1, true) and not text:find("TODO", 1, true)
end)
local diff = request("workspace/executeCommand", { command = "handoff.showDiff", arguments = { { task = 1 } } })
check(diff and diff.path and vim.fn.filereadable(diff.path) == 1, "showDiff: %s", vim.inspect(diff))
local diff_text = table.concat(vim.fn.readfile(diff.path), "\n")
check(diff_text:find("+    return (\"hello, \" + name).upper()", 1, true), "diff file: %s", diff_text)
check(#shown_docs == 1, "the client was asked to show the diff: %s", vim.inspect(shown_docs))

-- 6. A follow-up: handoff.reply starts task #1's second turn on the same branch; the
-- editor hears it leave `done` and come back with two turns. An empty reply is refused.
local empty = client:request_sync("workspace/executeCommand",
  { command = "handoff.reply", arguments = { { task = 1, message = "  " } } }, 20000, 0)
check(empty and empty.err and empty.err.message:find("the reply is empty", 1, true),
  "empty reply: %s", vim.inspect(empty))
local before = #changed
local replied = request("workspace/executeCommand",
  { command = "handoff.reply", arguments = { { task = 1, message = "Also cover farewell" } } })
check(replied and replied.id == 1 and replied.reply == "Also cover farewell" and replied.state ~= "done",
  "reply answer: %s", vim.inspect(replied))
wait(60000, "task #1's second turn to end", function()
  local t = task_state(1)
  return #changed > before and t.state == "done" and #t.turns == 2
end)
local requeued = false
for i = before + 1, #changed do
  if changed[i].id == 1 and changed[i].state ~= "done" then requeued = true end
end
check(requeued, "no taskChanged for the new turn")
check(task_state(1).turns[2].prompt == "Also cover farewell", "turns: %s", vim.inspect(task_state(1).turns))

-- 7. Removing tasks: one with the CLI (the editor is told), one with handoff.removeTask
-- (its branch too); their hunks leave the editor.
local rm = vim.system({ bin, "-C", repo, "rm", "2" }, { text = true }):wait(60000)
check(rm.code == 0, "handoff rm 2: %s", rm.stderr)
wait(10000, "taskRemoved for #2", function() return #removed == 1 end)
check(removed[1].task == 2 and vim.fs.normalize(removed[1].repository) == vim.fs.normalize(repo),
  "removed: %s", vim.inspect(removed))
local gone = request("workspace/executeCommand",
  { command = "handoff.removeTask", arguments = { { task = 1, deleteBranch = true } } })
check(gone.removed == 1 and gone.branchDeleted == true, "removeTask: %s", vim.inspect(gone))
wait(10000, "taskRemoved for #1", function() return #removed == 2 and removed[2].task == 1 end)
local branches = vim.system({ "git", "-C", repo, "branch", "--list", gone.branch }, { text = true }):wait()
check(vim.trim(branches.stdout) == "", "the branch is still there: %s", branches.stdout)
local left = request("workspace/executeCommand", { command = "handoff.listTasks", arguments = {} })
check(#left == 0, "tasks left: %s", vim.inspect(left))
wait(10000, "task #1's hunks to leave", function()
  return #vim.tbl_filter(function(d) return d.source == "handoff" end, vim.diagnostic.get(0)) == 0
end)

client:stop()
print("lsp_flows: ok")
