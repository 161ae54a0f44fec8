--- Windows the plugin opens: a task's log or unified diff (files the server writes
--- beside the task record), and the side-by-side diff of one changed file.

local config = require("handoff.config")

local M = {}

--- The buffer named `name`, if any.
local function find_buffer(name)
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(b) == name then
      return b
    end
  end
end

--- Whether a window shows `path`.
function M.shown(path)
  local bufnr = find_buffer(vim.fs.normalize(path))
  return bufnr ~= nil and #vim.fn.win_findbuf(bufnr) > 0
end

local function split_cmd()
  return ({ split = "split", vsplit = "vsplit", tab = "tabedit", edit = "edit" })[config.options.open] or "split"
end

--- Shows `path` read-only, reusing a window of this tab that already shows it. The
--- server rewrites these files on each request, so the buffer is reloaded.
function M.open_file(path)
  path = vim.fs.normalize(path)
  local bufnr = find_buffer(path)
  local win
  if bufnr then
    for _, w in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
      if vim.api.nvim_win_get_buf(w) == bufnr then
        win = w
      end
    end
  end
  if win then
    vim.api.nvim_set_current_win(win)
    vim.cmd("silent edit!")
  else
    vim.cmd(split_cmd() .. " " .. vim.fn.fnameescape(path))
  end
  vim.bo.readonly = true
  vim.bo.modifiable = false
  vim.bo.swapfile = false
  vim.bo.bufhidden = "wipe"
  if path:match("%.log$") then
    -- The end is where a running agent's output grows; `:Handoff log ID` reloads it.
    vim.cmd("normal! G")
  end
end

--- The content of `path` at `rev`, as lines; an empty list when the file does not
--- exist at that revision (added or deleted by the task).
---@return string[]|nil lines, string|nil error
local function show(root, rev, path)
  local res = vim.system({ "git", "-C", root, "show", rev .. ":" .. path }, { text = true }):wait(20000)
  if res.code ~= 0 then
    local err = res.stderr or ""
    if err:find("does not exist in", 1, true) or err:find("exists on disk, but not in", 1, true) then
      return {}
    end
    return nil, ("git show %s:%s failed: %s"):format(rev:sub(1, 12), path, vim.trim(err))
  end
  local text = res.stdout or ""
  if text:find("\0", 1, true) then
    return { "(binary file)" }
  end
  text = text:gsub("\r\n", "\n")
  local lines = vim.split(text, "\n", { plain = true })
  if lines[#lines] == "" then
    table.remove(lines)
  end
  return lines
end

local function scratch(name, lines, path)
  local existing = find_buffer(name)
  if existing then
    pcall(vim.api.nvim_buf_delete, existing, { force = true })
  end
  local bufnr = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  vim.api.nvim_buf_set_name(bufnr, name)
  vim.bo[bufnr].buftype = "nofile"
  vim.bo[bufnr].bufhidden = "wipe"
  vim.bo[bufnr].swapfile = false
  vim.bo[bufnr].modifiable = false
  local ft = vim.filetype.match({ filename = path, buf = bufnr })
  if ft then
    vim.bo[bufnr].filetype = ft
  end
  vim.cmd("diffthis")
  return bufnr
end

--- A new tab with the file as the task started from it (left) and as the task left it
--- (right), in diff mode.
---@param root string the repository
---@param task table the task record (needs base_commit and head_commit)
---@param path string repository-relative
---@return boolean ok, string|nil error
function M.diff_file(root, task, path)
  local head = task.head_commit
  if head == nil or head == vim.NIL then
    return false, ("task #%d has no result yet (%s)"):format(task.id, task.state)
  end
  local base_lines, err = show(root, task.base_commit, path)
  if not base_lines then
    return false, err
  end
  local head_lines, err2 = show(root, head, path)
  if not head_lines then
    return false, err2
  end
  vim.cmd("tabnew")
  scratch(("handoff://%d/base/%s"):format(task.id, path), base_lines, path)
  vim.cmd("rightbelow vnew")
  scratch(("handoff://%d/result/%s"):format(task.id, path), head_lines, path)
  return true
end

return M
