//! How a built-in agent's CLI gets its model credentials and endpoint, for each way
//! users configure it — an API key, an OAuth token, a gateway base URL, Amazon
//! Bedrock, Google Vertex — and for each network: on `egress` the key stays with the
//! proxy (a gateway route adds it, the container gets a placeholder); elsewhere it is
//! passed in the form the CLI really reads.
//!
//! Pure: the caller's environment comes in as a lookup, the plan goes out as data.

use super::{AgentProfile, Network, OutputFormat};

/// What the agent's CLI sends instead of the real credential; the proxy replaces it.
pub const PLACEHOLDER: &str = "handoff-proxy-adds-the-real-credential";

/// A gateway route the proxy serves for one turn (`http://<gw>/t/<token>/<name>/…`).
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    pub name: &'static str,
    pub upstream: String,
    /// Headers the proxy sets, with secret values.
    pub inject: Vec<(String, String)>,
    /// Headers the proxy removes first (the placeholders the CLI sends).
    pub strip: Vec<String>,
}

/// How to hand one turn its credentials.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CredentialPlan {
    /// Routes for the proxy (network `egress` only).
    pub routes: Vec<RouteSpec>,
    /// Variables for the container. A value `ROUTE:<name>` stands for the route's
    /// base URL, which only the caller knows (it holds the gateway and the token).
    pub env: Vec<(String, String)>,
    /// Variables of the caller that must not reach the container as they are.
    pub withheld: Vec<String>,
    /// Arguments inserted after the CLI's subcommand (`codex exec -c …`). `ROUTE:<name>`
    /// inside one stands for the route's base URL too.
    pub args: Vec<String>,
    /// Destinations the configuration needs beyond the profile's `allow` (Bedrock's and
    /// Vertex's regional endpoints).
    pub allow: Vec<String>,
}

/// The placeholder for a route's base URL in [`CredentialPlan::env`] and `args`.
pub fn route_marker(name: &str) -> String {
    format!("ROUTE:{name}")
}

/// The plan for `profile` given the caller's environment. Profiles Handoff does not
/// know the CLI of get their `env` passed through as configured (an empty plan).
pub fn plan(profile: &AgentProfile, lookup: &dyn Fn(&str) -> Option<String>) -> CredentialPlan {
    let passes = |name: &str| profile.env.iter().any(|n| n == name);
    let get = |name: &str| lookup(name).filter(|v| !v.is_empty() && passes(name));
    let egress = profile.network == Network::Egress;
    match profile.output_format() {
        Some(OutputFormat::ClaudeStreamJson) => claude(egress, &get),
        Some(OutputFormat::CodexExecJson) => codex(egress, &get),
        None => CredentialPlan::default(),
    }
}

fn claude(egress: bool, get: &dyn Fn(&str) -> Option<String>) -> CredentialPlan {
    let mut plan = CredentialPlan::default();
    if get("CLAUDE_CODE_USE_BEDROCK").is_some_and(|v| v != "0") {
        // Bedrock: AWS credentials, passed through as configured (`env`); the
        // regional endpoint is allowed.
        let region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION"));
        if let Some(region) = region {
            plan.allow
                .push(format!("bedrock-runtime.{region}.amazonaws.com:443"));
        }
        plan.allow.push("sts.amazonaws.com:443".into());
        return plan;
    }
    if get("CLAUDE_CODE_USE_VERTEX").is_some_and(|v| v != "0") {
        if let Some(region) = get("CLOUD_ML_REGION") {
            plan.allow
                .push(format!("{region}-aiplatform.googleapis.com:443"));
        }
        plan.allow.push("aiplatform.googleapis.com:443".into());
        plan.allow.push("oauth2.googleapis.com:443".into());
        return plan;
    }
    if !egress {
        return plan;
    }
    let (header, value, name) = if let Some(key) = get("ANTHROPIC_API_KEY") {
        ("x-api-key", key, "ANTHROPIC_API_KEY")
    } else if let Some(token) = get("CLAUDE_CODE_OAUTH_TOKEN") {
        (
            "authorization",
            format!("Bearer {token}"),
            "CLAUDE_CODE_OAUTH_TOKEN",
        )
    } else {
        return plan;
    };
    let upstream = get("ANTHROPIC_BASE_URL").unwrap_or_else(|| "https://api.anthropic.com".into());
    plan.routes.push(RouteSpec {
        name: "anthropic",
        upstream,
        inject: vec![(header.to_string(), value)],
        strip: vec!["x-api-key".into(), "authorization".into()],
    });
    plan.env
        .push(("ANTHROPIC_BASE_URL".into(), route_marker("anthropic")));
    plan.env.push((name.into(), PLACEHOLDER.into()));
    plan.withheld = [
        "ANTHROPIC_API_KEY",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
    ]
    .map(String::from)
    .to_vec();
    plan
}

/// Codex reads its key from `CODEX_API_KEY` (with only `OPENAI_API_KEY` set it sends
/// no `Authorization` at all) and its endpoint from its own configuration key
/// `openai_base_url` (not the `OPENAI_BASE_URL` variable).
fn codex(egress: bool, get: &dyn Fn(&str) -> Option<String>) -> CredentialPlan {
    let mut plan = CredentialPlan::default();
    let key = get("CODEX_API_KEY").or_else(|| get("OPENAI_API_KEY"));
    let base = get("OPENAI_BASE_URL");
    if egress {
        if let Some(key) = key {
            plan.routes.push(RouteSpec {
                name: "openai",
                upstream: base.unwrap_or_else(|| "https://api.openai.com/v1".into()),
                inject: vec![("authorization".into(), format!("Bearer {key}"))],
                strip: vec!["authorization".into()],
            });
            plan.env.push(("CODEX_API_KEY".into(), PLACEHOLDER.into()));
            plan.args = vec![
                "-c".into(),
                format!("openai_base_url=\"{}\"", route_marker("openai")),
            ];
            plan.withheld = ["OPENAI_API_KEY", "CODEX_API_KEY", "OPENAI_BASE_URL"]
                .map(String::from)
                .to_vec();
        }
        return plan;
    }
    if let Some(key) = key {
        plan.env.push(("CODEX_API_KEY".into(), key));
        plan.withheld = vec!["CODEX_API_KEY".into()];
    }
    if let Some(base) = base {
        plan.args = vec![
            "-c".into(),
            format!("openai_base_url={}", toml_string(&base)),
        ];
    }
    plan
}

/// `text` as a TOML string (Codex parses `-c key=value` values as TOML).
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::builtin_profiles;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn claude_on_egress_keeps_the_key_with_the_proxy() {
        let claude = &builtin_profiles()["claude"];
        let plan = plan(claude, &env(&[("ANTHROPIC_API_KEY", "sk-real")]));
        assert_eq!(plan.routes[0].upstream, "https://api.anthropic.com");
        assert_eq!(
            plan.routes[0].inject,
            [("x-api-key".into(), "sk-real".into())]
        );
        assert!(plan
            .env
            .contains(&("ANTHROPIC_API_KEY".into(), PLACEHOLDER.into())));
        assert!(!plan.env.iter().any(|(_, v)| v.contains("sk-real")));
        assert!(plan.withheld.contains(&"ANTHROPIC_API_KEY".to_string()));
        // An OAuth token and a gateway.
        let plan = plan_of(
            claude,
            &[
                ("CLAUDE_CODE_OAUTH_TOKEN", "tok"),
                ("ANTHROPIC_BASE_URL", "http://gw:8080"),
            ],
        );
        assert_eq!(plan.routes[0].upstream, "http://gw:8080");
        assert_eq!(
            plan.routes[0].inject,
            [("authorization".into(), "Bearer tok".into())]
        );
    }

    fn plan_of(profile: &AgentProfile, pairs: &[(&str, &str)]) -> CredentialPlan {
        plan(profile, &env(pairs))
    }

    #[test]
    fn codex_gets_its_key_and_base_url_the_way_it_reads_them() {
        let mut codex = builtin_profiles()["codex"].clone();
        let plan = plan_of(
            &codex,
            &[
                ("OPENAI_API_KEY", "sk-o"),
                ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ],
        );
        assert_eq!(plan.routes[0].upstream, "http://127.0.0.1:9/v1");
        assert_eq!(
            plan.routes[0].inject,
            [("authorization".into(), "Bearer sk-o".into())]
        );
        assert_eq!(plan.env, [("CODEX_API_KEY".into(), PLACEHOLDER.into())]);
        assert_eq!(plan.args, ["-c", "openai_base_url=\"ROUTE:openai\""]);
        // Without the proxy: the key in the variable Codex reads, the URL as config.
        codex.network = Network::Bridge;
        let plan = plan_of(
            &codex,
            &[
                ("OPENAI_API_KEY", "sk-o"),
                ("OPENAI_BASE_URL", "http://gw/v1"),
            ],
        );
        assert_eq!(plan.env, [("CODEX_API_KEY".into(), "sk-o".into())]);
        assert_eq!(plan.args, ["-c", "openai_base_url=\"http://gw/v1\""]);
        assert!(plan.routes.is_empty());
    }

    #[test]
    fn bedrock_and_vertex_pass_through_and_allow_their_endpoints() {
        let mut claude = builtin_profiles()["claude"].clone();
        claude
            .env
            .extend(["CLAUDE_CODE_USE_BEDROCK", "AWS_REGION"].map(String::from));
        let plan = plan_of(
            &claude,
            &[
                ("CLAUDE_CODE_USE_BEDROCK", "1"),
                ("AWS_REGION", "eu-west-1"),
            ],
        );
        assert!(plan.routes.is_empty());
        assert!(plan
            .allow
            .contains(&"bedrock-runtime.eu-west-1.amazonaws.com:443".to_string()));
        claude
            .env
            .extend(["CLAUDE_CODE_USE_VERTEX", "CLOUD_ML_REGION"].map(String::from));
        let plan = plan_of(
            &claude,
            &[
                ("CLAUDE_CODE_USE_VERTEX", "1"),
                ("CLOUD_ML_REGION", "us-east5"),
            ],
        );
        assert!(plan
            .allow
            .contains(&"us-east5-aiplatform.googleapis.com:443".to_string()));
    }
}
