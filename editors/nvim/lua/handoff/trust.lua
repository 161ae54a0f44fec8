--- The question about a repository's untrusted configuration (docs/protocol.md, "The
--- trust question"): recognised by the data its "Trust" action carries, never by its
--- wording, and asked with vim.ui.select; "Trust" runs `handoff.trust`.

local M = {}

local function notify(msg, level)
  vim.notify(msg, level or vim.log.levels.INFO, { title = "Handoff" })
end

--- The trust question in `params` of `window/showMessageRequest`, or nil.
---@return { repository: string, ignored: string[], sha256: string }|nil
function M.question(params)
  for _, action in ipairs(type(params) == "table" and params.actions or {}) do
    if action.title == "Trust" then
      if type(action.repository) ~= "string" or type(action.ignored) ~= "table" or type(action.sha256) ~= "string" then
        return nil
      end
      return { repository = action.repository, ignored = action.ignored, sha256 = action.sha256 }
    end
  end
end

--- Trusts the configuration of `repository` as it is now — only the content with hash
--- `sha256` when given (what the user was shown) — and says what applies now.
---@param client vim.lsp.Client
---@param repository string
---@param sha256 string|nil
function M.trust(client, repository, sha256)
  local uri = vim.uri_from_fname((repository:gsub("/+$", "")))
  require("handoff.lsp").request(client, "handoff.trust", { uri = uri, sha256 = sha256 }, function(err, result)
    if err or type(result) ~= "table" then
      return
    end
    local root = result.repository:gsub("/+$", "")
    if not result.trusted then
      notify(("%s has no configuration of its own; nothing to trust"):format(root))
      return
    end
    local applied = #result.applied > 0 and ("; now applied: " .. table.concat(result.applied, ", ")) or ""
    notify(("trusted the configuration of %s as it is now%s"):format(root, applied))
  end)
end

--- Asks the user (vim.ui.select) whether to trust; "Trust" runs `handoff.trust`.
---@param client vim.lsp.Client
---@param question { repository: string, ignored: string[], sha256: string }
function M.ask(client, question)
  local root = question.repository:gsub("/+$", "")
  local prompt = ("Handoff: %s's .handoff.toml is not trusted; until you trust it as it is now (changes ask again), "
    .. "these settings of it are ignored: %s. Trust it?"):format(vim.fn.fnamemodify(root, ":~"),
    table.concat(question.ignored, ", "))
  vim.ui.select({ "Trust", "Not now" }, { prompt = prompt, kind = "handoff.trust" }, function(choice)
    if choice == "Trust" then
      M.trust(client, question.repository, question.sha256)
    end
  end)
end

return M
