--- What the plugin knows of tasks: the records the server sent (`handoff.listTasks` when
--- a client starts, then `handoff/taskChanged`), the statusline component, and the
--- message when a task ends.

local config = require("handoff.config")

local M = {}

---@class handoff.Entry
---@field repository string  the repository's working tree (real path)
---@field task table         the task record (docs/protocol.md)
---@field client_id integer
---@field ended_here boolean the task ended while this Neovim was running

---@type table<string, handoff.Entry>
local entries = {}

local terminal = { done = true, failed = true, cancelled = true }

function M.is_terminal(state)
  return terminal[state] == true
end

local function real(path)
  path = vim.fs.normalize(path)
  return vim.uv.fs_realpath(path) or path
end

local function key(repository, id)
  return repository .. "\0" .. tostring(id)
end

local function changed(entry)
  pcall(vim.api.nvim_exec_autocmds, "User", {
    pattern = "HandoffTaskChanged",
    modeline = false,
    data = { repository = entry.repository, task = entry.task },
  })
  pcall(vim.cmd.redrawstatus)
end

--- Records the tasks a client found when it started; says nothing about them.
function M.seed(repository, tasks, client_id)
  repository = real(repository)
  for _, task in ipairs(tasks) do
    local k = key(repository, task.id)
    if not entries[k] then
      entries[k] = { repository = repository, task = task, client_id = client_id, ended_here = false }
    end
  end
  pcall(vim.cmd.redrawstatus)
end

local function lhs(name)
  local l = config.options.keymaps[name]
  return l and l ~= "" and l or nil
end

--- The message shown when a task ends.
function M.summary(task)
  local title = task.title or task.prompt or ""
  if task.state == "done" then
    local files = task.files_changed or {}
    local s = ("✓ Handoff #%d done: %s — %d file%s changed"):format(task.id, title, #files, #files == 1 and "" or "s")
    if #files > 0 then
      s = s .. " (" .. table.concat(files, ", ") .. ")"
      local keys = {}
      if lhs("next") then table.insert(keys, lhs("next") .. " next change") end
      if lhs("accept") then table.insert(keys, lhs("accept") .. " accept") end
      if lhs("reject") then table.insert(keys, lhs("reject") .. " reject") end
      table.insert(keys, ":Handoff diff " .. task.id)
      s = s .. ". Review: " .. table.concat(keys, " · ")
    end
    return s, vim.log.levels.INFO
  elseif task.state == "failed" then
    local s = ("✗ Handoff #%d failed: %s"):format(task.id, title)
    if task.error and task.error ~= vim.NIL then
      s = s .. " — " .. task.error
    end
    return s .. " (:Handoff log " .. task.id .. ")", vim.log.levels.ERROR
  else
    local s = ("⊘ Handoff #%d cancelled: %s"):format(task.id, title)
    if task.head_commit and task.head_commit ~= vim.NIL then
      s = s .. " — its partial work is on " .. task.branch
    end
    return s, vim.log.levels.WARN
  end
end

--- A record from `handoff/taskChanged`.
function M.update(repository, task, client_id)
  repository = real(repository)
  local k = key(repository, task.id)
  local previous = entries[k]
  local entry = {
    repository = repository,
    task = task,
    client_id = client_id,
    ended_here = previous and previous.ended_here or false,
  }
  local just_ended = terminal[task.state] and not (previous and terminal[previous.task.state])
  if just_ended then
    entry.ended_here = true
  end
  entries[k] = entry
  if just_ended and config.options.notify then
    local msg, level = M.summary(task)
    vim.notify(msg, level, { title = "Handoff" })
  end
  changed(entry)
end

--- A task whose record is gone (`handoff/taskRemoved`: `handoff rm` or handoff.removeTask).
function M.remove(repository, id)
  repository = real(repository)
  local k = key(repository, id)
  local entry = entries[k]
  if entry then
    entries[k] = nil
    pcall(vim.api.nvim_exec_autocmds, "User", {
      pattern = "HandoffTaskRemoved",
      modeline = false,
      data = { repository = repository, task = id },
    })
    pcall(vim.cmd.redrawstatus)
  end
end

--- Every known task, newest first.
---@return handoff.Entry[]
function M.list()
  local out = vim.tbl_values(entries)
  table.sort(out, function(a, b)
    if a.repository ~= b.repository then
      return a.repository < b.repository
    end
    return a.task.id > b.task.id
  end)
  return out
end

--- The record of task `id` in `repository` (any repository when nil), if known.
function M.get(id, repository)
  for _, e in ipairs(M.list()) do
    if e.task.id == id and (repository == nil or e.repository == real(repository)) then
      return e.task
    end
  end
end

--- The statusline component: "⟳1 ✓2 ✗1" — tasks queued or running in every
--- repository with a client, and those that finished or failed since Neovim started.
--- Empty when there is nothing to say.
---@return string
function M.status()
  local active, done, failed = 0, 0, 0
  for _, e in pairs(entries) do
    local state = e.task.state
    if not terminal[state] then
      active = active + 1
    elseif e.ended_here and state == "done" then
      done = done + 1
    elseif e.ended_here and state == "failed" then
      failed = failed + 1
    end
  end
  local parts = {}
  if active > 0 then table.insert(parts, "⟳" .. active) end
  if done > 0 then table.insert(parts, "✓" .. done) end
  if failed > 0 then table.insert(parts, "✗" .. failed) end
  return table.concat(parts, " ")
end

return M
