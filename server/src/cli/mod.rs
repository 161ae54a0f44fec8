//! The command line front-end: parses arguments, calls the engine, prints.

mod doctor;
mod env;
mod image;
mod render;
pub mod terminal;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::agents::transcript::render::Live;
use crate::engine::task::{TaskId, TaskState};
use crate::engine::{Engine, EngineError, NewTask};
use crate::sandbox::{AnySandbox, SandboxError};

#[derive(Parser, Debug)]
#[command(
    name = "handoff",
    version,
    about = "Delegate work to background coding agents in Docker; review the result as a branch or inline in your editor."
)]
pub struct Cli {
    /// Run as if started in this directory.
    // Its own id: subcommands have options named `dir` too (`pull --dir`), and clap
    // would otherwise give one value to both.
    #[arg(short = 'C', global = true, value_name = "DIR", id = "cwd")]
    cwd: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a task: snapshot the repository and run an agent on it in a container.
    Run {
        /// Agent profile (built-in: claude, codex, shell; more in .handoff.toml). Several,
        /// comma-separated (`claude,codex`), take the attempts in turn.
        #[arg(long)]
        agent: Option<String>,
        /// Start N tasks with the same prompt and snapshot, to compare and pick one
        /// (`handoff show gID`, `handoff pick ID`). Default: one per agent named.
        #[arg(long, value_name = "N")]
        attempts: Option<usize>,
        /// Block until the task ends; exit non-zero if it failed.
        #[arg(long)]
        wait: bool,
        /// Print the task record as JSON.
        #[arg(long)]
        json: bool,
        /// What the agent should do. Use `-` to read it from standard input.
        prompt: String,
    },
    /// List this repository's tasks.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one task.
    Show {
        /// A task id, or `g` and a group's id (`g3`) to compare its attempts.
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Keep one attempt of a group (`run --attempts`) and remove the others.
    Pick {
        id: TaskId,
        /// Also delete the others' branches.
        #[arg(long)]
        delete_branches: bool,
    },
    /// Print a task's output (secrets redacted).
    Logs {
        id: TaskId,
        /// Keep printing while the agent runs.
        #[arg(short, long)]
        follow: bool,
        /// The agent's raw output, not the rendered transcript (Claude Code, Codex).
        #[arg(long)]
        raw: bool,
    },
    /// Send a follow-up: a new turn on the same branch that resumes the agent's
    /// session; queued until the current turn ends if the task is still running.
    Reply {
        id: TaskId,
        /// Block until the turn ends; exit non-zero if it failed.
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
        /// What the agent should do next. Use `-` to read it from standard input.
        /// Optional when review comments are pending: they are sent (with it).
        message: Option<String>,
    },
    /// Comment on a line of a finished task's changes; pending comments go to the
    /// agent together with the next `handoff reply`.
    Comment {
        id: TaskId,
        /// Where: `FILE:LINE` or `FILE:FIRST-LAST` (lines of the task's result, from 1).
        #[arg(required_unless_present_any = ["list", "remove"])]
        at: Option<String>,
        /// What the agent should change there. Use `-` to read it from standard input.
        #[arg(required_unless_present_any = ["list", "remove"])]
        text: Option<String>,
        /// List the task's comments instead.
        #[arg(long, conflicts_with_all = ["at", "text"])]
        list: bool,
        /// Remove pending comment N (as `--list` numbers them).
        #[arg(long, value_name = "N", conflicts_with_all = ["at", "text", "list"])]
        remove: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Check the task branch out in a local worktree and hand over the agent's
    /// session (Claude Code, Codex), printing the command that continues it.
    Pull {
        id: TaskId,
        /// Where the worktree goes (default: `<repo>.handoff-<id>` beside the repository).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Print the task branch's changes against its base as a unified diff.
    Diff { id: TaskId },
    /// Stop a queued or running task, keeping its partial work on its branch.
    Cancel { id: TaskId },
    /// Remove a finished task's container, scratch files and record.
    Rm {
        id: TaskId,
        /// Also delete the task's branch.
        #[arg(long)]
        delete_branch: bool,
    },
    /// Bring home the work of a task whose import failed (disk full, …), from the
    /// copy Handoff kept, once the cause is fixed.
    Recover { id: TaskId },
    /// Trust this repository's own configuration (.handoff.toml and .handoff/) as it
    /// is now. Until then, settings of it that would widen the sandbox (image,
    /// command, env, network, new profiles, higher limits) are ignored.
    Trust {
        /// Forget the trust instead.
        #[arg(long)]
        revoke: bool,
        /// Only say whether it is trusted and what is ignored.
        #[arg(long)]
        status: bool,
    },
    /// Check Docker, images, the repository and the configuration.
    Doctor,
    /// The environments tasks start from: what a profile's `setup` left, kept.
    Env {
        #[command(subcommand)]
        action: env::EnvCommand,
    },
    /// Build agent images (with no registry).
    Image {
        #[command(subcommand)]
        action: image::ImageCommand,
    },
    /// Speak the Language Server Protocol on stdio.
    Lsp,
    /// The egress proxy (started by Handoff itself; not for direct use).
    #[command(hide = true)]
    Egress {
        #[command(subcommand)]
        action: EgressCommand,
    },
}

#[derive(Subcommand, Debug)]
enum EgressCommand {
    /// Run the proxy until it is idle or told to stop.
    Serve(crate::egress::ServeArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Lsp) {
        init_lsp_tracing();
    } else {
        init_tracing();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("handoff: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("handoff: {}", terminal::escape(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    // Diagnostics go to stderr and only when asked for: stdout carries results (and,
    // in `handoff lsp`, the protocol).
    let filter = tracing_subscriber::EnvFilter::try_from_env("HANDOFF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// In LSP mode stdout is the protocol: logs go to a file only.
fn init_lsp_tracing() {
    let path = crate::lsp::log_path();
    let file = path
        .parent()
        .and_then(|dir| std::fs::create_dir_all(dir).ok())
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .ok()
        });
    let filter = tracing_subscriber::EnvFilter::try_from_env("HANDOFF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if let Some(file) = file {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let cwd = match cli.cwd {
        Some(d) => d,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    if let Command::Doctor = cli.command {
        return doctor::run(&cwd).await;
    }
    if let Command::Image { action } = cli.command {
        return image::run(&cwd, action).await;
    }
    if let Command::Lsp = cli.command {
        crate::lsp::serve().await;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Egress {
        action: EgressCommand::Serve(args),
    } = cli.command
    {
        args.run().await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Trust { revoke, status } = cli.command {
        return trust(&cwd, revoke, status);
    }
    let engine = Engine::open_with(&cwd, |c| AnySandbox::for_engine(&c.engine))?;
    for warning in &engine.config().warnings {
        eprintln!("handoff: warning: {}", terminal::escape(warning));
    }
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Run {
            agent,
            attempts,
            wait,
            json,
            prompt,
        } => {
            let prompt = text_or_stdin(prompt, "prompt")?;
            let agents = crate::engine::agent_list(agent.as_deref());
            let attempts = attempts.unwrap_or(agents.len());
            let new = NewTask {
                prompt,
                title: None,
                agent: None,
                origin: None,
                warm: false,
            };
            let tasks = engine.create_attempts(new, &agents, attempts).await?;
            let first = tasks[0].id;
            if let Err(e) = engine.tick().await {
                if is_unreachable(&e) {
                    // The engine may have gone away after starting the agent.
                    eprintln!(
                        "handoff: {}
{}",
                        terminal::escape(&e.to_string()),
                        render::kept_while_engine_away(first)
                    );
                } else {
                    eprintln!(
                        "handoff: task #{first} is queued but cannot start: {e}
It starts with the next handoff command once this is fixed."
                    );
                }
                return Ok(ExitCode::FAILURE);
            }
            if tasks.len() > 1 {
                return run_group(&engine, first, wait, json, &mut out).await;
            }
            if !wait {
                let task = engine.get_started(first).await?;
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&task)?)?;
                } else {
                    writeln!(out, "{}", render::started(&task))?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            wait_and_report(&engine, first, json, &mut out).await
        }
        Command::Reply {
            id,
            wait,
            json,
            message,
        } => {
            let message = match message {
                Some(m) => text_or_stdin(m, "reply")?,
                None => String::new(),
            };
            let task = engine.reply(id, &message).await?;
            if let Err(e) = engine.tick().await {
                if is_unreachable(&e) {
                    eprintln!(
                        "handoff: your reply to task #{id} is kept: {}\n{}",
                        terminal::escape(&e.to_string()),
                        render::kept_while_engine_away(id)
                    );
                } else {
                    eprintln!(
                        "handoff: your reply to task #{id} is kept, but its turn cannot start: {e}\nIt starts with the next handoff command once this is fixed."
                    );
                }
                return Ok(ExitCode::FAILURE);
            }
            let task = engine.get(id).unwrap_or(task);
            if !wait {
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&task)?)?;
                } else {
                    writeln!(out, "{}", render::replied(&task))?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            wait_and_report(&engine, id, json, &mut out).await
        }
        Command::Pull { id, dir, json } => {
            refresh(&engine).await;
            let pulled = engine.pull(id, dir.as_deref(), None)?;
            if json {
                let value = serde_json::json!({
                    "sensitive_files": engine.get(id)?.sensitive_files,
                    "worktree": pulled.worktree,
                    "created": pulled.created,
                    "branch": pulled.branch,
                    "session_id": pulled.session.as_ref().map(|s| &s.0),
                    "session_file": pulled.session.as_ref().map(|s| &s.1),
                    "continue": pulled.continue_command,
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            } else {
                let verb = if pulled.created {
                    "Checked out"
                } else {
                    "Already checked out:"
                };
                writeln!(
                    out,
                    "{verb} {} in {}",
                    pulled.branch,
                    pulled.worktree.display()
                )?;
                if let Some((sid, file)) = &pulled.session {
                    writeln!(out, "Agent session {sid} placed at {}", file.display())?;
                }
                writeln!(out, "Continue with:\n  {}", pulled.continue_command)?;
                let task = engine.get(id)?;
                let callouts = render::callouts(&task, "\n");
                if !callouts.is_empty() {
                    writeln!(out, "{}", callouts.trim_start_matches('\n'))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::List { json } => {
            refresh_for_showing(&engine).await;
            // A damaged record keeps no other task from the list, but is not hidden.
            let warn = |damaged: Vec<(TaskId, crate::engine::store::StoreError)>| {
                for (id, why) in damaged {
                    eprintln!(
                        "handoff: warning: task #{id} is left out: {}",
                        terminal::escape(&format!("{:#}", anyhow::Error::new(why)))
                    );
                }
            };
            if json {
                let (tasks, damaged) = engine.store().scan()?;
                warn(damaged);
                writeln!(out, "{}", serde_json::to_string_pretty(&tasks)?)?;
            } else {
                // The table needs a few fields of each task: the task index has them.
                let (tasks, damaged) = engine.store().summaries()?;
                warn(damaged);
                write!(out, "{}", render::table(&tasks))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { id, json } => {
            refresh_for_showing(&engine).await;
            if let Some(group) = id.strip_prefix('g') {
                let group: TaskId = group.parse().map_err(anyhow::Error::msg)?;
                let tasks = engine.group(group)?;
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&tasks)?)?;
                } else {
                    write!(out, "{}", render::group(group, &tasks))?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            let id: TaskId = id.parse().map_err(anyhow::Error::msg)?;
            let task = engine.get(id)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&task)?)?;
            } else {
                write!(out, "{}", render::details(&task))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Logs { id, follow, raw } => {
            refresh(&engine).await;
            let task = engine.get(id)?;
            // Raw bytes only to a pipe or file; on a terminal, control characters are
            // shown, not obeyed.
            let tty = std::io::stdout().is_terminal();
            if !raw && (!follow || task.state.is_terminal()) {
                if let Some(text) = engine.transcript(id).await? {
                    write!(out, "{}", terminal::escape(&text))?;
                    return Ok(ExitCode::SUCCESS);
                }
            }
            let format = engine
                .config()
                .agents
                .get(&task.agent)
                .and_then(|p| p.output_format())
                .filter(|_| !raw);
            if let (true, Some(format)) = (follow, format) {
                // The transcript as the agent works, entry by entry.
                if task.turn_number() > 1 {
                    writeln!(
                        out,
                        "(turn {} of task #{id}; `handoff logs {id}` shows the earlier ones)",
                        task.turn_number()
                    )?;
                }
                drop(out);
                let mut live = Live::new(format.line_parser());
                engine
                    .follow_logs(id, |chunk| {
                        let mut o = std::io::stdout().lock();
                        let _ = o.write_all(terminal::escape(&live.push(chunk)).as_bytes());
                        let _ = o.flush();
                    })
                    .await?;
                print!("{}", terminal::escape(&live.finish()));
                return Ok(ExitCode::SUCCESS);
            }
            let shown = |bytes: &[u8]| -> Vec<u8> {
                if tty {
                    terminal::escape_bytes(bytes).into_bytes()
                } else {
                    bytes.to_vec()
                }
            };
            if follow {
                engine
                    .follow_logs(id, |chunk| {
                        let mut o = std::io::stdout().lock();
                        let _ = o.write_all(&shown(chunk));
                        let _ = o.flush();
                    })
                    .await?;
            } else {
                out.write_all(&shown(&engine.logs(id).await?))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff { id } => {
            refresh(&engine).await;
            out.write_all(&engine.diff(id)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { id } => {
            let task = engine.cancel(id).await?;
            writeln!(out, "{}", render::finished(&task))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rm { id, delete_branch } => {
            refresh(&engine).await;
            let task = engine.get(id)?;
            engine.remove(id, delete_branch).await?;
            if delete_branch {
                writeln!(out, "Removed task #{id} and its branch {}.", task.branch)?;
            } else {
                writeln!(
                    out,
                    "Removed task #{id}; its branch {} is kept (delete it with `git branch -D {}`).",
                    task.branch, task.branch
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Comment {
            id,
            at,
            text,
            list,
            remove,
            json,
        } => {
            if let Some(n) = remove {
                engine.remove_comment(id, n.saturating_sub(1)).await?;
                writeln!(out, "Removed comment {n} of task #{id}.")?;
                return Ok(ExitCode::SUCCESS);
            }
            if list {
                let comments = engine.comments(id)?;
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&comments)?)?;
                } else {
                    write!(out, "{}", render::comments(id, &comments))?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            let at = at.unwrap_or_default();
            let (file, first, last) = parse_location(&at)?;
            let text = text_or_stdin(text.unwrap_or_default(), "comment")?;
            let comment = engine.add_comment(id, &file, first, last, &text).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&comment)?)?;
            } else {
                let pending = engine.pending_comments(id)?.len();
                writeln!(
                    out,
                    "Comment on {} kept for task #{id} ({pending} pending); `handoff reply {id}` sends {}.",
                    terminal::escape(&at),
                    if pending == 1 { "it" } else { "them together" }
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Pick {
            id,
            delete_branches,
        } => {
            refresh(&engine).await;
            let task = engine.get(id)?;
            let Some(group) = task.group else {
                anyhow::bail!("task #{id} is not one of several attempts; nothing to pick from");
            };
            let others: Vec<TaskId> = engine
                .group(group)?
                .into_iter()
                .map(|t| t.id)
                .filter(|other| *other != id)
                .collect();
            for other in &others {
                if !engine.get(*other)?.state.is_terminal() {
                    engine.cancel(*other).await?;
                }
                engine.remove(*other, delete_branches).await?;
            }
            let removed: Vec<String> = others.iter().map(|o| format!("#{o}")).collect();
            writeln!(
                out,
                "Kept task #{id} ({}); removed {}{}.",
                terminal::escape(&task.branch),
                removed.join(", "),
                if delete_branches {
                    " and their branches"
                } else {
                    ""
                }
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Env { action } => env::run(&engine, action, &mut out).await,
        Command::Recover { id } => {
            let task = engine.recover(id).await?;
            writeln!(
                out,
                "Recovered task #{id}: its work is on {} ({} files changed).",
                task.branch,
                task.files_changed.len()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor
        | Command::Lsp
        | Command::Image { .. }
        | Command::Trust { .. }
        | Command::Egress { .. } => {
            unreachable!("handled above")
        }
    }
}

/// `handoff trust`: records (or revokes, or shows) the user's trust in the
/// repository's own configuration.
fn trust(cwd: &std::path::Path, revoke: bool, status: bool) -> Result<ExitCode> {
    let (workdir, _) = Engine::<AnySandbox>::find_repo(cwd)?;
    let mut out = std::io::stdout().lock();
    if revoke {
        let removed = crate::trust::revoke(&workdir)?;
        writeln!(
            out,
            "{}",
            if removed {
                "Trust revoked: settings of .handoff.toml that widen the sandbox, .handoff/ and the dev container are ignored again."
            } else {
                "This repository's configuration was not trusted."
            }
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let before = crate::config::Config::load(Some(&workdir))?;
    if status {
        match &before.trust {
            crate::trust::TrustState::NoConfig => {
                writeln!(out, "This repository has no configuration of its own.")?
            }
            crate::trust::TrustState::Trusted { .. } => writeln!(
                out,
                "Trusted: the repository's configuration applies in full."
            )?,
            crate::trust::TrustState::Untrusted { was, .. } => {
                let why = if was.is_some() {
                    "changed since you trusted it"
                } else {
                    "not trusted"
                };
                writeln!(
                    out,
                    "Not trusted ({why}); ignored: {}",
                    list_or_none(&before.ignored)
                )?;
            }
        }
        return Ok(if before.trust.is_trusted() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let files = crate::trust::config_files(&workdir);
    match crate::trust::trust(&workdir)? {
        None => writeln!(
            out,
            "This repository has no .handoff.toml, .handoff/ or devcontainer.json to trust."
        )?,
        Some(hash) => {
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            writeln!(
                out,
                "Trusted {} as they are now (sha256 {}).{}",
                names.join(", "),
                &hash[..16],
                if before.ignored.is_empty() {
                    String::new()
                } else {
                    format!(" Now applied: {}.", before.ignored.join(", "))
                }
            )?;
            writeln!(out, "Any change to them asks for trust again.")?;
            if crate::devcontainer::find(&workdir).is_some() {
                writeln!(
                    out,
                    "Agents without an image of their own now run in its dev container: build their images with `handoff image build PROFILE` (claude, codex, aider, shell)."
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

/// `FILE:LINE` or `FILE:FIRST-LAST` → (file, first, last).
fn parse_location(at: &str) -> Result<(String, u32, u32)> {
    let bad = || {
        anyhow::anyhow!(
            "`{}` is not FILE:LINE or FILE:FIRST-LAST (e.g. src/main.rs:12)",
            terminal::escape(at)
        )
    };
    let (file, lines) = at.rsplit_once(':').ok_or_else(bad)?;
    let (first, last) = match lines.split_once('-') {
        Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
        None => {
            let n = lines.parse().map_err(|_| bad())?;
            (n, n)
        }
    };
    if file.is_empty() {
        return Err(bad());
    }
    Ok((file.trim_start_matches("./").to_string(), first, last))
}

/// The argument, or standard input when it is `-`.
fn text_or_stdin(arg: String, what: &str) -> Result<String> {
    if arg != "-" {
        return Ok(arg);
    }
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
        .with_context(|| format!("cannot read the {what} from standard input"))?;
    Ok(s)
}

/// After `run --attempts`: the group's tasks, or (with `wait`) their comparison once
/// all have ended; succeeds when at least one attempt is done.
async fn run_group(
    engine: &Engine<AnySandbox>,
    group: TaskId,
    wait: bool,
    json: bool,
    out: &mut impl Write,
) -> Result<ExitCode> {
    let ids: Vec<TaskId> = engine.group(group)?.into_iter().map(|t| t.id).collect();
    if wait {
        for id in &ids {
            engine.wait(*id, |_| {}).await?;
        }
    }
    let tasks = engine.group(group)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&tasks)?)?;
    } else {
        write!(out, "{}", render::group(group, &tasks))?;
    }
    let any_done = tasks.iter().any(|t| t.state == TaskState::Done);
    Ok(if wait && !any_done {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Drives the task to its end with progress on stderr, then prints the result.
async fn wait_and_report(
    engine: &Engine<AnySandbox>,
    id: TaskId,
    json: bool,
    out: &mut impl Write,
) -> Result<ExitCode> {
    let tty = std::io::stderr().is_terminal() && !json;
    let mut last_state: Option<TaskState> = None;
    let waited = engine
        .wait(id, |t| {
            let mut err = std::io::stderr();
            if tty {
                let _ = write!(err, "\r\x1b[2K{}", render::progress_line(t));
                let _ = err.flush();
            } else if last_state != Some(t.state) {
                let _ = writeln!(err, "{}", render::progress_line(t));
            }
            last_state = Some(t.state);
        })
        .await;
    if tty {
        eprintln!();
    }
    let task = match waited {
        Ok(task) => task,
        Err(e) if is_unreachable(&e) => {
            // The engine went away while the agent worked (or never came): the task
            // and whatever its agent wrote stay where they are, for the next command.
            eprintln!(
                "handoff: {}\n{}",
                terminal::escape(&e.to_string()),
                render::kept_while_engine_away(id)
            );
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&task)?)?;
    } else {
        writeln!(out, "{}", render::finished(&task))?;
    }
    Ok(exit_for(task.state))
}

fn is_unreachable(e: &EngineError) -> bool {
    matches!(e, EngineError::Sandbox(SandboxError::Unreachable { .. }))
}

/// Reconciles with Docker before showing state; without Docker the records are
/// shown as last known, with a warning.
async fn refresh(engine: &Engine<AnySandbox>) {
    if let Err(e) = engine.tick().await {
        eprintln!("handoff: warning: task states may be stale: {e}");
    }
}

/// What a command that only shows state settles before it answers: a few ended
/// tasks, finalized side by side; the others stay as last known until the next
/// command (or the language server) settles them.
const SETTLE_WHEN_SHOWING: usize = 4;

/// [`refresh`] for `list` and `show`: answers in about one finalize's time however
/// many tasks ended at once.
async fn refresh_for_showing(engine: &Engine<AnySandbox>) {
    if let Err(e) = engine.tick_settling(SETTLE_WHEN_SHOWING).await {
        eprintln!("handoff: warning: task states may be stale: {e}");
    }
}

fn exit_for(state: TaskState) -> ExitCode {
    match state {
        TaskState::Done => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
