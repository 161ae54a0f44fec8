-- The review loop: a task's changes show inline; the user comments on one with
-- :Handoff comment (the text asked for) and on the other with the LSP code action
-- "Comment on this change (Handoff #1)…"; each comment is drawn under its change until
-- :Handoff send sends both as the task's next turn; the agent answers them, and its new
-- result shows inline, without the comments.

local H = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/helpers.lua")
local check, wait = H.check, H.wait

local handoff = H.setup()
local buf = H.open("greet.py")

vim.cmd("Handoff start Make the greetings louder")
wait(30000, "the task to start", function() return #H.notes_with("Started task #1") == 1 end)
H.wait_task(1, "done")
wait(20000, "two inline changes", function() return #handoff.hunks(buf) == 2 end)

local FIRST = "keep the greeting lower-case in the tests"
local SECOND = "say see you instead"
local function drawn(text)
  return require("handoff.inline").comment_text(1, text)
end

-- 1. :Handoff comment on the first change asks for the text; the comment is drawn
-- below the change's proposed line.
vim.api.nvim_win_set_cursor(0, { 2, 0 })
table.insert(H.inputs, FIRST)
vim.cmd("Handoff comment")
wait(20000, "the first comment under its change", function()
  local _, virt = H.decorations(buf)
  return vim.deep_equal(virt[2], { '    return ("hello, " + name).upper()', drawn(FIRST) })
end)
check(H.asked[#H.asked]:find("Comment on this change (Handoff #1)", 1, true), "asked: %s", vim.inspect(H.asked))
wait(20000, "the answer", function() return #H.notes_with("Comment kept for task #1 (1 pending)") == 1 end)
check(vim.deep_equal(handoff.hunks(buf)[1].comments, { FIRST }), "hunks: %s", vim.inspect(handoff.hunks(buf)))

-- 2. The server's code action on the second change runs handoff.comment without text:
-- the plugin asks for it.
vim.api.nvim_win_set_cursor(0, { 7, 0 })
table.insert(H.inputs, SECOND)
vim.lsp.buf.code_action({
  apply = true,
  filter = function(a) return a.title:find("Comment on this change (Handoff #1)", 1, true) ~= nil end,
})
wait(20000, "the second comment under its change", function()
  local _, virt = H.decorations(buf)
  return vim.deep_equal(virt[6], { '    return "goodbye, " + name', drawn(SECOND) })
end)
local pending = H.cli_json("comment", "1", "--list", "--json")
check(#pending == 2 and pending[1].text == FIRST and pending[2].text == SECOND, "pending: %s", vim.inspect(pending))

-- The picker says what waits, and offers to send it.
H.choose("#1 ")
table.insert(H.choosers, function() return nil end) -- dismissed
vim.cmd("Handoff tasks")
wait(20000, "the picker", function() return #H.selects == 2 end)
check(H.selects[1].shown[1]:find("💬 2 to send", 1, true), "picker: %s", vim.inspect(H.selects[1].shown))
check(vim.tbl_contains(H.selects[2].shown, "Send 2 comments"), "actions: %s", vim.inspect(H.selects[2].shown))

-- 3. :Handoff send, on a line of the task's change: both comments go as its next turn.
vim.api.nvim_win_set_cursor(0, { 2, 0 })
vim.cmd("Handoff send")
wait(20000, "the comments to be sent", function() return #H.notes_with("Sent 2 comments to task #1") == 1 end)
wait(120000, "task #1's second turn to end", function()
  local t = H.cli_json("show", "1", "--json")
  return t.state == "done" and #t.turns == 2
end)
local prompt = H.cli_json("show", "1", "--json").turns[2].prompt
check(prompt:find("Review comments on your changes (2)", 1, true) and prompt:find(FIRST, 1, true)
  and prompt:find(SECOND, 1, true), "the second turn's prompt:\n%s", prompt)

-- 4. Its result shows inline: the farewell as the agent rewrote it, no comment left.
wait(30000, "the second turn's change inline", function()
  local _, virt = H.decorations(buf)
  return vim.deep_equal(virt[6], { '    return "goodbye, " + name.title()' })
end)
local _, virt = H.decorations(buf)
check(vim.deep_equal(virt[2], { '    return ("hello, " + name).upper()' }), "first change: %s", vim.inspect(virt))
for _, h in ipairs(handoff.hunks(buf)) do
  check(#h.comments == 0, "a comment is still drawn: %s", vim.inspect(h))
end
for _, n in ipairs(H.notes) do
  check(n.level ~= vim.log.levels.ERROR, "an error was shown: %s", n.msg)
end

H.done("comments")
