//! What one turn becomes on Kubernetes: a Secret with the agent's environment, and a
//! Job whose one pod receives the workspace, runs the agent, and keeps the workspace
//! until Handoff has collected it.
//!
//! The pod has no shared disk with Handoff, so its folders are `emptyDir` volumes.
//! The agent's image needs nothing of its own (no shell, tar or git: a distroless
//! image runs): Handoff's steps in the pod run from the *tools image*, which holds a
//! static busybox at `/bin/busybox` (`tools_image` of `[engine]`).
//!
//! - init container `tools` (the tools image) puts a copy of that busybox in the
//!   `tools` volume;
//! - init container `receive` (the agent's image, so that a missing one is found
//!   before anything is sent) waits, under that copy's `sh`, until Handoff has
//!   streamed the workspace archive in through `exec` and unpacked it;
//! - container `workspace` (the tools image) only keeps the pod alive after the agent
//!   ends, so its volumes can still be read through `exec` (exec needs a running
//!   container);
//! - container `agent` (the agent's image) runs the agent's argv under the copied
//!   busybox's `sh`, which forwards a TERM (how `stop` reaches it: Kubernetes cannot
//!   stop one container of a pod). The `tools` volume is read-only there: the agent
//!   cannot change what Handoff later runs in its container.
//!
//! Every container runs as the agent's uid, non-root, with every capability dropped,
//! no privilege escalation and no service-account token. Pure: builds objects, talks
//! to nobody.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::ByteString;
use sha2::{Digest, Sha256};

use crate::agents::CACHE_DIR_IN_SANDBOX;
use crate::sandbox::docker::HOME_IN_SANDBOX;
use crate::sandbox::{SandboxError, SandboxNetwork, SandboxSpec};

/// The container that runs the agent.
pub const AGENT: &str = "agent";
/// The init container the workspace is streamed into.
pub const RECEIVE: &str = "receive";
/// The init container that copies the tools image's busybox for the others.
pub const TOOLS: &str = "tools";
/// The container that keeps the pod's volumes readable after the agent ended.
pub const KEEPER: &str = "workspace";
/// Where Handoff's own files live in the pod (the prompt, the results folder).
pub const RUN_DIR: &str = "/run/handoff";
/// The busybox of the tools image, in the containers that run that image.
pub const TOOLS_BUSYBOX: &str = "/bin/busybox";
/// Where the `tools` volume is, with the copy of [`TOOLS_BUSYBOX`] in it.
const TOOLS_DIR: &str = "/run/handoff-tools";
/// That copy, as the agent's containers see it (read-only).
pub const AGENT_BUSYBOX: &str = "/run/handoff-tools/busybox";
/// Made by the receiving `exec` once the archive is unpacked; ends the init container.
pub const RECEIVED_MARKER: &str = "/run/handoff/.received";
/// The label every object of a turn carries, with the turn's name: how `find` and the
/// clean-up see them.
pub const NAME_LABEL: &str = "handoff.name";
/// The annotation keeping the engine's labels as given (label values are limited to
/// 63 characters of a small alphabet; a repository path is not one).
pub const LABELS_ANNOTATION: &str = "handoff.io/labels";

/// How the agent's argv runs: as a child of a shell that is PID 1 of its container,
/// so that a TERM sent to PID 1 (by `exec kill -TERM 1`) reaches the agent, and the
/// container's exit status is the agent's.
///
/// That shell is busybox's, which runs its own applet for a bare command name that
/// is one (`sh`, `sed`, …) before looking at `PATH`. The agent's command is looked up
/// in `PATH` here instead, so that it runs the image's program as a Docker engine
/// would, and fails the same way when the image has none.
const AGENT_WRAPPER: &str = r#"cmd=$1
shift
case $cmd in
*/*) ;;
*)
  found=
  set -f
  old_ifs=$IFS
  IFS=:
  for d in ${PATH-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}; do
    [ -n "$d" ] || d=.
    if [ -f "$d/$cmd" ] && [ -x "$d/$cmd" ]; then found=$d/$cmd; break; fi
  done
  IFS=$old_ifs
  set +f
  if [ -z "$found" ]; then
    echo "handoff: $cmd: not found in PATH of the agent's image" >&2
    exit 127
  fi
  cmd=$found
  ;;
esac
"$cmd" "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM
wait "$pid"
code=$?
while kill -0 "$pid" 2>/dev/null; do wait "$pid"; code=$?; done
exit "$code"
"#;

/// The receiving init container: waits for the archive (at most an hour: a
/// front-end that died before sending it leaves nothing running for ever). Neither
/// image need hold more than a busybox, so every command is named through it.
const RECEIVE_WAIT: &str = r#"i=0
while [ ! -e /run/handoff/.received ]; do
  i=$((i + 1)); [ "$i" -lt 18000 ] || exit 124
  /run/handoff-tools/busybox sleep 0.2
done
"#;

/// The keeper: idles until the pod is deleted.
const KEEP: &str = "trap 'exit 0' TERM; while :; do /bin/busybox sleep 1 & wait $!; done";

/// A label value made of `value`: itself when Kubernetes accepts it, else a hash.
pub fn label_value(value: &str) -> String {
    let valid = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric();
    if valid {
        return value.to_string();
    }
    let digest = Sha256::digest(value.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("h-{hex}")
}

/// The labels of every object of the turn: the engine's (as label values) and
/// [`NAME_LABEL`].
pub fn labels(spec: &SandboxSpec) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), label_value(v)))
        .collect();
    labels.insert(NAME_LABEL.to_string(), spec.name.clone());
    labels
}

/// Whether `name` can name a Job, a Secret and a label value (DNS-1123, ≤ 63).
fn check_name(name: &str) -> Result<(), SandboxError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(SandboxError::Cluster(format!(
            "`{name}` cannot name a Kubernetes Job (lowercase letters, digits and `-`, at most 63)"
        )))
    }
}

/// `cpus` as a Kubernetes quantity, in millicores.
fn cpu_quantity(cpus: f64) -> String {
    format!("{}m", (cpus * 1000.0).round().max(1.0) as i64)
}

/// The Secret holding the agent's environment (API keys among it): the Job spec names
/// it and holds no value.
pub fn secret(spec: &SandboxSpec) -> Result<Secret, SandboxError> {
    check_name(&spec.name)?;
    let data: BTreeMap<String, ByteString> = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec())))
        .collect();
    let value = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": spec.name,
            "labels": labels(spec),
            "annotations": { LABELS_ANNOTATION: serde_json::to_string(&spec.labels).unwrap_or_default() },
        },
        "type": "Opaque",
    });
    let mut secret: Secret = serde_json::from_value(value)
        .map_err(|e| SandboxError::Cluster(format!("building the Secret: {e}")))?;
    secret.data = Some(data);
    Ok(secret)
}

/// For `network = "none"`, the turn's NetworkPolicy: its pod (by [`NAME_LABEL`]) may
/// neither reach nor be reached by anything. Enforced by the cluster's network plugin;
/// a cluster whose plugin ignores NetworkPolicy leaves the pod on the pod network
/// (docs/engines.md). `None` for `bridge`, which is the pod network as it is.
pub fn network_policy(spec: &SandboxSpec) -> Result<Option<NetworkPolicy>, SandboxError> {
    check_name(&spec.name)?;
    if spec.network != SandboxNetwork::None {
        return Ok(None);
    }
    let value = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "name": spec.name, "labels": labels(spec) },
        "spec": {
            "podSelector": { "matchLabels": { NAME_LABEL: spec.name } },
            // Both kinds named and no rule given: nothing in, nothing out.
            "policyTypes": ["Ingress", "Egress"],
        },
    });
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| SandboxError::Cluster(format!("building the NetworkPolicy: {e}")))
}

/// The Job of the turn. Its pod takes the agent's environment from [`secret`];
/// Handoff's own containers run `tools_image`.
pub fn job(spec: &SandboxSpec, tools_image: &str) -> Result<Job, SandboxError> {
    check_name(&spec.name)?;
    match &spec.network {
        SandboxNetwork::None | SandboxNetwork::Bridge => {}
        SandboxNetwork::Host => {
            return Err(SandboxError::Cluster(
                "network = \"host\" is not offered on Kubernetes (a pod on the node's \
                 network would reach everything the node reaches); use \"none\" or \"bridge\""
                    .into(),
            ))
        }
        SandboxNetwork::Egress(_) => {
            return Err(SandboxError::Cluster(
                "network = \"egress\" (the allowlist proxy) is not available on Kubernetes \
                 yet; use \"none\", or \"bridge\" with a NetworkPolicy of your cluster"
                    .into(),
            ))
        }
    }
    if spec.uid == 0 {
        return Err(SandboxError::Cluster(
            "Kubernetes runs agents as a non-root user, and this agent's uid is 0".into(),
        ));
    }
    let labels = labels(spec);
    let mut resources = serde_json::Map::new();
    let mut limits = serde_json::Map::new();
    if let Some(bytes) = spec.memory_bytes {
        limits.insert("memory".into(), bytes.to_string().into());
    }
    if let Some(cpus) = spec.cpus {
        limits.insert("cpu".into(), cpu_quantity(cpus).into());
    }
    if !limits.is_empty() {
        // Requests equal to limits: the scheduler places the agent where what it may
        // use is free.
        resources.insert("requests".into(), limits.clone().into());
        resources.insert("limits".into(), limits.into());
    }
    // The idle containers need little; bounded so they cannot be used to get more.
    let small = serde_json::json!({
        "requests": { "memory": "16Mi", "cpu": "10m" },
        "limits": { "memory": "256Mi", "cpu": "500m" },
    });
    let security = serde_json::json!({
        "runAsUser": spec.uid,
        "runAsGroup": spec.gid,
        "runAsNonRoot": true,
        "allowPrivilegeEscalation": false,
        "privileged": false,
        "capabilities": { "drop": ["ALL"] },
        "seccompProfile": { "type": "RuntimeDefault" },
    });
    let mut mounts = vec![
        serde_json::json!({ "name": "workspace", "mountPath": "/workspace" }),
        serde_json::json!({ "name": "home", "mountPath": HOME_IN_SANDBOX }),
        serde_json::json!({ "name": "run", "mountPath": RUN_DIR }),
        serde_json::json!({ "name": "tmp", "mountPath": "/tmp" }),
    ];
    let mut volumes = vec![
        serde_json::json!({ "name": "workspace", "emptyDir": {} }),
        serde_json::json!({ "name": "home", "emptyDir": {} }),
        serde_json::json!({ "name": "run", "emptyDir": {} }),
        serde_json::json!({ "name": "tmp", "emptyDir": { "medium": "Memory", "sizeLimit": "2Gi" } }),
    ];
    if spec.cache_dir.is_some() {
        volumes.push(serde_json::json!({ "name": "cache", "emptyDir": {} }));
    }
    volumes.push(serde_json::json!({ "name": "tools", "emptyDir": {} }));
    let mut agent_mounts = mounts.clone();
    agent_mounts
        .push(serde_json::json!({ "name": "tools", "mountPath": TOOLS_DIR, "readOnly": true }));
    if spec.cache_dir.is_some() {
        mounts.push(serde_json::json!({ "name": "cache", "mountPath": CACHE_DIR_IN_SANDBOX }));
        agent_mounts.push(serde_json::json!({
            "name": "cache", "mountPath": CACHE_DIR_IN_SANDBOX, "readOnly": spec.cache_read_only,
        }));
    }
    // The archive carries the tool cache too: it is unpacked into its volume.
    let mut receive_mounts = mounts.clone();
    receive_mounts
        .push(serde_json::json!({ "name": "tools", "mountPath": TOOLS_DIR, "readOnly": true }));
    let tools_mounts = serde_json::json!([{ "name": "tools", "mountPath": TOOLS_DIR }]);
    // emptyDir volumes are root's; git refuses a work tree it does not own unless told.
    let env = serde_json::json!([
        { "name": "HOME", "value": HOME_IN_SANDBOX },
        { "name": "GIT_CONFIG_COUNT", "value": "1" },
        { "name": "GIT_CONFIG_KEY_0", "value": "safe.directory" },
        { "name": "GIT_CONFIG_VALUE_0", "value": "/workspace" },
    ]);
    let mut agent_argv = vec![
        AGENT_BUSYBOX.to_string(),
        "sh".to_string(),
        "-c".to_string(),
        AGENT_WRAPPER.to_string(),
        "handoff-agent".to_string(),
    ];
    agent_argv.extend(spec.argv.iter().cloned());
    let value = serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": spec.name,
            "labels": labels,
            "annotations": { LABELS_ANNOTATION: serde_json::to_string(&spec.labels).unwrap_or_default() },
        },
        "spec": {
            "backoffLimit": 0,
            "completions": 1,
            "parallelism": 1,
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "terminationGracePeriodSeconds": 3,
                    "securityContext": {
                        "runAsUser": spec.uid,
                        "runAsGroup": spec.gid,
                        "runAsNonRoot": true,
                        "seccompProfile": { "type": "RuntimeDefault" },
                    },
                    "volumes": volumes,
                    "initContainers": [{
                        "name": TOOLS,
                        "image": tools_image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": [TOOLS_BUSYBOX, "cp", TOOLS_BUSYBOX, AGENT_BUSYBOX],
                        "volumeMounts": tools_mounts,
                        "resources": small,
                        "securityContext": security,
                    }, {
                        "name": RECEIVE,
                        "image": spec.image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": [AGENT_BUSYBOX, "sh", "-c", RECEIVE_WAIT],
                        "volumeMounts": receive_mounts,
                        "env": env,
                        "resources": resources,
                        "securityContext": security,
                    }],
                    // The keeper first: the kubelet starts a pod's containers in order,
                    // and an agent that ends at once must still find it (Handoff also
                    // waits for it before collecting).
                    "containers": [
                        {
                            "name": KEEPER,
                            "image": tools_image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": [TOOLS_BUSYBOX, "sh", "-c", KEEP],
                            "volumeMounts": mounts,
                            "env": env,
                            "resources": small,
                            "securityContext": security,
                        },
                        {
                            "name": AGENT,
                            "image": spec.image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": agent_argv,
                            "workingDir": "/workspace",
                            "volumeMounts": agent_mounts,
                            "env": env,
                            "envFrom": [{ "secretRef": { "name": spec.name } }],
                            "resources": resources,
                            "securityContext": security,
                        },
                    ],
                },
            },
        },
    });
    serde_json::from_value(value)
        .map_err(|e| SandboxError::Cluster(format!("building the Job: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::OverlaySpec;
    use std::path::PathBuf;

    const TOOLS_IMAGE: &str = "registry.example.com/busybox:1.36";

    fn spec() -> SandboxSpec {
        SandboxSpec {
            name: "handoff-0123456789-7-t2".into(),
            image: "agent:1".into(),
            argv: vec!["claude".into(), "-p".into(), "fix it".into()],
            env: vec![("ANTHROPIC_API_KEY".into(), "sk-secret".into())],
            labels: BTreeMap::from([
                ("handoff.task".into(), "7".into()),
                ("handoff.repo".into(), "/home/me/src/app/.git".into()),
                ("handoff.agent".into(), "claude".into()),
            ]),
            uid: 1000,
            gid: 1000,
            workspace: OverlaySpec {
                lowers: vec![],
                upper: PathBuf::from("/u"),
                work: PathBuf::from("/w"),
                base_key: None,
            },
            home: PathBuf::from("/h"),
            out_dir: PathBuf::from("/o"),
            cache_dir: None,
            cache_read_only: true,
            prompt_file: PathBuf::from("/p"),
            network: SandboxNetwork::None,
            memory_bytes: Some(512 << 20),
            cpus: Some(1.5),
            pids: None,
        }
    }

    #[test]
    fn label_values_are_kept_when_valid_and_hashed_otherwise() {
        assert_eq!(label_value("claude"), "claude");
        assert_eq!(label_value("7"), "7");
        let hashed = label_value("/home/me/src/app/.git");
        assert!(hashed.starts_with("h-") && hashed.len() == 26, "{hashed}");
        assert_eq!(hashed, label_value("/home/me/src/app/.git"));
        assert_ne!(hashed, label_value("/home/me/src/other/.git"));
    }

    #[test]
    fn the_job_spec_holds_no_secret_and_runs_non_root_with_nothing_extra() {
        let job = job(&spec(), TOOLS_IMAGE).unwrap();
        let text = serde_json::to_string(&job).unwrap();
        assert!(!text.contains("sk-secret"), "{text}");
        let pod = job.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        let containers: Vec<_> = pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
            .collect();
        assert_eq!(containers.len(), 4);
        for c in containers {
            let sc = c.security_context.as_ref().unwrap();
            assert_eq!(sc.run_as_user, Some(1000), "{}", c.name);
            assert_eq!(sc.run_as_non_root, Some(true));
            assert_eq!(sc.allow_privilege_escalation, Some(false));
            assert_eq!(
                sc.capabilities.as_ref().unwrap().drop.as_deref(),
                Some(&["ALL".to_string()][..])
            );
        }
        let agent = pod.containers.iter().find(|c| c.name == AGENT).unwrap();
        let limits = agent.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits["memory"].0, (512u64 << 20).to_string());
        assert_eq!(limits["cpu"].0, "1500m");
        assert_eq!(
            agent.env_from.as_ref().unwrap()[0]
                .secret_ref
                .as_ref()
                .unwrap()
                .name,
            "handoff-0123456789-7-t2"
        );
        assert_eq!(
            &agent.command.as_ref().unwrap()[5..],
            &["claude", "-p", "fix it"]
        );
    }

    /// The wrapper, run by the machine's static busybox as the pod runs it.
    fn wrapped(path: &str, argv: &[&str]) -> std::process::Output {
        std::process::Command::new("/bin/busybox")
            .args(["sh", "-c", AGENT_WRAPPER, "handoff-agent"])
            .args(argv)
            .env_clear()
            .env("PATH", path)
            .output()
            .expect("the tests need /bin/busybox (busybox-static)")
    }

    #[test]
    fn the_agents_command_is_the_images_program_not_a_busybox_applet() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        // An image's own `sed`, and a folder named like a command.
        let sed = bin.join("sed");
        std::fs::write(&sed, "#!/bin/sh\necho \"the image's sed: $*\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sed, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("first")).unwrap();
        std::fs::create_dir(dir.path().join("first/sed")).unwrap();
        let path = format!(
            "{}/first:{}:/usr/bin:/bin",
            dir.path().display(),
            bin.display()
        );
        let out = wrapped(&path, &["sed", "-n", "p"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "the image's sed: -n p\n",
            "{out:?}"
        );
        assert!(out.status.success());

        // A command the image lacks fails as it would on Docker, not as an applet.
        let out = wrapped(&format!("{}", bin.display()), &["tar", "--version"]);
        assert_eq!(out.status.code(), Some(127), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("tar: not found in PATH"));

        // An absolute path runs as it is; the exit status is the agent's, and
        // arguments arrive untouched (no globbing, no splitting).
        let out = wrapped(
            "/nowhere",
            &["/bin/sh", "-c", "echo \"$1|$2\"; exit 7", "x", "* a", "b:c"],
        );
        assert_eq!(out.status.code(), Some(7), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "* a|b:c\n");
    }

    #[test]
    fn only_the_agent_runs_its_image_and_it_gets_the_tools_read_only() {
        let job = job(&spec(), TOOLS_IMAGE).unwrap();
        let pod = job.spec.unwrap().template.spec.unwrap();
        let agent = pod.containers.iter().find(|c| c.name == AGENT).unwrap();
        assert_eq!(agent.image.as_deref(), Some("agent:1"));
        // The agent's image needs no shell: the wrapper is the copied busybox's.
        assert_eq!(agent.command.as_ref().unwrap()[0], AGENT_BUSYBOX);
        let tools = agent
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == "tools")
            .unwrap();
        assert_eq!(tools.read_only, Some(true));
        assert!(AGENT_BUSYBOX.starts_with(&tools.mount_path));
        let all: Vec<_> = pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
            .collect();
        for c in &all {
            let (image, busybox) = match c.name.as_str() {
                AGENT | RECEIVE => ("agent:1", AGENT_BUSYBOX),
                _ => (TOOLS_IMAGE, TOOLS_BUSYBOX),
            };
            assert_eq!(c.image.as_deref(), Some(image), "{}", c.name);
            assert_eq!(c.command.as_ref().unwrap()[0], busybox, "{}", c.name);
            let writes_tools = c
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| m.name == "tools" && m.read_only != Some(true));
            assert_eq!(writes_tools, c.name == TOOLS, "{}", c.name);
        }
        // The tools are copied before the agent's image runs anything.
        let init: Vec<_> = pod
            .init_containers
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(init, [TOOLS, RECEIVE]);
        // The keeper is started first, so an agent that ends at once still finds it.
        assert_eq!(pod.containers[0].name, KEEPER);
    }

    #[test]
    fn every_folder_the_archive_fills_is_a_volume_where_it_is_unpacked_and_read() {
        let mut s = spec();
        s.cache_dir = Some(PathBuf::from("/c"));
        s.cache_read_only = true;
        let job = job(&s, TOOLS_IMAGE).unwrap();
        let pod = job.spec.unwrap().template.spec.unwrap();
        let all: Vec<_> = pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
            .collect();
        let mount = |name: &str, path: &str| {
            let c = all.iter().find(|c| c.name == name).unwrap();
            c.volume_mounts
                .iter()
                .flatten()
                .find(|m| m.mount_path == path)
                .map(|m| m.read_only.unwrap_or(false))
        };
        for path in ["/workspace", HOME_IN_SANDBOX, RUN_DIR, CACHE_DIR_IN_SANDBOX] {
            // Unpacked by `receive`, read back through the keeper: both may write.
            assert_eq!(mount(RECEIVE, path), Some(false), "receive: {path}");
            assert_eq!(mount(KEEPER, path), Some(false), "keeper: {path}");
            assert!(mount(AGENT, path).is_some(), "agent: {path}");
        }
        // The profile's read-only cache is read-only for the agent alone.
        assert_eq!(mount(AGENT, CACHE_DIR_IN_SANDBOX), Some(true));
    }

    #[test]
    fn network_none_is_a_policy_that_lets_the_turns_pod_reach_nothing() {
        let mut s = spec();
        s.network = SandboxNetwork::None;
        let policy = network_policy(&s).unwrap().expect("a policy for none");
        let p = policy.spec.as_ref().unwrap();
        assert_eq!(
            p.policy_types.as_deref(),
            Some(&["Ingress".to_string(), "Egress".to_string()][..])
        );
        assert!(p.ingress.as_ref().is_none_or(|r| r.is_empty()));
        assert!(p.egress.as_ref().is_none_or(|r| r.is_empty()));
        // It selects the Job's pod, and only it.
        let selector = p
            .pod_selector
            .as_ref()
            .unwrap()
            .match_labels
            .clone()
            .unwrap();
        let job = job(&s, TOOLS_IMAGE).unwrap();
        let pod_labels = job.spec.unwrap().template.metadata.unwrap().labels.unwrap();
        assert!(!selector.is_empty());
        for (k, v) in &selector {
            assert_eq!(pod_labels.get(k), Some(v), "{k}");
        }
        assert_eq!(selector.get(NAME_LABEL), Some(&s.name));
        s.network = SandboxNetwork::Bridge;
        assert!(network_policy(&s).unwrap().is_none());
    }

    #[test]
    fn the_secret_holds_the_environment_and_every_object_is_labelled() {
        let secret = secret(&spec()).unwrap();
        assert_eq!(
            secret.data.as_ref().unwrap()["ANTHROPIC_API_KEY"].0,
            b"sk-secret"
        );
        let labels = secret.metadata.labels.unwrap();
        assert_eq!(labels["handoff.task"], "7");
        assert_eq!(labels["handoff.agent"], "claude");
        assert_eq!(labels[NAME_LABEL], "handoff-0123456789-7-t2");
        assert!(labels["handoff.repo"].starts_with("h-"));
        let job = job(&spec(), TOOLS_IMAGE).unwrap();
        assert_eq!(job.metadata.labels.unwrap()["handoff.task"], "7");
        let template = job.spec.unwrap().template.metadata.unwrap();
        assert_eq!(
            template.labels.unwrap()[NAME_LABEL],
            "handoff-0123456789-7-t2"
        );
    }

    #[test]
    fn what_kubernetes_cannot_do_is_refused_in_words() {
        let mut host = spec();
        host.network = SandboxNetwork::Host;
        assert!(job(&host, TOOLS_IMAGE)
            .unwrap_err()
            .to_string()
            .contains("not offered on Kubernetes"));
        let mut bad = spec();
        bad.name = "Handoff_7".into();
        assert!(job(&bad, TOOLS_IMAGE)
            .unwrap_err()
            .to_string()
            .contains("cannot name a Kubernetes Job"));
    }
}
