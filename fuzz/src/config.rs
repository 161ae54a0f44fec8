//! The config loader: whatever a `.handoff.toml` says, loading it never panics, a
//! file that loads gives a configuration Handoff can run, and a file the user has not
//! trusted never widens the sandbox.

use std::path::Path;

use handoff::agents::{Limits, Steps};
use handoff::config::{Config, ConfigError};

/// Where the repository's file is said to be; error messages must name it.
const REPO_FILE: &str = "/repo/.handoff.toml";
const USER_FILE: &str = "/home/me/.config/handoff/config.toml";

/// Splits an input into the user's file and the repository's. Without it, the
/// repository's file applies over the built-in configuration.
pub const USER_FILE_END: &str = "\n#%% repository\n";

/// Checks one input: the repository's file applied over the built-in configuration
/// (or over the user's file, when the input has both, split by [`USER_FILE_END`]),
/// once as trusted and once as not.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut base = Config::builtin();
    let repo_text = match text.split_once(USER_FILE_END) {
        Some((user_text, repo_text)) => {
            let loaded = base.apply(Path::new(USER_FILE), user_text);
            if let Err(error) = loaded {
                assert_names_the_file(&error, USER_FILE);
                return;
            }
            assert_runnable(&base, USER_FILE);
            repo_text
        }
        None => &*text,
    };
    let repo = Path::new(REPO_FILE);

    let mut trusted = base.clone();
    let trusted_result = trusted.apply(repo, repo_text);
    match &trusted_result {
        Ok(()) => assert_runnable(&trusted, REPO_FILE),
        Err(error) => assert_names_the_file(error, REPO_FILE),
    }

    let mut untrusted = base.clone();
    match untrusted.apply_untrusted(repo, repo_text) {
        Ok(()) => {
            assert_runnable(&untrusted, REPO_FILE);
            assert_not_widened(&base, &untrusted);
        }
        Err(error) => {
            assert_names_the_file(&error, REPO_FILE);
            // Leaving settings out never makes a valid file invalid.
            assert!(
                trusted_result.is_err(),
                "the file loads when trusted but not when untrusted: {error}"
            );
        }
    }
}

fn assert_names_the_file(error: &ConfigError, path: &str) {
    match error {
        ConfigError::Invalid {
            path: named,
            message,
        } => {
            assert_eq!(named, Path::new(path));
            assert!(!message.trim().is_empty(), "an empty error message");
        }
        ConfigError::Read { .. } => panic!("applying text cannot fail to read: {error}"),
    }
    assert!(error.to_string().contains(path), "{error}");
}

/// What the loader promises about a configuration it accepted: the checks in
/// `Config::apply` hold for every profile, whichever file set what.
fn assert_runnable(config: &Config, path: &str) {
    assert!(
        (1..=256).contains(&config.max_parallel),
        "{}",
        config.max_parallel
    );
    assert!(
        config.agents.contains_key(&config.default_agent),
        "default_agent {:?} is no profile",
        config.default_agent
    );
    assert_eq!(
        config.sources.last().map(|p| p.as_path()),
        Some(Path::new(path))
    );
    assert_steps(&config.steps, "top level");
    for (name, profile) in &config.agents {
        assert_eq!(&profile.name, name);
        assert!(!profile.command.is_empty(), "{name}: empty command");
        if let Some(resume) = &profile.resume_command {
            assert!(!resume.is_empty(), "{name}: empty resume_command");
        }
        for var in profile
            .env
            .iter()
            .chain(&profile.credentials)
            .chain(profile.set_env.keys())
        {
            assert!(is_env_name(var), "{name}: {var:?} is no variable name");
        }
        if let Some(memory) = profile.memory {
            assert!(memory.0 >= 6 << 20, "{name}: memory {}", memory.0);
        }
        if let Some(cpus) = profile.cpus {
            assert!(cpus > 0.0 && cpus <= 1024.0, "{name}: cpus {cpus}");
        }
        if let Some(pids) = profile.pids {
            assert!(pids >= 16, "{name}: pids {pids}");
        }
        assert_limits(&profile.limits, name);
        assert_steps(&profile.steps, name);
    }
}

fn assert_limits(limits: &Limits, name: &str) {
    if let Some(turns) = limits.max_turns {
        assert!((1..=100_000).contains(&turns), "{name}: max_turns {turns}");
    }
    if let Some(cost) = limits.max_cost_usd {
        assert!(
            cost > 0.0 && cost.is_finite(),
            "{name}: max_cost_usd {cost}"
        );
    }
}

fn assert_steps(steps: &Steps, whose: &str) {
    for command in [&steps.setup, &steps.check].into_iter().flatten() {
        assert!(!command.trim().is_empty(), "{whose}: blank setup or check");
    }
    if let Some(n) = steps.check_retries {
        assert!(n <= 10, "{whose}: check_retries {n}");
    }
}

/// The trust model's promise: an untrusted file adds no profile, and changes nothing
/// of an existing one that reaches outside the container — image, command,
/// environment, credentials, network, allow list — nor raises a limit or
/// `max_parallel`, nor allows the host's network.
fn assert_not_widened(before: &Config, after: &Config) {
    assert!(
        after.agents.keys().eq(before.agents.keys()),
        "profiles changed: {:?} -> {:?}",
        before.agents.keys().collect::<Vec<_>>(),
        after.agents.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        after.allow_host_network, before.allow_host_network,
        "allow_host_network changed"
    );
    assert!(
        after.max_parallel <= before.max_parallel,
        "max_parallel raised"
    );
    for (name, was) in &before.agents {
        let now = &after.agents[name];
        let same = |what: &str, equal: bool| assert!(equal, "untrusted file changed {name}.{what}");
        same("image", now.image == was.image);
        same("command", now.command == was.command);
        same("resume_command", now.resume_command == was.resume_command);
        same("env", now.env == was.env);
        same("set_env", now.set_env == was.set_env);
        same("credentials", now.credentials == was.credentials);
        same("network", now.network == was.network);
        same("allow", now.allow == was.allow);
        same(
            "prompt_is_command",
            now.prompt_is_command == was.prompt_is_command,
        );
        assert_limit_not_raised(
            name,
            "memory",
            was.memory.map(|m| m.0),
            now.memory.map(|m| m.0),
        );
        assert_limit_not_raised(name, "cpus", was.cpus, now.cpus);
        assert_limit_not_raised(name, "pids", was.pids, now.pids);
        let (was, now) = (&was.limits, &now.limits);
        assert_limit_not_raised(
            name,
            "timeout",
            Some(was.timeout_secs),
            Some(now.timeout_secs),
        );
        assert_limit_not_raised(
            name,
            "import_limit",
            Some(was.import_bytes),
            Some(now.import_bytes),
        );
        assert_limit_not_raised(
            name,
            "disk_limit",
            Some(was.disk_bytes),
            Some(now.disk_bytes),
        );
        assert_limit_not_raised(name, "max_turns", was.max_turns, now.max_turns);
        assert_limit_not_raised(name, "max_cost_usd", was.max_cost_usd, now.max_cost_usd);
    }
    if after.ignored.len() > before.ignored.len() {
        assert!(
            after.warnings.iter().any(|w| w.contains("handoff trust")),
            "settings ignored without a word: {:?}",
            after.ignored
        );
    }
}

/// `None` is no limit at all.
fn assert_limit_not_raised<T: PartialOrd + std::fmt::Debug>(
    name: &str,
    what: &str,
    was: Option<T>,
    now: Option<T>,
) {
    let raised = match (&was, &now) {
        (Some(_), None) => true,
        (Some(was), Some(now)) => now > was,
        (None, _) => false,
    };
    assert!(
        !raised,
        "untrusted file raised {name}.{what}: {was:?} -> {now:?}"
    );
}

/// The loader's own rule for variable names (`config::is_env_name` is private).
fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}
