--- Agent profiles to pick from when starting a task: the built-in ones plus those
--- declared in the repository's `.handoff.toml` and the user's
--- `$XDG_CONFIG_HOME/handoff/config.toml`. Only what a picker needs is read (the
--- `[agents.NAME]` tables and `default_agent`); the server validates the rest.

local M = {}

M.builtin = {
  { name = "claude", detail = "Claude Code (needs ANTHROPIC_API_KEY)" },
  { name = "codex", detail = "Codex CLI (needs OPENAI_API_KEY)" },
  { name = "shell", detail = "runs the prompt as a shell command" },
}

local BUILTIN_DEFAULT = "claude"

--- `default_agent` and the agent names of a TOML text.
---@return { default: string|nil, agents: string[] }
function M.parse(text)
  local out = { agents = {} }
  local top = true
  for raw in vim.gsplit(text or "", "\n", { plain = true }) do
    local line = vim.trim(raw)
    if line:sub(1, 1) == "[" then
      top = false
      local name = line:match('^%[%s*agents%.([%w_%-]+)%s*%]') or line:match('^%[%s*agents%."([^"]+)"%s*%]')
      if name and not vim.tbl_contains(out.agents, name) then
        table.insert(out.agents, name)
      end
    elseif top then
      local default = line:match('^default_agent%s*=%s*"([^"]*)"') or line:match("^default_agent%s*=%s*'([^']*)'")
      if default then
        out.default = default
      end
    end
  end
  return out
end

local function read(path)
  local fd = io.open(path, "r")
  if not fd then
    return nil
  end
  local text = fd:read("*a")
  fd:close()
  return text
end

local function user_config()
  local xdg = os.getenv("XDG_CONFIG_HOME")
  local base = (xdg and xdg ~= "") and xdg or ((os.getenv("HOME") or "~") .. "/.config")
  return base .. "/handoff/config.toml"
end

---@class handoff.AgentChoice
---@field name string
---@field source string  "built-in", ".handoff.toml" or the user's config
---@field is_default boolean

--- The agents of the repository at `root`, the default first.
---@return handoff.AgentChoice[]
function M.list(root)
  local by_name, order = {}, {}
  local function add(name, source)
    if not by_name[name] then
      table.insert(order, name)
    end
    by_name[name] = source
  end
  for _, b in ipairs(M.builtin) do
    add(b.name, "built-in")
  end
  local default = BUILTIN_DEFAULT
  -- The repository's file overrides the user's, as in the server.
  for _, file in ipairs({ { user_config(), "~/.config/handoff/config.toml" }, { root .. "/.handoff.toml", ".handoff.toml" } }) do
    local parsed = M.parse(read(file[1]))
    for _, name in ipairs(parsed.agents) do
      add(name, file[2])
    end
    default = parsed.default or default
  end
  local out = {}
  for _, name in ipairs(order) do
    local choice = { name = name, source = by_name[name], is_default = name == default }
    table.insert(out, choice.is_default and 1 or #out + 1, choice)
  end
  return out
end

function M.format(choice)
  local detail = choice.source
  for _, b in ipairs(M.builtin) do
    if b.name == choice.name and choice.source == "built-in" then
      detail = b.detail
    end
  end
  return ("%s%s — %s"):format(choice.name, choice.is_default and " (default)" or "", detail)
end

return M
