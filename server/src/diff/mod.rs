//! Text diffing for review: the agent's changes to one file as hunks that the
//! user accepts or rejects one at a time, while still typing in the same file.
//!
//! - `line_index`: byte offsets <-> (line, character) positions in the UTF-8,
//!   UTF-16 or UTF-32 units that the editor negotiated.
//! - `hunks`: the change regions between the base text (the file when the
//!   task started) and the result text (the file the agent produced).
//! - `reanchor`: where a hunk computed against the base sits in the buffer
//!   the user has edited since; `conflict`: why it no longer fits.
//! - `apply`: the byte-range edits that accept hunks, one or all at once.
//! - `plan`: what accepting hunks sends to the editor, and where each pending hunk
//!   stands in an edited buffer (pending, already applied, or in conflict).
//!
//! Everything here is a pure function of strings: no I/O, no LSP types. The
//! LSP layer converts [`Edit`] and [`Position`] to protocol types itself.
//!
//! Lines are split at `\n`, `\r\n` and a lone `\r`, the three terminators the
//! LSP specification names, and always keep their terminator, so that CRLF
//! files and files without a final newline round-trip byte for byte.

mod apply;
mod conflict;
mod hunks;
mod line_index;
mod plan;
mod reanchor;

pub use apply::{accept, apply_all, apply_edit, AcceptAll, Edit};
pub use conflict::Conflict;
pub use hunks::{compute_hunks, Hunk};
pub use line_index::{LineIndex, Position, PositionEncoding};
pub use plan::{plan_accept, standings, AcceptPlan, Choice, PlanError, Standing};
pub use reanchor::{reanchor, reanchor_many, Anchor};
