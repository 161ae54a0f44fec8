//! Why a hunk no longer applies, in words the user can act on.

/// Why a hunk cannot be applied to the current text. Line numbers in the
/// messages are one-based lines of the base, since the hunk has no place in
/// the current text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error(
        "the agent's change at line {} no longer applies: you edited those lines \
         since the task started; reject it, or copy the change by hand",
        .base_line + 1
    )]
    LinesEdited { hunk: usize, base_line: usize },
    #[error(
        "the agent's insertion at line {} no longer applies: you edited the lines \
         around it since the task started; reject it, or copy the change by hand",
        .base_line + 1
    )]
    SurroundingsEdited { hunk: usize, base_line: usize },
    #[error(
        "the agent's change at line {} fits lines {} and {} of the file equally \
         well; undo the edits that repeated those lines, or copy the change by hand",
        .base_line + 1,
        .candidates[0] + 1,
        .candidates[1] + 1
    )]
    Ambiguous {
        hunk: usize,
        base_line: usize,
        /// Zero-based start lines in the current text.
        candidates: [usize; 2],
    },
    #[error(
        "the agent's change at line {} lands on the same lines as its change at \
         line {} in the edited file; accept them one at a time",
        .base_line + 1,
        .other_base_line + 1
    )]
    Overlapping {
        hunk: usize,
        base_line: usize,
        other_hunk: usize,
        other_base_line: usize,
    },
}

impl Conflict {
    /// Index of the hunk that does not apply.
    pub fn hunk(&self) -> usize {
        match *self {
            Conflict::LinesEdited { hunk, .. }
            | Conflict::SurroundingsEdited { hunk, .. }
            | Conflict::Ambiguous { hunk, .. }
            | Conflict::Overlapping { hunk, .. } => hunk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let cases = [
            (
                Conflict::LinesEdited {
                    hunk: 0,
                    base_line: 4,
                },
                "the agent's change at line 5 no longer applies: you edited those lines \
                 since the task started; reject it, or copy the change by hand",
            ),
            (
                Conflict::Ambiguous {
                    hunk: 1,
                    base_line: 0,
                    candidates: [2, 9],
                },
                "the agent's change at line 1 fits lines 3 and 10 of the file equally \
                 well; undo the edits that repeated those lines, or copy the change by hand",
            ),
        ];
        for (conflict, expected) in cases {
            assert_eq!(conflict.to_string(), expected);
        }
    }
}
