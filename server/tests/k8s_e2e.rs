//! Tasks on Kubernetes, for real: a single node built from Debian's source package
//! and started by `scripts/k8s-node.sh` (its own dockerd in a network namespace, the
//! apiserver reached on 127.0.0.1 only), and the real `handoff` binary pointed at it
//! by the user's `[engine] kind = "kubernetes"`. Every turn is a Job; the workspace
//! goes in and comes back through `exec` and the shipped-workspace code the remote
//! Docker engines use.
//!
//! One node serves every story here, one after the other (a node takes ~30 s to start
//! and owns machine-wide folders such as /var/log/pods): `kubernetes_on_a_real_node`
//! runs them in order. A node that cannot start fails the test; nothing is skipped.

mod common;
#[path = "common/k8s.rs"]
mod k8s;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{changed_files, handoff_bin, stderr, Repo};
use k8s::OneFileImage;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams, PropagationPolicy};
use serde_json::Value;

/// Where the tests' tasks run (made by the test, so the `namespace` setting is used).
const NAMESPACE: &str = "handoff-e2e";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn state(t: &Value) -> &str {
    t["state"].as_str().unwrap_or("?")
}

/// The node, a runtime to ask it things with, and the namespace of the tasks.
struct Cluster {
    node: k8s::Node,
    rt: tokio::runtime::Runtime,
    /// The image Handoff's own containers of a pod run (`tools_image`): one static
    /// busybox at `/bin/busybox`, nothing else.
    tools: String,
    /// An agent image of one static busybox at `/busybox`: no shell, tar or git.
    bare: String,
}

impl Cluster {
    fn client(&self) -> kube::Client {
        self.rt.block_on(self.node.client())
    }

    /// A repository whose user configuration points Handoff at the node.
    fn repo(&self, files: &[(&str, &str)]) -> Repo {
        self.repo_with(files, "")
    }

    /// [`Self::repo`] with `extra` in its `.handoff.toml` (before the profiles).
    fn repo_with(&self, files: &[(&str, &str)], extra: &str) -> Repo {
        let repo = Repo::new(files, extra);
        repo.write_user_config(&format!(
            "[engine]\nkind = \"kubernetes\"\nkubeconfig = \"{}\"\nnamespace = \"{NAMESPACE}\"\n\
             tools_image = \"{}\"\n",
            self.node.kubeconfig.display(),
            self.tools
        ));
        repo
    }

    /// Names of the Jobs, pods, NetworkPolicies and Secrets in the tasks' namespace.
    fn objects(&self) -> Vec<String> {
        let client = self.client();
        self.rt.block_on(async {
            let lp = ListParams::default();
            let mut names = Vec::new();
            let jobs: Api<Job> = Api::namespaced(client.clone(), NAMESPACE);
            for j in jobs.list(&lp).await.unwrap().items {
                names.push(format!("job/{}", j.metadata.name.unwrap_or_default()));
            }
            let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
            for p in pods.list(&lp).await.unwrap().items {
                names.push(format!("pod/{}", p.metadata.name.unwrap_or_default()));
            }
            let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), NAMESPACE);
            for p in policies.list(&lp).await.unwrap().items {
                names.push(format!(
                    "networkpolicy/{}",
                    p.metadata.name.unwrap_or_default()
                ));
            }
            let secrets: Api<Secret> = Api::namespaced(client, NAMESPACE);
            for s in secrets.list(&lp).await.unwrap().items {
                let name = s.metadata.name.unwrap_or_default();
                // The namespace's own service-account token.
                if !name.starts_with("default-token-") {
                    names.push(format!("secret/{name}"));
                }
            }
            names
        })
    }

    /// Waits until the namespace holds none of the tasks' objects (pods go by
    /// propagation, a little after their Job).
    fn assert_empty(&self, after: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = self.objects();
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "left in {NAMESPACE} after {after}: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

#[test]
fn kubernetes_on_a_real_node() {
    let image = common::image();
    let pid = std::process::id();
    let tools = OneFileImage::new(&format!("handoff-test-tools:k8s-{pid}"), "bin/busybox");
    let bare = OneFileImage::new(&format!("handoff-test-bare:k8s-{pid}"), "busybox");
    let node = k8s::Node::start();
    eprintln!("node started in {:.1}s", node.start_secs);
    node.load(&[image, &tools.0, &bare.0]);
    let cluster = Cluster {
        node,
        rt: runtime(),
        tools: tools.0.clone(),
        bare: bare.0.clone(),
    };
    let clock = Instant::now();
    let step = |name: &str, f: &dyn Fn(&Cluster)| {
        let t = Instant::now();
        f(&cluster);
        eprintln!("{name}: {:.1}s", t.elapsed().as_secs_f64());
    };
    step("a Job runs the test image", &|c| {
        c.rt.block_on(a_job_runs_the_test_agent_image_to_completion(c, image))
    });
    step("namespace", &|c| {
        let namespaces: Api<Namespace> = Api::all(c.client());
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": NAMESPACE }
        }))
        .unwrap();
        c.rt.block_on(namespaces.create(&PostParams::default(), &ns))
            .unwrap();
    });
    step(
        "branches, follow-up, failed agent",
        &tasks_come_back_as_branches_keep_failed_work_and_take_follow_ups,
    );
    step(
        "credential in the Secret only",
        &the_credential_is_in_the_secret_and_nowhere_else,
    );
    step(
        "cancel",
        &cancel_stops_a_running_task_and_keeps_its_partial_work,
    );
    step(
        "front-end killed",
        &a_task_survives_kill_9_of_its_front_end_and_the_next_one_finalizes_it,
    );
    step(
        "agents that end at once",
        &agents_that_end_at_once_all_come_back,
    );
    step(
        "an image with no shell, tar or git",
        &an_image_with_no_shell_tar_or_git_runs_and_gives_its_work_back,
    );
    step(
        "setup and its tool cache",
        &a_setup_fills_the_tool_cache_the_next_task_reads_and_no_agent_can_write,
    );
    step(
        "egress refused",
        &a_profile_that_asks_for_egress_is_refused_in_words,
    );
    // Last: the kubelet lists a node's images in its status only every few seconds.
    step("doctor", &doctor_checks_the_cluster);
    eprintln!("all stories: {:.1}s", clock.elapsed().as_secs_f64());
    // Dropping the node stops it and checks that nothing is left on the machine.
    drop(cluster);
}

async fn a_job_runs_the_test_agent_image_to_completion(c: &Cluster, image: &str) {
    let client = c.node.client().await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "20")
    );
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let job: Job = serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": "hello", "labels": { "handoff.test": "k8s_e2e" } },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": { "labels": { "handoff.test": "k8s_e2e" } },
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": false,
                    "containers": [{
                        "name": "agent",
                        "image": image,
                        "imagePullPolicy": "Never",
                        "command": ["sh", "-c", "echo \"hello from uid $(id -u)\"; git --version"],
                        "securityContext": {
                            "runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": true,
                            "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"] }
                        }
                    }]
                }
            }
        }
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let started = Instant::now();
    loop {
        let status = jobs.get("hello").await.unwrap().status.unwrap_or_default();
        if status.succeeded.unwrap_or(0) >= 1 {
            break;
        }
        assert_eq!(status.failed.unwrap_or(0), 0, "{status:?}");
        assert!(started.elapsed() < Duration::from_secs(120), "{status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = pods
        .list(&ListParams::default().labels("job-name=hello"))
        .await
        .unwrap();
    let pod = listed.items[0].metadata.name.clone().unwrap();
    let logs = pods.logs(&pod, &LogParams::default()).await.unwrap();
    assert!(logs.contains("hello from uid 1000"), "logs: {logs}");
    let propagate = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    jobs.delete("hello", &propagate).await.unwrap();
}

fn doctor_checks_the_cluster(c: &Cluster) {
    let repo = c.repo(&[("a.txt", "a\n")]);
    let out = repo.handoff(&["doctor"]);
    let text = common::stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("[ok  ] Kubernetes 1.20"), "{text}");
    assert!(
        text.contains(&format!("[ok  ] namespace {NAMESPACE} exists")),
        "{text}"
    );
    assert!(text.contains("may run turns in"), "{text}");
    assert!(
        text.contains(&format!("[ok  ] image {} is on a node", common::image())),
        "{text}"
    );
    assert!(
        text.contains(&format!("[ok  ] image {} is on a node", c.tools)),
        "the tools image is checked too: {text}"
    );

    // A namespace that is not there, said with the command that makes it.
    repo.write_user_config(&format!(
        "[engine]\nkind = \"kubernetes\"\nkubeconfig = \"{}\"\nnamespace = \"nowhere\"\n",
        c.node.kubeconfig.display()
    ));
    let out = repo.handoff(&["doctor"]);
    let text = common::stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("namespace nowhere does not exist"), "{text}");
    assert!(text.contains("kubectl create namespace nowhere"), "{text}");
}

fn tasks_come_back_as_branches_keep_failed_work_and_take_follow_ups(c: &Cluster) {
    let repo = c.repo(&[
        ("a.txt", "one\ntwo\n"),
        ("old.txt", "going\n"),
        ("src/k.txt", "k\n"),
    ]);
    repo.write("a.txt", "one\ntwo\nuncommitted\n");

    // A task: edits, a new file in a new folder, a deletion; HOME kept for later.
    let t = repo.run_wait(
        "test \"$(id -u)\" != 0 && sed -i s/two/TWO/ a.txt && mkdir -p new && echo made > new/n.txt \
         && rm old.txt && echo remembered > $HOME/note",
    );
    assert_eq!(state(&t), "done", "{t:#}");
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
    c.assert_empty("a task that is done");

    // A follow-up continues the branch, with the HOME the first turn left.
    let t = repo.json(&[
        "reply",
        "1",
        "--wait",
        "--json",
        "cat $HOME/note > recalled.txt",
    ]);
    assert_eq!(state(&t), "done", "{t:#}");
    assert_eq!(t["turns"].as_array().unwrap().len(), 2);
    assert_eq!(repo.show_bytes(&branch, "recalled.txt"), b"remembered\n");
    assert_eq!(repo.show_bytes(&branch, "new/n.txt"), b"made\n");
    let range = format!("{}..{branch}", t["base_commit"].as_str().unwrap());
    assert_eq!(repo.git(&["rev-list", "--count", &range]).trim(), "2");

    // A failing agent keeps what it wrote, and the task says how it ended.
    let t = repo.run_wait("echo partial > half.txt; echo to the log; exit 3");
    assert_eq!(state(&t), "failed", "{t:#}");
    assert!(
        t["error"].as_str().unwrap().contains("exited with code 3"),
        "{t:#}"
    );
    assert_eq!(
        repo.show_bytes(t["branch"].as_str().unwrap(), "half.txt"),
        b"partial\n"
    );
    let logs = repo.handoff(&["logs", "2"]);
    assert!(common::stdout(&logs).contains("to the log"), "{logs:?}");
    c.assert_empty("a failed task");
}

fn the_credential_is_in_the_secret_and_nowhere_else(c: &Cluster) {
    const VALUE: &str = "sk-handoff-e2e-4f1d9c";
    let repo = c.repo(&[("a.txt", "a\n")]);
    let config = repo.read(".handoff.toml");
    repo.write(
        ".handoff.toml",
        &format!("{config}\nenv = [\"HANDOFF_E2E_KEY\"]\n"),
    );
    repo.git(&["commit", "-qam", "pass a key"]);
    repo.trust();
    let env = [("HANDOFF_E2E_KEY", VALUE)];
    let out = repo.handoff_env(
        &[
            "run",
            "--json",
            // The key is put together here, so that the prompt does not hold it.
            "k=sk-handoff; k=$k-e2e-4f1d9c; test \"$HANDOFF_E2E_KEY\" = \"$k\" && echo has > has.txt; \
             grep -rlF \"$k\" /workspace /home/agent /run/handoff > found.txt; sleep 4",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // While it runs: the Secret holds the key, the Job holds none of it.
    let client = c.client();
    let (secret, job) = c.rt.block_on(async {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
        let jobs: Api<Job> = Api::namespaced(client.clone(), NAMESPACE);
        let job = jobs.list(&ListParams::default()).await.unwrap().items;
        assert_eq!(job.len(), 1, "one Job for the turn");
        let name = job[0].metadata.name.clone().unwrap();
        (secrets.get(&name).await.unwrap(), job[0].clone())
    });
    let data = secret.data.unwrap_or_default();
    assert_eq!(data["HANDOFF_E2E_KEY"].0, VALUE.as_bytes());
    let spec = serde_json::to_string(&job).unwrap();
    assert!(!spec.contains(VALUE), "the Job spec holds the key: {spec}");
    assert!(
        spec.contains("\"automountServiceAccountToken\":false"),
        "{spec}"
    );
    assert!(spec.contains("\"runAsNonRoot\":true"), "{spec}");
    assert!(spec.contains("\"backoffLimit\":0"), "{spec}");
    assert!(spec.contains("\"memory\":\"268435456\""), "{spec}");
    assert!(
        spec.contains(&format!(
            "\"secretRef\":{{\"name\":\"{}\"}}",
            job.metadata.name.clone().unwrap()
        )),
        "{spec}"
    );

    let out = repo.handoff(&["logs", "-f", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The log ends with the agent; the pod's status says so a little later.
    common::eventually(60, "the task to be done", || {
        state(&repo.task(1)) != "running"
    });
    let t = repo.task(1);
    assert_eq!(state(&t), "done", "{t:#}");
    let branch = t["branch"].as_str().unwrap();
    assert_eq!(repo.show_bytes(branch, "has.txt"), b"has\n");
    // Nothing the archive brought in, nor anything the agent's folders held, had it.
    assert_eq!(repo.show_bytes(branch, "found.txt"), b"");
    c.assert_empty("a task with a key");
}

/// Until some pod's `agent` container runs (before that, there is nothing to stop).
fn wait_until_an_agent_runs(c: &Cluster) {
    let client = c.client();
    common::eventually(60, "the agent to run", || {
        c.rt.block_on(async {
            let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
            let list = pods.list(&ListParams::default()).await.unwrap();
            list.items.iter().any(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c.name == "agent"
                                && c.state.as_ref().is_some_and(|s| s.running.is_some())
                        })
                    })
            })
        })
    });
}

fn cancel_stops_a_running_task_and_keeps_its_partial_work(c: &Cluster) {
    let repo = c.repo(&[("a.txt", "a\n")]);
    let started = repo.json(&["run", "--json", "echo partial > p.txt; sleep 120"]);
    assert_eq!(state(&started), "running", "{started:#}");
    // Until the agent has written, there is nothing to keep.
    wait_until_an_agent_runs(c);
    let client = c.client();
    // network = "none": a policy that lets the running pod reach nothing selects it.
    c.rt.block_on(async {
        let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
        let pod = pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .remove(0);
        let pod_labels = pod.metadata.labels.unwrap_or_default();
        let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), NAMESPACE);
        let list = policies.list(&ListParams::default()).await.unwrap().items;
        assert_eq!(list.len(), 1, "one policy for the one turn");
        let p = list[0].spec.clone().unwrap();
        let selector = p.pod_selector.unwrap().match_labels.unwrap();
        assert!(
            !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)),
            "the policy {selector:?} selects the pod {pod_labels:?}"
        );
        assert_eq!(
            p.policy_types.unwrap(),
            ["Ingress", "Egress"],
            "nothing in, nothing out"
        );
        assert!(p.egress.unwrap_or_default().is_empty());
        assert!(p.ingress.unwrap_or_default().is_empty());
    });
    std::thread::sleep(Duration::from_secs(1));
    let clock = Instant::now();
    let out = repo.handoff(&["cancel", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    eprintln!("cancel took {:.1}s", clock.elapsed().as_secs_f64());
    let t = repo.task(1);
    assert_eq!(state(&t), "cancelled", "{t:#}");
    assert_eq!(
        repo.show_bytes(t["branch"].as_str().unwrap(), "p.txt"),
        b"partial\n"
    );
    c.assert_empty("a cancelled task");
}

fn a_task_survives_kill_9_of_its_front_end_and_the_next_one_finalizes_it(c: &Cluster) {
    let repo = c.repo(&[("a.txt", "a\n")]);
    let mut child = Command::new(handoff_bin())
        .args(["run", "--wait", "sleep 3; echo survived > s.txt"])
        .current_dir(repo.path())
        .env("XDG_CONFIG_HOME", repo.config_home())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let record = repo.git_dir().join("handoff/tasks/1/task.json");
    common::eventually(60, "task running", || {
        std::fs::read_to_string(&record).is_ok_and(|s| s.contains("\"running\""))
    });
    // kill -9: no chance to clean up; the Job goes on.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        c.objects().iter().any(|o| o.starts_with("job/")),
        "{:?}",
        c.objects()
    );
    // The next front-end finds the turn by its labels, and finalizes it once done.
    common::eventually(120, "the task to be finalized by a new front-end", || {
        state(&repo.task(1)) == "done"
    });
    let t = repo.task(1);
    let branch = t["branch"].as_str().unwrap();
    assert_eq!(repo.show_bytes(branch, "s.txt"), b"survived\n");
    let reflog = repo.git(&["reflog", "show", "--format=%gs", branch]);
    assert_eq!(reflog.lines().count(), 1, "imported once:\n{reflog}");
    c.assert_empty("a task finalized by a later front-end");
}

/// Agents that end the moment they start: the pod's other containers may still be
/// starting when Handoff comes to collect, and every task still comes back whole.
fn agents_that_end_at_once_all_come_back(c: &Cluster) {
    let repo = c.repo(&[("a.txt", "a\n")]);
    const TASKS: u64 = 5;
    for i in 1..=TASKS {
        let t = repo.json(&["run", "--json", &format!("echo {i} > q{i}.txt")]);
        assert_eq!(t["id"].as_u64(), Some(i), "{t:#}");
    }
    common::eventually(240, "every quick task to end", || {
        (1..=TASKS).all(|n| !matches!(state(&repo.task(n)), "running" | "queued" | "?"))
    });
    for n in 1..=TASKS {
        let t = repo.task(n);
        assert_eq!(state(&t), "done", "{t:#}");
        assert_eq!(
            repo.show_bytes(t["branch"].as_str().unwrap(), &format!("q{n}.txt")),
            format!("{n}\n").as_bytes()
        );
    }
    c.assert_empty("tasks whose agents ended at once");
}

/// The agent's image holds one static busybox at `/busybox`: no `sh`, no tar, no git.
/// Handoff's own steps in the pod run from the tools image; the workspace arrives and
/// the work comes back.
fn an_image_with_no_shell_tar_or_git_runs_and_gives_its_work_back(c: &Cluster) {
    let repo = c.repo(&[("a.txt", "a\n"), ("gone.txt", "g\n")]);
    let config = repo.read(".handoff.toml");
    repo.write(
        ".handoff.toml",
        &format!(
            "{config}\n[agents.bare]\nimage = \"{}\"\ncommand = [\"/busybox\", \"sh\", \"-c\", \"{{prompt}}\"]\n",
            c.bare
        ),
    );
    repo.git(&["commit", "-qam", "a bare agent"]);
    repo.trust();
    std::fs::remove_file(repo.path().join("gone.txt")).unwrap();
    let t = repo.json(&[
        "run",
        "--agent",
        "bare",
        "--wait",
        "--json",
        "/busybox ls /workspace > seen.txt && /busybox test ! -e /bin/sh && echo made > new.txt",
    ]);
    assert_eq!(state(&t), "done", "{t:#}");
    let branch = t["branch"].as_str().unwrap();
    let seen = String::from_utf8(repo.show_bytes(branch, "seen.txt")).unwrap();
    assert!(
        seen.contains("a.txt") && !seen.contains("gone.txt"),
        "{seen}"
    );
    assert_eq!(repo.show_bytes(branch, "new.txt"), b"made\n");

    // Cancel reaches an agent whose image has no `kill` of its own.
    let started = repo.json(&[
        "run",
        "--agent",
        "bare",
        "--json",
        "trap 'echo TERM > term.txt; exit 0' TERM; echo partial > p.txt; /busybox sleep 120 & wait",
    ]);
    assert_eq!(state(&started), "running", "{started:#}");
    let id = started["id"].as_u64().unwrap();
    wait_until_an_agent_runs(c);
    std::thread::sleep(Duration::from_secs(1));
    let out = repo.handoff(&["cancel", &id.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let t = repo.task(id);
    assert_eq!(state(&t), "cancelled", "{t:#}");
    let branch = t["branch"].as_str().unwrap();
    assert_eq!(repo.show_bytes(branch, "p.txt"), b"partial\n");
    assert_eq!(
        repo.show_bytes(branch, "term.txt"),
        b"TERM\n",
        "the agent's own trap ran: the TERM reached it"
    );
    c.assert_empty("tasks of an image with no shell");
}

/// A setup step runs in a pod of its own before the agent's; the tool cache it fills
/// comes home from that pod and goes into the next tasks' pods, read-only for agents.
fn a_setup_fills_the_tool_cache_the_next_task_reads_and_no_agent_can_write(c: &Cluster) {
    let repo = c.repo_with(
        &[("a.txt", "a\n")],
        "setup = \"echo installed >> $HANDOFF_CACHE/installs\"\nsetup_snapshot = false\n",
    );
    let prompt =
        "cat $HANDOFF_CACHE/installs > seen.txt; echo poison >> $HANDOFF_CACHE/installs; true";
    let seen = |t: &Value| {
        String::from_utf8(repo.show_bytes(t["branch"].as_str().unwrap(), "seen.txt")).unwrap()
    };
    let first = repo.run_wait(prompt);
    assert_eq!(state(&first), "done", "{first:#}");
    assert_eq!(seen(&first), "installed\n");
    let second = repo.run_wait(prompt);
    assert_eq!(state(&second), "done", "{second:#}");
    assert_eq!(
        seen(&second),
        "installed\ninstalled\n",
        "the same cache, not poisoned"
    );
    c.assert_empty("tasks with a setup");
}

fn a_profile_that_asks_for_egress_is_refused_in_words(c: &Cluster) {
    let repo = c.repo(&[("a.txt", "a\n")]);
    let config = repo.read(".handoff.toml");
    repo.write(
        ".handoff.toml",
        &format!("{config}\nnetwork = \"egress\"\nallow = [\"example.com:443\"]\n"),
    );
    repo.git(&["commit", "-qam", "egress"]);
    repo.trust();
    let t = repo.run_wait("echo never > n.txt");
    assert_eq!(state(&t), "failed", "{t:#}");
    let error = t["error"].as_str().unwrap_or_default();
    assert!(error.contains("not available on Kubernetes"), "{t:#}");
    c.assert_empty("a refused task");
}
