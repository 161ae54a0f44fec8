--- `:checkhealth handoff`: Neovim, the plugin's options, the `handoff` binary, and
--- `handoff doctor` (Docker, agent images, the repository's configuration).

local config = require("handoff.config")
local lsp = require("handoff.lsp")

local M = {}

local health = vim.health

--- The repository to check: the one of the buffer the user came from, else the one of
--- a running handoff client, else the current directory's.
local function repository()
  for _, bufnr in ipairs({ vim.fn.bufnr("#"), vim.api.nvim_get_current_buf() }) do
    local root = bufnr > 0 and lsp.root_of_buffer(bufnr)
    if root then
      return root
    end
  end
  local client = lsp.clients()[1]
  if client then
    return client.config.root_dir
  end
  return lsp.root_of_path(vim.fn.getcwd())
end

local function check_neovim()
  health.start("handoff: Neovim")
  if vim.fn.has("nvim-0.10") == 1 then
    health.ok("Neovim " .. tostring(vim.version()))
  else
    health.error("Neovim " .. tostring(vim.version()) .. " is too old", { "handoff.nvim needs Neovim 0.10 or newer" })
  end
end

local function check_config()
  health.start("handoff: configuration")
  if not config.did_setup then
    health.warn("require(\"handoff\").setup() has not been called: buffers are not attached",
      { "call require(\"handoff\").setup({}) in your config (lazy.nvim: `opts = {}`)" })
  end
  for _, problem in ipairs(config.problems) do
    health.error(problem, { "see :help handoff or editors/nvim/README.md; the default is used meanwhile" })
  end
  if #config.problems == 0 and config.did_setup then
    health.ok("options valid")
  end
  local o = config.options
  health.info("server command: " .. table.concat(o.cmd, " "))
  local keys = {}
  for _, name in ipairs({ "accept", "reject", "accept_all", "next", "prev", "delegate" }) do
    table.insert(keys, name .. " = " .. tostring(o.keymaps[name]))
  end
  health.info("keymaps: " .. table.concat(keys, ", "))
end

---@return boolean found
local function check_binary()
  health.start("handoff: binary")
  local bin = config.bin()
  if vim.fn.executable(bin) ~= 1 then
    health.error(("`%s` is not executable"):format(bin), {
      "install it: `cargo install --path server` in the handoff repository",
      "or point setup({ cmd = { \"/path/to/handoff\", \"lsp\" } }) at it",
    })
    return false
  end
  local res = vim.system({ bin, "--version" }, { text = true }):wait(10000)
  if res.code ~= 0 then
    health.error(("`%s --version` failed: %s"):format(bin, vim.trim(res.stderr or "")))
    return false
  end
  health.ok(("%s (%s)"):format(vim.trim(res.stdout or ""), vim.fn.exepath(bin)))
  return true
end

--- Runs `handoff doctor` and reports each of its lines: `[ok  ]`, `[warn]`, `[FAIL]`,
--- each possibly followed by `fix: …`.
local function check_doctor()
  local root = repository()
  health.start("handoff: doctor (Docker, agent images, repository configuration)")
  local dir = root or vim.fn.getcwd()
  if not root then
    health.warn(dir .. " is not inside a git repository",
      { "open a file of a git repository (or :cd into one) and run :checkhealth handoff again" })
  end
  local res = vim.system({ config.bin(), "-C", dir, "doctor" }, { text = true }):wait(60000)
  local entries = {}
  for line in vim.gsplit(res.stdout or "", "\n", { plain = true, trimempty = true }) do
    local mark, what = line:match("^%[(%a+)%s*%]%s*(.*)$")
    local fix = line:match("^%s+fix:%s*(.*)$")
    if mark then
      table.insert(entries, { mark = mark, what = what, fix = {} })
    elseif fix and #entries > 0 then
      table.insert(entries[#entries].fix, fix)
    elseif vim.trim(line) ~= "" then
      table.insert(entries, { mark = "info", what = line, fix = {} })
    end
  end
  for _, e in ipairs(entries) do
    if e.mark == "ok" then
      health.ok(e.what)
    elseif e.mark == "warn" then
      health.warn(e.what, e.fix)
    elseif e.mark == "FAIL" then
      health.error(e.what, e.fix)
    else
      health.info(e.what)
    end
  end
  if res.code ~= 0 and not vim.iter(entries):any(function(e) return e.mark == "FAIL" end) then
    health.error(("`handoff doctor` exited with %s: %s"):format(tostring(res.code), vim.trim(res.stderr or "")))
  elseif #entries == 0 then
    health.warn("`handoff doctor` printed nothing")
  end
end

local function check_clients()
  health.start("handoff: language server")
  local clients = lsp.clients()
  if #clients == 0 then
    health.info("no handoff client is running yet: it starts when a file of a git repository is opened")
    return
  end
  for _, c in ipairs(clients) do
    local bufs = vim.lsp.get_buffers_by_client_id(c.id)
    health.ok(("client %d for %s: %d buffer%s attached, position encoding %s"):format(
      c.id, c.config.root_dir or "?", #bufs, #bufs == 1 and "" or "s", c.offset_encoding or "?"))
  end
end

function M.check()
  check_neovim()
  check_config()
  if check_binary() then
    check_doctor()
  end
  check_clients()
end

return M
