-- The user story of inline review: start a task with :Handoff start, watch the
-- statusline, hear that it is done, see its changes inline where they apply, move
-- between them with ]h / [h; the one whose lines the user rewrote meanwhile is a
-- conflict that <leader>ha refuses and <leader>hr rejects; <leader>ha accepts the
-- other. The file on disk stays the user's: only the buffer changes.

local H = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/helpers.lua")
local check, wait = H.check, H.wait

local handoff = H.setup()

-- Every state the statusline went through.
local statuses = {}
vim.api.nvim_create_autocmd("User", {
  pattern = "HandoffTaskChanged",
  callback = function() table.insert(statuses, handoff.status()) end,
})

local buf = H.open("greet.py")
local original = H.lines(buf)
check(handoff.status() == "", "status before any task: %q", handoff.status())
check(#H.marks(buf) == 0, "extmarks before any task: %s", vim.inspect(H.marks(buf)))

-- 1. :Handoff start asks for the prompt and starts a task for the repository.
table.insert(H.inputs, "Make the greetings louder")
vim.cmd("Handoff start")
wait(30000, "the task to start", function() return #H.notes_with("Started task #1") == 1 end)
check(H.asked[1]:find("background agent", 1, true), "prompt asked: %s", vim.inspect(H.asked))

-- 2. It runs, then ends: the statusline shows both, and the user is told once.
H.wait_task(1, "done")
check(vim.tbl_contains(statuses, "⟳1"), "the statusline never showed the running task: %s", vim.inspect(statuses))
check(handoff.status() == "✓1", "status after the task: %q", handoff.status())
wait(5000, "the completion message", function() return #H.notes_with("Handoff #1 done") > 0 end)
local done = H.notes_with("Handoff #1 done")
check(#done == 1, "told %d times that the task is done: %s", #done, vim.inspect(done))
check(done[1].msg:find("greet.py", 1, true) and done[1].msg:find("CHANGES.md", 1, true),
  "completion message lacks the changed files: %s", done[1].msg)
local record = H.cli_json("show", "1", "--json")
check(record.state == "done" and record.prompt:find("louder", 1, true), "handoff show 1: %s", vim.inspect(record))

-- 3. Its two changes show inline: the lines they replace highlighted, the proposed
-- lines as virtual lines below them.
wait(20000, "two inline changes", function() return #handoff.hunks(buf) == 2 end)
local rows, virt = H.decorations(buf)
check(rows[1] == "HandoffRemove" and rows[2] == "HandoffRemove" and rows[6] == "HandoffRemove",
  "highlighted rows: %s", vim.inspect(rows))
check(rows[0] == nil and rows[3] == nil and rows[5] == nil and rows[7] == nil,
  "rows highlighted that no change touches: %s", vim.inspect(rows))
check(vim.deep_equal(virt[2], { '    return ("hello, " + name).upper()' }), "virtual lines below row 2: %s",
  vim.inspect(virt))
check(vim.deep_equal(virt[6], { '    return "goodbye, " + name' }), "virtual lines below row 6: %s", vim.inspect(virt))
local hunks = handoff.hunks(buf)
check(hunks[1].first == 1 and hunks[1].last == 2 and hunks[2].first == 6 and hunks[2].last == 6,
  "hunk places: %s", vim.inspect(hunks))

-- A pure insertion at the end of a file shows as virtual lines below its last line;
-- accepting it appends exactly that line.
local changes = H.open("CHANGES.md")
wait(20000, "the insertion in CHANGES.md", function() return #handoff.hunks(changes) == 1 end)
local crows, cvirt = H.decorations(changes)
check(next(crows) == nil, "an insertion highlights no existing line: %s", vim.inspect(crows))
check(vim.deep_equal(cvirt[2], { "- Louder greetings." }), "virtual lines in CHANGES.md: %s", vim.inspect(cvirt))
vim.api.nvim_win_set_cursor(0, { 3, 0 })
H.press("<leader>ha")
wait(20000, "CHANGES.md to take the insertion", function()
  return vim.deep_equal(H.lines(changes), { "# Changes", "", "- First release.", "- Louder greetings." })
end)
wait(20000, "the insertion to be gone", function() return #H.marks(changes) == 0 end)
vim.cmd.buffer(buf)

-- 4. ]h and [h move between them (and wrap, as 'wrapscan' is on).
vim.api.nvim_win_set_cursor(0, { 1, 0 })
H.press("]h")
check(vim.api.nvim_win_get_cursor(0)[1] == 2, "]h from line 1 went to %d", vim.api.nvim_win_get_cursor(0)[1])
H.press("]h")
check(vim.api.nvim_win_get_cursor(0)[1] == 7, "second ]h went to %d", vim.api.nvim_win_get_cursor(0)[1])
H.press("]h")
check(vim.api.nvim_win_get_cursor(0)[1] == 2, "]h wrapped to %d", vim.api.nvim_win_get_cursor(0)[1])
H.press("[h")
check(vim.api.nvim_win_get_cursor(0)[1] == 7, "[h wrapped to %d", vim.api.nvim_win_get_cursor(0)[1])

-- 5. The user rewrites the line of the second change meanwhile: it turns into a
-- conflict, drawn as such; <leader>ha on it is refused with a message and changes
-- nothing; <leader>hr rejects it.
vim.api.nvim_buf_set_lines(buf, 6, 7, false, { '    return "see you, " + name' })
wait(20000, "the second change to turn into a conflict", function()
  local h = handoff.hunks(buf)
  return #h == 2 and h[2].conflict and not h[1].conflict
end)
rows = H.decorations(buf)
check(rows[6] == "HandoffConflict" and rows[1] == "HandoffRemove", "highlights with a conflict: %s", vim.inspect(rows))
local edited = H.lines(buf)
vim.api.nvim_win_set_cursor(0, { 7, 0 })
H.press("<leader>ha")
wait(20000, "the refusal", function() return #H.notes_with("you edited the lines it changes") > 0 end)
local refused = H.notes_with("you edited the lines it changes")
check(#refused == 1 and refused[1].level == vim.log.levels.ERROR, "refusal shown as: %s", vim.inspect(refused))
check(vim.deep_equal(H.lines(buf), edited), "a conflicting change was applied: %s", vim.inspect(H.lines(buf)))
H.press("<leader>hr")
wait(20000, "the conflict to be rejected", function() return #handoff.hunks(buf) == 1 end)

-- 6. <leader>ha on the first change accepts it: the buffer reads as the agent wrote it,
-- around the user's own edit.
vim.api.nvim_win_set_cursor(0, { 3, 4 })
H.press("<leader>ha")
local accepted = {
  "def greet(name):",
  '    return ("hello, " + name).upper()',
  "",
  "",
  "def farewell(name):",
  '    return "see you, " + name',
  "",
  "",
  'print(greet("world"))',
}
wait(20000, "the buffer to take the accepted change", function() return vim.deep_equal(H.lines(buf), accepted) end)
wait(20000, "no change left", function() return #handoff.hunks(buf) == 0 and #H.marks(buf) == 0 end)

-- 7. With nothing left, the keys say so instead of failing.
vim.api.nvim_win_set_cursor(0, { 6, 0 })
H.press("]h")
check(vim.api.nvim_win_get_cursor(0)[1] == 6, "]h moved with no change left")

-- The server's own announcement of the end is not shown on top of the plugin's.
check(#H.notes_with("Handoff #1 done") == 1, "told more than once that the task is done: %s", vim.inspect(H.notes))

-- The file on disk is the user's: accepting edited the buffer only.
local disk = vim.fn.readfile(H.repo .. "/greet.py")
check(vim.deep_equal(disk, original), "greet.py on disk changed: %s", vim.inspect(disk))
for _, n in ipairs(H.notes) do
  check(n.level ~= vim.log.levels.ERROR or n == refused[1], "an error was shown: %s", n.msg)
end

H.done("review")
