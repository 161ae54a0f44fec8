//! `handoff image build [PROFILE]`: builds an agent profile's image. The image's tag
//! goes to stdout (one line, or a JSON record with `--json`); progress and the
//! builder's output go to stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Subcommand;

use super::terminal;
use crate::config::Config;
use crate::image::{self, BuildOptions};
use crate::sandbox::DockerSandbox;

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Build an agent profile's image, with no registry.
    ///
    /// The image is tagged by a hash of its inputs and as the profile's `image`;
    /// unchanged inputs are not built again. See docs/images.md.
    Build {
        /// Agent profile (built-in: claude, codex, aider; shell on a dev container; or
        /// one of .handoff.toml with .handoff/Dockerfile). Default: the default agent.
        profile: Option<String>,
        /// Resolve the agent CLI from the npm cache only; never contact the registry.
        #[arg(long)]
        offline: bool,
        /// npm spec of the agent CLI instead of the pinned one, e.g. @openai/codex@0.170.0.
        #[arg(long, value_name = "SPEC")]
        package: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cwd: &Path, command: ImageCommand) -> Result<ExitCode> {
    match command {
        ImageCommand::Build {
            profile,
            offline,
            package,
            json,
        } => build(cwd, profile, BuildOptions::new(offline, package), json).await,
    }
}

async fn build(
    cwd: &Path,
    profile: Option<String>,
    opts: BuildOptions,
    json: bool,
) -> Result<ExitCode> {
    // Outside a repository the built-in agents can still be built.
    let workdir = repository_workdir(cwd).unwrap_or_else(|| cwd.to_path_buf());
    let config = Config::load(Some(&workdir))?;
    let name = profile.unwrap_or_else(|| config.default_agent.clone());
    let profile = config.profile(&name).map_err(anyhow::Error::msg)?;
    let sandbox = DockerSandbox::connect_to(&config.engine).await?;
    let repo = match crate::engine::Engine::open(&workdir, DockerSandbox::new()) {
        Ok(engine) => engine.repo_scope(),
        // Outside a repository only the built-in agents can be built.
        Err(_) => crate::image::RepoScope {
            key: "none".into(),
            trusted: false,
        },
    };

    for warning in &config.warnings {
        eprintln!("handoff: warning: {}", terminal::escape(warning));
    }

    let started = Instant::now();
    let mut progress = |line: &str| eprintln!("{}", terminal::escape(line));
    let built = match &config.devcontainer {
        // The profile runs in the repository's dev container: that image, with the
        // agent's CLI layered on.
        Some(applied) if applied.profiles.contains_key(&name) => {
            image::build_devcontainer_image(
                sandbox.client()?,
                &workdir,
                applied,
                profile,
                &repo,
                &opts,
                &mut progress,
            )
            .await?
        }
        _ => {
            image::build_profile_image(
                sandbox.client()?,
                &workdir,
                profile,
                &repo,
                &opts,
                &mut progress,
            )
            .await?
        }
    };
    if built.cached {
        eprintln!(
            "handoff: {} is up to date (cached: its inputs are unchanged; nothing rebuilt); {} points at it",
            built.tag, built.image
        );
    } else {
        eprintln!(
            "handoff: built {} in {:.0} s; {} points at it",
            built.tag,
            started.elapsed().as_secs_f64(),
            built.image
        );
    }
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&built)?)?;
    } else {
        writeln!(out, "{}", built.tag)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn repository_workdir(cwd: &Path) -> Option<PathBuf> {
    let repo = git2::Repository::discover(cwd).ok()?;
    repo.workdir().map(Path::to_path_buf)
}
