//! Agent profiles: which image runs which command with which environment.
//!
//! Built-in profiles are `claude`, `codex` and `shell`; configuration files add
//! profiles or override single fields of these.

pub mod transcript;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{MemorySize, Network, ProfileOverride};

/// Linux refuses a single argument or environment string over 128 KiB (MAX_ARG_STRLEN).
pub const MAX_ARG_BYTES: usize = 128 * 1024 - 1;

/// Where the prompt file appears inside the sandbox.
pub const PROMPT_FILE_IN_SANDBOX: &str = "/run/handoff/prompt.txt";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentProfile {
    pub name: String,
    pub image: String,
    /// argv; `{prompt}` in any element is replaced by the prompt.
    pub command: Vec<String>,
    /// Names of variables passed through from the caller's environment.
    pub env: Vec<String>,
    pub network: Network,
    pub memory: Option<MemorySize>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
}

pub fn builtin_profiles() -> BTreeMap<String, AgentProfile> {
    let profile = |name: &str, image: &str, command: &[&str], env: &[&str], network| {
        (
            name.to_string(),
            AgentProfile {
                name: name.into(),
                image: image.into(),
                command: command.iter().map(|s| s.to_string()).collect(),
                env: env.iter().map(|s| s.to_string()).collect(),
                network,
                memory: Some(MemorySize(4 << 30)),
                cpus: None,
                pids: Some(1024),
            },
        )
    };
    BTreeMap::from([
        profile(
            "claude",
            "handoff/claude:latest",
            &[
                "claude",
                "-p",
                "{prompt}",
                "--output-format",
                "stream-json",
                "--verbose",
                "--dangerously-skip-permissions",
            ],
            &[
                "ANTHROPIC_API_KEY",
                "CLAUDE_CODE_OAUTH_TOKEN",
                "ANTHROPIC_BASE_URL",
            ],
            Network::Bridge,
        ),
        profile(
            "codex",
            "handoff/codex:latest",
            &[
                "codex",
                "exec",
                "--json",
                "--dangerously-bypass-approvals-and-sandbox",
                "{prompt}",
            ],
            &["OPENAI_API_KEY", "OPENAI_BASE_URL"],
            Network::Bridge,
        ),
        // The prompt is a shell command: codemods, formatters, scripted edits.
        profile(
            "shell",
            "debian:stable-slim",
            &["sh", "-c", "{prompt}"],
            &[],
            Network::None,
        ),
    ])
}

/// The structured output format of an agent's CLI, when Handoff understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    ClaudeStreamJson,
    CodexExecJson,
}

impl OutputFormat {
    pub fn parse(self, output: &str) -> transcript::Transcript {
        match self {
            OutputFormat::ClaudeStreamJson => transcript::claude::parse(output),
            OutputFormat::CodexExecJson => transcript::codex::parse(output),
        }
    }
}

impl AgentProfile {
    /// Known by the program the profile runs, so custom profiles wrapping the same
    /// CLI (another image, more flags) are understood too.
    pub fn output_format(&self) -> Option<OutputFormat> {
        let program = self.command.first()?;
        match program.rsplit('/').next()? {
            "claude" => Some(OutputFormat::ClaudeStreamJson),
            "codex" => Some(OutputFormat::CodexExecJson),
            _ => None,
        }
    }

    pub fn apply(&mut self, over: ProfileOverride) {
        if let Some(image) = over.image {
            self.image = image;
        }
        if let Some(command) = over.command {
            self.command = command.into_inner();
        }
        if let Some(env) = over.env {
            self.env = env.into_iter().map(|s| s.into_inner()).collect();
        }
        if let Some(network) = over.network {
            self.network = network;
        }
        if over.memory.is_some() {
            self.memory = over.memory;
        }
        if let Some(cpus) = over.cpus {
            self.cpus = Some(cpus.into_inner());
        }
        if let Some(pids) = over.pids {
            self.pids = Some(pids.into_inner());
        }
    }

    /// A profile defined only in a file; `Err` names the missing required key.
    pub fn from_override(name: &str, over: ProfileOverride) -> Result<AgentProfile, &'static str> {
        let image = over.image.clone().ok_or("image")?;
        let command = over.command.clone().ok_or("command")?.into_inner();
        let mut profile = AgentProfile {
            name: name.into(),
            image,
            command,
            env: vec![],
            // Custom profiles get no network unless they ask for one.
            network: Network::None,
            memory: Some(MemorySize(4 << 30)),
            cpus: None,
            pids: Some(1024),
        };
        profile.apply(over);
        Ok(profile)
    }

    /// The argv to run for `prompt`, or a message saying why it cannot be passed.
    pub fn argv(&self, prompt: &str) -> Result<Vec<String>, String> {
        let mut argv = Vec::with_capacity(self.command.len());
        for part in &self.command {
            let arg = part.replace("{prompt}", prompt);
            if arg.len() > MAX_ARG_BYTES {
                return Err(format!(
                    "the prompt is {} KiB, but profile `{}` passes it as a command argument, \
                     which Linux limits to 128 KiB; shorten it, or read it from the file \
                     named by $HANDOFF_PROMPT_FILE in the profile's command",
                    prompt.len() / 1024,
                    self.name
                ));
            }
            argv.push(arg);
        }
        Ok(argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_is_substituted_in_every_argument() {
        let shell = &builtin_profiles()["shell"];
        assert_eq!(shell.argv("echo hi").unwrap(), vec!["sh", "-c", "echo hi"]);
    }

    #[test]
    fn output_formats_follow_the_program() {
        let profiles = builtin_profiles();
        assert_eq!(
            profiles["claude"].output_format(),
            Some(OutputFormat::ClaudeStreamJson)
        );
        assert_eq!(
            profiles["codex"].output_format(),
            Some(OutputFormat::CodexExecJson)
        );
        assert_eq!(profiles["shell"].output_format(), None);
        let mut custom = profiles["shell"].clone();
        custom.command = vec!["/opt/agent/bin/claude".into(), "-p".into()];
        assert_eq!(custom.output_format(), Some(OutputFormat::ClaudeStreamJson));
    }

    #[test]
    fn an_oversized_argument_is_refused_with_a_way_out() {
        let shell = &builtin_profiles()["shell"];
        let err = shell.argv(&"x".repeat(1 << 20)).unwrap_err();
        assert!(
            err.contains("1024 KiB") && err.contains("HANDOFF_PROMPT_FILE"),
            "{err}"
        );
    }
}
