//! What a turn of an agent has spent, read from its transcript: model turns and
//! money. Claude Code reports its cost when a run ends (`total_cost_usd`); before that,
//! and for Codex (which reports tokens only), the cost is estimated from the tokens
//! and the published price of the model family, so a budget can stop a run midway.
//!
//! Pure: no I/O.

use super::transcript::{TokenUsage, Transcript};

/// US dollars per million tokens: (input, cached input, output).
type Price = (f64, f64, f64);

/// Published prices by model family, matched by a substring of the model's name,
/// most specific first. Unknown models are priced as the dearest known family of
/// their vendor, so a budget never under-counts.
const PRICES: &[(&str, Price)] = &[
    ("opus", (15.0, 1.5, 75.0)),
    ("sonnet", (3.0, 0.3, 15.0)),
    ("haiku", (1.0, 0.1, 5.0)),
    ("claude", (15.0, 1.5, 75.0)),
    ("gpt-5-mini", (0.25, 0.025, 2.0)),
    ("gpt-5-nano", (0.05, 0.005, 0.4)),
    ("gpt-5", (1.25, 0.125, 10.0)),
    ("gpt-4.1", (2.0, 0.5, 8.0)),
    ("o3", (2.0, 0.5, 8.0)),
    ("o4-mini", (1.1, 0.275, 4.4)),
];

/// When nothing is known of the model: the dearest price in the table.
const UNKNOWN: Price = (15.0, 1.5, 75.0);

/// What a run has spent so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    pub turns: u32,
    pub cost_usd: f64,
}

/// The spending of one run, as its transcript tells it.
pub fn spent(transcript: &Transcript) -> Spent {
    let cost_usd = transcript.cost_usd.unwrap_or_else(|| {
        transcript
            .usage
            .map(|u| estimate(transcript.model.as_deref(), u))
            .unwrap_or(0.0)
    });
    Spent {
        turns: transcript.turns,
        cost_usd,
    }
}

/// The cost of `usage` at the price of `model`'s family.
pub fn estimate(model: Option<&str>, usage: TokenUsage) -> f64 {
    let name = model.unwrap_or_default().to_ascii_lowercase();
    let (input, cached, output) = PRICES
        .iter()
        .find(|(family, _)| name.contains(family))
        .map(|(_, p)| *p)
        .unwrap_or(UNKNOWN);
    let fresh = usage.input_tokens.saturating_sub(usage.cached_input_tokens) as f64;
    (fresh * input
        + usage.cached_input_tokens as f64 * cached
        + usage.output_tokens as f64 * output)
        / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_costs_win_over_estimates_and_estimates_follow_the_model() {
        let usage = TokenUsage {
            input_tokens: 1_000_000,
            cached_input_tokens: 0,
            output_tokens: 100_000,
        };
        assert!((estimate(Some("claude-sonnet-4-5-20250929"), usage) - 4.5).abs() < 1e-9);
        assert!((estimate(Some("gpt-5"), usage) - 2.25).abs() < 1e-9);
        // Unknown: priced high, never under-counted.
        assert!(estimate(None, usage) >= estimate(Some("claude-opus-4"), usage));
        let mut t = Transcript {
            usage: Some(usage),
            model: Some("claude-haiku-4-5".into()),
            turns: 3,
            ..Transcript::default()
        };
        assert_eq!(spent(&t).turns, 3);
        assert!((spent(&t).cost_usd - 1.5).abs() < 1e-9);
        t.cost_usd = Some(0.42);
        assert_eq!(spent(&t).cost_usd, 0.42);
    }
}
