-- Bad input from a real headless Neovim: each case gets a clear message and the
-- server keeps serving. Run by server/tests/nvim_e2e.rs with HANDOFF_BIN, REPO,
-- OUTSIDE (a folder outside any repository) and SCENARIO (errors | docker_down).

local bin, repo, outside, scenario =
  os.getenv("HANDOFF_BIN"), os.getenv("REPO"), os.getenv("OUTSIDE"), os.getenv("SCENARIO")
assert(bin and repo and outside and scenario, "HANDOFF_BIN, REPO, OUTSIDE, SCENARIO must be set")

local function check(cond, msg, ...)
  if not cond then error(string.format(msg, ...), 2) end
end
local function wait(ms, what, cond)
  check(vim.wait(ms, cond, 50), "timed out after %d ms waiting for %s", ms, what)
end

local messages, changed, published = {}, {}, {}
vim.lsp.handlers["window/showMessage"] = function(_, r) table.insert(messages, r.message) end
vim.lsp.handlers["handoff/taskChanged"] = function(_, r) changed[#changed + 1] = r.task end
local default_publish = vim.lsp.handlers["textDocument/publishDiagnostics"]
vim.lsp.handlers["textDocument/publishDiagnostics"] = function(err, result, ctx)
  published[result.uri] = true
  return default_publish(err, result, ctx)
end

vim.cmd.edit(repo .. "/greet.py")
local main_buf = vim.api.nvim_get_current_buf()
local client_id = vim.lsp.start({
  name = "handoff",
  cmd = { bin, "lsp" },
  root_dir = repo,
  -- This script listens to handoff/taskChanged, sent only to clients that ask.
  init_options = { handoffNotifications = true },
})
local client = vim.lsp.get_client_by_id(client_id)

--- Opens `buf` in the server (attaching it) and waits until the server knows it.
local function open(buf)
  vim.lsp.buf_attach_client(buf, client_id)
  local uri = vim.uri_from_bufnr(buf)
  wait(15000, "the server to open " .. uri, function() return published[uri] end)
end
open(main_buf)

local function request(method, params, buf)
  local resp, err = client:request_sync(method, params, 20000, buf or 0)
  check(resp, "%s: no response (%s)", method, tostring(err))
  return resp.result, resp.err
end

local function actions_at(buf, line)
  local pos = { line = line, character = 0 }
  return request("textDocument/codeAction", {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    range = { start = pos, ["end"] = pos },
    context = { diagnostics = {} },
  }, buf) or {}
end

local function find(actions, prefix)
  for _, a in ipairs(actions) do
    if a.title:sub(1, #prefix) == prefix then return a end
  end
  error(("no code action %q among %s"):format(prefix, vim.inspect(vim.tbl_map(function(a) return a.title end, actions))), 2)
end

--- Runs an action's command; returns (result, error).
local function run(action, buf)
  if not action.command then
    local resolved, err = request("codeAction/resolve", action, buf)
    if err then return nil, err end
    action = resolved
  end
  return request("workspace/executeCommand", action.command, buf)
end

local function expect_error(err, needle, what)
  check(err and err.message and err.message:find(needle, 1, true),
    "%s: expected an error containing %q, got %s", what, needle, vim.inspect(err))
  -- Notifications are handled on the next loop turn: wait for the message to arrive.
  local shown = ""
  vim.wait(5000, function()
    shown = table.concat(messages, "\n")
    return shown:find(needle, 1, true) ~= nil
  end, 50)
  check(shown:find(needle, 1, true), "%s: the user was not shown %q; messages: %s", what, needle, shown)
end

local function alive()
  local tasks, err = request("workspace/executeCommand", { command = "handoff.listTasks", arguments = { vim.empty_dict() } })
  check(type(tasks) == "table", "the server stopped answering: %s %s", vim.inspect(tasks), vim.inspect(err))
end

if scenario == "docker_down" then
  local task, err = run(find(actions_at(main_buf, 1), "Delegate TODO to background agent"))
  check(not err and task and task.state == "queued", "delegate without Docker: %s %s", vim.inspect(task), vim.inspect(err))
  wait(5000, "a warning about Docker", function()
    return table.concat(messages, "\n"):find("nonexistent/docker.sock", 1, true) ~= nil
  end)
  local shown = table.concat(messages, "\n")
  check(shown:find("queued", 1, true), "the warning should say the task waits: %s", shown)
  alive()
  client:stop()
  print("lsp_errors docker_down: ok")
  return
end

-- 1. A file outside any git repository.
vim.cmd.edit(outside .. "/notes.py")
local notes = vim.api.nvim_get_current_buf()
open(notes)
local _, err = run(find(actions_at(notes, 0), "Delegate TODO to background agent"), notes)
expect_error(err, "not inside a git repository", "file outside a repository")

-- 2. Unsaved buffers: a new file never written (Neovim's case), and a buffer that is
-- not a file at all (an `untitled:` document, VS Code's case).
vim.cmd.edit(repo .. "/new_file.py")
local new_file = vim.api.nvim_get_current_buf()
vim.api.nvim_buf_set_lines(new_file, 0, -1, false, { "# TODO: write me" })
open(new_file)
_, err = run(find(actions_at(new_file, 0), "Delegate TODO to background agent"), new_file)
expect_error(err, "is not saved yet", "new unsaved file")
local scratch = vim.api.nvim_create_buf(true, false)
vim.api.nvim_buf_set_name(scratch, "untitled://Untitled-1")
vim.bo[scratch].filetype = "python"
vim.api.nvim_buf_set_lines(scratch, 0, -1, false, { "# TODO: write me" })
open(scratch)
_, err = run(find(actions_at(scratch, 0), "Delegate TODO to background agent"), scratch)
expect_error(err, "not saved to a file", "untitled buffer")

-- 3. A stale action: the TODO was deleted after the action was offered.
vim.api.nvim_set_current_buf(main_buf)
local stale = find(actions_at(main_buf, 1), "Delegate TODO to background agent")
stale = request("codeAction/resolve", stale) or stale
vim.api.nvim_buf_set_lines(main_buf, 1, 2, false, {})
vim.wait(300)
_, err = request("workspace/executeCommand", stale.command)
expect_error(err, "no TODO comment on line 2 any more", "stale document version")
vim.cmd("silent! undo")
vim.wait(300)

-- 4. A huge file (10 MB) with a TODO at its end, and a binary one: answers, no crash.
vim.cmd.edit(repo .. "/huge.py")
local huge = vim.api.nvim_get_current_buf()
open(huge)
local last = vim.api.nvim_buf_line_count(huge) - 1
local t0 = vim.uv.hrtime()
find(actions_at(huge, last), "Delegate TODO to background agent")
local ms = (vim.uv.hrtime() - t0) / 1e6
print(("code actions on the last line of a 10 MB file: %.1f ms"):format(ms))
vim.cmd.edit(repo .. "/blob.bin")
local blob = vim.api.nvim_get_current_buf()
open(blob)
actions_at(blob, 0)
alive()

-- 5. A task whose branch the user deleted before reviewing.
vim.api.nvim_set_current_buf(main_buf)
local task = run(find(actions_at(main_buf, 1), "Delegate TODO to background agent"))
check(task and task.id, "delegate failed: %s", vim.inspect(task))
wait(60000, "the task to finish", function()
  for _, t in ipairs(changed) do if t.id == task.id and t.state == "done" then return true end end
  return false
end)
vim.fn.system({ "git", "-C", repo, "branch", "-D", task.branch })
check(vim.v.shell_error == 0, "could not delete the branch")
_, err = request("workspace/executeCommand", {
  command = "handoff.accept",
  arguments = { { task = task.id, uri = vim.uri_from_bufnr(main_buf), hunk = 0 } },
})
expect_error(err, "was deleted", "deleted branch")

-- 6. Unknown commands and bad arguments are errors, not crashes.
_, err = request("workspace/executeCommand", { command = "handoff.accept", arguments = { { nonsense = true } } })
check(err and err.message:find("bad arguments", 1, true), "bad arguments: %s", vim.inspect(err))
alive()

client:stop()
print("lsp_errors errors: ok")
