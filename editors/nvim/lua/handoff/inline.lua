--- Inline review: the pending changes of finished tasks, drawn with extmarks in the
--- buffers they apply to, and the keys to accept, reject and move between them.
---
--- The server publishes each pending hunk as a diagnostic (source "handoff") whose
--- range is the hunk's lines *in the current buffer*: the lines the change would
--- replace (an empty range where a pure insertion would go), and whose `data` holds the
--- change: `{task, hunk, conflict, oldLines, newLines}` (docs/protocol.md). The
--- message is for people and is never parsed here. The buffer's lines in the range are
--- highlighted as what goes away, and the proposed lines are shown below them as
--- virtual lines: what the buffer would read after Accept.

local config = require("handoff.config")
local lsp = require("handoff.lsp")

local M = {}

M.ns = vim.api.nvim_create_namespace("handoff_inline")

---@class handoff.Hunk
---@field client_id integer
---@field task integer
---@field hunk integer
---@field conflict boolean
---@field old string[]
---@field new string[]
---@field empty boolean   a pure insertion (empty range)
---@field mark integer    extmark spanning the hunk's lines, moving with edits

---@type table<integer, handoff.Hunk[]>
local by_buffer = {}

function M.define_highlights()
  local links = {
    HandoffRemove = "DiffDelete",
    HandoffAdd = "DiffAdd",
    HandoffConflict = "DiffChange",
    HandoffHint = "DiagnosticHint",
    HandoffConflictHint = "DiagnosticWarn",
  }
  for name, target in pairs(links) do
    vim.api.nvim_set_hl(0, name, { link = target, default = true })
  end
end

--- The lines of a hunk's `data` (`oldLines`/`newLines`), without their line ends.
local function data_lines(list)
  local out = {}
  for _, line in ipairs(type(list) == "table" and list or {}) do
    table.insert(out, (tostring(line):gsub("\r?\n$", ""):gsub("\r$", "")))
  end
  return out
end

local function buffer_of(uri, client_id)
  local fname = vim.fs.normalize(vim.uri_to_fname(uri))
  for _, bufnr in ipairs(vim.lsp.get_buffers_by_client_id(client_id)) do
    if vim.fs.normalize(vim.api.nvim_buf_get_name(bufnr)) == fname then
      return bufnr
    end
  end
end

--- Expands tabs as the buffer shows them, so a virtual line lines up with real ones.
local function expand_tabs(text, tabstop)
  if not text:find("\t", 1, true) then
    return text
  end
  local out, col = {}, 0
  for ch in text:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
    if ch == "\t" then
      local n = tabstop - (col % tabstop)
      table.insert(out, string.rep(" ", n))
      col = col + n
    else
      table.insert(out, ch)
      col = col + vim.fn.strdisplaywidth(ch)
    end
  end
  return table.concat(out)
end

local function hint_text(h)
  local keys = config.options.keymaps
  local parts = { ("Handoff #%d"):format(h.task) }
  if h.conflict then
    parts[1] = ("⚠ Handoff #%d: conflict, you edited these lines"):format(h.task)
    table.insert(parts, ":Handoff diff " .. h.task)
  elseif keys.accept then
    table.insert(parts, keys.accept .. " accept")
  end
  if keys.reject then
    table.insert(parts, keys.reject .. " reject")
  end
  return " " .. table.concat(parts, " · ")
end

local function draw(bufnr, h, first, last)
  local opts = config.options.inline
  local line_count = vim.api.nvim_buf_line_count(bufnr)
  local width = math.max(vim.o.columns, 20)
  local tabstop = vim.bo[bufnr].tabstop
  local hl_new = "HandoffAdd"

  local virt = {}
  for _, text in ipairs(h.new) do
    local shown = expand_tabs(text, tabstop)
    local pad = math.max(width - vim.fn.strdisplaywidth(shown), 0)
    table.insert(virt, { { shown .. string.rep(" ", pad), hl_new } })
  end

  if h.empty then
    -- A pure insertion: the new lines go above `first` (or after the last line).
    local below_end = first >= line_count
    local row = math.min(first, line_count - 1)
    h.mark = vim.api.nvim_buf_set_extmark(bufnr, M.ns, row, 0, {
      virt_lines = #virt > 0 and virt or nil,
      virt_lines_above = not below_end,
      virt_text = opts.hints and { { hint_text(h), h.conflict and "HandoffConflictHint" or "HandoffHint" } } or nil,
      virt_text_pos = "eol",
    })
    return
  end

  local line_hl = h.conflict and "HandoffConflict" or "HandoffRemove"
  for row = first, last do
    vim.api.nvim_buf_set_extmark(bufnr, M.ns, row, 0, { line_hl_group = line_hl, priority = 150 })
  end
  h.mark = vim.api.nvim_buf_set_extmark(bufnr, M.ns, first, 0, {
    end_row = last,
    end_col = 0,
    virt_text = opts.hints and { { hint_text(h), h.conflict and "HandoffConflictHint" or "HandoffHint" } } or nil,
    virt_text_pos = "eol",
  })
  if #virt > 0 then
    vim.api.nvim_buf_set_extmark(bufnr, M.ns, last, 0, { virt_lines = virt })
  end
end

--- Redraws a buffer's changes from a `textDocument/publishDiagnostics` of the handoff
--- client (called by its handler in lsp.lua).
function M.on_publish(result, client_id)
  if not config.options.inline.enabled then
    return
  end
  local bufnr = buffer_of(result.uri, client_id)
  if not bufnr or not vim.api.nvim_buf_is_loaded(bufnr) then
    return
  end
  -- Diagnostics computed for an older text would be drawn on the wrong lines; the
  -- server publishes again once it has the buffer's latest change.
  local version = vim.lsp.util.buf_versions[bufnr]
  if result.version and version and result.version < version then
    return
  end
  vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  local hunks = {}
  local line_count = vim.api.nvim_buf_line_count(bufnr)
  for _, d in ipairs(result.diagnostics or {}) do
    local data = type(d.data) == "table" and d.data or nil
    if d.source == "handoff" and data and data.task and data.hunk then
      local old, new = data_lines(data.oldLines), data_lines(data.newLines)
      local s, e = d.range.start, d.range["end"]
      local empty = s.line == e.line and s.character == e.character
      -- An insertion may sit just past the last line (it goes at the end of the file).
      local first = math.min(s.line, empty and line_count or line_count - 1)
      -- The range ends on the hunk's last line (server/src/lsp/convert.rs); the count
      -- of `-` lines says the same and is not ambiguous when that line is empty.
      local last = #old > 0 and s.line + #old - 1 or e.line
      last = math.max(math.min(last, line_count - 1), math.min(first, line_count - 1))
      local h = {
        client_id = client_id,
        task = data.task,
        hunk = data.hunk,
        conflict = data.conflict == true,
        old = old,
        new = new,
        empty = empty,
      }
      local ok, err = pcall(draw, bufnr, h, first, last)
      if ok then
        table.insert(hunks, h)
      else
        vim.notify("handoff: cannot draw change " .. data.hunk .. " of task #" .. data.task .. ": " .. err,
          vim.log.levels.DEBUG)
      end
    end
  end
  by_buffer[bufnr] = hunks
  pcall(vim.api.nvim_exec_autocmds, "User", {
    pattern = "HandoffHunksChanged",
    modeline = false,
    data = { buf = bufnr, count = #hunks },
  })
end

---@class handoff.PlacedHunk: handoff.Hunk
---@field first integer  0-based first line now
---@field last integer   0-based last line now (== first for an insertion)

--- The buffer's pending changes where they are now, in line order.
---@param bufnr integer|nil
---@return handoff.PlacedHunk[]
function M.get(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local out = {}
  for _, h in ipairs(by_buffer[bufnr] or {}) do
    local pos = h.mark and vim.api.nvim_buf_get_extmark_by_id(bufnr, M.ns, h.mark, { details = true })
    if pos and pos[1] then
      local placed = vim.deepcopy(h)
      placed.first = pos[1]
      placed.last = h.empty and pos[1] or math.max(pos[3].end_row or pos[1], pos[1])
      table.insert(out, placed)
    end
  end
  table.sort(out, function(a, b)
    return a.first < b.first or (a.first == b.first and a.task < b.task)
  end)
  return out
end

--- The change on the cursor's line.
---@return handoff.PlacedHunk|nil
function M.at_cursor(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local row = vim.api.nvim_win_get_cursor(0)[1] - 1
  for _, h in ipairs(M.get(bufnr)) do
    if row >= h.first and row <= h.last then
      return h
    end
  end
end

local function say(msg)
  vim.api.nvim_echo({ { msg, "WarningMsg" } }, false, {})
end

local function decide(command, whole_task)
  local bufnr = vim.api.nvim_get_current_buf()
  local h = M.at_cursor(bufnr)
  if not h then
    local all = M.get(bufnr)
    if not whole_task or #all == 0 then
      say(#all == 0 and "Handoff: no pending changes in this buffer"
        or "Handoff: no change on this line (" .. (config.options.keymaps.next or ":Handoff next") .. " jumps to the next)")
      return
    end
    h = all[1]
  end
  local client = vim.lsp.get_client_by_id(h.client_id)
  if not client then
    say("Handoff: the language server of this buffer has stopped")
    return
  end
  local args = { task = h.task, uri = vim.uri_from_bufnr(bufnr) }
  if not whole_task then
    args.hunk = h.hunk
  end
  lsp.request(client, command, args, nil, { bufnr = bufnr })
end

--- Accepts the change under the cursor: the server edits the buffer (not the file on
--- disk), after checking that its lines are still what the agent started from.
function M.accept()
  decide("handoff.accept", false)
end

function M.reject()
  decide("handoff.reject", false)
end

--- Accepts every change of the task under the cursor (or of the first change's task)
--- in this buffer.
function M.accept_all()
  decide("handoff.accept", true)
end

local function jump(forward)
  local hunks = M.get(0)
  if #hunks == 0 then
    say("Handoff: no pending changes in this buffer")
    return
  end
  local row = vim.api.nvim_win_get_cursor(0)[1] - 1
  local target
  if forward then
    for _, h in ipairs(hunks) do
      if h.first > row then target = h break end
    end
    if not target and vim.o.wrapscan then target = hunks[1] end
  else
    for i = #hunks, 1, -1 do
      if hunks[i].first < row then target = hunks[i] break end
    end
    if not target and vim.o.wrapscan then target = hunks[#hunks] end
  end
  if not target then
    say("Handoff: no more changes " .. (forward and "below" or "above"))
    return
  end
  vim.cmd("normal! m'")
  vim.api.nvim_win_set_cursor(0, { target.first + 1, 0 })
end

function M.next()
  jump(true)
end

function M.prev()
  jump(false)
end

--- Buffer-local keymaps, set when the handoff client attaches.
function M.attach(bufnr)
  if vim.b[bufnr].handoff_keymaps then
    return
  end
  vim.b[bufnr].handoff_keymaps = true
  local keys = config.options.keymaps
  local function map(mode, lhs, rhs, desc)
    if lhs and lhs ~= "" then
      vim.keymap.set(mode, lhs, rhs, { buffer = bufnr, silent = true, desc = desc })
    end
  end
  map("n", keys.accept, M.accept, "Handoff: accept the change under the cursor")
  map("n", keys.reject, M.reject, "Handoff: reject the change under the cursor")
  map("n", keys.accept_all, M.accept_all, "Handoff: accept all changes of this task in the buffer")
  map("n", keys.next, M.next, "Handoff: next change")
  map("n", keys.prev, M.prev, "Handoff: previous change")
  map("n", keys.delegate, function() require("handoff.commands").todo() end,
    "Handoff: delegate the TODO on this line")
  map("x", keys.delegate, ":Handoff delegate<CR>", "Handoff: delegate the selection")
end

function M.detach(bufnr)
  by_buffer[bufnr] = nil
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
end

return M
