//! One module per request or notification: parse, ask the session and the engine,
//! convert the answer. Handlers share nothing sideways: what several need lives in
//! `session`, `updates`, `convert` or `wording`.

pub mod code_action;
pub mod code_lens;
pub mod commands;
pub mod documents;
