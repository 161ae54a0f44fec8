//! The variables of the dev container spec (`${containerWorkspaceFolder}`, …) in the
//! values of a devcontainer.json.
//!
//! What Handoff can say is substituted; `${containerEnv:NAME}` stays a reference to the
//! image's own variable where the value ends up in the image (containerEnv,
//! remoteEnv); `${localEnv:NAME}` is refused everywhere: it would copy a value of the
//! user's environment (a token, often) into an image or a container, where Handoff
//! passes variables only by name.

use std::path::Path;

use serde::Serialize;

/// Where the workspace is inside every Handoff container.
pub const CONTAINER_WORKSPACE: &str = "/workspace";

/// A piece of a value: text, or the value of one of the image's own variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    Text(String),
    /// `${containerEnv:NAME}`: the image's `NAME`, at build time.
    ContainerEnv(String),
}

/// What the variables stand for in this repository.
pub struct Vars<'a> {
    /// The working tree on the host.
    pub local_folder: &'a Path,
}

impl Vars<'_> {
    /// `value` with the variables substituted. `${containerEnv:NAME}` is kept as a
    /// [`Segment::ContainerEnv`] when `container_env` allows it, else refused. Unknown
    /// variables are left as they are written. `Err` says why the value cannot be used.
    pub fn expand(&self, value: &str, container_env: bool) -> Result<Vec<Segment>, String> {
        let mut out: Vec<Segment> = Vec::new();
        let mut text = String::new();
        let mut rest = value;
        while let Some(start) = rest.find("${") {
            let Some(len) = rest[start + 2..].find('}') else {
                break;
            };
            text.push_str(&rest[..start]);
            let inner = &rest[start + 2..start + 2 + len];
            let (kind, arg) = inner.split_once(':').unwrap_or((inner, ""));
            match kind {
                "containerWorkspaceFolder" => text.push_str(CONTAINER_WORKSPACE),
                "containerWorkspaceFolderBasename" => text.push_str("workspace"),
                "localWorkspaceFolder" => text.push_str(&self.local_folder.display().to_string()),
                "localWorkspaceFolderBasename" => text.push_str(
                    &self
                        .local_folder
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
                "localEnv" => {
                    let name = arg.split(':').next().unwrap_or_default();
                    return Err(format!(
                        "`${{localEnv:{name}}}` would copy the value of {name} from your \
                         environment into the container; Handoff passes variables only by \
                         name: add `env = [\"{name}\"]` to the agent profile in .handoff.toml"
                    ));
                }
                "containerEnv" if container_env && is_env_name(arg) => {
                    if !text.is_empty() {
                        out.push(Segment::Text(std::mem::take(&mut text)));
                    }
                    out.push(Segment::ContainerEnv(arg.to_string()));
                }
                "containerEnv" => {
                    return Err(format!(
                        "`${{containerEnv:{arg}}}` can only be used in containerEnv and remoteEnv"
                    ))
                }
                _ => {
                    text.push_str("${");
                    text.push_str(inner);
                    text.push('}');
                }
            }
            rest = &rest[start + 2 + len + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() || out.is_empty() {
            out.push(Segment::Text(text));
        }
        Ok(out)
    }

    /// `value` with the variables substituted, as plain text (no `${containerEnv:…}`).
    pub fn expand_text(&self, value: &str) -> Result<String, String> {
        Ok(self
            .expand(value, false)?
            .into_iter()
            .map(|s| match s {
                Segment::Text(t) => t,
                Segment::ContainerEnv(_) => unreachable!("refused by expand"),
            })
            .collect())
    }
}

/// A portable environment variable name: a letter or `_`, then letters, digits, `_`.
pub fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables() {
        let vars = Vars {
            local_folder: Path::new("/home/me/proj"),
        };
        let text = |s: &str| Segment::Text(s.to_string());
        let cases: &[(&str, Vec<Segment>)] = &[
            ("plain", vec![text("plain")]),
            ("", vec![text("")]),
            (
                "${containerWorkspaceFolder}/bin",
                vec![text("/workspace/bin")],
            ),
            (
                "${localWorkspaceFolderBasename}-${containerWorkspaceFolderBasename}",
                vec![text("proj-workspace")],
            ),
            (
                "${containerEnv:PATH}:/opt/bin",
                vec![Segment::ContainerEnv("PATH".into()), text(":/opt/bin")],
            ),
            (
                "a${containerEnv:X}${containerEnv:Y}",
                vec![
                    text("a"),
                    Segment::ContainerEnv("X".into()),
                    Segment::ContainerEnv("Y".into()),
                ],
            ),
            ("${devcontainerId} ${", vec![text("${devcontainerId} ${")]),
        ];
        for (value, want) in cases {
            assert_eq!(&vars.expand(value, true).unwrap(), want, "{value}");
        }
        let err = vars.expand("${localEnv:GITHUB_TOKEN}", true).unwrap_err();
        assert!(err.contains("env = [\"GITHUB_TOKEN\"]"), "{err}");
        assert!(vars.expand("${localEnv:A:default}", true).is_err());
        assert!(vars.expand("${containerEnv:PATH}", false).is_err());
        assert!(vars.expand("${containerEnv:A-B}", true).is_err());
        assert_eq!(
            vars.expand_text("${localWorkspaceFolder}").unwrap(),
            "/home/me/proj"
        );
    }
}
