-- Shared by the plugin's end-to-end scripts, run by server/tests/nvim_plugin_e2e.rs as
-- `nvim --headless --clean -l editors/nvim/tests/<script>.lua` with
--   HANDOFF_BIN  the handoff binary (the plugin is set up with it as `cmd`)
--   REPO         a repository whose default agent edits greet.py and CHANGES.md the
--                same way every time (see the Rust test for the fixture)
-- Every failed check raises an error: nvim exits non-zero and prints it.

local H = {}

H.bin, H.repo = os.getenv("HANDOFF_BIN"), os.getenv("REPO")
assert(H.bin and H.repo, "HANDOFF_BIN and REPO must be set")

-- The plugin is the directory above this one.
local here = vim.fs.dirname(debug.getinfo(1, "S").source:sub(2))
H.plugin_dir = vim.fs.dirname(vim.fn.fnamemodify(here, ":p"):gsub("/$", ""))

function H.check(cond, msg, ...)
  if not cond then
    error(string.format(msg, ...), 2)
  end
end

--- Waits for `cond` (polled every 50 ms) and fails with `what` after `ms`.
function H.wait(ms, what, cond)
  local ok = vim.wait(ms, function()
    local good, res = pcall(cond)
    return good and res
  end, 50)
  if not ok then
    error(("timed out after %d ms waiting for %s"):format(ms, what), 2)
  end
end

function H.lines(bufnr)
  return vim.api.nvim_buf_get_lines(bufnr or 0, 0, -1, false)
end

function H.log(fmt, ...)
  io.stderr:write(("[%s] " .. fmt .. "\n"):format(os.date("%H:%M:%S"), ...))
end

-- vim.notify, captured.
H.notes = {}
vim.notify = function(msg, level)
  table.insert(H.notes, { msg = msg, level = level })
  H.log("notify(%s): %s", tostring(level), msg)
end

--- Notifications whose text contains `text`.
function H.notes_with(text)
  return vim.tbl_filter(function(n) return n.msg:find(text, 1, true) ~= nil end, H.notes)
end

-- vim.ui.input and vim.ui.select, stubbed: answers are queued by the test, questions
-- are recorded.
H.inputs, H.asked = {}, {}
vim.ui.input = function(opts, on_confirm)
  table.insert(H.asked, opts.prompt)
  H.check(#H.inputs > 0, "unexpected vim.ui.input: %s", opts.prompt)
  local answer = table.remove(H.inputs, 1)
  vim.schedule(function() on_confirm(answer) end)
end

H.selects, H.choosers = {}, {}
vim.ui.select = function(items, opts, on_choice)
  local shown = vim.tbl_map(opts.format_item or tostring, items)
  table.insert(H.selects, { items = items, shown = shown, opts = opts })
  H.log("select %q: %s", opts.prompt or "", vim.inspect(shown))
  local chooser = table.remove(H.choosers, 1)
  H.check(chooser, "unexpected vim.ui.select: %s", opts.prompt or "")
  local choice = chooser(items, shown)
  vim.schedule(function() on_choice(choice) end)
end

--- Queues a choice for the next vim.ui.select: the first item whose shown text
--- contains `text`.
function H.choose(text)
  table.insert(H.choosers, function(items, shown)
    for i, s in ipairs(shown) do
      if s:find(text, 1, true) then
        return items[i]
      end
    end
    error(("no %q among %s"):format(text, vim.inspect(shown)))
  end)
end

--- Loads the plugin the way a packpath install does (plugin/ sourced at startup), then
--- calls setup().
function H.setup(opts)
  vim.opt.rtp:prepend(H.plugin_dir)
  vim.cmd.runtime("plugin/handoff.lua")
  H.check(vim.fn.exists(":Handoff") == 2, "plugin/handoff.lua did not define :Handoff")
  local handoff = require("handoff")
  handoff.setup(vim.tbl_deep_extend("force", { cmd = { H.bin, "lsp" } }, opts or {}))
  return handoff
end

-- Every publish of hunks for a buffer (the plugin's User event), counted per buffer.
H.published = {}
vim.api.nvim_create_autocmd("User", {
  pattern = "HandoffHunksChanged",
  callback = function(args)
    local buf = args.data.buf
    H.published[buf] = (H.published[buf] or 0) + 1
  end,
})

--- Opens `rel` in the repository and waits until the server has opened it: it answers
--- didOpen with the document's hunk diagnostics, which the plugin announces.
function H.open(rel)
  vim.cmd.edit(H.repo .. "/" .. rel)
  local bufnr = vim.api.nvim_get_current_buf()
  H.wait(20000, "the handoff client to attach to " .. rel, function()
    return #vim.lsp.get_clients({ bufnr = bufnr, name = "handoff" }) == 1
  end)
  H.wait(20000, "the server to open " .. rel, function() return (H.published[bufnr] or 0) > 0 end)
  return bufnr
end

--- The handoff CLI in the repository, its JSON output decoded.
function H.cli_json(...)
  local out = vim.system({ H.bin, "-C", H.repo, ... }, { text = true }):wait(60000)
  H.check(out.code == 0, "handoff %s failed: %s", table.concat({ ... }, " "), out.stderr)
  return vim.json.decode(out.stdout)
end

--- Waits for task `id` to reach `state` as the plugin knows it (from the server).
function H.wait_task(id, state, ms)
  H.wait(ms or 120000, ("task #%d to be %s"):format(id, state), function()
    for _, e in ipairs(require("handoff").tasks()) do
      if e.task.id == id and e.task.state == state then
        return true
      end
    end
  end)
end

--- Extmarks of the plugin's namespace in `bufnr`, with details.
function H.marks(bufnr)
  local ns = require("handoff.inline").ns
  return vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })
end

--- Rows with a line highlight of `group`, and the text of virtual lines by row.
function H.decorations(bufnr)
  local rows, virt = {}, {}
  for _, m in ipairs(H.marks(bufnr)) do
    local row, d = m[2], m[4]
    if d.line_hl_group == nil then
      -- nothing
    elseif type(d.line_hl_group) == "string" then
      rows[row] = d.line_hl_group
    end
    if d.virt_lines then
      virt[row] = virt[row] or {}
      for _, chunks in ipairs(d.virt_lines) do
        local text = table.concat(vim.tbl_map(function(c) return c[1] end, chunks))
        table.insert(virt[row], (text:gsub("%s+$", "")))
      end
    end
  end
  return rows, virt
end

--- Presses keys as the user would (mappings apply).
function H.press(keys)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, true, true), "mx", false)
end

function H.done(name)
  for _, c in ipairs(vim.lsp.get_clients({ name = "handoff" })) do
    c:stop()
  end
  print(name .. ": ok")
end

return H
