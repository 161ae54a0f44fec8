-- The task list and what it offers: delegate a selection with <leader>hd in visual mode
-- and a TODO with <leader>hd in normal mode, then :Handoff tasks (entries as
-- `handoff list --json` has them) → log, diff (base vs result, side by side), reply (a
-- second turn of the task, with the message), accept all (both files, in buffers),
-- cancel (a task started with :Handoff! start, picking the agent `slow`), and a task
-- removed with `handoff rm` leaving the list.

local H = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/helpers.lua")
local check, wait = H.check, H.wait

H.setup()

local buf = H.open("greet.py")
local original = H.lines(buf)
local changes_on_disk = vim.fn.readfile(H.repo .. "/CHANGES.md")

-- 1. A selection, delegated from visual mode with an instruction.
table.insert(H.inputs, "Shout the greeting")
H.press("2GVj<leader>hd")
wait(30000, "task #1 to start", function() return #H.notes_with("Started task #1") == 1 end)
check(H.asked[1]:find("lines 2-3", 1, true), "instruction asked as: %s", vim.inspect(H.asked))
local one = H.cli_json("show", "1", "--json")
check(one.prompt:find("Shout the greeting", 1, true) and one.prompt:find("greet.py", 1, true),
  "the selection's prompt lacks the instruction or the path:\n%s", one.prompt)
check(one.origin and one.origin.path == "greet.py" and one.origin.line == 1, "origin: %s", vim.inspect(one.origin))

-- 2. The TODO on the cursor's line, delegated with <leader>hd in normal mode.
vim.api.nvim_win_set_cursor(0, { 2, 6 })
H.press("<leader>hd")
wait(30000, "task #2 to start", function() return #H.notes_with("Started task #2") == 1 end)
local two = H.cli_json("show", "2", "--json")
check(two.prompt:find("TODO: greet loudly", 1, true), "the TODO's prompt lacks the TODO:\n%s", two.prompt)
check(two.origin and two.origin.line == 1, "origin of the TODO task: %s", vim.inspect(two.origin))
H.wait_task(1, "done")
H.wait_task(2, "done")

-- 3. The picker lists what `handoff list --json` lists.
local listed = H.cli_json("list", "--json")
H.choose("#1 ")
H.choose("Show log")
vim.cmd("Handoff tasks")
wait(20000, "the task picker and its actions", function() return #H.selects == 2 end)
local picker = H.selects[1]
check(#picker.items == #listed and #listed == 2, "picker %s vs list %s", vim.inspect(picker.shown), #listed)
for _, t in ipairs(listed) do
  local found
  for i, item in ipairs(picker.items) do
    if item.id == t.id then
      found = picker.shown[i]
      check(item.state == t.state and item.branch == t.branch and item.head_commit == t.head_commit,
        "entry #%d differs from handoff list: %s vs %s", t.id, vim.inspect(item), vim.inspect(t))
    end
  end
  check(found and found:find("#" .. t.id .. " ✓ done", 1, true) and found:find(t.title, 1, true),
    "entry for #%d shown as %s", t.id, tostring(found))
end
local actions = H.selects[2].shown
check(vim.deep_equal(actions, { "Show log", "Open diff", "Reply…", "Accept all changes" }),
  "actions of a finished task: %s", vim.inspect(actions))

-- 4. Show log: the agent's output (it printed its prompt) opens in a split.
local function shown_buffer(suffix)
  for _, w in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    local b = vim.api.nvim_win_get_buf(w)
    if vim.api.nvim_buf_get_name(b):sub(-#suffix) == suffix then
      return b
    end
  end
end
wait(20000, "the log of task #1", function() return shown_buffer("task-1.log") end)
local log = table.concat(H.lines(shown_buffer("task-1.log")), "\n")
check(log:find("Shout the greeting", 1, true), "log of task #1:\n%s", log)
vim.cmd("close")

-- :Handoff log ID does the same without the picker.
vim.cmd("Handoff log 2")
wait(20000, "the log of task #2", function() return shown_buffer("task-2.log") end)
check(table.concat(H.lines(shown_buffer("task-2.log")), "\n"):find("greet loudly", 1, true), "log of #2")
vim.cmd("close")

-- 5. Open diff: pick a file; base and result side by side in diff mode.
H.choose("#1 ")
H.choose("Open diff")
H.choose("greet.py")
local tabs = #vim.api.nvim_list_tabpages()
vim.cmd("Handoff tasks")
wait(20000, "the diff tab", function() return #vim.api.nvim_list_tabpages() == tabs + 1 end)
check(vim.deep_equal(H.selects[#H.selects].shown, { "greet.py", "CHANGES.md", "All files (unified diff)" })
  or vim.deep_equal(H.selects[#H.selects].shown, { "CHANGES.md", "greet.py", "All files (unified diff)" }),
  "files offered: %s", vim.inspect(H.selects[#H.selects].shown))
local wins = vim.api.nvim_tabpage_list_wins(0)
check(#wins == 2, "diff tab has %d windows", #wins)
local function git_show(rev)
  local out = vim.system({ "git", "-C", H.repo, "show", rev .. ":greet.py" }, { text = true }):wait()
  check(out.code == 0, "git show %s: %s", rev, out.stderr)
  local lines = vim.split(out.stdout, "\n", { plain = true })
  table.remove(lines) -- the final newline
  return lines
end
local left, right = vim.api.nvim_win_get_buf(wins[1]), vim.api.nvim_win_get_buf(wins[2])
check(vim.wo[wins[1]].diff and vim.wo[wins[2]].diff, "windows not in diff mode")
check(vim.deep_equal(H.lines(left), git_show(one.base_commit)), "base side: %s", vim.inspect(H.lines(left)))
one = H.cli_json("show", "1", "--json")
check(vim.deep_equal(H.lines(right), git_show(one.head_commit)), "result side: %s", vim.inspect(H.lines(right)))
check(H.lines(right)[2]:find("upper()", 1, true), "the result side lacks the change: %s", vim.inspect(H.lines(right)))
check(vim.bo[left].filetype == "python", "filetype of the base side: %s", vim.bo[left].filetype)
vim.cmd("tabclose")

-- 6. Reply: a follow-up turn on task #1's branch; the agent gets the message.
table.insert(H.inputs, "also handle None")
vim.cmd("Handoff reply 1")
wait(20000, "the reply to be sent", function() return #H.notes_with("Sent to task #1") == 1 end)
check(#H.notes_with("not supported") == 0, "the reply was refused: %s", vim.inspect(H.notes_with("task #1")))
wait(60000, "task #1's second turn to end", function()
  local t = H.cli_json("show", "1", "--json")
  return t.state == "done" and #t.turns == 2
end)
one = H.cli_json("show", "1", "--json")
check(one.turns[2].prompt == "also handle None", "the second turn's prompt: %s", vim.inspect(one.turns[2]))
local log = vim.system({ H.bin, "-C", H.repo, "logs", "1" }, { text = true }):wait(60000)
check(log.stdout:find("turn 2 (follow-up): also handle None", 1, true), "the log of both turns:\n%s", log.stdout)

-- 7. Accept all changes of task #2: both files, in buffers; the disk is untouched.
H.choose("#2 ")
H.choose("Accept all changes")
vim.cmd("Handoff tasks")
wait(30000, "accept all to finish", function() return #H.notes_with("Task #2: accepted") == 1 end)
local summary = H.notes_with("Task #2: accepted")[1]
check(summary.msg:find("accepted 3 changes", 1, true), "accept all: %s", summary.msg)
-- The server answers first; the edits follow as workspace/applyEdit.
local head_lines = git_show(H.cli_json("show", "2", "--json").head_commit)
wait(10000, "greet.py to take the changes", function() return vim.deep_equal(H.lines(buf), head_lines) end)
local changes = vim.fn.bufnr(H.repo .. "/CHANGES.md")
check(changes > 0, "CHANGES.md was not loaded")
wait(10000, "CHANGES.md to take the change", function()
  return H.lines(changes)[#H.lines(changes)] == "- Louder greetings."
end)
check(vim.bo[changes].modified and vim.bo[buf].modified, "accepted buffers should be modified, not written")
check(vim.deep_equal(vim.fn.readfile(H.repo .. "/greet.py"), original), "greet.py on disk changed")
check(vim.deep_equal(vim.fn.readfile(H.repo .. "/CHANGES.md"), changes_on_disk), "CHANGES.md on disk changed")

-- 8. A running task offers Cancel, which stops it (its agent would wait 10 minutes).
-- :Handoff! start picks the agent first: the repository's default leads the list.
H.choose("slow")
vim.cmd("Handoff! start Wait for a while")
wait(30000, "task #3 to start", function() return #H.notes_with("Started task #3 (slow)") == 1 end)
local offered = H.selects[#H.selects].shown
check(offered[1] == "scripted (default) — .handoff.toml" and #offered == 5, "agents offered: %s", vim.inspect(offered))
for _, name in ipairs({ "claude — Claude Code", "codex — Codex CLI", "shell — ", "slow — .handoff.toml" }) do
  check(vim.iter(offered):any(function(o) return vim.startswith(o, name) end), "no %q among %s", name,
    vim.inspect(offered))
end
H.wait_task(3, "running", 60000)
check(require("handoff").status() == "⟳1 ✓2", "status while #3 runs: %q", require("handoff").status())
H.choose("#3 ")
H.choose("Cancel")
vim.cmd("Handoff tasks")
wait(60000, "task #3 to be cancelled", function() return #H.notes_with("Task #3 cancelled") == 1 end)
check(vim.deep_equal(H.selects[#H.selects].shown, { "Show log", "Reply…", "Cancel" }),
  "actions of a running task: %s", vim.inspect(H.selects[#H.selects].shown))
H.wait_task(3, "cancelled")
wait(5000, "the cancellation message", function() return #H.notes_with("⊘ Handoff #3 cancelled") == 1 end)

check(require("handoff").status() == "✓2", "status: %q", require("handoff").status())

-- 9. A task removed in a terminal (`handoff rm`) leaves the plugin's list.
local rm = vim.system({ H.bin, "-C", H.repo, "rm", "3" }, { text = true }):wait(60000)
check(rm.code == 0, "handoff rm 3: %s", rm.stderr)
wait(10000, "task #3 to leave the list", function()
  return not vim.iter(require("handoff").tasks()):any(function(e) return e.task.id == 3 end)
end)
check(#require("handoff").tasks() == 2, "tasks left: %d", #require("handoff").tasks())

-- 10. A task that changes tool settings (.vscode/settings.json) and writes TIPS.md:
-- "Accept all changes" takes TIPS.md and holds the settings back, saying so; those are
-- read and accepted one by one.
vim.cmd("Handoff start Tune the editor settings")
wait(30000, "task #4 to start", function() return #H.notes_with("Started task #4") == 1 end)
H.wait_task(4, "done")
local four = H.cli_json("show", "4", "--json")
check(vim.deep_equal(four.sensitive_files, { ".vscode/settings.json" }), "sensitive files of #4: %s",
  vim.inspect(four.sensitive_files))
H.choose("#4 ")
H.choose("Accept all changes")
vim.cmd("Handoff tasks")
wait(30000, "accept all of #4 to finish", function() return #H.notes_with("Task #4: accepted") == 1 end)
local held = H.notes_with("task #4 changes tool settings in .vscode/settings.json")
check(#held == 1 and held[1].level == vim.log.levels.WARN, "the held-back settings were not said: %s",
  vim.inspect(H.notes))
local four_summary = H.notes_with("Task #4: accepted")[1].msg
check(four_summary:find("accepted 1 change in TIPS.md", 1, true), "accept all of #4: %s", four_summary)
local tips = vim.fn.bufnr(H.repo .. "/TIPS.md")
wait(10000, "TIPS.md to take the change", function()
  return tips > 0 and vim.deep_equal(H.lines(tips), { "- Save often." })
end)
check(vim.fn.bufnr(H.repo .. "/.vscode/settings.json") == -1, "the settings file was loaded to be accepted")

H.done("tasks")
