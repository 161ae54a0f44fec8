//! What `handoff doctor` asks a cluster: is it reachable, does the namespace exist,
//! may this account do what a turn needs (a SelfSubjectAccessReview per verb), and
//! does a node hold the agents' images (when the account may list nodes).
//!
//! Read-only: creates nothing but the access reviews, which the apiserver answers
//! without storing.

use ::kube::api::{Api, ListParams, PostParams};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, Node};

use super::KubeSandbox;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Finding {
    pub verdict: Verdict,
    pub what: String,
    pub fix: Option<String>,
}

fn finding(verdict: Verdict, what: String, fix: Option<String>) -> Finding {
    Finding { verdict, what, fix }
}

/// What a turn does in its namespace: (group, resource, subresource, verb).
const NEEDED: &[(&str, &str, &str, &str)] = &[
    ("batch", "jobs", "", "create"),
    ("batch", "jobs", "", "list"),
    ("batch", "jobs", "", "delete"),
    ("", "secrets", "", "create"),
    ("", "secrets", "", "get"),
    ("", "secrets", "", "patch"),
    ("", "secrets", "", "delete"),
    ("networking.k8s.io", "networkpolicies", "", "create"),
    ("networking.k8s.io", "networkpolicies", "", "patch"),
    ("networking.k8s.io", "networkpolicies", "", "delete"),
    ("", "pods", "", "list"),
    ("", "pods", "", "deletecollection"),
    ("", "pods", "exec", "create"),
    ("", "pods", "log", "get"),
];

/// Reachability first; nothing else is asked of a cluster that does not answer.
pub async fn check_cluster(k: &KubeSandbox, images: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    let client = k.client().clone();
    let ns = k.namespace().to_string();
    match client.apiserver_version().await {
        Ok(v) => out.push(finding(
            Verdict::Ok,
            format!(
                "Kubernetes {}.{} ({}) at {}",
                v.major,
                v.minor,
                v.git_version,
                k.endpoint_name()
            ),
            None,
        )),
        Err(e) => {
            out.push(finding(
                Verdict::Fail,
                format!("cannot reach the cluster at {}: {e}", k.endpoint_name()),
                Some(
                    "check `kubeconfig` and `context` in [engine] (or KUBECONFIG), and that \
                     `kubectl version` answers"
                        .into(),
                ),
            ));
            return out;
        }
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.get(&ns).await {
        Ok(_) => out.push(finding(Verdict::Ok, format!("namespace {ns} exists"), None)),
        Err(::kube::Error::Api(s)) if s.code == 404 => out.push(finding(
            Verdict::Fail,
            format!("namespace {ns} does not exist"),
            Some(format!(
                "`kubectl create namespace {ns}`, or set `namespace` in [engine]"
            )),
        )),
        Err(::kube::Error::Api(s)) if s.code == 403 => out.push(finding(
            Verdict::Warn,
            format!("namespace {ns}: this account may not read namespaces, so whether it exists is not known"),
            None,
        )),
        Err(e) => out.push(finding(
            Verdict::Fail,
            format!("namespace {ns}: {e}"),
            None,
        )),
    }
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut denied = Vec::new();
    for (group, resource, sub, verb) in NEEDED {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(ns.clone()),
                    group: Some(group.to_string()),
                    resource: Some(resource.to_string()),
                    subresource: (!sub.is_empty()).then(|| sub.to_string()),
                    verb: Some(verb.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let what = if sub.is_empty() {
            format!("{verb} {resource}")
        } else {
            format!("{verb} {resource}/{sub}")
        };
        match reviews.create(&PostParams::default(), &review).await {
            Ok(answer) if answer.status.as_ref().is_some_and(|s| s.allowed) => {}
            Ok(_) => denied.push(what),
            Err(e) => {
                out.push(finding(
                    Verdict::Fail,
                    format!("cannot ask the cluster what this account may do: {e}"),
                    None,
                ));
                return out;
            }
        }
    }
    if denied.is_empty() {
        out.push(finding(
            Verdict::Ok,
            format!("this account may run turns in {ns} (jobs, secrets, network policies, pods, exec, logs)"),
            None,
        ));
    } else {
        out.push(finding(
            Verdict::Fail,
            format!(
                "this account may not {} in namespace {ns}",
                denied.join(", ")
            ),
            Some(
                "bind it to a Role with those verbs (docs/engines.md, \"Kubernetes\", has one)"
                    .into(),
            ),
        ));
    }
    let nodes: Api<Node> = Api::all(client);
    match nodes.list(&ListParams::default()).await {
        Ok(list) => {
            let held: Vec<String> = list
                .items
                .iter()
                .filter_map(|n| n.status.as_ref()?.images.as_ref())
                .flatten()
                .flat_map(|i| i.names.clone().unwrap_or_default())
                .collect();
            for image in images {
                let found = held.iter().any(|h| same_image(h, image));
                out.push(if found {
                    finding(Verdict::Ok, format!("image {image} is on a node"), None)
                } else {
                    finding(
                        Verdict::Warn,
                        format!("image {image} is on no node of the cluster"),
                        Some(format!(
                            "push it to a registry the nodes pull from, or load it on the nodes \
                             (`docker save {image} | …`); `handoff image build` does not build on a cluster"
                        )),
                    )
                });
            }
        }
        Err(_) => out.push(finding(
            Verdict::Warn,
            "images: this account may not list nodes, so whether they hold the agents' images is not known".into(),
            None,
        )),
    }
    out
}

/// Whether the node's image name `held` is `wanted` (a node lists images with their
/// registry, e.g. `docker.io/library/x:1` for `x:1`).
fn same_image(held: &str, wanted: &str) -> bool {
    let wanted = if wanted.contains(':') || wanted.contains('@') {
        wanted.to_string()
    } else {
        format!("{wanted}:latest")
    };
    held == wanted
        || held.strip_prefix("docker.io/library/") == Some(&wanted)
        || held.strip_prefix("docker.io/") == Some(&wanted)
}

#[cfg(test)]
mod tests {
    use super::same_image;

    #[test]
    fn node_image_names_match_with_or_without_their_registry() {
        assert!(same_image("docker.io/library/busybox:1.36", "busybox:1.36"));
        assert!(same_image("handoff-test:abc", "handoff-test:abc"));
        assert!(same_image("docker.io/library/alpine:latest", "alpine"));
        assert!(!same_image("docker.io/library/alpine:3", "alpine"));
    }
}
