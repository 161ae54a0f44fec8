--- The plugin's options: defaults, validation, and the merged result of `setup()`.

local M = {}

---@class handoff.Keymaps
---@field accept string|false       accept the change under the cursor
---@field reject string|false       reject the change under the cursor
---@field accept_all string|false   accept every change of that task in this file
---@field next string|false         jump to the next change
---@field prev string|false         jump to the previous change
---@field delegate string|false     normal mode: the TODO on this line; visual: the selection

---@class handoff.Options
---@field cmd string[]|nil          how to start the server; default { "handoff", "lsp" }
---@field agent string|nil          agent profile for new tasks; nil: the repository's default_agent
---@field auto_attach boolean       attach to every file buffer inside a git repository
---@field filter fun(bufnr: integer): boolean|nil  return false to keep a buffer detached
---@field keymaps handoff.Keymaps
---@field inline { enabled: boolean, hints: boolean, hide_diagnostics: boolean }
---@field notify boolean            vim.notify when a task ends
---@field open "split"|"vsplit"|"tab"|"edit"  where logs and diffs open

---@type handoff.Options
M.defaults = {
  cmd = nil,
  agent = nil,
  auto_attach = true,
  filter = nil,
  keymaps = {
    accept = "<leader>ha",
    reject = "<leader>hr",
    accept_all = "<leader>hA",
    next = "]h",
    prev = "[h",
    delegate = "<leader>hd",
  },
  inline = {
    enabled = true,
    -- "Handoff #3 · <leader>ha accept · <leader>hr reject" at the end of a change's first line.
    hints = true,
    -- The server's hunks are also diagnostics (for plain clients); the inline rendering
    -- replaces their virtual text, signs and underline. They stay in vim.diagnostic.get()
    -- and the diagnostic float.
    hide_diagnostics = true,
  },
  notify = true,
  open = "split",
}

--- The options in force: the defaults until setup() is called.
---@type handoff.Options
M.options = vim.tbl_extend("force", vim.deepcopy(M.defaults), { cmd = { "handoff", "lsp" } })

--- Problems found in the user's options, for :checkhealth.
---@type string[]
M.problems = {}

M.did_setup = false

local function unknown_keys(user, defaults, prefix, out)
  for k, v in pairs(user) do
    if defaults[k] == nil and not (prefix == "" and (k == "cmd" or k == "agent" or k == "filter")) then
      table.insert(out, ("unknown option `%s%s`"):format(prefix, k))
    elseif type(v) == "table" and type(defaults[k]) == "table" and not vim.islist(defaults[k]) then
      unknown_keys(v, defaults[k], prefix .. k .. ".", out)
    end
  end
end

--- Merges `user` over the defaults. Bad options are reported (here and in :checkhealth)
--- and replaced by their defaults, so a typo never leaves the plugin half set up.
---@param user table|nil
---@return handoff.Options
function M.set(user)
  user = user or {}
  local problems = {}
  unknown_keys(user, M.defaults, "", problems)
  local opts = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), user)

  local function check(name, ok, expected, reset)
    if not ok then
      table.insert(problems, ("option `%s` must be %s"):format(name, expected))
      reset()
    end
  end
  if type(opts.cmd) == "string" then
    opts.cmd = { opts.cmd, "lsp" }
  end
  check("cmd", opts.cmd == nil or (type(opts.cmd) == "table" and #opts.cmd > 0), "a list like { \"handoff\", \"lsp\" }",
    function() opts.cmd = nil end)
  check("agent", opts.agent == nil or type(opts.agent) == "string", "a profile name or nil",
    function() opts.agent = nil end)
  check("filter", opts.filter == nil or vim.is_callable(opts.filter), "a function(bufnr) or nil",
    function() opts.filter = nil end)
  check("auto_attach", type(opts.auto_attach) == "boolean", "true or false",
    function() opts.auto_attach = true end)
  check("notify", type(opts.notify) == "boolean", "true or false", function() opts.notify = true end)
  check("open", vim.tbl_contains({ "split", "vsplit", "tab", "edit" }, opts.open),
    "\"split\", \"vsplit\", \"tab\" or \"edit\"", function() opts.open = "split" end)
  check("keymaps", type(opts.keymaps) == "table", "a table (set single keys to false to disable them)",
    function() opts.keymaps = vim.deepcopy(M.defaults.keymaps) end)
  check("inline", type(opts.inline) == "table", "a table", function() opts.inline = vim.deepcopy(M.defaults.inline) end)
  for name in pairs(M.defaults.keymaps) do
    local lhs = opts.keymaps[name]
    check("keymaps." .. name, lhs == false or type(lhs) == "string", "a key sequence or false",
      function() opts.keymaps[name] = M.defaults.keymaps[name] or false end)
  end
  for name in pairs(M.defaults.inline) do
    local value = opts.inline[name]
    check("inline." .. name, type(value) == "boolean", "true or false",
      function() opts.inline[name] = M.defaults.inline[name] end)
  end

  if opts.cmd == nil then
    opts.cmd = { "handoff", "lsp" }
  end
  M.options, M.problems, M.did_setup = opts, problems, true
  if #problems > 0 then
    vim.notify("handoff.nvim: " .. table.concat(problems, "; ") .. " (using the defaults instead)",
      vim.log.levels.WARN, { title = "Handoff" })
  end
  return opts
end

--- The `handoff` binary the CLI calls use (health, `git`-free fallbacks): the server
--- command's first word.
function M.bin()
  local cmd = M.options.cmd or { "handoff", "lsp" }
  return cmd[1]
end

return M
