//! How tasks look on a terminal.

use std::fmt::Write;

use crate::engine::task::{CheckRun, Task, TaskState};

fn elapsed(task: &Task) -> String {
    task.elapsed_text().unwrap_or_else(|| "-".into())
}

fn symbol(state: TaskState) -> &'static str {
    match state {
        TaskState::Queued => "…",
        TaskState::Starting | TaskState::Running | TaskState::Finalizing => "⟳",
        TaskState::Done => "✓",
        TaskState::Failed => "✗",
        TaskState::Cancelled => "⊘",
    }
}

pub fn progress_line(task: &Task) -> String {
    format!(
        "{} #{} {} {} · {}",
        symbol(task.state),
        task.id,
        task.state,
        elapsed(task),
        task.title
    )
}

pub fn started(task: &Task) -> String {
    format!(
        "Task #{id} {state}: {title}\n  branch  {branch}\n  follow  handoff logs {id} -f\n  wait    handoff show {id}",
        id = task.id,
        state = task.state,
        title = task.title,
        branch = task.branch
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
        Some(sid) => format!(", resuming session {sid}"),
        None => String::new(),
    };
    format!(
        "Task #{id} turn {turn} {state}{resume}\n  follow  handoff logs {id} -f",
        id = task.id,
        turn = task.turns.len() + 1,
        state = task.state,
    )
}

pub fn finished(task: &Task) -> String {
    let mut s = format!(
        "{} Task #{} {} after {}: {}",
        symbol(task.state),
        task.id,
        task.state,
        elapsed(task),
        task.title
    );
    if let Some(err) = &task.error {
        let _ = write!(s, "\n  {err}");
    }
    if let Some(check) = &task.check {
        let _ = write!(s, "\n  {}", check_line(task, check));
    }
    if task.head_commit.is_some() {
        let _ = write!(
            s,
            "\n  branch  {} ({} file{} changed)\n  review  handoff diff {}",
            task.branch,
            task.files_changed.len(),
            if task.files_changed.len() == 1 {
                ""
            } else {
                "s"
            },
            task.id
        );
    }
    s
}

/// `check cargo test passed`, or failed with the repair turns it got.
fn check_line(task: &Task, check: &CheckRun) -> String {
    if check.passed {
        return format!("check `{}` passed", check.command);
    }
    let repairs = match task.check_repairs {
        0 => String::new(),
        1 => " after 1 repair turn".into(),
        n => format!(" after {n} repair turns"),
    };
    format!(
        "check `{}` FAILED (exit code {}){repairs}; see `handoff show {}`",
        check.command, check.exit_code, task.id
    )
}

pub fn table(tasks: &[Task]) -> String {
    if tasks.is_empty() {
        return "No tasks yet. Start one with `handoff run \"what to do\"`.\n".into();
    }
    let width = tasks.iter().map(|t| t.branch.len()).max().unwrap_or(6);
    let mut s = format!(
        "{:>4}  {:<10} {:<8} {:>7}  {:<width$}  {}\n",
        "ID", "STATE", "AGENT", "TIME", "BRANCH", "TITLE"
    );
    for t in tasks {
        let _ = writeln!(
            s,
            "{:>4}  {:<10} {:<8} {:>7}  {:<width$}  {}",
            t.id,
            t.state.as_str(),
            t.agent,
            elapsed(t),
            t.branch,
            t.title
        );
    }
    s
}

pub fn details(task: &Task) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Task #{}  {}", task.id, task.state);
    let _ = writeln!(s, "  title    {}", task.title);
    let _ = writeln!(s, "  agent    {} ({})", task.agent, task.image);
    let _ = writeln!(s, "  branch   {}", task.branch);
    let _ = writeln!(s, "  base     {}", task.base_commit);
    if let Some(h) = &task.head_commit {
        let _ = writeln!(s, "  head     {h}");
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
        let _ = writeln!(s, "  error    {err}");
    }
    if !task.files_changed.is_empty() {
        let _ = writeln!(s, "  files");
        for f in &task.files_changed {
            let _ = writeln!(s, "    {f}");
        }
    }
    if let Some(sid) = &task.session_id {
        let _ = writeln!(s, "  session  {sid}");
    }
    if let Some(check) = &task.check {
        let _ = writeln!(s, "  check    {}", check_line(task, check));
        if !check.passed {
            for line in check.output.lines() {
                let _ = writeln!(s, "    | {line}");
            }
        }
    }
    let _ = writeln!(s, "  prompt");
    for line in task.prompt.lines().take(20) {
        let _ = writeln!(s, "    {line}");
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
            let _ = writeln!(s, "    {line}");
        }
    }
    for reply in &task.pending_replies {
        let _ = writeln!(s, "  queued reply");
        for line in reply.lines().take(10) {
            let _ = writeln!(s, "    {line}");
        }
    }
    s
}
