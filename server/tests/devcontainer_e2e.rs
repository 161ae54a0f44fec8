//! A repository's devcontainer.json as its agents' environment: their Dockerfile built,
//! their lifecycle commands run as the setup, their variables set, the agent's CLI
//! layered on their image; nothing of it used before the user trusts the repository.
//! Real Docker, images built here with no registry, the real `handoff` binary.

mod common;

use std::process::Command;

use common::*;

/// A repository with `files` committed and no Handoff configuration; the user's own
/// config makes `shell` the default agent, with `user_shell` added to its table.
fn repo_with(files: &[(&str, &str)], user_shell: &str) -> Repo {
    let repo = Repo {
        dir: tempfile::tempdir().unwrap(),
    };
    repo.git(&["init", "-q", "-b", "main"]);
    for (path, content) in files {
        repo.write(path, content);
    }
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "initial"]);
    std::fs::write(repo.path().join(".git/info/exclude"), ".no-user-config/\n").unwrap();
    repo.write_user_config(&format!(
        "default_agent = \"shell\"\n[agents.shell]\nmemory = \"256m\"\n{user_shell}\n"
    ));
    repo
}

/// The project's dev container: their Dockerfile on the offline test image, a build
/// argument, variables, and a lifecycle command of each form.
fn project_files() -> Vec<(&'static str, String)> {
    vec![
        (
            ".devcontainer/devcontainer.json",
            r#"// The project's dev container (JSONC: comments, trailing commas).
{
  "name": "project",
  "build": {
    "dockerfile": "Dockerfile",
    "args": { "GREETING": "hello from their build", },
  },
  "containerEnv": {
    "PROJECT_MODE": "devcontainer",
    "TOOLS_PATH": "${containerEnv:PATH}:/opt/tools",
  },
  /* The spec's order is onCreate, updateContent, postCreate. */
  "postCreateCommand": "echo four >> build/order && cat /etc/greeting > build/greeting",
  "updateContentCommand": { "b": "echo three >> build/order", "a": ["sh", "-c", "echo two >> build/order"] },
  "onCreateCommand": ["sh", "-c", "mkdir -p build && echo one > build/order"],
  "remoteUser": "vscode",
  "customizations": { "vscode": { "extensions": ["x.y"] } },
}
"#
            .to_string(),
        ),
        (
            ".devcontainer/Dockerfile",
            format!(
                "FROM {}\nARG GREETING\nRUN echo \"$GREETING\" > /etc/greeting\n",
                image()
            ),
        ),
        (".gitignore", "build/\n".to_string()),
        ("a.txt", "a\n".to_string()),
    ]
}

/// What the agent reports of its environment: what the setup left, their image's
/// file, their variables.
const REPORT: &str = "cat build/order build/greeting > seen.txt 2>&1; \
                      echo \"[$PROJECT_MODE] [$TOOLS_PATH]\" >> seen.txt; \
                      cat /etc/greeting >> seen.txt 2>&1; true";

/// `handoff-repo-<key>`: how the engine names the repository's own images (the git
/// hash of its git directory's canonical path), computed here independently.
fn image_namespace(repo: &Repo) -> String {
    let git_dir = repo.git_dir().canonicalize().unwrap();
    let out = Command::new("sh")
        .args(["-c", "printf %s \"$1\" | git hash-object --stdin", "sh"])
        .arg(&git_dir)
        .output()
        .unwrap();
    format!(
        "handoff-repo-{}",
        &String::from_utf8_lossy(&out.stdout)[..10]
    )
}

fn images_named(prefix: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(String::from)
        .collect()
}

/// Removes the images of the repository's namespace when the test ends, whatever its
/// outcome (every test repository has its own).
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let images = images_named(&format!("{}/", self.0));
        if !images.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "--force"])
                .args(&images)
                .output();
        }
    }
}

fn built_tag(repo: &Repo, profile: &str) -> String {
    let out = repo.handoff(&["image", "build", profile]);
    assert!(
        out.status.success(),
        "handoff image build {profile} failed:\n{}",
        stderr(&out)
    );
    stdout(&out).trim().to_string()
}

#[test]
fn a_trusted_dev_container_is_where_the_agent_works_after_its_setup() {
    let files = project_files();
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let repo = repo_with(&files, "");
    let namespace = image_namespace(&repo);
    let _cleanup = Cleanup(namespace.clone());

    let out = repo.handoff(&["trust"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(
        said.contains(".devcontainer/devcontainer.json")
            && said.contains("handoff image build PROFILE"),
        "{said}"
    );

    // Their Dockerfile, then the layer for the shell agent, both in the repository's
    // own namespace.
    let tag = built_tag(&repo, "shell");
    assert!(
        tag.starts_with(&format!("{namespace}/devcontainer-shell:")),
        "{tag}"
    );
    assert!(
        images_named(&format!("{namespace}/devcontainer:")).len() >= 2,
        "their build, by its inputs and by its definition: {:?}",
        images_named(&namespace)
    );
    // Unchanged inputs: nothing is built again.
    let again = repo.handoff(&["image", "build", "shell"]);
    assert_eq!(stdout(&again).trim(), tag);
    assert!(stderr(&again).contains("up to date"), "{}", stderr(&again));

    let task = repo.run_wait(REPORT);
    assert_eq!(task["state"], "done", "{task:#}");
    assert!(
        task["image"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{namespace}/devcontainer-shell:")),
        "{task:#}"
    );
    let branch = task["branch"].as_str().unwrap();
    let seen = String::from_utf8(repo.show_bytes(branch, "seen.txt")).unwrap();
    assert_eq!(
        seen,
        "one\ntwo\nthree\nfour\nhello from their build\n\
         [devcontainer] [/usr/bin:/bin:/opt/tools]\nhello from their build\n",
        "the setup ran in order in their image, and the agent has their variables"
    );
    // The agent's change is on the branch; what the setup made (ignored) is not.
    assert_eq!(
        files_on(&repo, branch),
        [
            ".devcontainer/Dockerfile",
            ".devcontainer/devcontainer.json",
            ".gitignore",
            "a.txt",
            "seen.txt"
        ]
    );

    // A changed dev container asks for trust again, and then for a new image: the old
    // one is never run for the new definition.
    repo.write(
        ".devcontainer/devcontainer.json",
        &files[0].1.replace("\"devcontainer\"", "\"changed\""),
    );
    repo.git(&["commit", "-qam", "change the dev container"]);
    let status = repo.handoff(&["trust", "--status"]);
    assert!(!status.status.success());
    assert!(
        stdout(&status).contains(".devcontainer/devcontainer.json"),
        "{}",
        stdout(&status)
    );
    repo.trust();
    let task = repo.run_wait(REPORT);
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = task["error"].as_str().unwrap();
    assert!(
        error.contains("is not in the Docker engine") && error.contains("handoff image build"),
        "{error}"
    );
    built_tag(&repo, "shell");
    let task = repo.run_wait(REPORT);
    assert_eq!(task["state"], "done", "{task:#}");
    let seen =
        String::from_utf8(repo.show_bytes(task["branch"].as_str().unwrap(), "seen.txt")).unwrap();
    assert!(seen.contains("[changed]"), "{seen}");
}

#[test]
fn an_untrusted_dev_container_is_ignored_and_nothing_of_it_runs() {
    let files = project_files();
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    // The user's own shell profile, so that a task can run at all.
    let repo = repo_with(&files, &format!("image = \"{}\"", image()));
    let namespace = image_namespace(&repo);
    let _cleanup = Cleanup(namespace.clone());

    let out = repo.handoff(&["run", "--wait", "--json", REPORT]);
    let said = stderr(&out);
    assert!(
        said.contains(".devcontainer/devcontainer.json is not trusted")
            && said.contains("`handoff trust`"),
        "{said}"
    );
    let task: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(task["state"], "done", "{task:#}");
    let seen =
        String::from_utf8(repo.show_bytes(task["branch"].as_str().unwrap(), "seen.txt")).unwrap();
    assert!(
        !seen.contains("hello") && seen.contains("[] ["),
        "nothing of the dev container reached the agent: {seen}"
    );

    let status = repo.handoff(&["trust", "--status"]);
    assert!(!status.status.success());
    assert!(
        stdout(&status).contains(".devcontainer/devcontainer.json (its image, build"),
        "{}",
        stdout(&status)
    );
    // Their Dockerfile is not built: the shell profile has the user's image.
    let out = repo.handoff(&["image", "build", "shell"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not trusted"), "{}", stderr(&out));
    assert_eq!(images_named(&namespace), Vec::<String>::new());
}

#[test]
fn the_agents_cli_is_layered_on_their_image_or_refused_saying_what_it_lacks() {
    // Their image as it is, by name: the offline test image (busybox, git's glibc, no
    // bash).
    let json = format!(
        "{{\"image\": \"{}\", \"containerEnv\": {{\"PROJECT_MODE\": \"devcontainer\"}}}}",
        image()
    );
    let repo = repo_with(&[(".devcontainer.json", &json), ("a.txt", "a\n")], "");
    repo.trust();
    let namespace = image_namespace(&repo);
    let _cleanup = Cleanup(namespace.clone());

    // Codex's static binary runs anywhere: its CLI from Handoff's codex image (built
    // here from the npm cache, or the registry the first time) on their image.
    let tag = built_tag(&repo, "codex");
    assert!(
        tag.starts_with(&format!("{namespace}/devcontainer-codex:")),
        "{tag}"
    );
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", "none", "--user", "4321:4321"])
        .args(["--entrypoint", "", &tag, "sh", "-c"])
        .arg("codex --version && echo \"$PROJECT_MODE\" && cat /etc/passwd | head -n 1")
        .output()
        .unwrap();
    let said = stdout(&out);
    assert!(out.status.success(), "{said}{}", stderr(&out));
    assert!(
        said.contains("0.169.0") && said.contains("devcontainer\nroot:x:0:0"),
        "their image with the CLI and their variables: {said}"
    );

    // Claude Code needs bash, which their image lacks: said before any task runs.
    let out = repo.handoff(&["image", "build", "claude"]);
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains(&format!(
            "agent `claude` cannot run in the dev container's image {}",
            image()
        )) && said.contains("it has no bash, which Claude Code runs every command with")
            && said.contains("[agents.claude]"),
        "{said}"
    );
}
