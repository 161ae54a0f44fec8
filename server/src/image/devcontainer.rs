//! Images for a repository's dev container: the environment image (theirs as named, or
//! built from their Dockerfile and context) and, for each profile that runs in it, the
//! layer with Handoff's agent CLI on top ([`super::layer`]). Their image is never
//! changed, and every image is named in the repository's own namespace.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::Docker;

use super::context::BuildContext;
use super::hash::InputHash;
use super::{
    build_profile_image, builder, from_images, hash_context, io_err, layer, name_part, recipe,
    BuildOptions, BuiltImage, ImageError, ImageSource, RepoScope, BUILD_TIMEOUT,
};
use crate::agents::AgentProfile;
use crate::devcontainer::{self, Applied, Source};

/// Builds (or finds, when its inputs are unchanged) the image `profile`'s tasks run in
/// on the repository's dev container: the agent's own image first (its CLI is copied
/// from there), then the environment, then the layer, tagged as the profile's `image`.
pub async fn build_devcontainer_image(
    docker: &Docker,
    workdir: &Path,
    applied: &Applied,
    profile: &AgentProfile,
    repo: &RepoScope,
    opts: &BuildOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<BuiltImage, ImageError> {
    let docker = docker.clone().with_timeout(BUILD_TIMEOUT);
    let file = applied.definition.file.clone();
    let Some(layered) = applied.profiles.get(&profile.name) else {
        return Err(ImageError::NotInDevcontainer {
            profile: profile.name.clone(),
            file,
        });
    };
    let recipe = recipe::builtin(&profile.name);
    let agent = match (&layered.agent_image, recipe) {
        (Some(image), Some(_)) => {
            let mut own = profile.clone();
            own.image = image.clone();
            Some(build_profile_image(&docker, workdir, &own, repo, opts, progress).await?)
        }
        _ if opts.package.is_some() => {
            return Err(ImageError::NothingToBuild {
                profile: profile.name.clone(),
                image: "no agent CLI of its own, so --package has nothing to replace".into(),
            })
        }
        _ => None,
    };

    let (environment, environment_id) = match &applied.definition.source {
        Source::Image { image } => match builder::image_id(&docker, image).await? {
            Some(id) => {
                progress(&format!("dev container image {image} is in the engine"));
                (image.clone(), id)
            }
            None => {
                return Err(ImageError::DevcontainerImageMissing {
                    file,
                    image: image.clone(),
                })
            }
        },
        Source::Build(build) => {
            build_environment(&docker, workdir, applied, build, progress).await?
        }
    };

    let dockerfile = layer::dockerfile(
        agent.as_ref().map(|a| a.tag.as_str()),
        &environment,
        &applied.definition.env,
    );
    let fit = layer::fit_script(recipe.filter(|_| agent.is_some()));
    let scratch = tempfile::Builder::new()
        .prefix("handoff-layer-")
        .tempdir()
        .map_err(io_err(
            "cannot create a build folder in",
            &std::env::temp_dir(),
        ))?;
    let root = scratch.path();
    std::fs::write(root.join("Dockerfile"), &dockerfile)
        .map_err(io_err("cannot write", &root.join("Dockerfile")))?;
    std::fs::write(root.join("fit.sh"), &fit)
        .map_err(io_err("cannot write", &root.join("fit.sh")))?;
    let context = BuildContext::scan(root).map_err(io_err("cannot read", root))?;
    let mut hash = InputHash::new("handoff/devcontainer-layer");
    hash.field("environment", environment_id.as_bytes());
    if let Some(agent) = &agent {
        hash.field("agent", agent.id.as_bytes());
    }
    let hash = hash_context(&context, hash).await?;
    let tag = format!(
        "handoff-repo-{}/devcontainer-{}:{}",
        applied.repo_key,
        name_part(&profile.name),
        hash.finish()
    );
    let source = ImageSource::Devcontainer {
        file: file.clone(),
        environment: environment.clone(),
        agent: agent.as_ref().map(|a| a.tag.clone()),
    };
    let mut built = BuiltImage {
        profile: profile.name.clone(),
        tag: tag.clone(),
        image: layered.image.clone(),
        id: String::new(),
        cached: false,
        source,
    };
    if let Some(id) = builder::image_id(&docker, &tag).await? {
        built.id = id;
        built.cached = true;
    } else {
        progress(&format!(
            "building {tag} on {environment} (network: none){}",
            agent
                .as_ref()
                .map(|a| format!(", with the agent's CLI from {}", a.tag))
                .unwrap_or_default()
        ));
        let mut reasons: Vec<String> = Vec::new();
        let result = {
            let mut watch = |line: &str| {
                if let Some(reason) = line.strip_prefix(layer::FIT_FAILED) {
                    reasons.push(reason.to_string());
                }
                progress(line);
            };
            builder::build(
                &docker,
                builder::Build {
                    context,
                    dockerfile: "Dockerfile",
                    tag: &tag,
                    build_args: HashMap::new(),
                    labels: labels(&profile.name, &tag),
                    target: None,
                },
                &mut watch,
            )
            .await
        };
        match result {
            Ok(()) => {}
            Err(ImageError::BuildFailed { message, .. })
                if !reasons.is_empty()
                    || message.contains("/bin/sh") && message.contains("no such file") =>
            {
                let reason = if reasons.is_empty() {
                    "it has no /bin/sh, which Handoff runs setup, checks and the shell agent with"
                        .to_string()
                } else {
                    reasons.join("; ")
                };
                return Err(ImageError::DoesNotFit {
                    profile: profile.name.clone(),
                    image: environment,
                    file,
                    reason,
                });
            }
            Err(e) => return Err(e),
        }
        built.id = builder::image_id(&docker, &tag)
            .await?
            .ok_or_else(|| ImageError::Engine {
                what: format!("the built image {tag} is missing"),
                message: "the build reported success but the engine has no such image".into(),
            })?;
    }
    builder::tag(&docker, &tag, &layered.image).await?;
    Ok(built)
}

/// Builds their Dockerfile (or finds the build of the same inputs); returns its tag and
/// id. The context is the folder devcontainer.json names, inside the working tree,
/// without `.git` (the user's whole history, Handoff's task folders) and without what
/// its `.dockerignore` leaves out.
async fn build_environment(
    docker: &Docker,
    workdir: &Path,
    applied: &Applied,
    build: &devcontainer::Build,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(String, String), ImageError> {
    let file = applied.definition.file.clone();
    let dir = workdir.join(&build.context);
    let dockerfile_rel = build.dockerfile_in_repository();
    // The file's paths were checked as text; links could still lead out.
    if !dir.is_dir() {
        return Err(ImageError::Devcontainer(format!(
            "{}: `build.context` ({}) is not a folder of the repository",
            file.display(),
            dir.display()
        )));
    }
    if !devcontainer::inside(workdir, &dir) {
        return Err(ImageError::OutsideRepository {
            file,
            key: "build.context",
            path: dir,
        });
    }
    // A regular file inside the working tree, or an error that says why not.
    let text = devcontainer::read_repository_file(workdir, Path::new(&dockerfile_rel))
        .map_err(|e| ImageError::Devcontainer(e.to_string()))?;
    let mut hash = InputHash::new("handoff/devcontainer");
    hash.field("dockerfile", build.dockerfile.as_bytes());
    for (name, value) in &build.args {
        hash.field("arg", format!("{name}={value}").as_bytes());
    }
    if let Some(target) = &build.target {
        hash.field("target", target.as_bytes());
    }
    let dockerfile_path = PathBuf::from(&dockerfile_rel);
    for image in from_images(&text) {
        let Some(id) = builder::image_id(docker, &image).await? else {
            return Err(ImageError::BaseImageMissing {
                dockerfile: dockerfile_path,
                image,
            });
        };
        hash.field("from", image.as_bytes());
        hash.field("base", id.as_bytes());
    }
    let ignore = dockerignore(&dir);
    let dockerfile = build.dockerfile.clone();
    let scan_dir = dir.clone();
    let context = tokio::task::spawn_blocking(move || {
        BuildContext::scan_keeping(&scan_dir, &|path, is_dir| {
            let name = path.rsplit('/').next().unwrap_or(path);
            name != ".git"
                && (path == dockerfile
                    || dockerfile.starts_with(&format!("{path}/"))
                    || !ignore.matched_path_or_any_parents(path, is_dir).is_ignore())
        })
    })
    .await
    .map_err(|e| ImageError::Io {
        what: "listing stopped in",
        path: dir.clone(),
        source: std::io::Error::other(e),
    })?
    .map_err(io_err("cannot read the build context", &dir))?;
    let hash = hash_context(&context, hash).await?;
    let tag = format!(
        "handoff-repo-{}/devcontainer:{}",
        applied.repo_key,
        hash.finish()
    );
    if let Some(id) = builder::image_id(docker, &tag).await? {
        progress(&format!("dev container image {tag} is up to date"));
        builder::tag(docker, &tag, &applied.environment_image).await?;
        return Ok((tag, id));
    }
    progress(&format!(
        "building the dev container's {} as {tag} (network: none)",
        dockerfile_path.display()
    ));
    let built = builder::build(
        docker,
        builder::Build {
            context,
            dockerfile: &build.dockerfile,
            tag: &tag,
            build_args: build.args.clone().into_iter().collect(),
            labels: labels("devcontainer", &tag),
            target: build.target.as_deref(),
        },
        progress,
    )
    .await;
    if let Err(ImageError::BuildFailed {
        image,
        step,
        message,
    }) = built
    {
        return Err(ImageError::DevcontainerBuildFailed {
            file,
            image,
            step,
            message,
        });
    }
    let id = builder::image_id(docker, &tag)
        .await?
        .ok_or_else(|| ImageError::Engine {
            what: format!("the built image {tag} is missing"),
            message: "the build reported success but the engine has no such image".into(),
        })?;
    builder::tag(docker, &tag, &applied.environment_image).await?;
    Ok((tag, id))
}

/// The context's `.dockerignore`, as anchored gitignore patterns (Docker matches every
/// pattern from the context's root).
fn dockerignore(dir: &Path) -> ignore::gitignore::Gitignore {
    let mut builder = ignore::gitignore::GitignoreBuilder::new(dir);
    if let Ok(text) = std::fs::read_to_string(dir.join(".dockerignore")) {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negated, pattern) = match line.strip_prefix('!') {
                Some(p) => ("!", p.trim()),
                None => ("", line),
            };
            let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
            let _ = builder.add_line(None, &format!("{negated}/{pattern}"));
        }
    }
    builder
        .build()
        .unwrap_or_else(|_| ignore::gitignore::Gitignore::empty())
}

fn labels(profile: &str, tag: &str) -> HashMap<String, String> {
    HashMap::from([
        ("handoff.profile".to_string(), profile.to_string()),
        ("handoff.inputs".to_string(), tag.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_patterns_are_anchored_at_the_context() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".dockerignore"),
            "# comment\nnode_modules\n/target\n*.log\n!keep.log\n./docs/**/*.md\n",
        )
        .unwrap();
        let ignore = dockerignore(dir.path());
        let ignored =
            |p: &str, is_dir: bool| ignore.matched_path_or_any_parents(p, is_dir).is_ignore();
        assert!(ignored("node_modules", true));
        assert!(ignored("node_modules/x/y.js", false));
        assert!(ignored("target", true));
        assert!(ignored("a.log", false));
        assert!(!ignored("keep.log", false));
        assert!(ignored("docs/a/b.md", false));
        // Docker matches from the root only: no pattern reaches into subfolders.
        assert!(!ignored("sub/a.log", false));
        assert!(!ignored("sub/node_modules", true));
        assert!(!ignored("src/main.rs", false));
    }
}
