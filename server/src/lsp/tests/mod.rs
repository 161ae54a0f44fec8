//! The language server driven in-process by clients of every kind (see `harness`).

mod boundary;
mod clients;
mod defects;
mod errors;
mod fake_sandbox;
mod fixture;
mod harness;
mod profiles;
mod review_loop;
mod trust;
