--- `:Handoff {subcommand}`: starting tasks (and several attempts), the task picker and
--- what it offers (log, diff, reply, cancel, accept all, send comments, keep one
--- attempt), and the review commands (accept, reject, comment, send).

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

--- What compares attempts: "check passed · 2 files · +10 −3 · $0.12" (what is known).
local function attempt_detail(task)
  local parts = {}
  if type(task.check) == "table" then
    table.insert(parts, task.check.passed and "check passed" or "check failed")
  end
  if tasks.is_terminal(task.state) then
    local n = #(task.files_changed or {})
    table.insert(parts, ("%d file%s"):format(n, n == 1 and "" or "s"))
    if present(task.head_commit) then
      table.insert(parts, ("+%d −%d"):format(task.lines_added or 0, task.lines_removed or 0))
    end
  end
  local cost = type(task.spent) == "table" and tonumber(task.spent.cost_usd) or 0
  if cost > 0 then
    table.insert(parts, ("$%.2f"):format(cost))
  end
  return table.concat(parts, " · ")
end

--- One line per task in the picker: "#3 ✓ done  Fix the parser · 2 files"; an attempt
--- of a group (`group_size` > 1) names its group and agent and what compares it:
--- "#4 ✓ done  [g3 claude] Fix the parser · check passed · 2 files · +10 −3 · $0.12".
---@param group_size integer|nil how many tasks of its group are listed
---@param comments integer|nil its review comments not sent yet
function M.format_task(task, group_size, comments)
  local detail = ""
  local head = ""
  if present(task.group) and (group_size or 0) > 1 then
    head = ("[g%d %s] "):format(task.group, task.agent or "?")
    local d = attempt_detail(task)
    detail = d ~= "" and " · " .. d or ""
  elseif task.state == "done" then
    local n = #(task.files_changed or {})
    detail = (" · %d file%s"):format(n, n == 1 and "" or "s")
  end
  if task.state == "failed" and present(task.error) then
    detail = detail .. " · " .. task.error
  end
  if (comments or 0) > 0 then
    detail = detail .. (" · 💬 %d to send"):format(comments)
  end
  return ("#%d %s %s  %s%s%s"):format(task.id, icons[task.state] or "?", task.state, head,
    task.title or task.prompt or "", detail)
end

--- The picker's order: newest first, the tasks of a group together where its newest
--- one is, in the order they were started. Returns the list and each group's size.
function M.arrange(list)
  local members, sizes = {}, {}
  for _, t in ipairs(list) do
    if present(t.group) then
      members[t.group] = members[t.group] or {}
      table.insert(members[t.group], t)
      sizes[t.group] = (sizes[t.group] or 0) + 1
    end
  end
  local out, placed = {}, {}
  for _, t in ipairs(list) do
    local g = present(t.group) and t.group or nil
    if g == nil or sizes[g] < 2 then
      table.insert(out, t)
    elseif not placed[g] then
      placed[g] = true
      local group = vim.deepcopy(members[g])
      table.sort(group, function(a, b) return a.id < b.id end)
      vim.list_extend(out, group)
    end
  end
  return out, sizes
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

local function started(task, attempts)
  if type(task) ~= "table" or not task.id then
    return
  end
  if attempts and attempts > 1 then
    notify(("Started %d attempts as group g%d: %s — :Handoff tasks to compare them, then keep one")
      :format(attempts, present(task.group) and task.group or task.id, task.title or ""))
  else
    notify(("Started task #%d (%s): %s — :Handoff tasks to follow it"):format(task.id, task.agent or "?",
      task.title or ""))
  end
end

---------------------------------------------------------------------------------------
-- Starting tasks

--- Most attempts one start may ask for (the server's MAX_ATTEMPTS).
M.MAX_ATTEMPTS = 16

--- The attempts typed in, or nil and why not.
function M.parse_attempts(text)
  local n = tonumber(vim.trim(text or ""))
  if not n or n ~= math.floor(n) or n < 1 or n > M.MAX_ATTEMPTS then
    return nil, ("attempts: a number from 1 to %d"):format(M.MAX_ATTEMPTS)
  end
  return n
end

--- `:Handoff[!] start [--attempts[=N]] [--agent=NAME[,NAME…]] [prompt]`: a task for the
--- whole repository, or several attempts at it from the same snapshot (the agents named
--- take them in turn); with the bang, the agent profile is picked first.
---@param prompt string|nil asked for when empty
---@param agent string|nil the agent profile(s); the `agent` option (or the repository's default) when nil
---@param pick boolean|nil pick the agent profile first (`:Handoff! start`)
---@param attempts integer|true|nil how many tasks (default 1); true: ask
function M.start(prompt, agent, pick, attempts)
  with_client(function(client, bufnr)
    if pick and not agent then
      local agents = require("handoff.agents")
      return vim.ui.select(agents.list(client.config.root_dir), {
        prompt = "Handoff: agent for the new task",
        format_item = agents.format,
        kind = "handoff.agent",
      }, function(choice)
        if choice then
          M.start(prompt, choice.name, false, attempts)
        end
      end)
    end
    if attempts == true then
      return vim.ui.input({ prompt = ("Handoff: how many attempts (1-%d)? "):format(M.MAX_ATTEMPTS), default = "2" },
        function(text)
          if not text then
            return
          end
          local n, err = M.parse_attempts(text)
          if not n then
            return notify(err, vim.log.levels.ERROR)
          end
          M.start(prompt, agent, false, n)
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
        attempts = (attempts or 1) > 1 and attempts or nil,
      }, function(err, task)
        if not err then started(task, attempts) end
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
      local items, sizes = M.arrange(list)
      local comments = require("handoff.inline").pending_comments(client.id)
      vim.ui.select(items, {
        prompt = "Handoff task",
        format_item = function(t) return M.format_task(t, sizes[t.group], comments[t.id]) end,
        kind = "handoff.task",
      }, function(task)
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

--- Asks for a review comment's text (unless given) and keeps it on the hunk
--- `args` = `{ task, uri, hunk }` as pending (`handoff.comment`). Also what the code
--- action "Comment on this change (Handoff #N)…" runs (lsp.lua).
function M.comment_on(client, bufnr, args, text)
  local function go(t)
    if not t or vim.trim(t) == "" then
      return
    end
    local params = { task = args.task, uri = args.uri, hunk = args.hunk, text = t }
    lsp.request(client, "handoff.comment", params, function(err, res)
      if not err and res then
        notify(("Comment kept for task #%d (%d pending): :Handoff send sends %s"):format(args.task, res.pending,
          res.pending == 1 and "it" or "them together"))
      end
    end, { bufnr = bufnr })
  end
  if text and vim.trim(text) ~= "" then
    go(text)
  else
    vim.ui.input({ prompt = ("Comment on this change (Handoff #%d): "):format(args.task) }, go)
  end
end

--- `:Handoff comment [text]`: a review comment on the change under the cursor.
function M.comment(text)
  local bufnr = vim.api.nvim_get_current_buf()
  local inline = require("handoff.inline")
  local h = inline.at_cursor(bufnr)
  if not h then
    local next_key = config.options.keymaps.next or ":Handoff next"
    return notify(("no change on this line to comment on (%s jumps to the next)"):format(next_key),
      vim.log.levels.WARN)
  end
  local client = vim.lsp.get_client_by_id(h.client_id)
  if not client then
    return notify("the language server of this buffer has stopped", vim.log.levels.ERROR)
  end
  M.comment_on(client, bufnr, { task = h.task, uri = vim.uri_from_bufnr(bufnr), hunk = h.hunk }, text)
end

local function send_comments(client, bufnr, task)
  local n = require("handoff.inline").pending_comments(client.id)[task.id] or 0
  lsp.request(client, "handoff.sendComments", { task = task.id, uri = repo_uri(client, bufnr) }, function(err)
    if not err then
      local what = n > 0 and ("%d comment%s"):format(n, n == 1 and "" or "s") or "the comments"
      notify(("Sent %s to task #%d; its next turn runs (:Handoff log %d)"):format(what, task.id, task.id))
    end
  end, { bufnr = bufnr })
end

--- `:Handoff send [ID]`: sends the task's pending review comments as its next turn —
--- the task of the change under the cursor, the one task with comments shown, or a pick.
function M.send(id)
  if not id then
    local h = require("handoff.inline").at_cursor(0)
    if h then
      id = h.task
    else
      local with_comments = vim.tbl_keys(require("handoff.inline").pending_comments())
      if #with_comments == 1 then
        id = with_comments[1]
      end
    end
  end
  with_task(id, send_comments)
end

--- Keeps one attempt of a group and removes the others (cancelling those still at
--- work), as `handoff pick ID` does; their branches stay.
local function keep(client, bufnr, task)
  fetch(client, bufnr, function(list)
    local others = vim.tbl_filter(function(t)
      return present(task.group) and t.group == task.group and t.id ~= task.id
    end, list)
    if #others == 0 then
      return notify(("task #%d is not one of several attempts; nothing to remove"):format(task.id))
    end
    local left, removed = #others, {}
    local function finish()
      left = left - 1
      if left > 0 then
        return
      end
      table.sort(removed)
      notify(("Kept task #%d (%s); removed %s (their branches stay)"):format(task.id, task.branch,
        #removed > 0 and table.concat(vim.tbl_map(function(i) return "#" .. i end, removed), ", ") or "nothing"))
    end
    for _, other in ipairs(others) do
      local args = { task = other.id, uri = repo_uri(client, bufnr) }
      local function remove()
        lsp.request(client, "handoff.removeTask", vim.tbl_extend("force", args, { deleteBranch = false }),
          function(err)
            if not err then
              table.insert(removed, other.id)
              tasks.remove(client.config.root_dir, other.id)
            end
            finish()
          end, { bufnr = bufnr })
      end
      if tasks.is_terminal(other.state) then
        remove()
      else
        lsp.request(client, "handoff.cancel", args, function(err)
          if err then
            return finish()
          end
          remove()
        end, { bufnr = bufnr })
      end
    end
  end)
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
    local comments = require("handoff.inline").pending_comments(client.id)[task.id] or 0
    if comments > 0 then
      table.insert(actions, { ("Send %d comment%s"):format(comments, comments == 1 and "" or "s"), send_comments })
    end
    if present(task.group) then
      table.insert(actions, { "Keep this one (remove the others)", keep })
    end
    vim.ui.select(actions, {
      prompt = M.format_task(task, nil, comments),
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
function M.keep(id) with_task(id, keep) end
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
    local agent, attempts
    while args[1] and args[1]:match("^%-%-") do
      local flag = table.remove(args, 1)
      local name, value = flag:match("^%-%-([%w-]+)=(.*)$")
      name = name or flag:sub(3)
      if name == "agent" then
        agent = value or table.remove(args, 1)
        if agent == nil or agent == "" then
          error("--agent needs a profile name (built-in: claude, codex, shell; more in .handoff.toml)", 0)
        end
      elseif name == "attempts" then
        -- `--attempts=N`, `--attempts N`, or a bare `--attempts`: asked for.
        if value == nil and args[1] and args[1]:match("^%d+$") then
          value = table.remove(args, 1)
        end
        if value == nil then
          attempts = true
        else
          local err
          attempts, err = M.parse_attempts(value)
          if not attempts then
            error(err, 0)
          end
        end
      else
        error(("unknown option `%s` of :Handoff start (--agent=NAME, --attempts=N)"):format(flag), 0)
      end
    end
    M.start(table.concat(args, " "), agent, cmd.bang, attempts)
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
  comment = function(args) M.comment(table.concat(args, " ")) end,
  send = function(args) M.send(task_id(args[1])) end,
  keep = function(args) M.keep(task_id(args[1])) end,
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
  trust = function()
    with_client(function(client)
      require("handoff.trust").trust(client, client.config.root_dir)
    end)
  end,
}

local with_id = { log = true, diff = true, reply = true, cancel = true, ["accept-all"] = true, send = true, keep = true }

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
    desc = "Handoff: background agent tasks (start, todo, delegate, tasks, log, diff, reply, cancel, keep, accept, reject, comment, send, next, prev, trust)",
  })
end

return M
