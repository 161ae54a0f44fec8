-- End-to-end: a real headless Neovim drives `handoff lsp` on a real repository.
-- Run by server/tests/nvim_e2e.rs as `nvim --headless --clean -l lsp_e2e.lua`, with
--   HANDOFF_BIN  the handoff binary
--   REPO         the repository (greet.py with a TODO, a .handoff.toml whose default
--                agent edits greet.py deterministically)
--   SCENARIO     accept | shifted | conflict
-- Any failed check raises an error: nvim exits non-zero and prints it.

local bin, repo, scenario = os.getenv("HANDOFF_BIN"), os.getenv("REPO"), os.getenv("SCENARIO")
assert(bin and repo and scenario, "HANDOFF_BIN, REPO and SCENARIO must be set")

local function check(cond, msg, ...)
  if not cond then error(string.format(msg, ...), 2) end
end
local function lines() return vim.api.nvim_buf_get_lines(0, 0, -1, false) end
local function wait(ms, what, cond)
  check(vim.wait(ms, cond, 50), "timed out after %d ms waiting for %s", ms, what)
end

local messages, changed, published = {}, {}, false
local default_publish = vim.lsp.handlers["textDocument/publishDiagnostics"]
vim.lsp.handlers["textDocument/publishDiagnostics"] = function(...)
  published = true
  return default_publish(...)
end
vim.lsp.handlers["window/showMessage"] = function(_, result) table.insert(messages, result.message) end
vim.lsp.handlers["handoff/taskChanged"] = function(_, result) changed[#changed + 1] = result.task end

vim.cmd.edit(repo .. "/greet.py")
local client_id = vim.lsp.start({
  name = "handoff",
  cmd = { bin, "lsp" },
  root_dir = repo,
  -- This script listens to handoff/taskChanged, sent only to clients that ask.
  init_options = { handoffNotifications = true },
})
check(client_id, "vim.lsp.start failed")
local client = vim.lsp.get_client_by_id(client_id)
wait(10000, "the client to attach", function() return vim.lsp.buf_is_attached(0, client_id) end)
-- The server answers didOpen with the document's (empty) hunk diagnostics: from then
-- on it knows the buffer.
wait(10000, "the server to open the document", function() return published end)

local function request(method, params)
  local resp, err = client:request_sync(method, params, 20000, 0)
  check(resp, "%s: no response (%s)", method, tostring(err))
  return resp.result, resp.err
end

local function actions_at(line)
  local pos = { line = line, character = 0 }
  return request("textDocument/codeAction", {
    textDocument = { uri = vim.uri_from_bufnr(0) },
    range = { start = pos, ["end"] = pos },
    context = { diagnostics = {} },
  }) or {}
end

local function find(actions, prefix)
  for _, a in ipairs(actions) do
    if a.title:sub(1, #prefix) == prefix then return a end
  end
  local titles = vim.tbl_map(function(a) return a.title end, actions)
  error(("no code action %q among: %s"):format(prefix, vim.inspect(titles)), 2)
end

local function run(action)
  if not action.command then action = request("codeAction/resolve", action) end
  check(action.command, "action %q has no command after resolve", action.title)
  return request("workspace/executeCommand", action.command)
end

-- 1. The TODO code action starts a task.
local original = lines()
local todo_line = 1 -- 0-based: "    # TODO: greet loudly"
check(original[todo_line + 1]:find("TODO", 1, true), "fixture: no TODO on line 2: %s", vim.inspect(original))
local task = run(find(actions_at(todo_line), "Delegate TODO to background agent"))
check(task and task.id == 1, "delegate returned %s", vim.inspect(task))
check(task.origin and task.origin.path == "greet.py" and task.origin.line == todo_line,
  "origin: %s", vim.inspect(task.origin))

-- 2. It runs in Docker and finishes; the client hears about it.
wait(60000, "task #1 to finish", function()
  for _, t in ipairs(changed) do if t.id == 1 and t.state == "done" then return true end end
  return false
end)
local log = vim.fn.system({ bin, "-C", repo, "logs", "1" })
check(log:find("TODO: greet loudly", 1, true) and log:find("greet.py", 1, true),
  "the prompt (echoed by the agent) lacks the TODO text or path:\n%s", log)

-- 3. The result shows inline as a Hint diagnostic on the hunk.
local function hunks()
  return vim.tbl_filter(function(d) return d.source == "handoff" end, vim.diagnostic.get(0))
end
wait(10000, "hunk diagnostics", function() return #hunks() > 0 end)
local d = hunks()[1]
check(d.severity == vim.diagnostic.severity.HINT, "severity %s", d.severity)
check(d.lnum == todo_line, "hunk diagnostic on line %d, expected %d", d.lnum, todo_line)
-- The first line names the task and the change (all a one-line view shows); the
-- change follows as -/+ lines, and in full in `data`.
local first_line = vim.split(d.message, "\n", { plain = true })[1]
check(first_line:find("Handoff #1 (", 1, true) and first_line:find("replaces 2 lines with 1", 1, true),
  "diagnostic's first line: %s", first_line)
check(d.message:find('+     return ("hello, " + name).upper()', 1, true), "diagnostic message: %s", d.message)
local data = d.user_data and d.user_data.lsp and d.user_data.lsp.data
check(data and data.task == 1 and data.conflict == false and #data.oldLines == 2 and #data.newLines == 1,
  "diagnostic data: %s", vim.inspect(data))

local expected_after = {
  "def greet(name):",
  '    return ("hello, " + name).upper()',
  "",
  'print(greet("world"))',
}

if scenario == "accept" then
  -- The command answers at once; the edit follows as workspace/applyEdit.
  run(find(actions_at(todo_line), "Accept change (Handoff #1)"))
  wait(5000, "the buffer to take the change", function() return vim.deep_equal(lines(), expected_after) end)
  wait(5000, "the hunk diagnostic to go", function() return #hunks() == 0 end)
elseif scenario == "shifted" then
  -- The user typed two lines above while the agent worked.
  vim.api.nvim_buf_set_lines(0, 0, 0, false, { "import sys", "" })
  wait(5000, "the hunk to move down", function()
    local h = hunks()[1]
    return h and h.lnum == todo_line + 2
  end)
  run(find(actions_at(todo_line + 2), "Accept change (Handoff #1)"))
  local want = vim.list_extend({ "import sys", "" }, expected_after)
  wait(5000, "the buffer to take the change", function() return vim.deep_equal(lines(), want) end)
elseif scenario == "conflict" then
  -- The user rewrote the very line the agent changed.
  vim.api.nvim_buf_set_lines(0, 2, 3, false, { '    return "hi, " + name' })
  local before = lines()
  wait(5000, "the conflict to show", function()
    local h = hunks()[1]
    return h and h.message:find("conflict", 1, true)
  end)
  local acts = actions_at(todo_line)
  for _, a in ipairs(acts) do
    check(not a.title:find("Accept change", 1, true), "a conflicting hunk must not offer Accept")
  end
  -- A stale click (lens or old menu) on Accept is refused with a message.
  local _, err = request("workspace/executeCommand", {
    command = "handoff.accept",
    arguments = { { task = 1, uri = vim.uri_from_bufnr(0), hunk = d.user_data and d.user_data.lsp and d.user_data.lsp.data and d.user_data.lsp.data.hunk or 0 } },
  })
  check(err and err.message:find("not applied", 1, true), "accept of a conflict: %s", vim.inspect(err))
  check(vim.deep_equal(lines(), before), "the user's edit was overwritten: %s", vim.inspect(lines()))
  -- The message is a notification: it is handled on a later turn of the event loop.
  local seen = ""
  vim.wait(5000, function()
    seen = table.concat(messages, "\n")
    return seen:find("you edited the lines it changes", 1, true) ~= nil
  end, 50)
  check(seen:find("you edited the lines it changes", 1, true), "no clear message; got: %s", seen)
  -- Rejecting removes it.
  run(find(actions_at(todo_line), "Reject change (Handoff #1)"))
  wait(5000, "the rejected hunk to go", function() return #hunks() == 0 end)
else
  error("unknown SCENARIO " .. scenario)
end

-- 4. The branch is real and holds the agent's change, whatever happened in the buffer.
local branch = task.branch
local shown = vim.fn.system({ "git", "-C", repo, "show", branch .. ":greet.py" })
check(vim.v.shell_error == 0 and shown:find(".upper()", 1, true), "branch %s: %s", branch, shown)

client:stop()
print("lsp_e2e " .. scenario .. ": ok")
