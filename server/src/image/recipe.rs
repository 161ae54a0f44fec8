//! What Handoff knows how to build for its built-in agents: which npm package holds
//! the CLI, where its native binary lands, and the Dockerfile that puts it on PATH.

/// A built-in agent's image recipe.
#[derive(Debug, PartialEq)]
pub struct AgentRecipe {
    /// The built-in profile it is for.
    pub profile: &'static str,
    /// Where the CLI comes from.
    pub source: Source,
    /// The pinned package spec (`--package` overrides it): npm's for npm, pip's for pip.
    pub package: &'static str,
    /// Checked on the host before building, so that a package whose layout changed
    /// fails with a clear message: for npm the CLI's binary relative to the prefix,
    /// for pip the start of the CLI's wheel's file name.
    pub binary: &'static str,
    pub dockerfile: &'static str,
    /// How the CLI is put on another image (a dev container's; see `layer.rs`): `sh`
    /// lines run as root after `/opt/agent` is copied in, with `fail REASON` (the
    /// image cannot run the agent) and `probe CLI` (`CLI --version` must work).
    pub fit: &'static str,
}

/// The package manager a built-in agent's CLI is resolved with, on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Npm,
    Pip,
}

pub const RECIPES: &[AgentRecipe] = &[
    AgentRecipe {
        profile: "claude",
        source: Source::Npm,
        package: "@anthropic-ai/claude-code@2.1.332",
        binary: "node_modules/@anthropic-ai/claude-code-linux-x64/claude",
        dockerfile: include_str!("claude.Dockerfile"),
        fit: r#"command -v bash >/dev/null 2>&1 || fail "it has no bash, which Claude Code runs every command with: install bash in the image"
[ -e /lib64/ld-linux-x86-64.so.2 ] || fail "it has no glibc (/lib64/ld-linux-x86-64.so.2), which Claude Code's binary needs: musl-based images such as Alpine cannot run it; start from a glibc-based image (Debian, Ubuntu, ...)"
ln -sf /opt/agent/node_modules/@anthropic-ai/claude-code-linux-x64/claude /usr/local/bin/claude
probe claude
"#,
    },
    AgentRecipe {
        profile: "codex",
        source: Source::Npm,
        package: "@openai/codex@0.169.0",
        binary: "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex",
        dockerfile: include_str!("codex.Dockerfile"),
        fit: r#"ln -sf /opt/agent/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex /usr/local/bin/codex
probe codex
"#,
    },
    AgentRecipe {
        profile: "aider",
        source: Source::Pip,
        package: "aider-chat==0.86.2",
        binary: "aider_chat-",
        dockerfile: include_str!("aider.Dockerfile"),
        fit: r#"py=$(command -v python3) || fail "it has no python3, which aider runs on: use an image with Python 3.11"
"$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || fail "its python3 is $("$py" --version 2>&1), and aider's packages were resolved for Python 3.11 (Handoff's base): use an image with Python 3.11"
printf '#!%s\nimport sys\nsys.path.insert(0, "/opt/agent/lib")\nfrom aider.main import main\nsys.exit(main())\n' "$py" > /usr/local/bin/aider
chmod 755 /usr/local/bin/aider
probe aider
"#,
    },
];

/// Unpacks the wheels of a pip recipe in the image (it has neither pip nor venv).
pub const UNPACK_WHEELS: &str = include_str!("unpack.py");

pub fn builtin(profile: &str) -> Option<&'static AgentRecipe> {
    RECIPES.iter().find(|r| r.profile == profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfiles_link_the_binary_the_host_checks() {
        for recipe in RECIPES.iter().filter(|r| r.source == Source::Npm) {
            let in_image = format!("/opt/agent/{}", recipe.binary);
            let link = format!("ln -s {in_image} /usr/local/bin/{}", recipe.profile);
            assert!(recipe.dockerfile.contains(&link), "{}", recipe.profile);
            assert!(recipe.dockerfile.contains("COPY agent/ /opt/agent/"));
            assert!(!recipe.dockerfile.contains("ENTRYPOINT"));
            // The same link on a dev container's image.
            let link = format!("ln -sf {in_image} /usr/local/bin/{}", recipe.profile);
            assert!(recipe.fit.contains(&link), "{}", recipe.profile);
        }
        for recipe in RECIPES.iter().filter(|r| r.source == Source::Pip) {
            assert!(
                recipe.dockerfile.contains("unpack.py"),
                "{}",
                recipe.profile
            );
            assert!(recipe
                .dockerfile
                .contains(&format!("/usr/local/bin/{}", recipe.profile)));
            assert!(recipe
                .fit
                .contains(&format!("> /usr/local/bin/{}", recipe.profile)));
        }
    }
}
