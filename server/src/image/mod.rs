//! Agent images: building the image an agent profile runs in, with no registry.
//!
//! A built-in agent (`claude`, `codex`) gets its CLI resolved on the host by npm and
//! copied onto a Debian base made by mmdebstrap, through a Dockerfile embedded in the
//! binary. A repository can bring its own `.handoff/<profile>.Dockerfile` or
//! `.handoff/Dockerfile` instead, which is also how custom profiles get an image.
//!
//! Every image is tagged `handoff/<profile>:<hash of all its inputs>` — Dockerfile,
//! every file of the context, base image ids, package spec — so unchanged inputs are
//! never built twice; it is also tagged as the profile's `image`, where tasks look.
//!
//! Docker builds run with network `none` on the classic builder: anything fetched is
//! fetched on the host before the build, where `--offline` can forbid it. This module
//! builds images; it does not run agents and knows nothing of tasks or front-ends.

mod apt;
mod base;
mod builder;
mod context;
mod devcontainer;
mod hash;
mod layer;
mod npm;
mod pip;
mod recipe;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use serde::Serialize;

use crate::agents::AgentProfile;
use context::BuildContext;
use hash::InputHash;
use recipe::AgentRecipe;

pub use devcontainer::build_devcontainer_image;
pub use npm::default_cache as default_npm_cache;

/// A build (with the base image) can take minutes on a slow mirror; the engine
/// client's usual request timeout is for quick calls.
const BUILD_TIMEOUT: Duration = Duration::from_secs(3600);

/// The profiles Handoff has a built-in image recipe for, with their pinned npm specs.
pub fn builtin_packages() -> Vec<(&'static str, &'static str)> {
    recipe::RECIPES
        .iter()
        .map(|r| (r.profile, r.package))
        .collect()
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Resolve the agent CLI from the npm cache only, never the registry.
    pub offline: bool,
    /// An npm spec replacing the pinned one of a built-in agent.
    pub package: Option<String>,
    /// npm's cache folder.
    pub npm_cache: PathBuf,
    /// Where pip's downloads of Python agents are kept.
    pub pip_cache: PathBuf,
}

impl BuildOptions {
    /// Options with the npm cache from `$HANDOFF_NPM_CACHE` or `~/.cache/handoff/npm`.
    pub fn new(offline: bool, package: Option<String>) -> BuildOptions {
        BuildOptions {
            offline,
            package,
            npm_cache: npm::default_cache(),
            pip_cache: pip::default_cache(),
        }
    }
}

/// Where an image's definition came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageSource {
    /// The Dockerfile embedded in Handoff, with this npm package on this base image.
    BuiltIn { package: String, base: String },
    /// A Dockerfile of the repository.
    Repository { dockerfile: PathBuf },
    /// The repository's dev container (`file`), image `environment`, with the CLI of
    /// image `agent` on it.
    Devcontainer {
        file: PathBuf,
        environment: String,
        agent: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct BuiltImage {
    pub profile: String,
    /// `handoff/<profile>:<16 hex digits of the input hash>`.
    pub tag: String,
    /// The profile's `image`, now pointing at `tag`.
    pub image: String,
    pub id: String,
    /// An image with the same inputs existed: nothing was built.
    pub cached: bool,
    pub source: ImageSource,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "python3 with pip is not on this host: Handoff resolves Python agents with `python3 -m pip download` before the (network-less) image build. Install it (e.g. `apt-get install python3-pip`)"
    )]
    PipMissing,
    #[error(
        "the pip cache at {} has no {spec}; run once with network (without --offline), or point HANDOFF_PIP_CACHE at a cache that has it",
        cache.display()
    )]
    PipNotCached { spec: String, cache: PathBuf },
    #[error("pip could not download {spec}:\n{message}")]
    Pip { spec: String, message: String },
    #[error(
        "{} is part of this repository's configuration, which you have not trusted (as it is now): review .handoff.toml and .handoff/, then run `handoff trust`",
        dockerfile.display()
    )]
    Untrusted { dockerfile: PathBuf },
    #[error(
        "nothing to build for agent `{profile}`: Handoff builds images for the built-in agents (claude, codex) and for profiles whose repository has .handoff/Dockerfile, and `{profile}` runs `{image}`. Either set `image` in [agents.{profile}] of .handoff.toml to an image the Docker engine has, or add .handoff/Dockerfile (or .handoff/{profile}.Dockerfile) to build one"
    )]
    NothingToBuild { profile: String, image: String },
    #[error(
        "--package applies to the built-in agents' images; agent `{profile}` is built from {dockerfile}, which decides what it installs"
    )]
    PackageWithDockerfile {
        profile: String,
        dockerfile: PathBuf,
    },
    #[error(
        "npm is not installed on this host: Handoff resolves the agent CLI with npm before the (network-less) image build. Install Node.js and npm (e.g. `apt-get install npm`)"
    )]
    NpmMissing,
    #[error(
        "the npm cache at {} has no {spec}; run once with network (without --offline), or copy a cache there (or point HANDOFF_NPM_CACHE at one, e.g. ~/.npm)",
        cache.display()
    )]
    NpmNotCached { spec: String, cache: PathBuf },
    #[error("npm could not install {spec}:\n{message}")]
    Npm { spec: String, message: String },
    #[error(
        "npm installed {spec} but {binary} is not in it: the package's layout is not the one Handoff knows; use the pinned version (drop --package) or a version with the same layout"
    )]
    AgentBinaryMissing { spec: String, binary: String },
    #[error(
        "mmdebstrap is not installed: Handoff makes the agents' Debian base image with it, with no registry. Install it: `apt-get install mmdebstrap`"
    )]
    MmdebstrapMissing,
    #[error("mmdebstrap failed ({status}) making the base image; its last output:\n{tail}")]
    Mmdebstrap { status: String, tail: String },
    #[error(
        "{} starts FROM {image}, which is not in the Docker engine (there is no registry to pull it from): build or load it first (e.g. `handoff image build claude`, or `docker load`)",
        dockerfile.display()
    )]
    BaseImageMissing { dockerfile: PathBuf, image: String },
    #[error(
        "{} starts FROM {image}, which is agent `{profile}`'s own image: each build would stack on the last. Start FROM the image's hash tag (…/{profile}:<hash>) or another image",
        dockerfile.display()
    )]
    BuildsOnItself {
        dockerfile: PathBuf,
        image: String,
        profile: String,
    },
    #[error("building {image} failed at {step}:\n{message}")]
    BuildFailed {
        image: String,
        step: String,
        message: String,
    },
    #[error(
        "agent `{profile}` does not run in this repository's dev container ({}): it has an image of its own (in .handoff.toml, your config, or .handoff/)",
        file.display()
    )]
    NotInDevcontainer { profile: String, file: PathBuf },
    #[error(
        "{} names image {image}, which is not in the Docker engine (there is no registry to pull it from): load it (`docker load`) or build it, or build one from a Dockerfile with `build.dockerfile` in {}",
        file.display(), file.display()
    )]
    DevcontainerImageMissing { file: PathBuf, image: String },
    #[error(
        "{}: `{key}` ({}) leads outside the repository (through a symbolic link): the build context and the Dockerfile must be in it",
        file.display(), path.display()
    )]
    OutsideRepository {
        file: PathBuf,
        key: &'static str,
        path: PathBuf,
    },
    #[error("{0}")]
    Devcontainer(String),
    #[error(
        "building the dev container of {} ({image}) failed at {step}:\n{message}\n(Handoff builds with no network: a step that downloads fails. Build the image yourself and name it with `image` in {}, or give the agent profiles their own `image` in .handoff.toml)",
        file.display(), file.display()
    )]
    DevcontainerBuildFailed {
        file: PathBuf,
        image: String,
        step: String,
        message: String,
    },
    #[error(
        "agent `{profile}` cannot run in the dev container's image {image} ({}): {reason}. Change the image, or give [agents.{profile}] an `image` of its own in .handoff.toml",
        file.display()
    )]
    DoesNotFit {
        profile: String,
        image: String,
        file: PathBuf,
        reason: String,
    },
    #[error("{what}: {message}")]
    Engine { what: String, message: String },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.to_path_buf();
    move |source| ImageError::Io { what, path, source }
}

/// What a profile's image is built from.
#[derive(Debug, PartialEq)]
enum Plan {
    BuiltIn(&'static AgentRecipe),
    /// `dockerfile` is a file of `dir`, the build context.
    Repository {
        dir: PathBuf,
        dockerfile: String,
    },
}

/// A repository's own Dockerfile wins; then Handoff's recipe for a built-in agent.
fn plan(workdir: &Path, profile: &AgentProfile) -> Result<Plan, ImageError> {
    let dir = workdir.join(".handoff");
    for name in [format!("{}.Dockerfile", profile.name), "Dockerfile".into()] {
        if dir.join(&name).is_file() {
            return Ok(Plan::Repository {
                dir,
                dockerfile: name,
            });
        }
    }
    recipe::builtin(&profile.name)
        .map(Plan::BuiltIn)
        .ok_or_else(|| ImageError::NothingToBuild {
            profile: profile.name.clone(),
            image: profile.image.clone(),
        })
}

/// The repository an image build is for: its key (`handoff-repo-<key>/…` names its
/// own images) and whether the user trusts its configuration.
#[derive(Debug, Clone)]
pub struct RepoScope {
    pub key: String,
    pub trusted: bool,
}

impl RepoScope {
    /// The image name under which this repository's own Dockerfile for `profile` is
    /// built: in the repository's own namespace, so that no repository can replace an
    /// image other repositories (or the built-in agents) use.
    pub fn image_name(&self, profile: &str) -> String {
        format!("handoff-repo-{}/{}:latest", self.key, name_part(profile))
    }
}

/// The image tasks of `profile` run in this repository: its own Dockerfile's build
/// when it has one for the profile and the user trusts it, else the profile's `image`.
pub fn image_for(workdir: &Path, repo: &RepoScope, profile: &AgentProfile) -> String {
    match plan(workdir, profile) {
        Ok(Plan::Repository { .. }) if repo.trusted => repo.image_name(&profile.name),
        _ => profile.image.clone(),
    }
}

/// Builds (or finds, when its inputs are unchanged) the image of `profile`. A built-in
/// agent's image is tagged as the profile's `image`; a repository's own Dockerfile is
/// built only when the user trusts the repository, and tagged only in the
/// repository's own namespace ([`RepoScope::image_name`]). `workdir` is the working
/// tree (where `.handoff/` is looked for). Progress lines — the builder's output among
/// them — go to `progress`.
pub async fn build_profile_image(
    docker: &Docker,
    workdir: &Path,
    profile: &AgentProfile,
    repo: &RepoScope,
    opts: &BuildOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<BuiltImage, ImageError> {
    let docker = docker.clone().with_timeout(BUILD_TIMEOUT);
    let (staged, source) = match plan(workdir, profile)? {
        Plan::BuiltIn(recipe) => {
            let package = opts.package.as_deref().unwrap_or(recipe.package);
            stage_builtin(&docker, recipe, package, opts, progress).await?
        }
        Plan::Repository { dir, dockerfile } => {
            let path = dir.join(&dockerfile);
            if !repo.trusted {
                return Err(ImageError::Untrusted { dockerfile: path });
            }
            if opts.package.is_some() {
                return Err(ImageError::PackageWithDockerfile {
                    profile: profile.name.clone(),
                    dockerfile: path,
                });
            }
            let own = repo.image_name(&profile.name);
            let staged = stage_repository(&docker, profile, &own, dir, dockerfile).await?;
            (staged, ImageSource::Repository { dockerfile: path })
        }
    };

    let hash = hash_context(&staged.context, staged.hash).await?;
    let (tag, alias) = match &source {
        ImageSource::Repository { .. } => (
            format!(
                "handoff-repo-{}/{}:{}",
                repo.key,
                name_part(&profile.name),
                hash.finish()
            ),
            repo.image_name(&profile.name),
        ),
        _ => (
            format!("{}:{}", repository_for(&profile.name), hash.finish()),
            profile.image.clone(),
        ),
    };
    let mut built = BuiltImage {
        profile: profile.name.clone(),
        tag: tag.clone(),
        image: alias.clone(),
        id: String::new(),
        cached: false,
        source,
    };
    if let Some(id) = builder::image_id(&docker, &tag).await? {
        built.id = id;
        built.cached = true;
    } else {
        progress(&format!("building {tag} (network: none)"));
        let labels = HashMap::from([
            ("handoff.profile".to_string(), profile.name.clone()),
            ("handoff.inputs".to_string(), tag.clone()),
        ]);
        builder::build(
            &docker,
            builder::Build {
                context: staged.context,
                dockerfile: &staged.dockerfile,
                tag: &tag,
                build_args: staged.build_args,
                labels,
                target: None,
            },
            progress,
        )
        .await?;
        built.id = builder::image_id(&docker, &tag)
            .await?
            .ok_or_else(|| ImageError::Engine {
                what: format!("the built image {tag} is missing"),
                message: "the build reported success but the engine has no such image".into(),
            })?;
    }
    if alias != tag {
        builder::tag(&docker, &tag, &alias).await?;
    }
    // The staging folder (a copy of the agent CLI) is no longer needed.
    drop(staged.scratch);
    Ok(built)
}

/// A context ready to hash and build.
struct Staged {
    context: BuildContext,
    dockerfile: String,
    build_args: HashMap<String, String>,
    /// Inputs outside the context (base image ids, package spec), already fed in.
    hash: InputHash,
    /// Keeps a temporary context folder alive until the build is done.
    scratch: Option<tempfile::TempDir>,
}

async fn stage_builtin(
    docker: &Docker,
    recipe: &'static AgentRecipe,
    package: &str,
    opts: &BuildOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(Staged, ImageSource), ImageError> {
    let base = base::ensure(docker, progress).await?;
    if base.cached {
        progress(&format!("base image {} is already made", base.reference));
    }
    let scratch = tempfile::Builder::new()
        .prefix("handoff-image-")
        .tempdir()
        .map_err(io_err(
            "cannot create a build folder in",
            &std::env::temp_dir(),
        ))?;
    let root = scratch.path().to_path_buf();
    std::fs::write(root.join("Dockerfile"), recipe.dockerfile)
        .map_err(io_err("cannot write", &root.join("Dockerfile")))?;
    let prefix = root.join("agent");
    match recipe.source {
        recipe::Source::Npm => {
            std::fs::create_dir_all(&opts.npm_cache)
                .map_err(io_err("cannot create", &opts.npm_cache))?;
            npm::install(package, &prefix, &opts.npm_cache, opts.offline, progress).await?;
        }
        recipe::Source::Pip => {
            std::fs::create_dir_all(&opts.pip_cache)
                .map_err(io_err("cannot create", &opts.pip_cache))?;
            let wheels = pip::download(package, &opts.pip_cache, opts.offline, progress).await?;
            std::fs::create_dir_all(&prefix).map_err(io_err("cannot create", &prefix))?;
            let mut found = false;
            for entry in std::fs::read_dir(&wheels).map_err(io_err("cannot read", &wheels))? {
                let entry = entry.map_err(io_err("cannot read", &wheels))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.ends_with(".whl") {
                    continue;
                }
                found |= name.starts_with(recipe.binary);
                let to = prefix.join(&name);
                if std::fs::hard_link(entry.path(), &to).is_err() {
                    std::fs::copy(entry.path(), &to).map_err(io_err("cannot copy to", &to))?;
                }
            }
            if !found {
                return Err(ImageError::AgentBinaryMissing {
                    spec: package.to_string(),
                    binary: format!("{}*.whl", recipe.binary),
                });
            }
            let unpack = prefix.join("unpack.py");
            std::fs::write(&unpack, recipe::UNPACK_WHEELS)
                .map_err(io_err("cannot write", &unpack))?;
        }
    }
    let context = BuildContext::scan(&root).map_err(io_err("cannot read", &root))?;
    let binary = format!("agent/{}", recipe.binary);
    if recipe.source == recipe::Source::Npm && !context.has_file(&binary) {
        return Err(ImageError::AgentBinaryMissing {
            spec: package.to_string(),
            binary,
        });
    }
    let mut hash = InputHash::new("handoff/agent");
    hash.field("package", package.as_bytes());
    hash.field("base", base.id.as_bytes());
    let staged = Staged {
        context,
        dockerfile: "Dockerfile".into(),
        build_args: HashMap::from([("BASE".to_string(), base.reference.clone())]),
        hash,
        scratch: Some(scratch),
    };
    let source = ImageSource::BuiltIn {
        package: package.to_string(),
        base: base.reference,
    };
    Ok((staged, source))
}

async fn stage_repository(
    docker: &Docker,
    profile: &AgentProfile,
    own_image: &str,
    dir: PathBuf,
    dockerfile: String,
) -> Result<Staged, ImageError> {
    let path = dir.join(&dockerfile);
    let text = std::fs::read_to_string(&path).map_err(io_err("cannot read", &path))?;
    let mut hash = InputHash::new("handoff/repository");
    hash.field("dockerfile", dockerfile.as_bytes());
    for image in from_images(&text) {
        if image == own_image {
            return Err(ImageError::BuildsOnItself {
                dockerfile: path,
                image,
                profile: profile.name.clone(),
            });
        }
        let Some(id) = builder::image_id(docker, &image).await? else {
            return Err(ImageError::BaseImageMissing {
                dockerfile: path,
                image,
            });
        };
        hash.field("from", image.as_bytes());
        hash.field("base", id.as_bytes());
    }
    let context = BuildContext::scan(&dir).map_err(io_err("cannot read", &dir))?;
    Ok(Staged {
        context,
        dockerfile,
        build_args: HashMap::new(),
        hash,
        scratch: None,
    })
}

/// Reads every file of the context into the hash, off the async threads.
async fn hash_context(
    context: &BuildContext,
    mut hash: InputHash,
) -> Result<InputHash, ImageError> {
    let context = context.clone();
    let root = context.root().to_path_buf();
    tokio::task::spawn_blocking(move || context.hash_into(&mut hash).map(|()| hash))
        .await
        .map_err(|e| ImageError::Io {
            what: "hashing stopped in",
            path: root.clone(),
            source: std::io::Error::other(e),
        })?
        .map_err(io_err("cannot read the build context", &root))
}

/// The images a Dockerfile starts from, as written: not `scratch`, not earlier stages,
/// not references made of build arguments (which cannot be looked up beforehand).
fn from_images(dockerfile: &str) -> Vec<String> {
    let mut stages: Vec<String> = Vec::new();
    let mut images = Vec::new();
    for line in dockerfile.lines() {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let mut words = words.skip_while(|w| w.starts_with("--"));
        let Some(image) = words.next() else { continue };
        let known_stage = stages.iter().any(|s| s.eq_ignore_ascii_case(image));
        if !(known_stage || image.contains('$') || image.eq_ignore_ascii_case("scratch")) {
            images.push(image.to_string());
        }
        if words.next().is_some_and(|w| w.eq_ignore_ascii_case("AS")) {
            if let Some(stage) = words.next() {
                stages.push(stage.to_string());
            }
        }
    }
    images
}

/// `handoff/<profile>`, with the profile name made a valid repository name.
fn repository_for(profile: &str) -> String {
    format!("handoff/{}", name_part(profile))
}

/// The short key naming a repository's own images (`handoff-repo-<key>/…`): the
/// start of the git blob hash of its canonical common git directory, as the engine's
/// `Engine::repo_key` makes it.
pub fn repo_key(git_dir: &Path) -> String {
    git2::Oid::hash_object(
        git2::ObjectType::Blob,
        git_dir.as_os_str().as_encoded_bytes(),
    )
    .map(|o| o.to_string()[..10].to_string())
    .unwrap_or_else(|_| "repo".into())
}

/// A profile's name as a part of an image name (lowercase, `[a-z0-9._-]`).
pub fn name_part(profile: &str) -> String {
    let name: String = profile
        .to_ascii_lowercase()
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '-',
        })
        .collect();
    let name = name.trim_matches(|c| matches!(c, '.' | '_' | '-'));
    if name.is_empty() { "agent" } else { name }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::builtin_profiles;

    #[test]
    fn images_a_dockerfile_starts_from() {
        let cases = [
            ("FROM debian:bookworm\nRUN true\n", vec!["debian:bookworm"]),
            (
                "from --platform=linux/amd64 busybox AS b\nFROM b\nCOPY --from=b / /\n",
                vec!["busybox"],
            ),
            ("ARG BASE\nFROM ${BASE}\n", vec![]),
            ("FROM scratch\n", vec![]),
            ("FROM a AS one\nFROM c\nFROM one\n", vec!["a", "c"]),
            ("# FROM commented\nRUN echo FROM x\n", vec![]),
        ];
        for (text, want) in cases {
            assert_eq!(from_images(text), want, "{text}");
        }
    }

    #[test]
    fn repositories_are_valid_docker_names() {
        let cases = [
            ("claude", "handoff/claude"),
            ("My Agent", "handoff/my-agent"),
            ("-x-", "handoff/x"),
            ("émoji", "handoff/moji"),
            ("__", "handoff/agent"),
        ];
        for (name, want) in cases {
            assert_eq!(repository_for(name), want, "{name}");
        }
    }

    #[test]
    fn a_repository_dockerfile_wins_then_the_builtin_recipe() {
        let profiles = builtin_profiles();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(
            matches!(plan(d, &profiles["claude"]), Ok(Plan::BuiltIn(r)) if r.profile == "claude")
        );
        let err = plan(d, &profiles["shell"]).unwrap_err().to_string();
        assert!(
            err.contains("nothing to build for agent `shell`")
                && err.contains(".handoff/Dockerfile"),
            "{err}"
        );

        std::fs::create_dir(d.join(".handoff")).unwrap();
        std::fs::write(d.join(".handoff/Dockerfile"), "FROM x\n").unwrap();
        let repo = |name: &str| Plan::Repository {
            dir: d.join(".handoff"),
            dockerfile: name.into(),
        };
        assert_eq!(plan(d, &profiles["shell"]).unwrap(), repo("Dockerfile"));
        assert_eq!(plan(d, &profiles["claude"]).unwrap(), repo("Dockerfile"));
        std::fs::write(d.join(".handoff/codex.Dockerfile"), "FROM y\n").unwrap();
        assert_eq!(
            plan(d, &profiles["codex"]).unwrap(),
            repo("codex.Dockerfile")
        );
    }
}
