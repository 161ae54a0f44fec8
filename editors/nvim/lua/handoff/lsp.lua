--- The `handoff lsp` client: starting and attaching it, sending commands, and the
--- handlers for what the server sends that the plugin renders itself.

local config = require("handoff.config")

local M = {}

M.name = "handoff"

local has_0_11 = vim.fn.has("nvim-0.11") == 1

--- The repository root of a buffer's file (the nearest directory with a `.git`), or nil
--- for buffers that are not files in a repository. Files inside `.git` itself (task logs
--- and diffs the server writes there, commit messages) do not count.
---@param bufnr integer
---@return string|nil
function M.root_of_buffer(bufnr)
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == "" or name:match("^%a[%w+.-]*://") then
    return nil
  end
  name = vim.fs.normalize(vim.fn.fnamemodify(name, ":p"))
  if name:find("/.git/", 1, true) then
    return nil
  end
  return M.root_of_path(vim.fs.dirname(name))
end

---@param path string a directory
---@return string|nil
function M.root_of_path(path)
  local git = vim.fs.find(".git", { path = path, upward = true, limit = 1 })[1]
  return git and vim.fs.dirname(git) or nil
end

local function notify(msg, level)
  vim.notify(msg, level or vim.log.levels.INFO, { title = "Handoff" })
end

-- The server reports a failed command twice: as window/showMessage and as the
-- response's error. Whichever arrives first is shown; the other, within a few seconds
-- and with the same text, is dropped.
local recent = {} ---@type table<string, integer>
local function strip(msg)
  return (msg:gsub("^Handoff: ", ""))
end

--- Shows `msg` unless the same message was shown a moment ago.
function M.notify_once(msg, level)
  local key = strip(msg)
  local now = vim.uv.now()
  if recent[key] and now - recent[key] < 3000 then
    return
  end
  recent[key] = now
  notify(key, level)
end

local levels = {
  [1] = vim.log.levels.ERROR,
  [2] = vim.log.levels.WARN,
  [3] = vim.log.levels.INFO,
  [4] = vim.log.levels.DEBUG,
}

local function on_show_message(_, params, ctx)
  local msg = params and params.message or ""
  M.notify_once(msg, levels[params.type] or vim.log.levels.INFO)
  return vim.NIL
end

--- The server's question about trusting the repository's configuration is asked with
--- vim.ui.select (the server gets `null` at once and is told with handoff.trust);
--- any other question goes to Neovim's own handler.
local function on_show_message_request(err, params, ctx)
  local question = require("handoff.trust").question(params)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not question or not client then
    return vim.lsp.handlers["window/showMessageRequest"](err, params, ctx)
  end
  vim.schedule(function()
    require("handoff.trust").ask(client, question)
  end)
  return vim.NIL
end

--- Opens a file the server asks to show (a task's log or diff) in a split, reloading
--- it if it is already shown: the server rewrites the file each time.
local function on_show_document(_, params, ctx)
  local uri = params and params.uri
  if not uri or params.external then
    return vim.lsp.handlers["window/showDocument"](nil, params, ctx)
  end
  require("handoff.view").open_file(vim.uri_to_fname(uri))
  return { success = true }
end

local function on_publish_diagnostics(err, result, ctx)
  local default = vim.lsp.handlers["textDocument/publishDiagnostics"]
  local r = default(err, result, ctx)
  if result then
    require("handoff.inline").on_publish(result, ctx.client_id)
  end
  return r
end

--- Neovim applies an edit that starts past the last line (an insertion at the very end
--- of a file that ends with a newline: `(line_count, 0)`) as new lines *plus* an empty
--- one. The same insertion, written as "after the last line's text", comes out right.
local function end_of_file_insertions(bufnr, edits, encoding)
  if not vim.api.nvim_buf_is_loaded(bufnr) then
    return
  end
  local count = vim.api.nvim_buf_line_count(bufnr)
  for _, edit in ipairs(edits) do
    local range = edit.range
    if range and range.start.line >= count then
      local last = vim.api.nvim_buf_get_lines(bufnr, count - 1, count, false)[1] or ""
      local at = { line = count - 1, character = vim.lsp.util.character_offset(bufnr, count - 1, #last, encoding) }
      local text = edit.newText:gsub("\r\n?", "\n")
      if text:sub(-1) == "\n" then
        text = text:sub(1, -2)
      end
      edit.range = { start = at, ["end"] = vim.deepcopy(at) }
      edit.newText = text == "" and "" or "\n" .. text
    end
  end
end

local function on_apply_edit(err, params, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  local encoding = client and client.offset_encoding or "utf-16"
  local edit = params and params.edit or {}
  for _, change in ipairs(edit.documentChanges or {}) do
    if change.textDocument and change.edits then
      end_of_file_insertions(vim.uri_to_bufnr(change.textDocument.uri), change.edits, encoding)
    end
  end
  for uri, edits in pairs(edit.changes or {}) do
    end_of_file_insertions(vim.uri_to_bufnr(uri), edits, encoding)
  end
  return vim.lsp.handlers["workspace/applyEdit"](err, params, ctx)
end

local function on_task_changed(_, params, ctx)
  if params and params.task then
    require("handoff.tasks").update(params.repository, params.task, ctx.client_id)
  end
  return vim.NIL
end

local function on_task_removed(_, params)
  if params and params.task then
    require("handoff.tasks").remove(params.repository, params.task)
  end
  return vim.NIL
end

local function on_init(client)
  -- Diagnostics of the handoff client are drawn by inline.lua; hide the default
  -- rendering so the change is not shown twice.
  if config.options.inline.enabled and config.options.inline.hide_diagnostics then
    local ns = vim.lsp.diagnostic.get_namespace(client.id)
    vim.diagnostic.config({ virtual_text = false, signs = false, underline = false }, ns)
  end
  -- Learn the repository's tasks (the statusline counts them), without announcing them.
  vim.schedule(function()
    M.request(client, "handoff.listTasks", { uri = vim.uri_from_fname(client.config.root_dir) }, function(err, tasks)
      if not err and type(tasks) == "table" then
        require("handoff.tasks").seed(client.config.root_dir, tasks, client.id)
      end
    end, { silent = true })
  end)
end

local function client_config(root)
  return {
    name = M.name,
    cmd = config.options.cmd,
    root_dir = root,
    -- The plugin announces finished tasks itself (tasks.lua, from handoff/taskChanged),
    -- with the keys to review them; the server's own announcement would repeat it.
    -- handoff/* notifications come only to clients that ask, and the code action
    -- "Comment on this change…" only to those that ask for its text themselves
    -- (docs/protocol.md).
    init_options = { taskMessages = not config.options.notify, handoffNotifications = true, commentInput = true },
    -- That action runs handoff.comment without text: ask for it here (vim.ui.input).
    commands = {
      ["handoff.comment"] = function(command, ctx)
        local client = vim.lsp.get_client_by_id(ctx.client_id)
        local args = command.arguments and command.arguments[1]
        if client and type(args) == "table" then
          local text = type(args.text) == "string" and args.text or nil
          require("handoff.commands").comment_on(client, ctx.bufnr, args, text)
        end
      end,
    },
    handlers = {
      ["handoff/taskChanged"] = on_task_changed,
      ["handoff/taskRemoved"] = on_task_removed,
      ["window/showMessage"] = on_show_message,
      ["window/showMessageRequest"] = on_show_message_request,
      ["window/showDocument"] = on_show_document,
      ["textDocument/publishDiagnostics"] = on_publish_diagnostics,
      ["workspace/applyEdit"] = on_apply_edit,
    },
    on_init = on_init,
    on_attach = function(_, bufnr)
      require("handoff.inline").attach(bufnr)
    end,
  }
end

local warned_missing = false

--- Attaches the handoff client of the buffer's repository to `bufnr` (starting it if
--- needed). Returns the client id, or nil when the buffer is not a repository file.
---@param bufnr integer
---@return integer|nil
function M.attach(bufnr)
  bufnr = bufnr == 0 and vim.api.nvim_get_current_buf() or bufnr
  local root = M.root_of_buffer(bufnr)
  if not root then
    return nil
  end
  local filter = config.options.filter
  if filter and not filter(bufnr) then
    return nil
  end
  if vim.fn.executable(config.options.cmd[1]) ~= 1 then
    -- Said once per session: every file opened would repeat it.
    if not warned_missing then
      warned_missing = true
      notify(("`%s` is not executable: install handoff or set `cmd` in setup() (see :checkhealth handoff)")
        :format(config.options.cmd[1]), vim.log.levels.WARN)
    end
    return nil
  end
  return vim.lsp.start(client_config(root), { bufnr = bufnr, silent = false })
end

---@return vim.lsp.Client[]
function M.clients(filter)
  filter = vim.tbl_extend("force", filter or {}, { name = M.name })
  return vim.lsp.get_clients(filter)
end

local function find_by_root(root)
  for _, c in ipairs(M.clients()) do
    if c.config.root_dir == root then
      return c
    end
  end
end

--- The handoff client for `bufnr`: the one attached to it, else the one of its
--- repository (or of the current directory's), started without a buffer if needed.
---@param bufnr integer|nil
---@return vim.lsp.Client|nil client, string|nil error
function M.client(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local attached = M.clients({ bufnr = bufnr })[1]
  if attached then
    return attached
  end
  local root = M.root_of_buffer(bufnr) or M.root_of_path(vim.fn.getcwd())
  if not root then
    return nil, "not in a git repository: open a file of the repository (or :cd into it) first"
  end
  local existing = find_by_root(root)
  if existing then
    return existing
  end
  if vim.fn.executable(config.options.cmd[1]) ~= 1 then
    return nil, ("`%s` is not executable: install handoff or set `cmd` in setup()"):format(config.options.cmd[1])
  end
  local id
  if M.root_of_buffer(bufnr) == root then
    id = M.attach(bufnr)
  elseif has_0_11 then
    id = vim.lsp.start(client_config(root), { attach = false })
  else
    ---@diagnostic disable-next-line: deprecated
    id = vim.lsp.start_client(client_config(root))
  end
  local client = id and vim.lsp.get_client_by_id(id)
  if not client then
    return nil, "could not start `" .. table.concat(config.options.cmd, " ") .. "` (see :checkhealth handoff)"
  end
  return client
end

--- Calls `fn` once the client has finished initializing (requests sent earlier would
--- reach a server that does not know the workspace yet).
local function when_initialized(client, fn)
  local deadline = vim.uv.now() + 30000
  local function try()
    -- `initialized` is set once the server has answered `initialize`; server
    -- capabilities arrive at the same moment (and are all an older client shows).
    if client.initialized or (client.server_capabilities and next(client.server_capabilities)) then
      return fn()
    end
    if (client.is_stopped and client:is_stopped()) or vim.uv.now() > deadline then
      return fn("the handoff language server did not start (see :checkhealth handoff and :LspLog)")
    end
    vim.defer_fn(try, 50)
  end
  try()
end

--- Sends `workspace/executeCommand` with one argument object.
--- `callback(err_message, result)` runs in the main loop. Errors are shown to the user
--- (once) unless `opts.silent`.
---@param client vim.lsp.Client
---@param command string
---@param args table|fun(client: vim.lsp.Client): table  the argument object, or a function building it
---@param callback fun(err: string|nil, result: any)|nil
---@param opts { silent: boolean|nil, bufnr: integer|nil }|nil
function M.request(client, command, args, callback, opts)
  opts = opts or {}
  callback = callback or function() end
  when_initialized(client, function(start_err)
    if start_err then
      if not opts.silent then
        M.notify_once(start_err, vim.log.levels.ERROR)
      end
      return callback(start_err)
    end
    if type(args) == "function" then
      -- Arguments with positions are built now that the position encoding is known.
      local ok, built = pcall(args, client)
      if not ok then
        if not opts.silent then
          M.notify_once(tostring(built), vim.log.levels.ERROR)
        end
        return callback(tostring(built))
      end
      args = built
    end
    local params = { command = command, arguments = { args } }
    local function handler(err, result)
      if err then
        local msg = err.message or tostring(err)
        if not opts.silent then
          M.notify_once(msg, vim.log.levels.ERROR)
        end
        return callback(msg)
      end
      callback(nil, result ~= vim.NIL and result or nil)
    end
    local bufnr = opts.bufnr or 0
    local ok
    if has_0_11 then
      ok = client:request("workspace/executeCommand", params, handler, bufnr)
    else
      ---@diagnostic disable-next-line: param-type-mismatch
      ok = client.request("workspace/executeCommand", params, handler, bufnr)
    end
    if not ok then
      handler({ message = "the handoff language server has stopped; reopen the file to restart it" })
    end
  end)
end

--- Finds the client (for `bufnr`) and sends a command; reports a missing client.
function M.command(bufnr, command, args, callback, opts)
  local client, err = M.client(bufnr)
  if not client then
    notify(err, vim.log.levels.ERROR)
    if callback then
      callback(err)
    end
    return
  end
  M.request(client, command, args, callback, opts)
  return client
end

return M
