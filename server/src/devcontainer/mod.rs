//! A repository's dev container (`.devcontainer/devcontainer.json` or
//! `.devcontainer.json`, from the Development Container spec) read as the environment
//! its agents run in: the image (named, or built from the repository's Dockerfile), the
//! variables it sets, and the commands that make it ready.
//!
//! This module reads the file (JSONC: comments and trailing commas allowed) and says
//! what of it Handoff uses, refuses or ignores. It builds nothing and runs nothing:
//! `config` decides whether the repository is trusted and which profiles get the
//! environment, `image` builds it, the engine runs its setup.

pub mod lifecycle;
mod vars;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use vars::{is_env_name, Vars};
pub use vars::{Segment, CONTAINER_WORKSPACE};

/// Where a repository's dev container is looked for, in this order (the spec's first
/// two places; the spec's `.devcontainer/<name>/devcontainer.json`, one of several for
/// the user to pick from, is not read).
pub const FILES: [&str; 2] = [".devcontainer/devcontainer.json", ".devcontainer.json"];

/// The largest devcontainer.json or Dockerfile read.
const MAX_FILE: u64 = 1 << 20;

/// What Handoff uses of a devcontainer.json.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DevContainer {
    /// The file, relative to the working tree.
    pub file: PathBuf,
    pub source: Source,
    /// `containerEnv` then `remoteEnv`: variables set in the image Handoff layers on
    /// theirs (so `${containerEnv:PATH}` extends the image's own `PATH`).
    pub env: Vec<EnvVar>,
    /// The lifecycle commands as one `sh` script, run as the tasks' setup.
    pub setup: Option<String>,
    /// What the user should hear: keys ignored, and why.
    pub warnings: Vec<String>,
}

/// Where the environment image comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// `image`: an image the engine has.
    Image { image: String },
    /// `build`: their Dockerfile.
    Build(Build),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Build {
    /// The build context, relative to the working tree, `/`-separated (`""`: its root).
    pub context: String,
    /// The Dockerfile, relative to the context, `/`-separated.
    pub dockerfile: String,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
}

impl Build {
    /// The Dockerfile, relative to the working tree.
    pub fn dockerfile_in_repository(&self) -> String {
        join(&self.context, &self.dockerfile)
    }
}

/// One variable of `containerEnv` or `remoteEnv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvVar {
    pub name: String,
    pub value: Vec<Segment>,
}

#[derive(Debug, thiserror::Error)]
pub enum DevcontainerError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}: `{key}` is not supported: {why}", path.display())]
    Refused {
        path: PathBuf,
        key: String,
        why: &'static str,
    },
}

/// Keys whose presence makes the file unusable, with why.
const REFUSED: &[(&str, &str)] = &[
    (
        "features",
        "Handoff does not install dev container features (they come from a registry); \
         install what they add in the Dockerfile (`build.dockerfile`), or give the agent \
         profiles their own `image` in .handoff.toml",
    ),
    (
        "dockerComposeFile",
        "Compose-based dev containers are not supported: a task runs in one container; \
         use `image` or `build.dockerfile`, or give the agent profiles their own `image` \
         in .handoff.toml",
    ),
    (
        "service",
        "Compose-based dev containers are not supported: a task runs in one container",
    ),
    (
        "runServices",
        "Compose-based dev containers are not supported: a task runs in one container",
    ),
];

/// Keys that are not applied, with a warning saying why: they change how the
/// container runs, which Handoff decides (the sandbox), or they run outside a build.
const NOT_APPLIED: &[(&str, &str)] = &[
    ("runArgs", "Handoff decides how task containers run"),
    (
        "mounts",
        "a task's container mounts only its workspace and its own folders",
    ),
    (
        "workspaceMount",
        "the workspace is always mounted at /workspace",
    ),
    ("workspaceFolder", "the workspace is always /workspace"),
    ("privileged", "task containers never get privileges"),
    (
        "capAdd",
        "task containers run with every capability dropped",
    ),
    ("securityOpt", "Handoff decides how task containers run"),
    ("init", "Handoff decides how task containers run"),
    (
        "initializeCommand",
        "it runs on your machine, outside any container, which Handoff never does for a repository",
    ),
    (
        "postStartCommand",
        "it starts things for an editor's session; a task's setup runs onCreateCommand, \
         updateContentCommand and postCreateCommand",
    ),
    (
        "postAttachCommand",
        "it starts things for an editor's session; a task's setup runs onCreateCommand, \
         updateContentCommand and postCreateCommand",
    ),
];

/// Keys about the editor or the user's machine, or ones Handoff settles otherwise
/// (see docs/environments.md): ignored without a word.
const EDITOR_ONLY: &[&str] = &[
    "$schema",
    "name",
    "customizations",
    "forwardPorts",
    "portsAttributes",
    "otherPortsAttributes",
    "appPort",
    "hostRequirements",
    "shutdownAction",
    "overrideCommand",
    "waitFor",
    "userEnvProbe",
    "remoteUser",
    "containerUser",
    "updateRemoteUserUID",
    "secrets",
];

/// The repository's devcontainer.json, relative to `workdir`, if it has one.
pub fn find(workdir: &Path) -> Option<PathBuf> {
    FILES
        .iter()
        .map(PathBuf::from)
        .find(|f| std::fs::symlink_metadata(workdir.join(f)).is_ok())
}

/// Reads and parses the repository's devcontainer.json; `None` when it has none.
/// Returns the file's text too (it names the environment's images).
pub fn load(workdir: &Path) -> Result<Option<(DevContainer, String)>, DevcontainerError> {
    let Some(file) = find(workdir) else {
        return Ok(None);
    };
    let text = read_repository_file(workdir, &file)?;
    let vars = Vars {
        local_folder: workdir,
    };
    Ok(Some((parse(&file, &text, &vars)?, text)))
}

/// Reads a file of the repository: a regular file (not a symbolic link), inside the
/// working tree, of at most [`MAX_FILE`] bytes.
pub fn read_repository_file(workdir: &Path, rel: &Path) -> Result<String, DevcontainerError> {
    let path = workdir.join(rel);
    let invalid = |message: String| DevcontainerError::Invalid {
        path: rel.to_path_buf(),
        message,
    };
    let meta = std::fs::symlink_metadata(&path).map_err(|source| DevcontainerError::Read {
        path: rel.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(invalid(
            "is not a regular file (a link, or a folder)".into(),
        ));
    }
    if !inside(workdir, &path) {
        return Err(invalid("is outside the repository".into()));
    }
    if meta.len() > MAX_FILE {
        return Err(invalid(format!("is larger than {} bytes", MAX_FILE)));
    }
    let bytes = std::fs::read(&path).map_err(|source| DevcontainerError::Read {
        path: rel.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| invalid("is not UTF-8 text".into()))
}

/// Whether `path`, with every link resolved, is inside `workdir`.
pub fn inside(workdir: &Path, path: &Path) -> bool {
    match (workdir.canonicalize(), path.canonicalize()) {
        (Ok(root), Ok(p)) => p.starts_with(root),
        _ => false,
    }
}

/// Parses the text of devcontainer.json `file` (relative to the working tree).
pub fn parse(file: &Path, text: &str, vars: &Vars) -> Result<DevContainer, DevcontainerError> {
    let invalid = |message: String| DevcontainerError::Invalid {
        path: file.to_path_buf(),
        message,
    };
    let value: Value = jsonc_parser::parse_to_serde_value(text, &Default::default())
        .map_err(|e| invalid(e.to_string()))?;
    let Value::Object(top) = value else {
        return Err(invalid("is not a JSON object".into()));
    };
    for (key, why) in REFUSED {
        if top.contains_key(*key) {
            return Err(DevcontainerError::Refused {
                path: file.to_path_buf(),
                key: key.to_string(),
                why,
            });
        }
    }
    let mut warnings = Vec::new();
    let mut not_applied: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for key in top.keys() {
        if let Some((_, why)) = NOT_APPLIED.iter().find(|(k, _)| k == key) {
            not_applied.push(format!("`{key}` ({why})"));
        } else if !(EDITOR_ONLY.contains(&key.as_str())
            || lifecycle::KEYS.contains(&key.as_str())
            || matches!(
                key.as_str(),
                "image" | "build" | "dockerFile" | "context" | "containerEnv" | "remoteEnv"
            ))
        {
            unknown.push(format!("`{key}`"));
        }
    }
    if !not_applied.is_empty() {
        warnings.push(format!(
            "{}: not applied: {}",
            file.display(),
            not_applied.join("; ")
        ));
    }
    let string = |v: &Value, key: &str| -> Result<String, DevcontainerError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(invalid(format!("`{key}` must be a string"))),
        }
    };

    // Paths in the file are relative to the folder the file is in.
    let folder = file
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let build = match top.get("build") {
        Some(Value::Object(b)) => Some(b.clone()),
        Some(_) => return Err(invalid("`build` must be an object".into())),
        None => None,
    };
    // `dockerFile` and `context` at the top are the spec's older spelling of `build`.
    let dockerfile = match (&build, top.get("dockerFile")) {
        (Some(b), _) if b.contains_key("dockerfile") => Some((
            string(&b["dockerfile"], "build.dockerfile")?,
            "build.dockerfile",
        )),
        (_, Some(d)) => Some((string(d, "dockerFile")?, "dockerFile")),
        _ => None,
    };
    let source = match (dockerfile, top.get("image")) {
        (Some((dockerfile, key)), image) => {
            if image.is_some() {
                warnings.push(format!(
                    "{}: `image` is not used: `{key}` builds the image",
                    file.display()
                ));
            }
            let b = build.clone().unwrap_or_default();
            Source::Build(build_of(file, &folder, &dockerfile, key, &b, &top, vars, &mut warnings)?)
        }
        (None, Some(image)) => {
            let image = vars
                .expand_text(&string(image, "image")?)
                .map_err(|e| invalid(format!("`image`: {e}")))?;
            if !is_image_reference(&image) {
                return Err(invalid(format!(
                    "`image`: `{image}` is not an image name (like `debian:bookworm` or `registry/team/image:tag`)"
                )));
            }
            Source::Image { image }
        }
        (None, None) => {
            return Err(invalid(
                "names no image: it needs `image` or `build.dockerfile` (Handoff builds no other kind of dev container)"
                    .into(),
            ))
        }
    };

    let mut env: Vec<EnvVar> = Vec::new();
    for key in ["containerEnv", "remoteEnv"] {
        let map = match top.get(key) {
            Some(Value::Object(map)) => map,
            Some(_) => return Err(invalid(format!("`{key}` must be an object of strings"))),
            None => continue,
        };
        for (name, value) in map {
            let at = format!("{key}.{name}");
            if !is_env_name(name) {
                warnings.push(format!(
                    "{}: `{at}` is not set: not an environment variable name",
                    file.display()
                ));
                continue;
            }
            let value = string(value, &at)?;
            if value.chars().any(|c| c.is_control() && c != '\t') {
                warnings.push(format!(
                    "{}: `{at}` is not set: its value holds a line break or a control character",
                    file.display()
                ));
                continue;
            }
            match vars.expand(&value, true) {
                Ok(value) => {
                    env.retain(|v| v.name != *name);
                    env.push(EnvVar {
                        name: name.clone(),
                        value,
                    });
                }
                Err(why) => warnings.push(format!("{}: `{at}` is not set: {why}", file.display())),
            }
        }
    }

    let mut commands = Vec::new();
    for key in lifecycle::KEYS {
        if let Some(value) = top.get(key) {
            if let Some(command) = lifecycle::parse(key, value, vars).map_err(invalid)? {
                commands.push((key, command));
            }
        }
    }
    if !unknown.is_empty() {
        warnings.push(format!(
            "{}: unknown keys ignored: {}",
            file.display(),
            unknown.join(", ")
        ));
    }
    Ok(DevContainer {
        file: file.to_path_buf(),
        source,
        env,
        setup: lifecycle::script(&commands),
        warnings,
    })
}

#[allow(clippy::too_many_arguments)]
fn build_of(
    file: &Path,
    folder: &str,
    dockerfile: &str,
    dockerfile_key: &str,
    build: &Map<String, Value>,
    top: &Map<String, Value>,
    vars: &Vars,
    warnings: &mut Vec<String>,
) -> Result<Build, DevcontainerError> {
    let invalid = |message: String| DevcontainerError::Invalid {
        path: file.to_path_buf(),
        message,
    };
    let context_key = if build.contains_key("context") {
        "build.context"
    } else {
        "context"
    };
    let context = match build.get("context").or_else(|| top.get("context")) {
        Some(Value::String(c)) => c.clone(),
        Some(_) => return Err(invalid(format!("`{context_key}` must be a string"))),
        None => ".".into(),
    };
    let outside = |key: &str, path: &str| {
        invalid(format!(
            "`{key}` ({path}) is outside the repository: the build context and the Dockerfile must be in it"
        ))
    };
    let context_path = normalize(folder, &context).ok_or_else(|| outside(context_key, &context))?;
    let dockerfile_path =
        normalize(folder, dockerfile).ok_or_else(|| outside(dockerfile_key, dockerfile))?;
    let in_context = if context_path.is_empty() {
        Some(dockerfile_path.as_str())
    } else {
        dockerfile_path
            .strip_prefix(&context_path)
            .and_then(|r| r.strip_prefix('/'))
    };
    let Some(in_context) = in_context.filter(|r| !r.is_empty()) else {
        return Err(invalid(format!(
            "`{dockerfile_key}` ({dockerfile}) must be inside the build context ({context}, that is `{}`)",
            if context_path.is_empty() { "." } else { &context_path }
        )));
    };
    let mut args = BTreeMap::new();
    match build.get("args") {
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let at = format!("build.args.{name}");
                let Value::String(value) = value else {
                    return Err(invalid(format!("`{at}` must be a string")));
                };
                match vars.expand_text(value) {
                    Ok(v) => {
                        args.insert(name.clone(), v);
                    }
                    Err(why) => {
                        warnings.push(format!("{}: `{at}` is not passed: {why}", file.display()))
                    }
                }
            }
        }
        Some(_) => return Err(invalid("`build.args` must be an object of strings".into())),
        None => {}
    }
    let target = match build.get("target") {
        Some(Value::String(t)) if !t.is_empty() => Some(t.clone()),
        Some(Value::String(_)) | None => None,
        Some(_) => return Err(invalid("`build.target` must be a string".into())),
    };
    let mut ignored = Vec::new();
    for key in build.keys() {
        match key.as_str() {
            "dockerfile" | "context" | "args" | "target" => {}
            // A registry's images to reuse layers of: there is no registry here.
            "cacheFrom" => {}
            other => ignored.push(format!("`build.{other}`")),
        }
    }
    if !ignored.is_empty() {
        warnings.push(format!(
            "{}: not applied: {} (Handoff builds with the classic builder, no network, and these arguments only: dockerfile, context, args, target)",
            file.display(),
            ignored.join(", ")
        ));
    }
    Ok(Build {
        context: context_path,
        dockerfile: in_context.to_string(),
        args,
        target,
    })
}

/// `rel` taken from folder `base` (both relative to the working tree), with `.` and `..`
/// resolved, `/`-separated; `None` when it leaves the working tree or is absolute.
fn normalize(base: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in base.split('/').chain(rel.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// Whether `s` can be an image reference: what Docker accepts, conservatively, and
/// nothing that could break a Dockerfile line (Handoff writes `FROM <image>`).
fn is_image_reference(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 512
        && !s.starts_with(['-', '.', '/', ':'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'))
}

/// The files of the repository that define its dev container, relative to the working
/// tree: the devcontainer.json, and the Dockerfile it builds from when that is not
/// under `.devcontainer/` (whose files are all part of the configuration anyway).
pub fn definition_files(workdir: &Path) -> Vec<PathBuf> {
    let Ok(Some((dc, _))) = load(workdir) else {
        return find(workdir).into_iter().collect();
    };
    let mut files = vec![dc.file.clone()];
    if let Source::Build(b) = &dc.source {
        let dockerfile = b.dockerfile_in_repository();
        if !dockerfile.starts_with(".devcontainer/") {
            files.push(PathBuf::from(dockerfile));
        }
    }
    files
}

/// A short hash of what defines the environment (the devcontainer.json's text and the
/// Dockerfile's): part of the image names tasks run, so that a changed definition is
/// never run with the image of the old one.
pub fn definition_hash(
    workdir: &Path,
    dc: &DevContainer,
    text: &str,
) -> Result<String, DevcontainerError> {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    field(dc.file.as_os_str().as_encoded_bytes());
    field(text.as_bytes());
    if let Source::Build(b) = &dc.source {
        let dockerfile = PathBuf::from(b.dockerfile_in_repository());
        field(read_repository_file(workdir, &dockerfile)?.as_bytes());
    }
    Ok(hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A dev container applied to a repository's agent profiles: what `handoff image
/// build` makes and what their tasks run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    pub definition: DevContainer,
    /// The repository's key on the engine: its images are `handoff-repo-<key>/…`.
    pub repo_key: String,
    /// The environment image: theirs as named, or the build of their Dockerfile
    /// (`handoff-repo-<key>/devcontainer:<definition hash>`).
    pub environment_image: String,
    /// The profiles that run in it, by name.
    pub profiles: BTreeMap<String, Layered>,
}

/// One profile's image on the dev container's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layered {
    /// What its tasks run: `handoff-repo-<key>/devcontainer-<profile>:<definition hash>`.
    pub image: String,
    /// The image whose agent CLI is copied onto the environment (the profile's own
    /// image); `None` for a profile with no CLI (`shell`).
    pub agent_image: Option<String>,
}

#[cfg(test)]
mod tests;
