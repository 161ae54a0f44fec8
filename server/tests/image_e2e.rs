//! `handoff image build` end to end: the real binary, a real Docker engine with no
//! registry, and (for the built-in agents) real mmdebstrap and npm on the host. Each
//! test reads as the user story it checks.
//!
//! The built-in agents' images are tagged by the hash of their inputs, so after the
//! first run on a machine (about a minute for the base, plus the npm downloads) these
//! tests find them built and only check that they are.

mod common;

use std::process::{Command, Output};

use common::*;

/// `docker run --rm` with no pull and no network; returns stdout, panics on failure.
fn docker_run(image: &str, argv: &[&str]) -> String {
    let out = Command::new("docker")
        .args(["run", "--rm", "--pull", "never", "--network", "none"])
        // As the agents run: an arbitrary uid, not root.
        .args(["--user", "12345:12345", image])
        .args(argv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker run {image} {argv:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn image_id(image: &str) -> String {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output()
        .unwrap();
    assert!(out.status.success(), "image {image} is missing");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The one line `handoff image build` prints on stdout: the image's hash tag.
fn built_tag(args: &[&str], out: &Output) -> String {
    assert!(
        out.status.success(),
        "handoff {args:?} failed:\n{}",
        stderr(out)
    );
    let text = stdout(out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "stdout is the tag alone: {text:?}");
    lines[0].to_string()
}

/// Removes the images a test made, whatever its outcome.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "--force"])
                .args(&self.0)
                .output();
        }
    }
}

#[test]
fn a_repository_dockerfile_builds_a_custom_profile_once_per_set_of_inputs() {
    // An image other repositories use: a repository's build must never replace it.
    const SHARED_IMAGE: &str = "handoff-test/image-e2e-shared:latest";
    let tagged = Command::new("docker")
        .args(["tag", image(), SHARED_IMAGE])
        .output()
        .unwrap();
    assert!(tagged.status.success());
    let repo = Repo::new(
        &[],
        &format!(
            "[agents.busy]\nimage = \"{SHARED_IMAGE}\"\ncommand = [\"sh\", \"-c\", \"{{prompt}}\"]\n"
        ),
    );
    let shared_id = image_id(SHARED_IMAGE);
    let dockerfile = |extra: &str| {
        format!(
            "FROM {}\nCOPY nonce.txt /nonce.txt\nRUN echo built > /built.txt{extra}\n",
            image()
        )
    };
    repo.write(".handoff/Dockerfile", &dockerfile(""));
    // A file of the context unique to this run, so the first build is never cached
    // from an earlier run.
    let nonce = format!("{:?}", std::time::SystemTime::now());
    repo.write(".handoff/nonce.txt", &nonce);
    let mut cleanup = Cleanup(vec![SHARED_IMAGE.to_string()]);

    // The Dockerfile changed the repository's configuration: not trusted yet.
    let args = ["image", "build", "busy"];
    let refused = repo.handoff(&args);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not trusted") && stderr(&refused).contains("handoff trust"),
        "{}",
        stderr(&refused)
    );
    repo.trust();
    let out = repo.handoff(&args);
    let tag = built_tag(&args, &out);
    cleanup.0.push(tag.clone());
    let own = tag.split(':').next().unwrap().to_string();
    assert!(
        own.starts_with("handoff-repo-") && own.ends_with("/busy"),
        "a repository's images live in its own namespace: {tag}"
    );
    cleanup.0.push(format!("{own}:latest"));
    assert_eq!(tag.len(), own.len() + 1 + 16, "{tag}");
    assert!(
        stderr(&out).contains("Step "),
        "the builder's output is shown:\n{}",
        stderr(&out)
    );
    assert_eq!(docker_run(&tag, &["cat", "/built.txt"]), "built\n");
    assert_eq!(docker_run(&tag, &["cat", "/nonce.txt"]), nonce);
    // The repository's own name points at this build; the shared image is untouched.
    assert_eq!(image_id(&format!("{own}:latest")), image_id(&tag));
    assert_eq!(image_id(SHARED_IMAGE), shared_id);
    // And the profile's tasks run it.
    let out = repo.handoff(&[
        "run",
        "--wait",
        "--json",
        "--agent",
        "busy",
        "cat /built.txt > seen.txt",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let task: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(task["image"], format!("{own}:latest"));
    assert_eq!(
        repo.show_bytes(task["branch"].as_str().unwrap(), "seen.txt"),
        b"built\n"
    );

    // Same inputs: nothing is rebuilt, and the command says so.
    let again = repo.handoff(&args);
    assert_eq!(built_tag(&args, &again), tag);
    let said = stderr(&again);
    assert!(said.contains("cached"), "{said}");
    assert!(!said.contains("Step "), "nothing was built:\n{said}");

    // A changed Dockerfile is a new image (trusted again), and the profile moves to it.
    repo.write(
        ".handoff/Dockerfile",
        &dockerfile(" && echo changed > /changed.txt"),
    );
    repo.trust();
    let changed = repo.handoff(&args);
    let new_tag = built_tag(&args, &changed);
    cleanup.0.push(new_tag.clone());
    assert_ne!(new_tag, tag);
    assert_eq!(docker_run(&new_tag, &["cat", "/changed.txt"]), "changed\n");
    assert_eq!(image_id(&format!("{own}:latest")), image_id(&new_tag));
    assert_eq!(image_id(SHARED_IMAGE), shared_id);

    // A failing step is named.
    repo.write(".handoff/Dockerfile", &dockerfile(" && false"));
    repo.trust();
    let failed = repo.handoff(&args);
    assert!(!failed.status.success());
    let said = stderr(&failed);
    assert!(
        said.contains("failed at Step ") && said.contains("RUN echo built"),
        "{said}"
    );

    // A profile with no Dockerfile and no recipe: nothing to build, and what to do.
    std::fs::remove_dir_all(repo.path().join(".handoff")).unwrap();
    repo.trust();
    let nothing = repo.handoff(&["image", "build", "busy"]);
    assert!(!nothing.status.success());
    let said = stderr(&nothing);
    assert!(
        said.contains("nothing to build for agent `busy`")
            && said.contains("set `image`")
            && said.contains(".handoff/Dockerfile"),
        "{said}"
    );
    assert!(stdout(&nothing).is_empty());
}

#[test]
fn the_builtin_agents_are_built_with_no_registry_and_run_their_real_clis() {
    let dir = tempfile::tempdir().unwrap();
    for (profile, version) in [("codex", "0.169.0"), ("claude", "2.1.332")] {
        let args = ["image", "build", profile];
        let out = handoff_in(dir.path(), &args, &[]);
        let tag = built_tag(&args, &out);
        assert!(tag.starts_with(&format!("handoff/{profile}:")), "{tag}");
        let said = docker_run(&tag, &[profile, "--version"]);
        assert!(said.contains(version), "{profile} --version: {said}");
        // The profile's image is the build; HOME and the workspace are set for any uid.
        assert_eq!(
            image_id(&format!("handoff/{profile}:latest")),
            image_id(&tag)
        );
        let env = docker_run(
            &tag,
            &["sh", "-c", "echo $HOME; pwd; touch $HOME/w && echo ok"],
        );
        assert_eq!(env, "/home/agent\n/workspace\nok\n");

        // Offline, from the npm cache the first build filled: the same image.
        let offline = ["image", "build", profile, "--offline"];
        let out = handoff_in(dir.path(), &offline, &[]);
        assert_eq!(built_tag(&offline, &out), tag);
        assert!(stderr(&out).contains("cached"), "{}", stderr(&out));
    }

    // Offline with an empty npm cache: the error says what is missing and what to do.
    let empty = tempfile::tempdir().unwrap();
    let cache = empty.path().display().to_string();
    let out = handoff_in(
        dir.path(),
        &["image", "build", "codex", "--offline"],
        &[("HANDOFF_NPM_CACHE", &cache)],
    );
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains(&format!(
            "the npm cache at {cache} has no @openai/codex@0.169.0"
        )) && said.contains("run once with network"),
        "{said}"
    );
}
