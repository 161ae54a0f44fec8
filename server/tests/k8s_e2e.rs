//! Kubernetes, for real: a single node built from Debian's source package and started
//! by `scripts/k8s-node.sh` runs the test agent image as a Job, driven through kube-rs
//! the way the Kubernetes engine drives it, and everything the node made is gone after.

mod common;
#[path = "common/k8s.rs"]
mod k8s;

use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams, PropagationPolicy};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn job(name: &str, image: &str, script: &str) -> Job {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": name, "labels": { "handoff.test": "k8s_e2e" } },
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
                        "command": ["sh", "-c", script],
                        "securityContext": {
                            "runAsUser": 1000,
                            "runAsGroup": 1000,
                            "runAsNonRoot": true,
                            "allowPrivilegeEscalation": false,
                            "capabilities": { "drop": ["ALL"] }
                        }
                    }]
                }
            }
        }
    }))
    .unwrap()
}

async fn wait_succeeded(jobs: &Api<Job>, name: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let job = jobs.get(name).await.unwrap();
        let status = job.status.unwrap_or_default();
        if status.succeeded.unwrap_or(0) >= 1 {
            return started.elapsed();
        }
        assert!(
            status.failed.unwrap_or(0) == 0,
            "job {name} failed: {status:?}"
        );
        assert!(
            started.elapsed() < within,
            "job {name} did not complete within {within:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_job_runs_the_test_agent_image_to_completion_on_a_real_node() {
    let image = common::image();
    let node = k8s::Node::start();
    eprintln!("node started in {:.1}s", node.start_secs);
    node.load(&[image]);

    runtime().block_on(async {
        let client = node.client().await;
        let version = client.apiserver_version().await.unwrap();
        assert_eq!(
            (version.major.as_str(), version.minor.as_str()),
            ("1", "20")
        );

        let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let created = Instant::now();
        jobs.create(
            &PostParams::default(),
            &job(
                "hello",
                image,
                "echo \"hello from uid $(id -u)\"; git --version",
            ),
        )
        .await
        .unwrap();
        let took = wait_succeeded(&jobs, "hello", Duration::from_secs(120)).await;
        eprintln!(
            "job create → complete: {:.2}s",
            created.elapsed().as_secs_f64().max(took.as_secs_f64())
        );

        let listed = pods
            .list(&ListParams::default().labels("job-name=hello"))
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 1, "one pod for the job");
        let pod = listed.items[0].metadata.name.clone().unwrap();
        let logs = pods.logs(&pod, &LogParams::default()).await.unwrap();
        assert!(logs.contains("hello from uid 1000"), "logs: {logs}");
        assert!(logs.contains("git version"), "logs: {logs}");

        // Deleting with propagation takes the pod too.
        jobs.delete(
            "hello",
            &DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = pods
                .list(&ListParams::default().labels("handoff.test=k8s_e2e"))
                .await
                .unwrap();
            if left.items.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "the job's pod was not deleted");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // Dropping the node stops it and checks that nothing is left.
    drop(node);
}
