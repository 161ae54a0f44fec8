//! Agent profiles: which image runs which command with which environment.
//!
//! Built-in profiles are `claude`, `codex` and `shell`; configuration files add
//! profiles or override single fields of these.

pub mod transcript;

use std::collections::BTreeMap;

use serde::Serialize;

pub mod budget;
pub mod credentials;
pub mod profile;

pub use profile::{Limits, MemorySize, Network, Steps, DEFAULT_CHECK_RETRIES};

/// Linux refuses a single argument or environment string over 128 KiB (MAX_ARG_STRLEN).
pub const MAX_ARG_BYTES: usize = 128 * 1024 - 1;

/// Where the prompt file appears inside the sandbox.
pub const PROMPT_FILE_IN_SANDBOX: &str = "/run/handoff/prompt.txt";

/// Where the runner leaves setup and check results inside the sandbox.
pub const OUT_DIR_IN_SANDBOX: &str = "/run/handoff/out";

/// Where the shared tool caches appear inside the sandbox.
pub const CACHE_DIR_IN_SANDBOX: &str = "/cache";

/// Runs the agent, then the check, in the agent's container (`sh -c RUNNER runner
/// AGENT-ARGV…`). Check output goes to files, not to the agent's stream, which stays
/// parseable. Used only when a check is configured, so images without a shell still
/// run plain agents.
pub const RUNNER: &str = r#"out=/run/handoff/out
"$@"
rc=$?
echo "$rc" >"$out/agent.rc"
if [ "$rc" -eq 0 ] && [ -n "${HANDOFF_CHECK:-}" ]; then
  sh -c "$HANDOFF_CHECK" >"$out/check.log" 2>&1
  echo "$?" >"$out/check.rc"
fi
exit "$rc"
"#;

/// Runs `setup` in its own container, before the agent's (`sh -c SETUP_RUNNER`): its
/// output and exit code go to files the host reads.
pub const SETUP_RUNNER: &str = r#"out=/run/handoff/out
sh -c "$HANDOFF_SETUP" >"$out/setup.log" 2>&1
rc=$?
echo "$rc" >"$out/setup.rc"
exit "$rc"
"#;

/// Variables pointing common tools' download caches into [`CACHE_DIR_IN_SANDBOX`].
pub const CACHE_ENV: &[(&str, &str)] = &[
    ("HANDOFF_CACHE", "/cache"),
    ("npm_config_cache", "/cache/npm"),
    ("YARN_CACHE_FOLDER", "/cache/yarn"),
    ("PIP_CACHE_DIR", "/cache/pip"),
    ("XDG_CACHE_HOME", "/cache/xdg"),
    ("GOMODCACHE", "/cache/gomod"),
];

/// Paths whose change alters how tools, editors, agents or CI behave on the user's
/// machine: a task that changes one is called out, and its hunks are never accepted
/// in bulk. Matched against repository-relative paths.
pub fn is_sensitive_path(path: &str) -> bool {
    const FILES: &[&str] = &[
        ".handoff.toml",
        ".envrc",
        ".env",
        ".gitattributes",
        ".gitmodules",
        ".gitlab-ci.yml",
        ".travis.yml",
        "Jenkinsfile",
        ".pre-commit-config.yaml",
        ".npmrc",
        ".yarnrc",
        ".yarnrc.yml",
        ".tool-versions",
        ".mise.toml",
        "CLAUDE.md",
        "AGENTS.md",
        ".mcp.json",
        ".devcontainer.json",
    ];
    const FOLDERS: &[&str] = &[
        ".handoff/",
        ".vscode/",
        ".idea/",
        ".claude/",
        ".codex/",
        ".cursor/",
        ".github/",
        ".gitlab/",
        ".circleci/",
        ".devcontainer/",
        ".husky/",
        ".cargo/",
    ];
    let name = path.rsplit('/').next().unwrap_or(path);
    FILES.contains(&path)
        || FOLDERS.iter().any(|f| path.starts_with(f))
        || FILES.contains(&name)
            && matches!(
                name,
                ".envrc" | ".gitattributes" | ".npmrc" | "CLAUDE.md" | "AGENTS.md"
            )
}

/// Lockfiles whose content keys the cache: tasks with the same ones share it.
pub const LOCKFILES: &[&str] = &[
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "Cargo.lock",
    "poetry.lock",
    "uv.lock",
    "requirements.txt",
    "go.sum",
    "Gemfile.lock",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentProfile {
    pub name: String,
    pub image: String,
    /// argv; `{prompt}` in any element is replaced by the prompt.
    pub command: Vec<String>,
    /// argv of a follow-up turn that continues the agent's session: `{session}` is
    /// replaced by the session id the previous turn reported, `{prompt}` by the reply.
    /// Without it (or without a session id) a follow-up runs `command` with the reply.
    pub resume_command: Option<Vec<String>>,
    /// Names of variables passed through from the caller's environment.
    pub env: Vec<String>,
    /// Fixed, non-secret variables set in the container (`set_env` in config).
    pub set_env: BTreeMap<String, String>,
    /// Names of credential variables of which at least one must be set in the
    /// caller's environment; a task fails at once, naming them, when none is.
    pub credentials: Vec<String>,
    /// This profile's own setup and check (see [`crate::config::Config::steps_for`]).
    pub steps: Steps,
    /// The prompt is a command, not words (the built-in `shell`): a failing check gets
    /// no repair turn unless `check_retries` asks for one.
    pub prompt_is_command: bool,
    pub network: Network,
    /// Where the agent may connect through the egress proxy (`host:port` rules).
    pub allow: Vec<crate::egress::Rule>,
    pub memory: Option<MemorySize>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
    pub limits: Limits,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn rules(items: &[&str]) -> Vec<crate::egress::Rule> {
    items
        .iter()
        .map(|s| s.parse().expect("built-in allow rules are valid"))
        .collect()
}

pub fn builtin_profiles() -> BTreeMap<String, AgentProfile> {
    let profile = |name: &str, image: &str, command: &[&str], env: &[&str], network| {
        (
            name.to_string(),
            AgentProfile {
                name: name.into(),
                image: image.into(),
                command: strings(command),
                resume_command: None,
                env: strings(env),
                set_env: BTreeMap::new(),
                credentials: vec![],
                steps: Steps::default(),
                prompt_is_command: false,
                network,
                allow: vec![],
                memory: Some(MemorySize(4 << 30)),
                cpus: None,
                pids: Some(1024),
                limits: Limits::default(),
            },
        )
    };
    let mut profiles = BTreeMap::from([
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
            Network::Egress,
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
            &["OPENAI_API_KEY", "CODEX_API_KEY", "OPENAI_BASE_URL"],
            Network::Egress,
        ),
        // The prompt is a shell command: codemods, formatters, scripted edits.
        profile(
            "shell",
            "debian:stable-slim",
            &["sh", "-c", "{prompt}"],
            &[],
            Network::None,
        ),
    ]);
    if let Some(shell) = profiles.get_mut("shell") {
        shell.prompt_is_command = true;
    }
    if let Some(claude) = profiles.get_mut("claude") {
        claude.resume_command = Some(strings(&[
            "claude",
            "-p",
            "{prompt}",
            "--resume",
            "{session}",
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions",
        ]));
        claude.credentials = strings(&[
            "ANTHROPIC_API_KEY",
            "CLAUDE_CODE_OAUTH_TOKEN",
            "CLAUDE_CODE_USE_BEDROCK",
            "CLAUDE_CODE_USE_VERTEX",
        ]);
        // Amazon Bedrock and Google Vertex, as Claude Code documents them.
        claude.env.extend(strings(&[
            "CLAUDE_CODE_USE_BEDROCK",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_BEARER_TOKEN_BEDROCK",
            "ANTHROPIC_MODEL",
            "ANTHROPIC_SMALL_FAST_MODEL",
            "CLAUDE_CODE_USE_VERTEX",
            "CLOUD_ML_REGION",
            "ANTHROPIC_VERTEX_PROJECT_ID",
        ]));
        claude.allow = rules(&["api.anthropic.com:443"]);
        claude.set_env = BTreeMap::from([
            ("DISABLE_AUTOUPDATER".to_string(), "1".to_string()),
            // Retries of a model API that does not answer end within about a minute
            // (the CLI's own default, 10, with backoff, takes three).
            ("CLAUDE_CODE_MAX_RETRIES".to_string(), "5".to_string()),
            (
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".to_string(),
                "1".to_string(),
            ),
        ]);
    }
    if let Some(codex) = profiles.get_mut("codex") {
        codex.resume_command = Some(strings(&[
            "codex",
            "exec",
            "--json",
            "--dangerously-bypass-approvals-and-sandbox",
            "resume",
            "{session}",
            "{prompt}",
        ]));
        codex.credentials = strings(&["OPENAI_API_KEY", "CODEX_API_KEY"]);
        codex.allow = rules(&["api.openai.com:443", "chatgpt.com:443"]);
    }
    profiles
}

/// The structured output format of an agent's CLI, when Handoff understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    ClaudeStreamJson,
    CodexExecJson,
}

impl OutputFormat {
    /// The parser of one line of this format, for reading output as it comes.
    pub fn line_parser(self) -> fn(&mut transcript::Transcript, &str) {
        match self {
            OutputFormat::ClaudeStreamJson => transcript::claude::parse_line,
            OutputFormat::CodexExecJson => transcript::codex::parse_line,
        }
    }

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

    /// The argv to run for `prompt`, or a message saying why it cannot be passed.
    pub fn argv(&self, prompt: &str) -> Result<Vec<String>, String> {
        self.fill(&self.command, prompt, "")
    }

    /// The argv of a follow-up turn: the resume command when the profile has one and
    /// the previous turn reported a session, else the plain command with the reply.
    pub fn follow_up_argv(
        &self,
        prompt: &str,
        session: Option<&str>,
    ) -> Result<Vec<String>, String> {
        match (&self.resume_command, session) {
            (Some(resume), Some(session)) => self.fill(resume, prompt, session),
            _ => self.argv(prompt),
        }
    }

    /// The credential check: `Err` says which variables to set, when the profile
    /// names credentials and `lookup` finds none of them.
    pub fn check_credentials(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        if self.credentials.is_empty()
            || self
                .credentials
                .iter()
                .any(|name| lookup(name).is_some_and(|v| !v.is_empty()))
        {
            return Ok(());
        }
        let names = match self.credentials.as_slice() {
            [one] => format!("`{one}`"),
            many => {
                let quoted: Vec<String> = many.iter().map(|n| format!("`{n}`")).collect();
                format!(
                    "one of {} or {}",
                    quoted[..quoted.len() - 1].join(", "),
                    quoted[quoted.len() - 1]
                )
            }
        };
        Err(format!(
            "agent `{}` needs credentials: set {names} in the environment Handoff runs in \
             (the shell for `handoff`, the editor for the language server), then start the \
             task again or `handoff reply` to it",
            self.name
        ))
    }

    fn fill(
        &self,
        template: &[String],
        prompt: &str,
        session: &str,
    ) -> Result<Vec<String>, String> {
        let mut argv = Vec::with_capacity(template.len());
        for part in template {
            let arg = part
                .replace("{session}", session)
                .replace("{prompt}", prompt);
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
    fn sensitive_paths_are_the_ones_that_configure_tools() {
        for path in [
            ".handoff.toml",
            ".handoff/Dockerfile",
            ".vscode/settings.json",
            ".claude/settings.json",
            ".envrc",
            "sub/.envrc",
            ".github/workflows/ci.yml",
            ".gitlab-ci.yml",
            "CLAUDE.md",
            "web/.npmrc",
        ] {
            assert!(is_sensitive_path(path), "{path}");
        }
        for path in [
            "src/main.rs",
            "docs/vscode.md",
            "README.md",
            "sub/.handoff.toml.bak",
        ] {
            assert!(!is_sensitive_path(path), "{path}");
        }
    }

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
    fn follow_ups_resume_the_session_when_the_profile_can() {
        let profiles = builtin_profiles();
        let claude = &profiles["claude"];
        let argv = claude.follow_up_argv("and tests", Some("s-1")).unwrap();
        assert_eq!(&argv[..5], ["claude", "-p", "and tests", "--resume", "s-1"]);
        // No session reported: a fresh run with the reply.
        assert_eq!(claude.follow_up_argv("again", None).unwrap()[2], "again");
        let codex = &profiles["codex"];
        let argv = codex.follow_up_argv("more", Some("t-9")).unwrap();
        assert_eq!(argv[argv.len() - 3..], ["resume", "t-9", "more"]);
        // The shell profile has no session: the reply is the next command.
        assert_eq!(
            profiles["shell"].follow_up_argv("ls", Some("x")).unwrap(),
            ["sh", "-c", "ls"]
        );
    }

    #[test]
    fn missing_credentials_name_the_variables() {
        let profiles = builtin_profiles();
        let none = |_: &str| None;
        let err = profiles["claude"].check_credentials(none).unwrap_err();
        assert!(
            err.contains("one of `ANTHROPIC_API_KEY`, `CLAUDE_CODE_OAUTH_TOKEN`, `CLAUDE_CODE_USE_BEDROCK` or `CLAUDE_CODE_USE_VERTEX`"),
            "{err}"
        );
        let token = |n: &str| (n == "CLAUDE_CODE_OAUTH_TOKEN").then(|| "t".to_string());
        assert!(profiles["claude"].check_credentials(token).is_ok());
        let empty = |_: &str| Some(String::new());
        assert!(profiles["codex"].check_credentials(empty).is_err());
        assert!(profiles["shell"].check_credentials(none).is_ok());
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
