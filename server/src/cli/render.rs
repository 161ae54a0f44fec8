//! How tasks look on a terminal.
//!
//! Titles, prompts, errors, file names, check output and session ids were written by
//! the agent or a stranger's repository: every such string passes through [`esc`],
//! so none can move the cursor, rewrite the screen or set the terminal's title.

use std::fmt::Write;

use super::terminal::escape as esc;
use crate::engine::index::TaskSummary;
use crate::engine::task::{CheckRun, Task, TaskId};

fn elapsed(task: &Task) -> String {
    task.elapsed_text().unwrap_or_else(|| "-".into())
}

pub fn progress_line(task: &Task) -> String {
    format!(
        "{} #{} {} {} · {}",
        task.state.glyph(),
        task.id,
        task.state,
        elapsed(task),
        esc(&task.title)
    )
}

pub fn started(task: &Task) -> String {
    format!(
        "Task #{id} {state}: {title}\n  branch  {branch}\n  follow  handoff logs {id} -f\n  wait    handoff show {id}",
        id = task.id,
        state = task.state,
        title = esc(&task.title),
        branch = esc(&task.branch)
    )
}

/// After `handoff reply`: a new turn was queued or started, or the reply waits for
/// the running turn.
pub fn replied(task: &Task) -> String {
    if !task.pending_replies.is_empty() {
        return format!(
            "Task #{} is {}; your reply is queued and goes to the agent when this turn ends.",
            task.id, task.state
        );
    }
    let resume = match &task.session_id {
        Some(sid) => format!(", resuming session {}", esc(sid)),
        None => String::new(),
    };
    format!(
        "Task #{id} turn {turn} {state}{resume}\n  follow  handoff logs {id} -f",
        id = task.id,
        turn = task.turns.len() + 1,
        state = task.state,
    )
}

/// When the engine could not be reached while starting or waiting for a task (it may
/// have gone away with the agent running): nothing is lost, and what to run.
pub fn kept_while_engine_away(id: TaskId) -> String {
    format!(
        "Task #{id} is kept, with whatever its agent wrote so far. Once Docker answers \
         again, `handoff show {id}` (or any handoff command) carries on: it starts the task \
         or brings its work home."
    )
}

pub fn finished(task: &Task) -> String {
    let mut s = format!(
        "{} Task #{} {} after {}: {}",
        task.state.glyph(),
        task.id,
        task.state,
        elapsed(task),
        esc(&task.title)
    );
    if let Some(err) = &task.error {
        let _ = write!(s, "\n  {}", esc(err));
    }
    if let Some(check) = &task.check {
        let _ = write!(s, "\n  {}", check_line(task, check));
    }
    if task.head_commit.is_some() {
        let _ = write!(
            s,
            "\n  branch  {} ({} file{} changed)\n  review  handoff diff {}",
            esc(&task.branch),
            task.files_changed.len(),
            if task.files_changed.len() == 1 {
                ""
            } else {
                "s"
            },
            task.id
        );
    }
    s.push_str(&callouts(task, "\n  "));
    s
}

/// What the user must hear about a result besides its state: changed tool settings,
/// files left behind, warnings. Each line starts with `sep`.
pub fn callouts(task: &Task, sep: &str) -> String {
    let mut s = String::new();
    if !task.sensitive_files.is_empty() {
        let files: Vec<String> = task
            .sensitive_files
            .iter()
            .map(|f| esc(f).into_owned())
            .collect();
        let _ = write!(
            s,
            "{sep}⚠ changes settings of tools, editors, agents or CI: {} — review these before \
             you merge or check the branch out; they are never accepted with \"accept all\"",
            files.join(", ")
        );
    }
    for b in &task.blocked {
        let _ = write!(
            s,
            "{sep}blocked: {}:{} ({} time{}) by the egress policy; to let it through, add \
             `allow = [\"{}:{}\"]` to [agents.{}] in your config",
            esc(&b.host),
            b.port,
            b.count,
            if b.count == 1 { "" } else { "s" },
            esc(&b.host),
            b.port,
            esc(&task.agent)
        );
    }
    if let Some(reason) = &task.stopped_for {
        let _ = write!(
            s,
            "{sep}stopped: {}",
            crate::engine::task::stop_text(reason)
        );
    }
    for skipped in &task.not_imported {
        let _ = write!(
            s,
            "{sep}not brought home: {} ({})",
            esc(&skipped.path),
            esc(&skipped.reason)
        );
    }
    for warning in &task.warnings {
        let _ = write!(s, "{sep}note: {}", esc(warning));
    }
    s
}

/// `check cargo test passed`, or failed with the repair turns it got.
fn check_line(task: &Task, check: &CheckRun) -> String {
    if check.passed {
        return format!("check `{}` passed", esc(&check.command));
    }
    let repairs = match task.check_repairs {
        0 => String::new(),
        1 => " after 1 repair turn".into(),
        n => format!(" after {n} repair turns"),
    };
    format!(
        "check `{}` FAILED (exit code {}){repairs}; see `handoff show {}`",
        esc(&check.command),
        check.exit_code,
        task.id
    )
}

/// A task's review comments, numbered as `handoff comment --remove` takes them.
pub fn comments(
    id: crate::engine::task::TaskId,
    comments: &[crate::engine::comments::Comment],
) -> String {
    if comments.is_empty() {
        return format!("Task #{id} has no comments. Add one: handoff comment {id} FILE:LINE \"what to change\"\n");
    }
    let mut s = String::new();
    let mut n = 0;
    for c in comments {
        let lines = if c.line == c.end_line {
            c.line.to_string()
        } else {
            format!("{}-{}", c.line, c.end_line)
        };
        let state = match c.sent_in_turn {
            Some(turn) => format!("sent in turn {turn}"),
            None => {
                n += 1;
                format!("pending #{n}")
            }
        };
        let _ = writeln!(s, "{}:{lines}  ({state})", esc(&c.file));
        for line in c.text.lines() {
            let _ = writeln!(s, "    {}", esc(line));
        }
    }
    s
}

/// The attempts of a group side by side: state, check, files, lines, cost.
pub fn group(group: crate::engine::task::TaskId, tasks: &[Task]) -> String {
    let mut s = format!(
        "Group g{group}: {} attempts of \"{}\"\n",
        tasks.len(),
        tasks
            .first()
            .map(|t| esc(&t.title).into_owned())
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "{:>4}  {:<8} {:<10} {:<7} {:>5} {:>11} {:>8} {:>7}",
        "ID", "AGENT", "STATE", "CHECK", "FILES", "LINES", "COST", "TIME"
    );
    for t in tasks {
        let check = match &t.check {
            Some(c) if c.passed => "passed",
            Some(_) => "FAILED",
            None => "-",
        };
        let _ = writeln!(
            s,
            "{:>4}  {:<8} {:<10} {:<7} {:>5} {:>11} {:>8} {:>7}",
            t.id,
            esc(&t.agent),
            t.state.as_str(),
            check,
            t.files_changed.len(),
            format!("+{} -{}", t.lines_added, t.lines_removed),
            if t.spent.cost_usd > 0.0 {
                format!("${:.2}", t.spent.cost_usd)
            } else {
                "-".into()
            },
            elapsed(t)
        );
    }
    let _ = writeln!(
        s,
        "Review one (`handoff diff ID`), then keep it: `handoff pick ID` removes the others."
    );
    s
}

pub fn table(tasks: &[TaskSummary]) -> String {
    if tasks.is_empty() {
        return "No tasks yet. Start one with `handoff run \"what to do\"`.\n".into();
    }
    let width = tasks
        .iter()
        .map(|t| esc(&t.branch).chars().count())
        .max()
        .unwrap_or(6);
    let mut s = format!(
        "{:>4}  {:<10} {:<8} {:>7}  {:<width$}  {}\n",
        "ID", "STATE", "AGENT", "TIME", "BRANCH", "TITLE"
    );
    for t in tasks {
        let _ = writeln!(
            s,
            "{:>4}  {:<10} {:<8} {:>7}  {:<width$}  {}{}{}",
            t.id,
            t.state.as_str(),
            esc(&t.agent),
            t.elapsed_text().unwrap_or_else(|| "-".into()),
            esc(&t.branch),
            if t.sensitive { "⚠ " } else { "" },
            t.group.map(|g| format!("[g{g}] ")).unwrap_or_default(),
            esc(&t.title)
        );
    }
    s
}

pub fn details(task: &Task) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Task #{}  {}", task.id, task.state);
    let _ = writeln!(s, "  title    {}", esc(&task.title));
    let _ = writeln!(s, "  agent    {} ({})", esc(&task.agent), esc(&task.image));
    let _ = writeln!(s, "  branch   {}", esc(&task.branch));
    let _ = writeln!(s, "  base     {}", task.base_commit);
    if let Some(h) = &task.head_commit {
        let _ = writeln!(s, "  head     {h}");
    }
    if let Some(env) = &task.environment {
        let said = match (env.reused, env.layered, &env.not_kept) {
            (true, _, _) => format!("{} (started from it; the setup did not run)", env.key),
            (false, true, _) => format!("{} (kept from this task's setup)", env.key),
            (false, false, Some(why)) => format!("setup not kept: {}", esc(why)),
            (false, false, None) => format!("{} (the setup runs first)", env.key),
        };
        let _ = writeln!(s, "  env      {said}");
    }
    let _ = writeln!(s, "  created  {}", task.created_at.to_rfc3339());
    let _ = writeln!(s, "  time     {}", elapsed(task));
    if let Some(code) = task.exit_code {
        let _ = writeln!(
            s,
            "  exit     {code}{}",
            if task.oom_killed {
                " (out of memory)"
            } else {
                ""
            }
        );
    }
    if let Some(err) = &task.error {
        let _ = writeln!(s, "  error    {}", esc(err));
    }
    if !task.files_changed.is_empty() {
        let _ = writeln!(s, "  files");
        for f in &task.files_changed {
            let mark = if task.sensitive_files.contains(f) {
                "  ⚠ tool settings"
            } else {
                ""
            };
            let _ = writeln!(s, "    {}{mark}", esc(f));
        }
    }
    let callouts = callouts(task, "\n  ");
    if !callouts.is_empty() {
        let _ = writeln!(s, "{}", callouts.trim_start_matches('\n'));
    }
    if let Some(sid) = &task.session_id {
        let _ = writeln!(s, "  session  {}", esc(sid));
    }
    if let Some(check) = &task.check {
        let _ = writeln!(s, "  check    {}", check_line(task, check));
        if !check.passed {
            for line in check.output.lines() {
                let _ = writeln!(s, "    | {}", esc(line));
            }
        }
    }
    let _ = writeln!(s, "  prompt");
    for line in task.prompt.lines().take(20) {
        let _ = writeln!(s, "    {}", esc(line));
    }
    let follow_ups: Vec<&str> = task
        .turns
        .iter()
        .skip(1)
        .map(|t| t.prompt.as_str())
        .chain(task.reply.as_deref().filter(|_| !task.state.is_terminal()))
        .collect();
    for (n, reply) in follow_ups.iter().enumerate() {
        let _ = writeln!(s, "  reply {}", n + 1);
        for line in reply.lines().take(10) {
            let _ = writeln!(s, "    {}", esc(line));
        }
    }
    for reply in &task.pending_replies {
        let _ = writeln!(s, "  queued reply");
        for line in reply.lines().take(10) {
            let _ = writeln!(s, "    {}", esc(line));
        }
    }
    s
}
