--- `:Handoff {subcommand}`: starting tasks, the task picker and what it offers (log,
--- diff, reply, cancel, accept all), and the review commands.

local config = require("handoff.config")
local lsp = require("handoff.lsp")
local tasks = require("handoff.tasks")

local M = {}

local function notify(msg, level)
  vim.notify(msg, level or vim.log.levels.INFO, { title = "Handoff" })
end

local icons = {
  queued = "…",
  starting = "⟳",
  running = "⟳",
  finalizing = "⟳",
  done = "✓",
  failed = "✗",
  cancelled = "⊘",
}

local function present(v)
  return v ~= nil and v ~= vim.NIL
end

--- One line per task in the picker: "#3 ✓ done  Fix the parser · 2 files".
function M.format_task(task)
  local detail = ""
  if task.state == "done" then
    local n = #(task.files_changed or {})
    detail = (" · %d file%s"):format(n, n == 1 and "" or "s")
  elseif task.state == "failed" and present(task.error) then
    detail = " · " .. task.error
  end
  return ("#%d %s %s  %s%s"):format(task.id, icons[task.state] or "?", task.state, task.title or task.prompt or "",
    detail)
end

--- The URI naming the repository of `bufnr` for commands: the buffer's file when it
--- is in the client's repository, else the repository itself.
local function repo_uri(client, bufnr)
  if lsp.root_of_buffer(bufnr) == client.config.root_dir then
    return vim.uri_from_bufnr(bufnr)
  end
  return vim.uri_from_fname(client.config.root_dir)
end

local function with_client(fn)
  local bufnr = vim.api.nvim_get_current_buf()
  local client, err = lsp.client(bufnr)
  if not client then
    notify(err, vim.log.levels.ERROR)
    return
  end
  fn(client, bufnr)
end

local function started(task)
  if type(task) == "table" and task.id then
    notify(("Started task #%d (%s): %s — :Handoff tasks to follow it"):format(task.id, task.agent or "?",
      task.title or ""))
  end
end

---------------------------------------------------------------------------------------
-- Starting tasks

--- `:Handoff[!] start [--agent=NAME] [prompt]`: a task for the whole repository; with
--- the bang, the agent profile is picked first.
---@param prompt string|nil asked for when empty
---@param agent string|nil the agent profile; the `agent` option (or the repository's default) when nil
---@param pick boolean|nil pick the agent profile first (`:Handoff start!`)
function M.start(prompt, agent, pick)
  with_client(function(client, bufnr)
    if pick and not agent then
      local agents = require("handoff.agents")
      return vim.ui.select(agents.list(client.config.root_dir), {
        prompt = "Handoff: agent for the new task",
        format_item = agents.format,
        kind = "handoff.agent",
      }, function(choice)
        if choice then
          M.start(prompt, choice.name)
        end
      end)
    end
    local function go(text)
      if not text or vim.trim(text) == "" then
        return
      end
      lsp.request(client, "handoff.delegate", {
        kind = "prompt",
        prompt = text,
        agent = agent or config.options.agent,
        uri = repo_uri(client, bufnr),
      }, function(err, task)
        if not err then started(task) end
      end, { bufnr = bufnr })
    end
    if prompt and vim.trim(prompt) ~= "" then
      go(prompt)
    else
      vim.ui.input({ prompt = "Handoff: what should the background agent do? " }, go)
    end
  end)
end

--- `:Handoff todo`: delegates the TODO comment on the cursor's line.
function M.todo()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = lsp.clients({ bufnr = bufnr })[1]
  if not client then
    notify("this buffer is not a file of a git repository with the handoff server attached", vim.log.levels.ERROR)
    return
  end
  local line = vim.api.nvim_win_get_cursor(0)[1] - 1
  lsp.request(client, "handoff.delegate", function()
    return {
      kind = "todo",
      uri = vim.uri_from_bufnr(bufnr),
      line = line,
      version = vim.lsp.util.buf_versions[bufnr],
      agent = config.options.agent,
    }
  end, function(err, task)
    if not err then started(task) end
  end, { bufnr = bufnr })
end

--- The LSP range of lines `line1..line2` (1-based, inclusive) of `bufnr`: the
--- characters of the last visual selection when it covers exactly those lines and was
--- characterwise, the whole lines otherwise.
local function selection_range(bufnr, line1, line2, encoding)
  local function text(row)
    return vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
  end
  local function char(row, col)
    col = math.min(col, #text(row))
    if col <= 0 then
      return 0
    end
    return vim.lsp.util.character_offset(bufnr, row, col, encoding)
  end
  local vs, ve = vim.api.nvim_buf_get_mark(bufnr, "<"), vim.api.nvim_buf_get_mark(bufnr, ">")
  if vim.fn.visualmode() == "v" and vs[1] == line1 and ve[1] == line2 then
    local srow, scol, erow, ecol = vs[1] - 1, vs[2], ve[1] - 1, ve[2]
    local last = text(erow)
    -- '> marks the start of the last selected character; the range ends after it.
    local width = #vim.fn.strcharpart(last:sub(ecol + 1), 0, 1)
    ecol = math.min(ecol + math.max(width, 1), #last)
    return { start = { line = srow, character = char(srow, scol) }, ["end"] = { line = erow, character = char(erow, ecol) } }
  end
  local srow, erow = line1 - 1, line2 - 1
  if erow + 1 < vim.api.nvim_buf_line_count(bufnr) then
    return { start = { line = srow, character = 0 }, ["end"] = { line = erow + 1, character = 0 } }
  end
  return { start = { line = srow, character = 0 }, ["end"] = { line = erow, character = char(erow, #text(erow)) } }
end

--- `:[range]Handoff delegate [instruction]`: delegates the selected lines (the visual
--- selection when the command comes from visual mode) with an instruction.
function M.delegate(line1, line2, instruction)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = lsp.clients({ bufnr = bufnr })[1]
  if not client then
    notify("this buffer is not a file of a git repository with the handoff server attached", vim.log.levels.ERROR)
    return
  end
  local function go(text)
    if not text then
      return
    end
    if vim.trim(text) == "" then
      notify("no instruction given; nothing was started", vim.log.levels.WARN)
      return
    end
    lsp.request(client, "handoff.delegate", function(c)
      return {
        kind = "selection",
        uri = vim.uri_from_bufnr(bufnr),
        range = selection_range(bufnr, line1, line2, c.offset_encoding or "utf-16"),
        version = vim.lsp.util.buf_versions[bufnr],
        instruction = text,
        agent = config.options.agent,
      }
    end, function(err, task)
      if not err then started(task) end
    end, { bufnr = bufnr })
  end
  if instruction and vim.trim(instruction) ~= "" then
    go(instruction)
  else
    vim.ui.input({ prompt = ("Handoff: what should the agent do with lines %d-%d? "):format(line1, line2) }, go)
  end
end

---------------------------------------------------------------------------------------
-- Tasks

--- Fetches the repository's tasks from the server (so the list matches
--- `handoff list --json`), newest first.
local function fetch(client, bufnr, callback)
  lsp.request(client, "handoff.listTasks", { uri = repo_uri(client, bufnr) }, function(err, list)
    if err then
      return
    end
    list = list or {}
    table.sort(list, function(a, b) return a.id > b.id end)
    for _, t in ipairs(list) do
      tasks.update(client.config.root_dir, t, client.id)
    end
    callback(list)
  end, { bufnr = bufnr })
end

local function find_task(client, bufnr, id, callback)
  fetch(client, bufnr, function(list)
    for _, t in ipairs(list) do
      if t.id == id then
        return callback(t)
      end
    end
    notify(("no task #%d in %s (:Handoff tasks lists them)"):format(id, client.config.root_dir), vim.log.levels.ERROR)
  end)
end

--- Calls `fn(client, bufnr, task)` with task `id`, or with one the user picks.
local function with_task(id, fn)
  with_client(function(client, bufnr)
    if id then
      return find_task(client, bufnr, id, function(task) fn(client, bufnr, task) end)
    end
    fetch(client, bufnr, function(list)
      if #list == 0 then
        return notify("no tasks yet in " .. client.config.root_dir .. " (:Handoff start)")
      end
      vim.ui.select(list, { prompt = "Handoff task", format_item = M.format_task, kind = "handoff.task" },
        function(task)
          if task then fn(client, bufnr, task) end
        end)
    end)
  end)
end

local function log(client, bufnr, task)
  lsp.request(client, "handoff.showLog", { task = task.id, uri = repo_uri(client, bufnr) }, function(err, res)
    -- The server asks Neovim to show the file (window/showDocument) before it answers;
    -- open it here if that did not happen.
    if not err and res and res.path and not require("handoff.view").shown(res.path) then
      require("handoff.view").open_file(res.path)
    end
  end, { bufnr = bufnr })
end

local ALL_FILES = "All files (unified diff)"

local function diff(client, bufnr, task)
  if not present(task.head_commit) then
    return notify(("task #%d has no result yet (%s)"):format(task.id, task.state), vim.log.levels.WARN)
  end
  local files = task.files_changed or {}
  if #files == 0 then
    return notify(("task #%d changed no files"):format(task.id))
  end
  local function open(choice)
    if not choice then
      return
    end
    if choice == ALL_FILES then
      return lsp.request(client, "handoff.showDiff", { task = task.id, uri = repo_uri(client, bufnr) }, nil,
        { bufnr = bufnr })
    end
    local ok, err = require("handoff.view").diff_file(client.config.root_dir, task, choice)
    if not ok then
      notify(err, vim.log.levels.ERROR)
    end
  end
  if #files == 1 then
    return open(files[1])
  end
  local choices = vim.list_extend(vim.deepcopy(files), { ALL_FILES })
  vim.ui.select(choices, { prompt = ("Task #%d: file to compare"):format(task.id), kind = "handoff.file" }, open)
end

local function reply(client, bufnr, task, message)
  local function go(text)
    if not text or vim.trim(text) == "" then
      return
    end
    lsp.request(client, "handoff.reply", { task = task.id, message = text, uri = repo_uri(client, bufnr) },
      function(err)
        if not err then
          notify(("Sent to task #%d"):format(task.id))
        end
      end, { bufnr = bufnr })
  end
  if message and vim.trim(message) ~= "" then
    go(message)
  else
    vim.ui.input({ prompt = ("Reply to task #%d: "):format(task.id) }, go)
  end
end

local function cancel(client, bufnr, task)
  lsp.request(client, "handoff.cancel", { task = task.id, uri = repo_uri(client, bufnr) }, function(err, t)
    if not err and t then
      notify(("Task #%d %s; its work so far is kept on %s"):format(t.id, t.state, t.branch))
    end
  end, { bufnr = bufnr })
end

--- Accepts every pending change of the task in every file it changed: each file is
--- loaded into a buffer (the server edits buffers, never files on disk) and the user
--- saves them.
local function accept_all(client, _, task)
  local root = client.config.root_dir
  -- Files that configure tools, editors, agents or CI are read and accepted one by one.
  local sensitive, files = {}, {}
  for _, f in ipairs(task.sensitive_files or {}) do sensitive[f] = true end
  local held = {}
  for _, f in ipairs(task.files_changed or {}) do
    if sensitive[f] then table.insert(held, f) else table.insert(files, f) end
  end
  if #held > 0 then
    notify(("task #%d changes tool settings in %s: review and accept those changes one by one")
      :format(task.id, table.concat(held, ", ")), vim.log.levels.WARN)
  end
  local pending, accepted, conflicts, problems, touched = #files, 0, 0, {}, {}
  if pending == 0 then
    return notify(("task #%d changed no files"):format(task.id))
  end
  local function finish()
    pending = pending - 1
    if pending > 0 then
      return
    end
    local msg = ("Task #%d: accepted %d change%s"):format(task.id, accepted, accepted == 1 and "" or "s")
    if #touched > 0 then
      msg = msg .. " in " .. table.concat(touched, ", ") .. " (not saved yet: :wa writes them)"
    end
    if conflicts > 0 then
      msg = msg .. ("; %d conflict%s left for review"):format(conflicts, conflicts == 1 and "" or "s")
    end
    if #problems > 0 then
      msg = msg .. ". Not applied: " .. table.concat(problems, "; ")
    end
    notify(msg, #problems > 0 and vim.log.levels.WARN or vim.log.levels.INFO)
  end
  for _, rel in ipairs(files) do
    local bufnr = vim.fn.bufadd(root .. "/" .. rel)
    vim.bo[bufnr].buflisted = true
    vim.fn.bufload(bufnr)
    if not lsp.clients({ bufnr = bufnr, id = client.id })[1] then
      vim.lsp.buf_attach_client(bufnr, client.id)
    end
    lsp.request(client, "handoff.accept", { task = task.id, uri = vim.uri_from_bufnr(bufnr) }, function(err, res)
      if err then
        -- Files whose changes were all decided already are not a failure.
        if not err:find("no pending changes", 1, true) then
          table.insert(problems, rel .. ": " .. err)
        end
      elseif res then
        accepted = accepted + #(res.accepted or {})
        conflicts = conflicts + (res.conflicts or 0)
        if #(res.accepted or {}) > 0 then
          table.insert(touched, rel)
        end
      end
      finish()
    end, { bufnr = bufnr, silent = true })
  end
end

--- `:Handoff tasks`: pick a task, then what to do with it.
function M.tasks()
  with_task(nil, function(client, bufnr, task)
    local actions = { { "Show log", log } }
    if present(task.head_commit) then
      table.insert(actions, { "Open diff", diff })
    end
    table.insert(actions, { "Reply…", reply })
    if not tasks.is_terminal(task.state) then
      table.insert(actions, { "Cancel", cancel })
    end
    if present(task.head_commit) and tasks.is_terminal(task.state) then
      table.insert(actions, { "Accept all changes", accept_all })
    end
    vim.ui.select(actions, {
      prompt = M.format_task(task),
      format_item = function(a) return a[1] end,
      kind = "handoff.action",
    }, function(action)
      if action then action[2](client, bufnr, task) end
    end)
  end)
end

function M.log(id) with_task(id, log) end
function M.diff(id) with_task(id, diff) end
function M.cancel(id) with_task(id, cancel) end
function M.accept_all_task(id) with_task(id, accept_all) end
function M.reply(id, message)
  with_task(id, function(client, bufnr, task) reply(client, bufnr, task, message) end)
end

---------------------------------------------------------------------------------------
-- :Handoff

local function task_id(arg)
  if not arg then
    return nil
  end
  local n = tonumber((arg:gsub("^#", "")))
  if not n then
    error(("`%s` is not a task id; ids are numbers, see :Handoff tasks"):format(arg), 0)
  end
  return n
end

local subcommands = {
  start = function(args, cmd)
    local agent, flag
    if args[1] and args[1]:match("^%-%-agent=") then
      flag, agent = true, table.remove(args, 1):sub(#"--agent=" + 1)
    elseif args[1] == "--agent" then
      table.remove(args, 1)
      flag, agent = true, table.remove(args, 1)
    end
    if flag and (agent == nil or agent == "") then
      error("--agent needs a profile name (built-in: claude, codex, shell; more in .handoff.toml)", 0)
    end
    M.start(table.concat(args, " "), agent, cmd.bang)
  end,
  todo = function() M.todo() end,
  delegate = function(args, cmd)
    M.delegate(cmd.line1, cmd.line2, table.concat(args, " "))
  end,
  tasks = function() M.tasks() end,
  log = function(args) M.log(task_id(args[1])) end,
  diff = function(args) M.diff(task_id(args[1])) end,
  reply = function(args)
    local id = task_id(args[1])
    M.reply(id, table.concat(args, " ", 2))
  end,
  cancel = function(args) M.cancel(task_id(args[1])) end,
  accept = function() require("handoff.inline").accept() end,
  reject = function() require("handoff.inline").reject() end,
  ["accept-all"] = function(args)
    if args[1] then
      M.accept_all_task(task_id(args[1]))
    else
      require("handoff.inline").accept_all()
    end
  end,
  next = function() require("handoff.inline").next() end,
  prev = function() require("handoff.inline").prev() end,
}

local with_id = { log = true, diff = true, reply = true, cancel = true, ["accept-all"] = true }

function M.complete(arglead, cmdline)
  local words = vim.split(cmdline:gsub("^%S*%s*", ""), "%s+")
  -- Skip a leading range ("'<,'>Handoff").
  if #words <= 1 then
    local names = vim.tbl_keys(subcommands)
    table.sort(names)
    return vim.tbl_filter(function(n) return n:find(arglead, 1, true) == 1 end, names)
  end
  if #words == 2 and with_id[words[1]] then
    local ids = {}
    for _, e in ipairs(tasks.list()) do
      local id = tostring(e.task.id)
      if id:find(arglead, 1, true) == 1 and not vim.tbl_contains(ids, id) then
        table.insert(ids, id)
      end
    end
    return ids
  end
  return {}
end

function M.run(cmd)
  if not config.did_setup then
    require("handoff").setup()
  end
  local args = vim.deepcopy(cmd.fargs)
  local name = table.remove(args, 1) or "tasks"
  local fn = subcommands[name]
  if not fn then
    local names = vim.tbl_keys(subcommands)
    table.sort(names)
    notify(("unknown subcommand `%s`; try one of: %s"):format(name, table.concat(names, ", ")),
      vim.log.levels.ERROR)
    return
  end
  local ok, err = pcall(fn, args, cmd)
  if not ok then
    notify(tostring(err), vim.log.levels.ERROR)
  end
end

--- Defines `:Handoff` (idempotent: plugin/handoff.lua and setup() both call it).
function M.create()
  vim.api.nvim_create_user_command("Handoff", M.run, {
    nargs = "*",
    range = true,
    bang = true,
    complete = M.complete,
    desc = "Handoff: background agent tasks (start, todo, delegate, tasks, log, diff, reply, cancel, accept, reject, next, prev)",
  })
end

return M
