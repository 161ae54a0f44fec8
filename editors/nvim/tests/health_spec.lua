-- :checkhealth handoff against a working setup: the binary, `handoff doctor` (Docker,
-- the agent's image, the repository's config) and the running client, with no error.

local H = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/helpers.lua")
local check = H.check

H.setup()
H.open("greet.py")

vim.cmd("checkhealth handoff")
local report = H.lines(0)
local text = table.concat(report, "\n")
H.log("checkhealth handoff:\n%s", text)
check(vim.api.nvim_buf_get_name(0) == "health://", "not in the health buffer: %s", vim.api.nvim_buf_get_name(0))
check(not text:find("ERROR", 1, true), "checkhealth reported an error:\n%s", text)
check(not text:find("Failed to run healthcheck", 1, true), "the healthcheck raised:\n%s", text)
for _, expected in ipairs({
  "handoff: binary",
  "handoff " , -- `handoff --version`
  "config valid",
  "Docker ",
  "agent `scripted`: image",
  "for " .. H.repo .. ": 1 buffer attached",
}) do
  check(text:find(expected, 1, true), "the report lacks %q:\n%s", expected, text)
end

H.done("health")
