//! The image Handoff runs a profile's tasks in on a dev container: a new image `FROM`
//! theirs, with the agent's CLI copied from the agent's own image (`/opt/agent`, linked
//! onto `PATH`), a check that their image can run it, and their `containerEnv` and
//! `remoteEnv` as `ENV`. Their image is never changed.

use crate::devcontainer::{EnvVar, Segment};

use super::recipe::AgentRecipe;

/// The stage the agent's files are copied from.
const AGENT_STAGE: &str = "handoff-agent-cli";

/// Where the check script is put (and removed from) in the image.
pub const FIT_SCRIPT: &str = "/tmp/handoff-fit.sh";

/// What a line of the check script's output starts with when the image cannot run the
/// agent; the rest of the line says why.
pub const FIT_FAILED: &str = "handoff-fit: ";

/// The layer's Dockerfile: `agent` is the agent's image (`None` for a profile with no
/// CLI), `environment` the dev container's, `env` its variables. The build context
/// holds `fit.sh` ([`fit_script`]).
pub fn dockerfile(agent: Option<&str>, environment: &str, env: &[EnvVar]) -> String {
    let mut out = String::from(
        "# A dev container's image with what Handoff runs tasks with (docs/environments.md).\n\
         # Their image is not changed: this is a new image FROM it, built with no network.\n",
    );
    if let Some(agent) = agent {
        out.push_str(&format!("FROM {agent} AS {AGENT_STAGE}\n"));
    }
    out.push_str(&format!("FROM {environment}\nUSER root\n"));
    if agent.is_some() {
        out.push_str(&format!(
            "COPY --from={AGENT_STAGE} /opt/agent /opt/agent\n"
        ));
        // The CLI is linked into /usr/local/bin, which an image's PATH may lack; after
        // theirs, so that their own programs keep their precedence.
        out.push_str("ENV PATH=${PATH:-/usr/sbin:/usr/bin:/sbin:/bin}:/usr/local/bin\n");
    }
    out.push_str(&format!(
        "COPY fit.sh {FIT_SCRIPT}\nRUN [\"/bin/sh\", \"{FIT_SCRIPT}\"]\n"
    ));
    for var in env {
        out.push_str(&format!("ENV {}=\"{}\"\n", var.name, env_value(&var.value)));
    }
    out
}

/// The check script for `recipe`'s CLI (none for a profile without one).
pub fn fit_script(recipe: Option<&AgentRecipe>) -> String {
    include_str!("layer.sh").replace("@AGENT@", recipe.map_or("", |r| r.fit))
}

/// A value as the inside of a Dockerfile `ENV` double-quoted string: `"`, `\` and `$`
/// escaped, `${containerEnv:NAME}` as `${NAME}`, which the builder expands from the
/// image's own environment.
fn env_value(value: &[Segment]) -> String {
    let mut out = String::new();
    for segment in value {
        match segment {
            Segment::Text(text) => {
                for c in text.chars() {
                    if matches!(c, '"' | '\\' | '$') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
            Segment::ContainerEnv(name) => out.push_str(&format!("${{{name}}}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_copies_the_cli_checks_the_image_and_sets_the_variables() {
        let env = vec![
            EnvVar {
                name: "PATH".into(),
                value: vec![
                    Segment::ContainerEnv("PATH".into()),
                    Segment::Text(":/opt/bin".into()),
                ],
            },
            EnvVar {
                name: "PRICE".into(),
                value: vec![Segment::Text("$5 \"quoted\" \\ ${HOME}".into())],
            },
        ];
        insta::assert_snapshot!(dockerfile(Some("handoff/codex:0123"), "handoff-repo-k/devcontainer:ab", &env), @r#"
        # A dev container's image with what Handoff runs tasks with (docs/environments.md).
        # Their image is not changed: this is a new image FROM it, built with no network.
        FROM handoff/codex:0123 AS handoff-agent-cli
        FROM handoff-repo-k/devcontainer:ab
        USER root
        COPY --from=handoff-agent-cli /opt/agent /opt/agent
        ENV PATH=${PATH:-/usr/sbin:/usr/bin:/sbin:/bin}:/usr/local/bin
        COPY fit.sh /tmp/handoff-fit.sh
        RUN ["/bin/sh", "/tmp/handoff-fit.sh"]
        ENV PATH="${PATH}:/opt/bin"
        ENV PRICE="\$5 \"quoted\" \\ \${HOME}"
        "#);
        let plain = dockerfile(None, "busybox", &[]);
        assert!(!plain.contains("opt/agent") && plain.contains("FROM busybox\n"));
    }

    #[test]
    fn the_check_script_runs_the_agent_s_own_lines() {
        let codex = super::super::recipe::builtin("codex").unwrap();
        let script = fit_script(Some(codex));
        assert!(script.contains("probe codex\n") && !script.contains("@AGENT@"));
        assert!(!fit_script(None).contains("@AGENT@"));
    }

    /// The script in a real `sh`, on a root that lacks bash: the reason is one line.
    #[test]
    fn a_missing_requirement_is_one_line_saying_what_is_missing() {
        let claude = super::super::recipe::builtin("claude").unwrap();
        let script = fit_script(Some(claude))
            .replace("command -v bash", "command -v no-such-bash")
            .replace("mkdir -p /home/agent /workspace /usr/local/bin", ":")
            .replace("chmod 1777 /home/agent /workspace", ":")
            .replace("git config --system", ": ");
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            said.trim(),
            "handoff-fit: it has no bash, which Claude Code runs every command with: install bash in the image"
        );
    }
}
