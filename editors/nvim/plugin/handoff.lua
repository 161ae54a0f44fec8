-- Defines :Handoff for plain `packpath` installs, before (or without) setup(). Buffers
-- are attached by require("handoff").setup(); :Handoff calls it with the defaults if
-- the user has not.
if vim.g.loaded_handoff or vim.fn.has("nvim-0.10") ~= 1 then
  return
end
vim.g.loaded_handoff = true

require("handoff.commands").create()
