//! Handoff: delegate a TODO or a selection to a coding agent running in a container,
//! and review its work as a branch or inline in the editor.
//!
//! Layers (see `docs/architecture.md`): `cli` and (later) `lsp` are front-ends; the
//! engine (`engine`, `sandbox`, `git`, `agents`, `config`, `image`) never imports them.

pub mod agents;
pub mod cli;
pub mod config;
pub mod context;
pub mod diff;
pub mod egress;
pub mod engine;
pub mod git;
pub mod image;
pub mod lsp;
pub mod sandbox;
pub mod trust;
pub mod untrusted;
