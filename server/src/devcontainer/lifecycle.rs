//! The lifecycle commands that make a dev container ready (`onCreateCommand`,
//! `updateContentCommand`, `postCreateCommand`), joined into the one `sh` script that
//! Handoff's setup runs.
//!
//! The spec's three forms: a string runs in `/bin/sh -c`; an array is an argv, run
//! without a shell (so here every element is quoted); an object names commands of
//! either form, which the spec runs in parallel and Handoff runs one after the other,
//! in the order of their names, so their output does not interleave.

use serde_json::Value;

use super::vars::Vars;

/// The lifecycle commands Handoff runs, in the order it runs them.
pub const KEYS: [&str; 3] = [
    "onCreateCommand",
    "updateContentCommand",
    "postCreateCommand",
];

/// One lifecycle command as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A string: a shell command line.
    Shell(String),
    /// An array: a program and its arguments, no shell.
    Exec(Vec<String>),
    /// An object: named commands.
    Named(Vec<(String, Command)>),
}

/// Reads the value of lifecycle key `key`; `None` for an empty command. `Err` says what
/// is wrong with it.
pub fn parse(key: &str, value: &Value, vars: &Vars) -> Result<Option<Command>, String> {
    let text = |s: &str, at: &str| -> Result<String, String> {
        if s.contains('\0') {
            return Err(format!("`{at}` holds a NUL character"));
        }
        vars.expand_text(s).map_err(|e| format!("`{at}`: {e}"))
    };
    let simple = |value: &Value, at: &str| -> Result<Option<Command>, String> {
        match value {
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => Ok(Some(Command::Shell(text(s, at)?))),
            Value::Array(items) if items.is_empty() => Ok(None),
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => text(s, at),
                    _ => Err(format!(
                        "`{at}`: an array command holds only strings (a program and its arguments)"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|argv| Some(Command::Exec(argv))),
            _ => Err(format!(
                "`{at}` must be a string (a shell command), an array (a program and its arguments) or an object of those"
            )),
        }
    };
    match value {
        Value::Object(map) => {
            let mut named = Vec::new();
            // serde_json's map is ordered by key: the names' order.
            for (name, command) in map {
                if let Some(c) = simple(command, &format!("{key}.{name}"))? {
                    named.push((name.clone(), c));
                }
            }
            Ok((!named.is_empty()).then_some(Command::Named(named)))
        }
        other => simple(other, key),
    }
}

/// The setup script running `commands` (key, command) in order, stopping at the first
/// that fails; `None` when there are none.
pub fn script(commands: &[(&str, Command)]) -> Option<String> {
    if commands.is_empty() {
        return None;
    }
    let mut out = String::from("set -e\n");
    for (key, command) in commands {
        // Only Handoff's own words go into comments: a name from the file could hold a
        // line break and end the comment.
        out.push_str(&format!("# {key}\n"));
        line(command, &mut out);
    }
    Some(out)
}

fn line(command: &Command, out: &mut String) {
    match command {
        Command::Shell(s) => {
            out.push_str("sh -c ");
            out.push_str(&quote(s));
            out.push('\n');
        }
        Command::Exec(argv) => {
            let words: Vec<String> = argv.iter().map(|a| quote(a)).collect();
            out.push_str(&words.join(" "));
            out.push('\n');
        }
        Command::Named(named) => {
            for (_, c) in named {
                line(c, out);
            }
        }
    }
}

/// `s` as one `sh` word.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | '.' | '/' | '=' | ':' | ',' | '+' | '@' | '%')
        });
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn vars() -> Vars<'static> {
        Vars {
            local_folder: Path::new("/home/me/proj"),
        }
    }

    #[test]
    fn the_three_forms() {
        let cases = [
            (json!("npm ci"), Some(Command::Shell("npm ci".into()))),
            (json!("  "), None),
            (json!([]), None),
            (
                json!(["cargo", "fetch", "--locked"]),
                Some(Command::Exec(vec![
                    "cargo".into(),
                    "fetch".into(),
                    "--locked".into(),
                ])),
            ),
            (
                json!({"b": ["make", "b"], "a": "echo a", "empty": ""}),
                Some(Command::Named(vec![
                    ("a".into(), Command::Shell("echo a".into())),
                    ("b".into(), Command::Exec(vec!["make".into(), "b".into()])),
                ])),
            ),
            (
                json!("cd ${containerWorkspaceFolder} && make"),
                Some(Command::Shell("cd /workspace && make".into())),
            ),
        ];
        for (value, want) in cases {
            assert_eq!(
                parse("postCreateCommand", &value, &vars()).unwrap(),
                want,
                "{value}"
            );
        }
        for (value, words) in [
            (json!(42), &["`postCreateCommand` must be a string"][..]),
            (json!(["a", 1]), &["only strings"]),
            (json!({"x": true}), &["`postCreateCommand.x` must be"]),
            (
                json!("echo ${localEnv:TOKEN}"),
                &["localEnv:TOKEN", "by name"],
            ),
            (json!("a\u{0}b"), &["NUL"]),
        ] {
            let err = parse("postCreateCommand", &value, &vars()).unwrap_err();
            for w in words {
                assert!(err.contains(w), "{value}: {err}");
            }
        }
    }

    #[test]
    fn commands_become_one_script_in_order() {
        let script = script(&[
            (
                "onCreateCommand",
                Command::Shell("echo 'it''s' && exit 0".into()),
            ),
            (
                "updateContentCommand",
                Command::Exec(vec![
                    "npm".into(),
                    "install".into(),
                    "a b".into(),
                    "it's".into(),
                ]),
            ),
            (
                "postCreateCommand",
                Command::Named(vec![
                    ("one".into(), Command::Shell("make one".into())),
                    ("two\nrm -rf /".into(), Command::Exec(vec!["make".into()])),
                ]),
            ),
        ])
        .unwrap();
        insta::assert_snapshot!(script, @r#"
        set -e
        # onCreateCommand
        sh -c 'echo '\''it'\'''\''s'\'' && exit 0'
        # updateContentCommand
        npm install 'a b' 'it'\''s'
        # postCreateCommand
        sh -c 'make one'
        make
        "#);
        assert_eq!(super::script(&[]), None);
    }

    #[test]
    fn the_script_runs_in_sh_as_written() {
        let script = script(&[
            (
                "onCreateCommand",
                Command::Shell("printf '%s|' \"a b\" >> out; cd /; exit 0".into()),
            ),
            (
                "postCreateCommand",
                Command::Exec(vec![
                    "sh".into(),
                    "-c".into(),
                    "printf '%s|' \"$0\" >> out".into(),
                    "it's $HOME".into(),
                ]),
            ),
        ])
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("sh")
            .args(["-c", &script])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out")).unwrap(),
            "a b|it's $HOME|",
            "each command in its own shell, in the folder it started in"
        );
        let failing = super::script(&[
            ("onCreateCommand", Command::Shell("exit 3".into())),
            ("postCreateCommand", Command::Shell("touch ran".into())),
        ])
        .unwrap();
        let status = std::process::Command::new("sh")
            .args(["-c", &failing])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(3));
        assert!(
            !dir.path().join("ran").exists(),
            "stops at the first failure"
        );
    }
}
