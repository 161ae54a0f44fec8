//! Why a run failed, in words a user can act on.
//!
//! Agents report API failures as free text that changes between versions, so the
//! recognised phrases are kept in one table, [`RULES`], to grow as new ones are seen.

use super::{Entry, Transcript};
use Cause::*;
use Signal::*;

/// Says why a failed run failed, when the cause is one handoff recognises: missing or
/// refused credentials, rate limits, an overloaded API, or a killed container.
///
/// A run counts as failed when the agent reported so or `exit_code` is non-zero;
/// otherwise there is nothing to explain and this returns `None`. Only what the agent
/// reported as errors is read (the final error, error entries, and lines that were
/// not JSON, such as stderr), never tool output: a test that prints "401" is not an
/// authentication failure.
pub fn failure_hint(transcript: &Transcript, exit_code: Option<i64>) -> Option<String> {
    let failed = transcript.is_error || exit_code.is_some_and(|code| code != 0);
    if !failed {
        return None;
    }
    let said = errors_reported(transcript).to_ascii_lowercase();
    RULES
        .iter()
        .find(|(signal, _)| match signal {
            Signal::Says(phrase) => mentions(&said, phrase),
            Signal::Exit(code) => exit_code == Some(*code),
        })
        .map(|(_, cause)| cause.hint().to_string())
}

#[derive(Debug, Clone, Copy)]
enum Cause {
    Unreachable,
    Blocked,
    MissingCredentials,
    Authentication,
    Billing,
    RateLimit,
    Overloaded,
    CommandNotFound,
    Killed,
}

impl Cause {
    fn hint(self) -> &'static str {
        match self {
            Cause::Unreachable => {
                "the model API could not be reached (its endpoint did not answer): check \
                 ANTHROPIC_BASE_URL (claude) or OPENAI_BASE_URL (codex) if you set one, and \
                 that the machine can reach it"
            }
            Cause::Blocked => {
                "the agent tried to reach a host its egress policy does not allow (see the \
                 task's `blocked` list): add it to the profile's `allow` if the agent needs it"
            }
            Cause::MissingCredentials => {
                "the agent found no model API credentials (missing credentials): set \
                 ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN (claude), or OPENAI_API_KEY \
                 (codex), in the environment handoff runs in"
            }
            Cause::Authentication => {
                "the model API refused the credentials (authentication error): check \
                 ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN (claude), or OPENAI_API_KEY \
                 (codex)"
            }
            Cause::Billing => {
                "the model API account has no credit left (billing): add credit to the \
                 account or use another key"
            }
            Cause::RateLimit => {
                "the model API is rate limiting these requests (rate limit): wait a few \
                 minutes and retry, or run fewer tasks at once"
            }
            Cause::Overloaded => {
                "the model API is overloaded (server busy): retry in a few minutes"
            }
            Cause::CommandNotFound => {
                "the agent's command was not found in the image (exit code 127): check the \
                 profile's image and command"
            }
            Cause::Killed => {
                "the agent was killed (exit code 137), most often for running out of \
                 memory: raise the profile's memory limit, unless the task was cancelled"
            }
        }
    }
}

enum Signal {
    /// A phrase in the reported errors, in lower case. Numbers match only as whole
    /// numbers, so `401` is not found in `req_a4019`.
    Says(&'static str),
    Exit(i64),
}

/// The first matching row wins, so more specific rows come first: Claude's "Not
/// logged in · Please run /login" means missing credentials, not refused ones.
const RULES: &[(Signal, Cause)] = &[
    // Handoff's egress proxy: a 502 when a model endpoint does not answer, a 403 when
    // a destination is not allowed. Before the rows for 401/403: it is neither.
    (Says("could not reach route"), Unreachable),
    (Says("egress policy"), Blocked),
    // Claude Code's retries of an endpoint that does not answer (api_retry, HTTP 502);
    // Codex's "error sending request", "Connection refused".
    (Says("http 502"), Unreachable),
    (Says("502 bad gateway"), Unreachable),
    (Says("connection error"), Unreachable),
    (Says("connection refused"), Unreachable),
    (Says("econnrefused"), Unreachable),
    (Says("error sending request"), Unreachable),
    (Says("failed to connect"), Unreachable),
    // Claude Code: "Not logged in", "Missing API key · Run /login", "Could not resolve
    // authentication method", "No API key available"; Codex: "Missing environment
    // variable: `OPENAI_API_KEY`", "Missing openai API key".
    (Says("not logged in"), MissingCredentials),
    (Says("missing api key"), MissingCredentials),
    (Says("missing openai api key"), MissingCredentials),
    (Says("no api key"), MissingCredentials),
    (
        Says("could not resolve authentication method"),
        MissingCredentials,
    ),
    (Says("missing environment variable"), MissingCredentials),
    // Anthropic: 401 `authentication_error` "invalid x-api-key"; OpenAI: 401
    // `invalid_api_key` "Incorrect API key provided"; Codex: "401 Unauthorized".
    (Says("invalid x-api-key"), Authentication),
    (Says("invalid api key"), Authentication),
    (Says("invalid_api_key"), Authentication),
    (Says("incorrect api key"), Authentication),
    (Says("authentication"), Authentication),
    (Says("please run /login"), Authentication),
    (Says("unauthorized"), Authentication),
    (Says("permission_error"), Authentication),
    (Says("401"), Authentication),
    (Says("403"), Authentication),
    // Anthropic: "Credit balance is too low"; OpenAI: `insufficient_quota`.
    (Says("credit balance is too low"), Billing),
    (Says("insufficient_quota"), Billing),
    (Says("billing_error"), Billing),
    // Anthropic: 429 `rate_limit_error`; OpenAI: "429 Too Many Requests"; Codex:
    // "You've hit your usage limit".
    (Says("rate_limit"), RateLimit),
    (Says("rate limit"), RateLimit),
    (Says("too many requests"), RateLimit),
    (Says("usage limit"), RateLimit),
    (Says("429"), RateLimit),
    // Anthropic: 529 `overloaded_error`.
    (Says("overloaded"), Overloaded),
    (Says("529"), Overloaded),
    (Exit(127), CommandNotFound),
    (Exit(137), Killed),
];

/// Everything the agent reported as an error, one item a line.
fn errors_reported(transcript: &Transcript) -> String {
    let entries = transcript.entries.iter().filter_map(|entry| match entry {
        Entry::Error { message } => Some(message.as_str()),
        Entry::Raw(line) => Some(line.as_str()),
        _ => None,
    });
    transcript
        .error
        .as_deref()
        .into_iter()
        .chain(entries)
        .collect::<Vec<_>>()
        .join("\n")
}

fn mentions(text: &str, phrase: &str) -> bool {
    if !phrase.bytes().all(|byte| byte.is_ascii_digit()) {
        return text.contains(phrase);
    }
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::transcript::{claude, codex, fixtures};
    use insta::assert_snapshot;

    /// A transcript whose only error text is `said`.
    fn failed_with(said: &str) -> Transcript {
        Transcript {
            is_error: true,
            error: Some(said.to_string()),
            ..Transcript::default()
        }
    }

    /// The cause a hint names, in its parentheses.
    fn cause(hint: Option<String>) -> Option<String> {
        let hint = hint?;
        let start = hint.find('(')? + 1;
        let end = start + hint[start..].find(')')?;
        Some(hint[start..end].to_string())
    }

    #[test]
    fn reported_errors_are_recognised() {
        let cases = [
            (
                "unexpected status 502 Bad Gateway: Handoff's egress proxy could not reach route openai., url: http://172.18.0.1:37913/t/x/openai/responses",
                Some("its endpoint did not answer"),
            ),
            (
                "↻ the model API request failed (server_error, HTTP 502); retry 10/10 in 35.0 s",
                Some("its endpoint did not answer"),
            ),
            (
                "403 Forbidden: Blocked by Handoff's egress policy: evil.example:443 is not allowed",
                Some("see the task's `blocked` list"),
            ),
            (
                "Not logged in · Please run /login",
                Some("missing credentials"),
            ),
            ("Missing API key · Run /login", Some("missing credentials")),
            (
                "Missing environment variable: `OPENAI_API_KEY`.",
                Some("missing credentials"),
            ),
            (
                "Invalid API key · Please run /login",
                Some("authentication error"),
            ),
            (
                r#"API Error: 401 {"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
                Some("authentication error"),
            ),
            (
                "unexpected status 401 Unauthorized: Incorrect API key provided: sk-proj-****abcd",
                Some("authentication error"),
            ),
            (
                "exceeded retry limit, last status: 401 Unauthorized",
                Some("authentication error"),
            ),
            (
                "Request failed with status 403",
                Some("authentication error"),
            ),
            (
                "Credit balance is too low to access the Anthropic API.",
                Some("billing"),
            ),
            (
                r#"API Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#,
                Some("rate limit"),
            ),
            (
                "exceeded retry limit, last status: 429 Too Many Requests",
                Some("rate limit"),
            ),
            (
                "You've hit your usage limit. Try again in 2 hours.",
                Some("rate limit"),
            ),
            (
                r#"API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                Some("server busy"),
            ),
            ("request req_a4019f failed after 14290 ms", None),
            (
                "the agent reached its maximum number of turns (error_max_turns)",
                None,
            ),
        ];
        for (said, expected) in cases {
            assert_eq!(
                cause(failure_hint(&failed_with(said), Some(1))).as_deref(),
                expected,
                "{said}"
            );
        }
    }

    #[test]
    fn exit_codes_and_success_decide_whether_to_look() {
        let clean = Transcript::default();
        let cases = [
            (clean.clone(), Some(0), None),
            (clean.clone(), None, None),
            (clean.clone(), Some(1), None),
            (clean.clone(), Some(127), Some("exit code 127")),
            (clean, Some(137), Some("exit code 137")),
            // A finished run that mentions a rate limit in passing needs no hint.
            (
                Transcript {
                    entries: vec![Entry::Error {
                        message: "429 Too Many Requests; retrying".into(),
                    }],
                    ..Transcript::default()
                },
                Some(0),
                None,
            ),
            // Text beats the exit code: out of credentials is the actionable part.
            (
                failed_with("Invalid API key"),
                Some(137),
                Some("authentication error"),
            ),
        ];
        for (transcript, exit_code, expected) in cases {
            assert_eq!(
                cause(failure_hint(&transcript, exit_code)).as_deref(),
                expected,
                "{exit_code:?} {transcript:?}"
            );
        }
    }

    #[test]
    fn tool_output_is_not_read() {
        let transcript = Transcript {
            is_error: true,
            entries: vec![Entry::ToolResult {
                id: "t1".into(),
                content: "assertion failed: status == 401".into(),
                is_error: true,
            }],
            ..Transcript::default()
        };
        assert_eq!(failure_hint(&transcript, Some(1)), None);
    }

    #[test]
    fn recorded_failures_get_a_hint() {
        let claude = claude::parse(fixtures::CLAUDE_AUTH_FAILURE);
        assert_snapshot!(
            failure_hint(&claude, Some(1)).unwrap_or_default(),
            @"the model API refused the credentials (authentication error): check ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN (claude), or OPENAI_API_KEY (codex)"
        );
        let codex = codex::parse(fixtures::CODEX_FAILED);
        assert_snapshot!(
            failure_hint(&codex, Some(1)).unwrap_or_default(),
            @"the model API is rate limiting these requests (rate limit): wait a few minutes and retry, or run fewer tasks at once"
        );
    }
}
