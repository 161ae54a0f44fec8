//! `handoff env list|rm|warm`: the repository's environments (setup snapshots, see
//! docs/environments.md).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::terminal::escape;
use crate::engine::task::TaskState;
use crate::engine::Engine;
use crate::sandbox::AnySandbox;

#[derive(Subcommand, Debug)]
pub enum EnvCommand {
    /// List the environments tasks start from: what each was made from, its size and
    /// when a task last used it.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove environments (by key, or a unique start of one); the next task with
    /// that setup runs it again.
    Rm {
        keys: Vec<String>,
        /// Remove every environment no running task uses.
        #[arg(long, conflicts_with = "keys")]
        all: bool,
    },
    /// Run a profile's setup now on the working tree as it is, and keep the
    /// environment, so that the next task starts from it.
    Warm {
        /// Agent profile whose setup to run. Default: the default agent.
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(
    engine: &Engine<AnySandbox>,
    action: EnvCommand,
    out: &mut impl Write,
) -> Result<ExitCode> {
    match action {
        EnvCommand::List { json } => {
            let envs = engine.env_list();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&envs)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            if envs.is_empty() {
                writeln!(
                    out,
                    "No environments yet: a task whose profile has a `setup` keeps one when its setup ends (or run `handoff env warm`)."
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            writeln!(
                out,
                "{:<20}  {:<8}  {:>9}  {:>8}  {:<16}  setup",
                "KEY", "PROFILE", "SIZE", "FILES", "LAST USED"
            )?;
            for e in &envs {
                let i = &e.info;
                writeln!(
                    out,
                    "{:<20}  {:<8}  {:>9}  {:>8}  {:<16}  {}",
                    i.key,
                    escape(&i.profile),
                    size(i.bytes + i.home_bytes),
                    i.files + i.home_files,
                    e.last_used.format("%Y-%m-%d %H:%M"),
                    escape(&i.setup)
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        EnvCommand::Rm { keys, all } => {
            let keys = if all {
                engine.env_list().into_iter().map(|e| e.info.key).collect()
            } else {
                keys
            };
            if keys.is_empty() {
                anyhow::bail!("name the environments to remove (`handoff env list`), or --all");
            }
            let mut failed = false;
            for key in keys {
                match engine.env_remove(&key).await {
                    Ok(key) => writeln!(out, "Removed environment {key}.")?,
                    Err(e) => {
                        eprintln!("handoff: {}", escape(&e.to_string()));
                        failed = true;
                    }
                }
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        EnvCommand::Warm { agent, json } => {
            let task = engine.warm(agent.as_deref()).await?;
            let id = task.id;
            if let Err(e) = engine.tick().await {
                eprintln!(
                    "handoff: the setup cannot start: {}",
                    escape(&e.to_string())
                );
            }
            let task = engine.wait(id, |_| {}).await?;
            // The warm-up was only a vehicle; its record and branch go.
            if let Err(e) = engine.remove(id, true).await {
                eprintln!("handoff: warning: could not remove the warm-up task #{id}: {e}");
            }
            let env = task.environment.as_ref().map(|e| e.key.clone());
            let info = env.as_deref().and_then(|k| engine.envs().get(k));
            match (task.state, info) {
                (TaskState::Done, Some(info)) => {
                    if json {
                        writeln!(out, "{}", serde_json::to_string_pretty(&info)?)?;
                    } else {
                        let reused = task.environment.as_ref().is_some_and(|e| e.reused);
                        writeln!(
                            out,
                            "Environment {} {} ({} files, {}); tasks of `{}` start from it.",
                            info.key,
                            if reused { "is up to date" } else { "is ready" },
                            info.files + info.home_files,
                            size(info.bytes + info.home_bytes),
                            escape(&info.profile)
                        )?;
                    }
                    Ok(ExitCode::SUCCESS)
                }
                _ => {
                    let why = task
                        .error
                        .unwrap_or_else(|| format!("the warm-up task ended {}", task.state));
                    eprintln!("handoff: no environment was made: {}", escape(&why));
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}
