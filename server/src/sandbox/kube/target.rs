//! Which cluster and namespace tasks run in: `kubeconfig`, `context` and `namespace`
//! of the configuration's `[engine]` (with `kind = "kubernetes"`), over the standard
//! `KUBECONFIG` variable and `~/.kube/config`, the context's own namespace, and
//! `default`.

use std::path::PathBuf;

use ::kube::config::{KubeConfigOptions, Kubeconfig};
use serde::{Deserialize, Serialize};

use crate::sandbox::SandboxError;

/// The Kubernetes part of `[engine]`; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KubeTarget {
    /// A kubeconfig file; unset: `KUBECONFIG`, else `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// A context of that file; unset: its current context.
    pub context: Option<String>,
    /// Unset: the context's namespace, else `default`.
    pub namespace: Option<String>,
    /// The image of Handoff's own containers in a turn's pod; unset:
    /// [`super::DEFAULT_TOOLS_IMAGE`].
    pub tools_image: Option<String>,
}

impl KubeTarget {
    /// These settings over `lower`: every field set here wins.
    pub fn over(self, lower: KubeTarget) -> KubeTarget {
        KubeTarget {
            kubeconfig: self.kubeconfig.or(lower.kubeconfig),
            context: self.context.or(lower.context),
            namespace: self.namespace.or(lower.namespace),
            tools_image: self.tools_image.or(lower.tools_image),
        }
    }

    /// What is wrong with these settings on their own, in words for the user.
    pub fn check(&self) -> Result<(), String> {
        if let Some(ns) = &self.namespace {
            let ok = !ns.is_empty()
                && ns.len() <= 63
                && ns
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !ns.starts_with('-')
                && !ns.ends_with('-');
            if !ok {
                return Err(format!(
                    "namespace `{ns}` is not a Kubernetes namespace name (lowercase letters, \
                     digits and `-`, at most 63)"
                ));
            }
        }
        if let Some(image) = &self.tools_image {
            let ok = !image.is_empty()
                && !image.starts_with('-')
                && image.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(format!(
                    "tools_image `{image}` is not an image reference (a name like \
                     registry.example.com/busybox:1.36, or one by digest)"
                ));
            }
        }
        Ok(())
    }

    /// The image Handoff's own containers of a pod run.
    pub fn tools_image(&self) -> &str {
        self.tools_image
            .as_deref()
            .unwrap_or(super::DEFAULT_TOOLS_IMAGE)
    }

    /// The client configuration and the namespace tasks go to.
    pub async fn client_config(&self) -> Result<(::kube::Config, String), SandboxError> {
        let where_ = || match &self.kubeconfig {
            Some(p) => p.display().to_string(),
            None => "KUBECONFIG or ~/.kube/config".to_string(),
        };
        let file = match &self.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        }
        .map_err(|e| SandboxError::Unreachable {
            endpoint: where_(),
            message: format!(
                "cannot read the kubeconfig: {e}. Set `kubeconfig` in [engine], or KUBECONFIG"
            ),
        })?;
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = ::kube::Config::from_custom_kubeconfig(file, &options)
            .await
            .map_err(|e| SandboxError::Unreachable {
                endpoint: where_(),
                message: format!("the kubeconfig is not usable: {e}"),
            })?;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        Ok((config, namespace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_settings_win_field_by_field() {
        let user = KubeTarget {
            kubeconfig: Some("/home/me/.kube/work".into()),
            context: Some("work".into()),
            namespace: None,
            tools_image: Some("registry.example.com/busybox:1.36".into()),
        };
        let repo = KubeTarget {
            namespace: Some("agents".into()),
            ..Default::default()
        };
        let merged = repo.over(user);
        assert_eq!(merged.context.as_deref(), Some("work"));
        assert_eq!(merged.namespace.as_deref(), Some("agents"));
        assert_eq!(merged.tools_image(), "registry.example.com/busybox:1.36");
        assert_eq!(
            KubeTarget::default().tools_image(),
            super::super::DEFAULT_TOOLS_IMAGE
        );
    }

    #[test]
    fn a_bad_namespace_is_refused_in_words() {
        for bad in ["Agents", "-x", "a_b", ""] {
            let t = KubeTarget {
                namespace: Some(bad.into()),
                ..Default::default()
            };
            assert!(
                t.check()
                    .unwrap_err()
                    .contains("not a Kubernetes namespace"),
                "{bad}"
            );
        }
        assert!(KubeTarget::default().check().is_ok());
        for bad in ["", "-v /:/host", "busybox 1.36"] {
            let t = KubeTarget {
                tools_image: Some(bad.into()),
                ..Default::default()
            };
            assert!(
                t.check().unwrap_err().contains("not an image reference"),
                "{bad}"
            );
        }
    }
}
