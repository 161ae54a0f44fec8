-- Several attempts: :Handoff start --attempts=2 --agent=scripted,slow starts two tasks
-- from one snapshot as a group, the agents taking them in turn; the task picker lists
-- them together and compares them (state, files, lines); "Keep this one (remove the
-- others)" on the finished one cancels the other, still running, and removes it.

local H = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/helpers.lua")
local check, wait = H.check, H.wait

H.setup()
H.open("greet.py")

-- Wrong counts are refused before anything starts; a bare --attempts asks.
vim.cmd("Handoff start --attempts=0 Make the greetings louder")
check(#H.notes_with("attempts: a number from 1 to 16") == 1, "notes: %s", vim.inspect(H.notes))
table.insert(H.inputs, "many")
vim.cmd("Handoff start --attempts Make the greetings louder")
wait(10000, "the count to be refused", function() return #H.notes_with("attempts: a number from 1 to 16") == 2 end)
check(H.asked[1]:find("how many attempts", 1, true), "asked: %s", vim.inspect(H.asked))

vim.cmd("Handoff start --attempts=2 --agent=scripted,slow Make the greetings louder")
wait(30000, "the attempts to start", function() return #H.notes_with("Started 2 attempts as group g1") == 1 end)
H.wait_task(1, "done")
H.wait_task(2, "running", 60000)
local listed = H.cli_json("list", "--json")
table.sort(listed, function(a, b) return a.id < b.id end)
check(#listed == 2 and listed[1].group == 1 and listed[2].group == 1, "groups: %s", vim.inspect(listed))
check(listed[1].agent == "scripted" and listed[2].agent == "slow", "agents: %s %s", listed[1].agent, listed[2].agent)

-- The picker: the group's tasks together, in the order started, compared.
H.choose("#1 ")
H.choose("Keep this one")
vim.cmd("Handoff tasks")
wait(20000, "the picker and its actions", function() return #H.selects == 2 end)
local one = H.cli_json("show", "1", "--json")
local shown = H.selects[1].shown
check(shown[1] == ("#1 ✓ done  [g1 scripted] Make the greetings louder · 2 files · +%d −%d"):format(one.lines_added,
  one.lines_removed), "first attempt: %s", shown[1])
check(shown[2] == "#2 ⟳ running  [g1 slow] Make the greetings louder", "second attempt: %s", shown[2])
check(one.lines_added > 0 and one.lines_removed > 0, "line counts: %s", vim.inspect(one))
check(vim.tbl_contains(H.selects[2].shown, "Keep this one (remove the others)"), "actions: %s",
  vim.inspect(H.selects[2].shown))

-- Keeping #1 cancels #2 (it would wait 10 minutes) and removes it.
wait(90000, "#2 to be removed", function() return #H.notes_with("Kept task #1") == 1 end)
check(H.notes_with("Kept task #1")[1].msg:find("removed #2 (their branches stay)", 1, true), "%s",
  H.notes_with("Kept task #1")[1].msg)
wait(10000, "#2 to leave the plugin's list", function()
  return not vim.iter(require("handoff").tasks()):any(function(e) return e.task.id == 2 end)
end)
check(#H.cli_json("list", "--json") == 1, "tasks left: %s", vim.inspect(H.cli_json("list", "--json")))

H.done("attempts")
