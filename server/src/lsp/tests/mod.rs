//! The language server driven in-process by clients of every kind (see `harness`).

mod defects;
mod errors;
mod fake_sandbox;
mod harness;
mod profiles;
