--- handoff.nvim: delegate code to background coding agents and review their changes
--- inline. The work is done by the `handoff lsp` language server; this plugin attaches
--- it to the buffers of git repositories and renders what it sends.
---
---   require("handoff").setup({})   -- see editors/nvim/README.md for the options
---   require("handoff").status()    -- "⟳1 ✓2" for a statusline

local M = {}

local group = vim.api.nvim_create_augroup("handoff", { clear = true })

--- Sets the plugin up: options, the `:Handoff` command, and attaching the server to
--- every file buffer inside a git repository (those already open included).
---@param opts table|nil see handoff.Options in lua/handoff/config.lua
function M.setup(opts)
  if vim.fn.has("nvim-0.10") ~= 1 then
    vim.notify("handoff.nvim needs Neovim 0.10 or newer", vim.log.levels.ERROR)
    return
  end
  local config = require("handoff.config")
  local options = config.set(opts)
  local inline = require("handoff.inline")
  local lsp = require("handoff.lsp")
  require("handoff.commands").create()
  inline.define_highlights()

  vim.api.nvim_clear_autocmds({ group = group })
  vim.api.nvim_create_autocmd("ColorScheme", { group = group, callback = inline.define_highlights })
  vim.api.nvim_create_autocmd("LspDetach", {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == lsp.name then
        inline.detach(args.buf)
      end
    end,
  })
  if options.auto_attach then
    vim.api.nvim_create_autocmd({ "BufReadPost", "BufNewFile" }, {
      group = group,
      callback = function(args)
        lsp.attach(args.buf)
      end,
    })
    -- A lazy-loaded plugin sets up after buffers were opened: attach those too.
    for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(bufnr) then
        lsp.attach(bufnr)
      end
    end
  end
end

--- The statusline component: "⟳1 ✓2 ✗1" (tasks running; finished and failed since
--- Neovim started), or "" when there is nothing to say.
function M.status()
  return require("handoff.tasks").status()
end

--- Every known task record, newest first: `{ repository, task }` entries.
function M.tasks()
  return require("handoff.tasks").list()
end

--- Attaches the server to a buffer by hand (with `auto_attach = false`).
function M.attach(bufnr)
  return require("handoff.lsp").attach(bufnr or 0)
end

-- The actions behind the keymaps and :Handoff subcommands, for custom mappings.
function M.accept() require("handoff.inline").accept() end
function M.reject() require("handoff.inline").reject() end
function M.accept_all() require("handoff.inline").accept_all() end
function M.next_hunk() require("handoff.inline").next() end
function M.prev_hunk() require("handoff.inline").prev() end
function M.hunks(bufnr) return require("handoff.inline").get(bufnr) end
function M.comment(text) require("handoff.commands").comment(text) end
function M.send() require("handoff.commands").send() end
function M.start(prompt) require("handoff.commands").start(prompt) end
function M.delegate_todo() require("handoff.commands").todo() end
function M.pick() require("handoff.commands").tasks() end

return M
