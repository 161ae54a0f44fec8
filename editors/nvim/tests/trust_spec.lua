-- A configuration that changed since it was trusted (a `git pull` brought a profile
-- that passes one of the user's variables to its agent): opening a file asks with
-- vim.ui.select, naming what is ignored until then; "Trust" trusts it, and the new
-- profile runs with the variable. Changed again: "Not now" leaves it untrusted, and
-- `:Handoff trust` trusts it.

local H = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/helpers.lua")
local check, wait = H.check, H.wait

-- The user's variable, in the environment the server starts with.
vim.env.HANDOFF_E2E_PASSED = "passed through once trusted"

local config = H.repo .. "/.handoff.toml"
local function append(text)
  local f = assert(io.open(config, "a"))
  f:write(text)
  f:close()
end
local function trusted()
  return vim.system({ H.bin, "-C", H.repo, "trust", "--status" }, { text = true }):wait(60000).code == 0
end

local image = assert(io.open(config)):read("a"):match('image = "([^"]+)"')
append(([[
[agents.envcheck]
image = "%s"
env = ["HANDOFF_E2E_PASSED"]
command = ["sh", "-c", "printf '%%s\\n' \"$HANDOFF_E2E_PASSED\" > PASSED.md"]
]]):format(image))
check(not trusted(), "the changed configuration is not trusted")

H.setup()
H.choose("Trust")
H.open("greet.py")
wait(20000, "the trust question", function() return #H.selects == 1 end)
local asked = H.selects[1]
check(vim.deep_equal(asked.shown, { "Trust", "Not now" }), "choices: %s", vim.inspect(asked.shown))
check(asked.opts.prompt:find("ignored: default_agent, agents.envcheck (a new profile), ", 1, true), "prompt: %s",
  asked.opts.prompt)
wait(20000, "the trust to be recorded", function() return #H.notes_with("trusted the configuration of") == 1 end)
check(H.notes_with("trusted the configuration of")[1].msg:find("now applied: default_agent, agents.envcheck (a new profile), ", 1, true),
  "%s", H.notes_with("trusted the configuration of")[1].msg)
check(trusted(), "trusted as it is now")

-- The profile applies now: its agent runs with the user's variable.
vim.cmd("Handoff start --agent=envcheck Say what you were given")
H.wait_task(1, "done")

-- Changed again, with a new file: opening it asks again; "Not now" trusts nothing.
append("# changed again\n")
local f = assert(io.open(H.repo .. "/pulled.py", "w"))
f:write('print("pulled")\n')
f:close()
H.choose("Not now")
H.open("pulled.py")
wait(20000, "the question about the new content", function() return #H.selects == 2 end)
vim.wait(500)
check(not trusted(), "\"Not now\" trusts nothing")
check(#H.notes_with("trusted the configuration of") == 1, "notes: %s", vim.inspect(H.notes))

vim.cmd("Handoff trust")
wait(20000, ":Handoff trust to trust it", function() return #H.notes_with("trusted the configuration of") == 2 end)
check(trusted(), "trusted with :Handoff trust")

H.done("trust")
