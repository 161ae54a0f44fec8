//! Tasks on a remote Docker engine: a second `dockerd` of the test's own, in its own
//! network namespace, listening on tcp + TLS (`--tlsverify`, certificates made by the
//! test with openssl), reached only through `[engine]` or the `DOCKER_*` variables.
//! Nothing is shared with it but the Engine API: the workspace is shipped in and the
//! result brought back as archives (`docs/engines.md`).
//!
//! Runs as root (namespaces); every address is 127.0.0.1 inside a namespace the test
//! made, and the agents have network `none`.

mod common;

use std::path::Path;

use common::engine::PrivateEngine;
use common::{changed_files, containers_of, stderr, Repo};
use serde_json::Value;

fn state(t: &Value) -> &str {
    t["state"].as_str().unwrap_or("?")
}

/// The user's configuration (the front-end's own, never the repository's) pointing
/// at the engine's TLS listener, with `more` keys of `[engine]`.
fn point_at(engine: &PrivateEngine, repo: &Repo, certs: &Path, more: &str) {
    let dir = repo.config_home().join("handoff");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[engine]\nhost = \"{}\"\ncert_dir = \"{}\"\n{more}",
            engine.tls_host(),
            certs.display()
        ),
    )
    .unwrap();
    repo.give_to_test_user();
}

/// Base images no container uses go at once (rather than after an hour).
const KEEP_NO_BASES: &str = "keep_base_images = \"0s\"\n";

fn run_json(engine: &PrivateEngine, repo: &Repo, args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = engine.handoff_env(repo, args, env);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "handoff {args:?} printed no JSON ({e}):\n{}\nengine log:\n{}",
            stderr(&out),
            engine.log()
        )
    })
}

/// Images Handoff made on the engine (the shared bases of shipped workspaces), as
/// `name:tag id`.
fn base_images(engine: &PrivateEngine) -> Vec<String> {
    let out = engine.docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let mut images: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.trim_start_matches("localhost/")
                .starts_with("handoff-base/")
        })
        .map(str::to_owned)
        .collect();
    images.sort();
    images
}

/// The remote-engine story on `engine`, in `repo` (files `a.txt` with an uncommitted
/// line, `old.txt`, `src/k.txt`): a task's edits, new folder and deletion come back
/// as a branch; a follow-up continues it with the HOME the first turn left; a failing
/// agent keeps what it wrote.
fn branches_failed_work_and_follow_ups(engine: &PrivateEngine, repo: &Repo, env: &[(&str, &str)]) {
    let elsewhere = env;
    // A task: edits, a new file in a new folder, a deletion; HOME kept for later.
    let t = run_json(
        engine,
        repo,
        &[
            "run",
            "--wait",
            "--json",
            "sed -i s/two/TWO/ a.txt && mkdir -p new && echo made > new/n.txt && rm old.txt \
             && echo remembered > $HOME/note",
        ],
        elsewhere,
    );
    assert_eq!(state(&t), "done", "{t:#}\n{}", engine.log());
    let branch = t["branch"].as_str().unwrap().to_string();
    assert_eq!(
        repo.show_bytes(&branch, "a.txt"),
        b"one\nTWO\nuncommitted\n"
    );
    assert_eq!(repo.show_bytes(&branch, "new/n.txt"), b"made\n");
    assert_eq!(changed_files(&t), ["a.txt", "new/n.txt", "old.txt"]);
    let files = repo.git(&["ls-tree", "-r", "--name-only", &branch]);
    assert!(!files.contains("old.txt"), "{files}");
    assert!(files.contains("src/k.txt"), "{files}");

    // A follow-up continues the branch, with the HOME the first turn left.
    let t = run_json(
        engine,
        repo,
        &[
            "reply",
            "1",
            "--wait",
            "--json",
            "cat $HOME/note > recalled.txt",
        ],
        elsewhere,
    );
    assert_eq!(state(&t), "done", "{t:#}");
    assert_eq!(t["turns"].as_array().unwrap().len(), 2);
    assert_eq!(repo.show_bytes(&branch, "recalled.txt"), b"remembered\n");
    assert_eq!(repo.show_bytes(&branch, "new/n.txt"), b"made\n");
    let range = format!("{}..{branch}", t["base_commit"].as_str().unwrap());
    assert_eq!(repo.git(&["rev-list", "--count", &range]).trim(), "2");

    // A failing agent keeps what it wrote, and the task says how it ended.
    let t = run_json(
        engine,
        repo,
        &["run", "--wait", "--json", "echo partial > half.txt; exit 3"],
        elsewhere,
    );
    assert_eq!(state(&t), "failed", "{t:#}");
    assert!(
        t["error"].as_str().unwrap().contains("exited with code 3"),
        "{t:#}"
    );
    assert_eq!(
        repo.show_bytes(t["branch"].as_str().unwrap(), "half.txt"),
        b"partial\n"
    );
}

/// A repository for [`branches_failed_work_and_follow_ups`].
fn story_repo() -> Repo {
    let repo = Repo::new(
        &[
            ("a.txt", "one\ntwo\n"),
            ("old.txt", "going\n"),
            ("src/k.txt", "k\n"),
        ],
        "",
    );
    repo.write("a.txt", "one\ntwo\nuncommitted\n");
    repo
}

#[test]
fn tasks_on_a_tls_engine_come_back_as_branches_keep_failed_work_and_take_follow_ups() {
    let engine = PrivateEngine::start_with_tls();
    let repo = story_repo();
    point_at(&engine, &repo, &engine.client_certs(), "");
    // The configuration wins over DOCKER_HOST, which names nothing here.
    let elsewhere = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];

    branches_failed_work_and_follow_ups(&engine, &repo, &elsewhere);

    // The base image of the commit stays a while once no container uses it: the next
    // task on that commit starts from it rather than loading the checkout again.
    let kept = base_images(&engine);
    assert!(!kept.is_empty(), "the base image of the commit is kept");
    let t = run_json(
        &engine,
        &repo,
        &["run", "--wait", "--json", "echo later > later.txt"],
        &elsewhere,
    );
    assert_eq!(state(&t), "done", "{t:#}");
    assert_eq!(
        repo.show_bytes(t["branch"].as_str().unwrap(), "later.txt"),
        b"later\n"
    );
    assert_eq!(
        base_images(&engine),
        kept,
        "the same base image, not made again"
    );

    // Told to keep none, the next removal takes every base image no container uses.
    point_at(&engine, &repo, &engine.client_certs(), KEEP_NO_BASES);
    let t = run_json(
        &engine,
        &repo,
        &["run", "--wait", "--json", "true"],
        &elsewhere,
    );
    assert_eq!(state(&t), "done", "{t:#}");

    // Nothing left behind: no container, volume or base image on the engine, and
    // nothing ever ran on the machine's own engine.
    assert!(engine.containers().is_empty(), "{:?}", engine.containers());
    assert!(engine.volumes().is_empty(), "{:?}", engine.volumes());
    assert!(
        base_images(&engine).is_empty(),
        "{:?}",
        base_images(&engine)
    );
    assert!(containers_of(&repo).is_empty());
}

#[test]
fn the_docker_variables_reach_a_tls_engine_and_an_engine_no_known_ca_signed_is_refused() {
    let engine = PrivateEngine::start_with_tls();
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let host = engine.tls_host();
    let handoff = |args: &[&str], certs: &Path| {
        let certs = certs.display().to_string();
        let env = [
            ("DOCKER_HOST", host.as_str()),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", certs.as_str()),
        ];
        engine.handoff_env(&repo, args, &env)
    };

    let out = handoff(
        &["run", "--wait", "--json", "echo hi > hi.txt"],
        &engine.client_certs(),
    );
    let t: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}\n{}", stderr(&out), engine.log()));
    assert_eq!(state(&t), "done", "{t:#}\n{}", engine.log());
    assert_eq!(
        repo.show_bytes(t["branch"].as_str().unwrap(), "hi.txt"),
        b"hi\n"
    );

    // A result larger than the task may hold: what fits comes home, the file that
    // would pass the disk limit stays on the engine, and the task names it.
    let config = repo.config_home().join("handoff");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        "[agents.shell]\ndisk_limit = \"1m\"\n",
    )
    .unwrap();
    repo.give_to_test_user();
    let out = handoff(
        &[
            "run",
            "--wait",
            "--json",
            "echo kept > kept.txt && head -c 3000000 /dev/zero > big.bin",
        ],
        &engine.client_certs(),
    );
    let t: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}\n{}", stderr(&out), engine.log()));
    let warnings = t["warnings"].to_string();
    assert!(
        warnings.contains("big.bin") && warnings.contains("disk limit"),
        "{t:#}"
    );
    let branch = t["branch"].as_str().unwrap();
    assert_eq!(repo.show_bytes(branch, "kept.txt"), b"kept\n");
    let files = repo.git(&["ls-tree", "-r", "--name-only", branch]);
    assert!(!files.contains("big.bin"), "{files}");
    std::fs::remove_file(config.join("config.toml")).unwrap();

    // Certificates of another CA: the engine's is not trusted, the user is told
    // which engine could not be reached, and the task waits.
    let stranger = engine.stranger_certs();
    let out = handoff(&["run", "echo no > no.txt"], &stranger);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&host), "{err}");
    let out = handoff(&["list", "--json"], &stranger);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let second = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == 3)
        .unwrap_or_else(|| panic!("{listed:#}"));
    assert_eq!(state(second), "queued", "{listed:#}");

    // A certificate folder without the files names the missing one.
    let empty = tempfile::tempdir().unwrap();
    let out = handoff(&["run", "echo no > no.txt"], empty.path());
    assert!(!out.status.success());
    let err = stderr(&out);
    let missing = empty.path().join("ca.pem");
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("DOCKER_CERT_PATH"),
        "{err}"
    );
}

/// An image of one static file, `/busybox` (no `/bin/sh`, no tar, no git), made from
/// a tar stream by `import` (given the tag), for the agent `bare` of a repository in
/// which `run` runs handoff: the workspace arrives, a file the snapshot deleted is
/// gone, the work comes back.
fn bare_image_story(
    import: &dyn Fn(&Path, &str) -> std::process::Output,
    run: &dyn Fn(&Repo, &[&str]) -> std::process::Output,
    user_config: &str,
) -> Repo {
    let tag = format!("handoff-test-bare:{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox")).unwrap();
    let import = import(dir.path(), &tag);
    assert!(import.status.success(), "{}", stderr(&import));

    let repo = Repo::new(
        &[("a.txt", "a\n"), ("gone.txt", "g\n")],
        &format!(
            "[agents.bare]\nimage = \"{tag}\"\ncommand = [\"/busybox\", \"sh\", \"-c\", \"{{prompt}}\"]\n"
        ),
    );
    // An uncommitted deletion: the start layer deletes a file of the base, which is
    // done in the container before the agent runs.
    std::fs::remove_file(repo.path().join("gone.txt")).unwrap();
    let config = repo.config_home().join("handoff");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), user_config).unwrap();
    repo.give_to_test_user();

    let out = run(
        &repo,
        &[
            "run",
            "--agent",
            "bare",
            "--wait",
            "--json",
            "/busybox ls /workspace > seen.txt && echo made > new.txt",
        ],
    );
    let t: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", stderr(&out)));
    assert_eq!(state(&t), "done", "{t:#}");
    let branch = t["branch"].as_str().unwrap();
    let seen = String::from_utf8(repo.show_bytes(branch, "seen.txt")).unwrap();
    assert!(
        seen.contains("a.txt") && !seen.contains("gone.txt"),
        "{seen}"
    );
    assert_eq!(repo.show_bytes(branch, "new.txt"), b"made\n");
    repo
}

#[test]
fn an_image_with_no_shell_git_or_tar_gets_its_workspace_and_gives_its_work_back() {
    struct RemoveImage(String);
    impl Drop for RemoveImage {
        fn drop(&mut self) {
            let _ = std::process::Command::new("docker")
                .args(["rmi", "-f", &self.0])
                .output();
        }
    }
    let _image = RemoveImage(format!("handoff-test-bare:{}", std::process::id()));
    let import = |dir: &Path, tag: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C {} -c busybox | docker import - {tag}",
                dir.display()
            ))
            .output()
            .unwrap()
    };
    let repo = bare_image_story(
        &import,
        &|repo, args| repo.handoff(args),
        "[engine]\nworkspace = \"shipped\"\n",
    );
    assert!(containers_of(&repo).is_empty());
}

#[test]
fn podman_runs_the_remote_engine_stories_through_its_docker_api() {
    let engine = PrivateEngine::start_podman();

    // Branches, follow-ups and failed work, with the workspace shipped (Podman shares
    // no overlay volumes with us) and nothing said about Podman in any configuration.
    let repo = story_repo();
    repo.give_to_test_user();
    branches_failed_work_and_follow_ups(&engine, &repo, &[]);

    // An image with no shell, git or tar.
    let import = |dir: &Path, tag: &str| {
        let tar = dir.join("image.tar");
        let made = std::process::Command::new("tar")
            .arg("-C")
            .arg(dir)
            .arg("-cf")
            .arg(&tar)
            .arg("busybox")
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", stderr(&made));
        engine.podman(&["import", tar.to_str().unwrap(), tag])
    };
    bare_image_story(
        &import,
        &|repo, args| engine.handoff(repo, args),
        &format!("[engine]\n{KEEP_NO_BASES}"),
    );

    assert!(engine.containers().is_empty(), "{:?}", engine.containers());
    assert!(engine.volumes().is_empty(), "{:?}", engine.volumes());
    assert!(
        base_images(&engine).is_empty(),
        "{:?}",
        base_images(&engine)
    );
}

#[test]
fn tasks_run_on_an_engine_reached_over_ssh_by_alias_or_by_user_host_and_port() {
    let engine = PrivateEngine::start();
    let ssh = engine.start_sshd();
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let config = repo.config_home().join("handoff");
    std::fs::create_dir_all(&config).unwrap();
    // An alias of the user's ssh configuration, and the form bollard's own ssh
    // transport cannot parse (a port).
    let hosts = [
        "ssh://engine".to_string(),
        format!("ssh://root@127.0.0.1:{}", common::engine::SSH_PORT),
    ];
    for (n, host) in hosts.iter().enumerate() {
        std::fs::write(
            config.join("config.toml"),
            format!(
                "[engine]\nhost = \"{host}\"\nssh_config = \"{}\"\n{KEEP_NO_BASES}",
                ssh.config.display()
            ),
        )
        .unwrap();
        repo.give_to_test_user();
        let t = run_json(
            &engine,
            &repo,
            &[
                "run",
                "--wait",
                "--json",
                &format!("echo {n} > over-ssh.txt"),
            ],
            &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        );
        assert_eq!(state(&t), "done", "{host}: {t:#}\n{}", ssh.log());
        assert_eq!(
            repo.show_bytes(t["branch"].as_str().unwrap(), "over-ssh.txt"),
            format!("{n}\n").as_bytes()
        );
    }
    assert!(engine.containers().is_empty(), "{:?}", engine.containers());
    assert!(
        base_images(&engine).is_empty(),
        "{:?}",
        base_images(&engine)
    );
}

#[test]
fn a_task_keeps_the_image_id_it_started_with_when_its_tag_moves_on_a_tls_engine() {
    let engine = PrivateEngine::start_with_tls();
    let tag = format!("handoff-test-moving:{}", std::process::id());
    let docker = |args: &[&str]| {
        let out = engine.docker(args);
        assert!(out.status.success(), "docker {args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // Images A and B: the test image with a file /a, and with /a and /marker.
    let commit = |script: &str| {
        let maker = docker(&[
            "create",
            "--network",
            "none",
            common::image(),
            "sh",
            "-c",
            script,
        ]);
        docker(&["start", "-a", &maker]);
        let id = docker(&["commit", &maker]);
        docker(&["rm", &maker]);
        id
    };
    let a = commit("echo A > /a");
    let b = commit("echo A > /a && echo B > /marker");
    docker(&["tag", &a, &tag]);
    assert_ne!(a, b);

    let repo = Repo::new(
        &[("a.txt", "a\n")],
        &format!(
            "[agents.moving]\nimage = \"{tag}\"\ncommand = [\"sh\", \"-c\", \"{{prompt}}\"]\n"
        ),
    );
    point_at(&engine, &repo, &engine.client_certs(), KEEP_NO_BASES);
    let which = "if test -e /marker; then echo B; else echo A; fi >";
    let run = |args: &[&str]| run_json(&engine, &repo, args, &[]);

    let t = run(&[
        "run",
        "--agent",
        "moving",
        "--wait",
        "--json",
        &format!("{which} first.txt"),
    ]);
    assert_eq!(state(&t), "done", "{t:#}\n{}", engine.log());
    assert_eq!(t["image_id"], a, "{t:#}");
    assert_eq!(t["image"], tag.as_str(), "{t:#}");

    // The tag moves to B (a rebuild, a load): the task's follow-up still runs in A.
    docker(&["tag", &b, &tag]);
    let t = run(&[
        "reply",
        "1",
        "--wait",
        "--json",
        &format!("{which} second.txt"),
    ]);
    assert_eq!(state(&t), "done", "{t:#}");
    let branch = t["branch"].as_str().unwrap();
    assert_eq!(repo.show_bytes(branch, "first.txt"), b"A\n");
    assert_eq!(repo.show_bytes(branch, "second.txt"), b"A\n");
    assert_eq!(t["image_id"], a, "{t:#}");

    // A new task finds the tag where it is now.
    let t = run(&[
        "run",
        "--agent",
        "moving",
        "--wait",
        "--json",
        &format!("{which} third.txt"),
    ]);
    assert_eq!(state(&t), "done", "{t:#}");
    assert_eq!(t["image_id"], b, "{t:#}");
    assert_eq!(
        repo.show_bytes(t["branch"].as_str().unwrap(), "third.txt"),
        b"B\n"
    );

    // Image A without a tag is gone: task 1's next turn says which image it needs
    // rather than running in B.
    docker(&["rmi", &a]);
    let out = engine.handoff(&repo, &["reply", "1", "--wait", "--json", "true"]);
    let t: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", stderr(&out)));
    let said = format!("{}{t}", stderr(&out));
    assert!(said.contains(&a) && said.contains(&tag), "{said}");
    assert!(engine.containers().is_empty(), "{:?}", engine.containers());
}

#[test]
fn handoff_image_build_builds_on_the_tls_engine_and_its_tasks_run_that_image() {
    let engine = PrivateEngine::start_with_tls();
    let repo = Repo::new(
        &[],
        &format!(
            "[agents.busy]\nimage = \"{}\"\ncommand = [\"sh\", \"-c\", \"{{prompt}}\"]\n",
            common::image()
        ),
    );
    // A file unique to this run: no build of an earlier run can be reused.
    let nonce = format!("{:?}", std::time::SystemTime::now());
    repo.write(".handoff/nonce.txt", &nonce);
    repo.write(
        ".handoff/Dockerfile",
        &format!(
            "FROM {}\nCOPY nonce.txt /nonce.txt\nRUN echo built-remotely > /built.txt\n",
            common::image()
        ),
    );
    repo.trust();
    point_at(&engine, &repo, &engine.client_certs(), "");

    let out = engine.handoff(&repo, &["image", "build", "busy", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let built: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tag = built["tag"].as_str().unwrap();
    let id = built["id"].as_str().unwrap();
    // Built by the engine the configuration names, not by this machine's.
    let there = engine.docker(&["image", "inspect", "--format", "{{.Id}}", tag]);
    assert_eq!(String::from_utf8_lossy(&there.stdout).trim(), id);
    let here = std::process::Command::new("docker")
        .args(["image", "inspect", tag])
        .output()
        .unwrap();
    assert!(!here.status.success(), "{tag} is on the machine's engine");

    let t = run_json(
        &engine,
        &repo,
        &[
            "run",
            "--agent",
            "busy",
            "--wait",
            "--json",
            "cat /built.txt /nonce.txt > seen.txt",
        ],
        &[],
    );
    assert_eq!(state(&t), "done", "{t:#}\n{}", engine.log());
    assert_eq!(t["image_id"], id, "{t:#}");
    assert_eq!(
        repo.show_bytes(t["branch"].as_str().unwrap(), "seen.txt"),
        format!("built-remotely\n{nonce}").as_bytes()
    );
}
