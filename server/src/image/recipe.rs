//! What Handoff knows how to build for its built-in agents: which npm package holds
//! the CLI, where its native binary lands, and the Dockerfile that puts it on PATH.

/// A built-in agent's image recipe.
#[derive(Debug, PartialEq)]
pub struct AgentRecipe {
    /// The built-in profile it is for.
    pub profile: &'static str,
    /// The pinned npm spec (`--package` overrides it).
    pub package: &'static str,
    /// The CLI's binary, relative to the npm prefix, checked on the host before
    /// building so that a package whose layout changed fails with a clear message.
    pub binary: &'static str,
    pub dockerfile: &'static str,
}

pub const RECIPES: &[AgentRecipe] = &[
    AgentRecipe {
        profile: "claude",
        package: "@anthropic-ai/claude-code@2.1.332",
        binary: "node_modules/@anthropic-ai/claude-code-linux-x64/claude",
        dockerfile: include_str!("claude.Dockerfile"),
    },
    AgentRecipe {
        profile: "codex",
        package: "@openai/codex@0.169.0",
        binary: "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex",
        dockerfile: include_str!("codex.Dockerfile"),
    },
];

pub fn builtin(profile: &str) -> Option<&'static AgentRecipe> {
    RECIPES.iter().find(|r| r.profile == profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfiles_link_the_binary_the_host_checks() {
        for recipe in RECIPES {
            let in_image = format!("/opt/agent/{}", recipe.binary);
            let link = format!("ln -s {in_image} /usr/local/bin/{}", recipe.profile);
            assert!(recipe.dockerfile.contains(&link), "{}", recipe.profile);
            assert!(recipe.dockerfile.contains("COPY agent/ /opt/agent/"));
            assert!(!recipe.dockerfile.contains("ENTRYPOINT"));
        }
    }
}
