//! The shipped workspace: for engines that share no disk with Handoff (a remote
//! Docker engine, Podman, or the local engine when told so), the workspace travels
//! as archives through the Engine API instead of being an overlay of host folders.
//!
//! - **The base** — the checkout of the task's start commit, with its own pack of the
//!   history — becomes an image layer once per commit, agent image and uid: an image
//!   `FROM` the agent image (by id) with `/workspace` in one more layer, loaded
//!   through `POST /images/load` from an archive that carries that layer only (the
//!   engine has the agent image's layers), or, where the engine refuses that, made by
//!   copying the layer into a container and committing it. Tagged
//!   `handoff-base/<commit>:<image>-u<uid>-l2`, it is what every task on that commit
//!   starts from: a 50 000-file checkout costs one load, once.
//! - **Per container**, one archive is copied in (`PUT /containers/{id}/archive`)
//!   before it starts: the layers above the base (the start layer, an environment,
//!   a setup's writes) merged as overlayfs would show them, HOME, the results folder,
//!   the tool cache and the prompt, every entry owned by the agent's uid (the engine
//!   would make implicit folders root's). What the layers delete from the base is
//!   deleted in the container before the agent runs, by a static busybox Handoff
//!   brings along (the agent's image may have no shell at all).
//! - **After it ends**, the engine's list of changed paths (`GET
//!   /containers/{id}/changes`, relative to the base image) says what the agent
//!   wrote; a few archive requests (`GET /containers/{id}/archive`) fetch it, and
//!   [`unpack`] writes it into the host folders an overlay would have written —
//!   the upper folder (deletions as whiteouts, what was sent in and left unchanged
//!   dropped), HOME, the results folder, the setup's tool cache — so finalizing reads
//!   them exactly as it reads an overlay's. Everything that comes back is hostile
//!   input: names checked, nothing followed, sizes and counts bounded.
//!
//! This module knows archives, images and containers; nothing of tasks or git.

pub mod changes;
pub mod pack;
pub mod unpack;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::docker::{DockerSandbox, HOME_IN_SANDBOX};
use super::{CollectSpec, SandboxError, SandboxSpec};
use crate::agents::{CACHE_DIR_IN_SANDBOX, OUT_DIR_IN_SANDBOX, PROMPT_FILE_IN_SANDBOX};
use changes::Kind;
use unpack::{Budget, Writer};

/// The label that marks a container whose workspace was shipped.
pub const SHIPPED_LABEL: &str = "handoff.workspace";

/// The label naming the base image (its tag) a shipped container was made from.
const BASE_IMAGE_LABEL: &str = "handoff.base-image";

/// Where Handoff's own tools go in a shipped container (root's, read-only to the agent).
const TOOLS_IN_SANDBOX: &str = ".handoff";

/// Run before the agent when the layers delete paths of the base: the deletions, by
/// the busybox Handoff brought, then the agent's own argv.
const DELETE_THEN_RUN: &str = "/.handoff/busybox xargs -0 /.handoff/busybox rm -rf -- </.handoff/deleted || exit 125\nexec \"$@\"\n";

/// Archive requests one collection makes at most for the workspace (each costs the
/// engine a mount of the container's file system).
const MAX_FETCHES: usize = 16;

/// Paths a result may hold (as the importer's limit).
const MAX_CHANGES: usize = 500_000;

/// The file in the turn's scratch folder that records what was sent in.
const MANIFEST_FILE: &str = "shipped.json";

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("reading {0}")]
    Read(String),
    #[error("writing {0}")]
    Write(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Missing(String),
}

impl ShipError {
    fn write(e: std::io::Error) -> ShipError {
        ShipError::Write(e.to_string())
    }
}

/// What was sent into a container's workspace from the read-only layers, so that
/// collecting can tell the agent's changes from it. Paths are workspace-relative,
/// base64 (they need not be UTF-8).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// Files, by SHA-256 of their content.
    pub files: BTreeMap<String, String>,
    /// Symlinks, by their target.
    pub links: BTreeMap<String, String>,
    pub dirs: BTreeSet<String>,
    /// Paths of the base the layers deleted.
    pub deleted: BTreeSet<String>,
    /// The size of the archive sent in: what a result fetched whole (an engine that
    /// lists no changes) may hold on top of the task's own budget.
    #[serde(default)]
    pub sent_bytes: u64,
}

impl Manifest {
    pub fn key(path: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(path)
    }

    fn save(&self, work: &Path) -> Result<(), ShipError> {
        std::fs::create_dir_all(work).map_err(ShipError::write)?;
        let text = serde_json::to_vec(self).map_err(|e| ShipError::Write(e.to_string()))?;
        let tmp = work.join(format!("{MANIFEST_FILE}.tmp"));
        std::fs::write(&tmp, text).map_err(ShipError::write)?;
        std::fs::rename(&tmp, work.join(MANIFEST_FILE)).map_err(ShipError::write)
    }

    /// What `work` records; nothing (every change counts as the agent's) when the
    /// record is missing or damaged.
    fn load(work: &Path) -> Manifest {
        std::fs::read(work.join(MANIFEST_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

/// The static busybox Handoff brings into containers that need to delete paths
/// (Debian's `busybox-static`): a dynamically linked one would not run in an image
/// without its C library.
pub fn static_busybox() -> Result<PathBuf, ShipError> {
    for candidate in ["/usr/bin/busybox", "/bin/busybox"] {
        let path = PathBuf::from(candidate);
        if is_static_elf(&path) {
            return Ok(path);
        }
    }
    Err(ShipError::Missing(
        "a shipped workspace deletes files in the container with a static busybox, and \
         there is none on this machine: install it (`apt-get install busybox-static`)"
            .into(),
    ))
}

/// Whether `path` is a 64-bit little-endian ELF executable with no interpreter.
fn is_static_elf(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 64];
    if f.read_exact(&mut head).is_err() || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1
    {
        return false;
    }
    let phoff = u64::from_le_bytes(head[0x20..0x28].try_into().expect("8 bytes"));
    let phentsize = u16::from_le_bytes([head[0x36], head[0x37]]) as u64;
    let phnum = u16::from_le_bytes([head[0x38], head[0x39]]) as u64;
    if phentsize < 4 || phnum > 256 {
        return false;
    }
    let mut table = vec![0u8; (phentsize * phnum) as usize];
    use std::io::Seek;
    if f.seek(std::io::SeekFrom::Start(phoff)).is_err() || f.read_exact(&mut table).is_err() {
        return false;
    }
    const PT_INTERP: u32 = 3;
    !table
        .chunks(phentsize as usize)
        .any(|ph| u32::from_le_bytes(ph[..4].try_into().expect("4 bytes")) == PT_INTERP)
}

/// Whether an engine's name of an image is a base image's tag: as made, or as
/// Podman lists it (`localhost/…`, or `docker.io/…` for a short name it normalized).
fn is_base_tag(name: &str) -> bool {
    let name = name
        .strip_prefix("localhost/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name);
    name.starts_with("handoff-base/")
}

/// The tag of the base image of `key` (a commit) over `image_id` for `uid`. `-l2`:
/// the base's layout, which holds its index a second time as the shared index of
/// the start layers' split indexes; an image of an older base lacks it.
pub fn base_image_tag(key: &str, image_id: &str, uid: u32) -> String {
    let image = image_id.trim_start_matches("sha256:");
    let image = &image[..image.len().min(12)];
    format!("handoff-base/{key}:{image}-u{uid}-l2")
}

fn tar_path(p: &str) -> &str {
    p.trim_start_matches('/')
}

fn ship_err(e: ShipError) -> SandboxError {
    match e {
        ShipError::Refused(why) => SandboxError::ResultRefused(why),
        e => SandboxError::Workspace(e.to_string()),
    }
}

fn join_err(e: tokio::task::JoinError) -> SandboxError {
    SandboxError::Workspace(e.to_string())
}

impl DockerSandbox {
    /// Creates the agent's container from the base image, copies the rest of its
    /// workspace in and starts it. Returns the container id.
    pub(super) async fn start_shipped(&self, spec: &SandboxSpec) -> Result<String, SandboxError> {
        let ws = &spec.workspace;
        let (base_tree, above) = ws
            .lowers
            .split_last()
            .ok_or_else(|| SandboxError::Workspace("the workspace has no base layer".into()))?;
        let key = ws.base_key.clone().ok_or_else(|| {
            SandboxError::Workspace("the workspace's base has no content key".into())
        })?;
        let image_id = super::Sandbox::check_image(self, &spec.image).await?;
        let owner = (spec.uid, spec.gid);
        std::fs::create_dir_all(&ws.work)
            .map_err(|e| SandboxError::Workspace(format!("{}: {e}", ws.work.display())))?;
        let base_image = self
            .base_image(&image_id, base_tree, &key, owner, &ws.work)
            .await?;

        // The archive of everything else, written to the scratch folder first (it is
        // streamed from there; the engine wants the whole body).
        let input = ws.work.join("ship-in.tar");
        let deletions = {
            let input = input.clone();
            let spec = spec.clone();
            let base_tree = base_tree.clone();
            let above: Vec<PathBuf> = above.to_vec();
            tokio::task::spawn_blocking(move || pack_input(&spec, &above, &base_tree, &input))
                .await
                .map_err(join_err)?
                .map_err(ship_err)?
        };

        let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        labels.insert(SHIPPED_LABEL.into(), "shipped".into());
        labels.insert(
            BASE_IMAGE_LABEL.into(),
            base_image_tag(&key, &image_id, spec.uid),
        );
        let mut body = self.create_body(spec, false).await;
        body.image = Some(base_image);
        body.labels = Some(labels);
        if deletions {
            let mut cmd: Vec<String> = vec![
                "/.handoff/busybox".into(),
                "sh".into(),
                "-c".into(),
                DELETE_THEN_RUN.into(),
                "handoff-start".into(),
            ];
            cmd.extend(spec.argv.iter().cloned());
            body.cmd = Some(cmd);
        }
        let id = match self.create_named(spec, body.clone()).await {
            // The base was removed between its making and now, by the end of the
            // last other task that used it: make it again.
            Err(SandboxError::ImageMissing { .. }) => {
                body.image = Some(
                    self.base_image(&image_id, base_tree, &key, owner, &ws.work)
                        .await?,
                );
                self.create_named(spec, body).await?
            }
            created => created?,
        };
        let started = async {
            self.upload(&id, &input).await?;
            self.client()?
                .start_container(&id, None)
                .await
                .map_err(|e| self.engine_err(e))
        }
        .await;
        let _ = std::fs::remove_file(&input);
        if let Err(e) = started {
            // Keep nothing half-made: a container the engine refused to start holds no
            // work. One whose start went unanswered may be running: it stays, for the
            // caller to find (as with an overlay workspace).
            if !matches!(e, SandboxError::Unreachable { .. }) {
                let _ = super::Sandbox::remove(self, &id).await;
            }
            return Err(e);
        }
        Ok(id)
    }

    /// The base image the shipped container `id` was made from (its tag), if it is
    /// one; asked before removing the container.
    pub(super) async fn shipped_base(&self, id: &str) -> Option<String> {
        let inspect = self.inspect(id, false).await.ok()??;
        inspect
            .config?
            .labels?
            .get(BASE_IMAGE_LABEL)
            .filter(|tag| tag.starts_with("handoff-base/"))
            .cloned()
    }

    /// Removes the base images on the engine that were made longer than
    /// `keep_base_images` ago and that no container uses (the engine refuses to
    /// remove an image a container was made from, so those stay until the last of
    /// them goes). Base images are made per commit and would otherwise pile up; kept
    /// a while, a later task on the same commit starts from its start layer alone.
    /// A base removed between another front-end finding it and making its container
    /// from it is made again there ([`Self::start_shipped`]).
    pub(super) async fn prune_bases(&self) {
        let Ok(client) = self.client() else { return };
        // By name, not by the `handoff.base` label: Podman's commit drops labels.
        let list = bollard::query_parameters::ListImagesOptionsBuilder::default().build();
        let images = match client.list_images(Some(list)).await {
            Ok(images) => images,
            Err(e) => return tracing::debug!(error = %e, "base images not listed"),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(i64::MAX);
        let keep = self.keep_bases.as_secs() as i64;
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(false)
            .build();
        for image in images {
            if image.created.saturating_add(keep) > now {
                continue;
            }
            for tag in image.repo_tags.iter().filter(|t| is_base_tag(t)) {
                match client.remove_image(tag, Some(options.clone()), None).await {
                    Ok(_) => tracing::debug!(%tag, "base image removed"),
                    Err(e) => tracing::debug!(%tag, error = %e, "base image kept"),
                }
            }
        }
    }

    /// Streams the archive at `tar` into the container's `/`.
    async fn upload(&self, id: &str, tar: &Path) -> Result<(), SandboxError> {
        let file = tokio::fs::File::open(tar)
            .await
            .map_err(|e| SandboxError::Workspace(format!("{}: {e}", tar.display())))?;
        let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(file));
        let options = UploadToContainerOptionsBuilder::default().path("/").build();
        self.client()?
            .upload_to_container(id, Some(options), body)
            .await
            .map_err(|e| self.engine_err(e))
    }

    /// The image every task on `key` (a commit) starts from: made once.
    async fn base_image(
        &self,
        image_id: &str,
        base_tree: &Path,
        key: &str,
        owner: (u32, u32),
        scratch: &Path,
    ) -> Result<String, SandboxError> {
        let client = self.client()?;
        let tag = base_image_tag(key, image_id, owner.0);
        if let Ok(found) = client.inspect_image(&tag).await {
            let made_from = found
                .config
                .as_ref()
                .and_then(|c| c.labels.as_ref())
                .and_then(|l| l.get("handoff.base.image"));
            // Podman keeps no labels of a loaded or committed image; its tag names
            // the image's id and the uid already.
            if made_from.is_none_or(|m| m == image_id) {
                return Ok(found.id.unwrap_or(tag));
            }
        }
        let clock = std::time::Instant::now();
        let layer = scratch.join("base-layer.tar");
        let (diff_id, size) = {
            let layer = layer.clone();
            let base_tree = base_tree.to_path_buf();
            tokio::task::spawn_blocking(move || write_layer_file(&base_tree, owner, &layer))
                .await
                .map_err(join_err)?
                .map_err(ship_err)?
        };
        let loaded = self.load_base(image_id, &tag, &layer, &diff_id, size).await;
        if let Err(e) = loaded {
            tracing::info!(error = %e, "the engine refused a one-layer image archive; committing a container instead");
            self.commit_base(image_id, &tag, &layer).await?;
        }
        let _ = std::fs::remove_file(&layer);
        tracing::info!(%tag, ms = clock.elapsed().as_millis() as u64, "base image made");
        let found = client
            .inspect_image(&tag)
            .await
            .map_err(|e| self.engine_err(e))?;
        Ok(found.id.unwrap_or(tag))
    }

    /// `POST /images/load` of an archive holding one layer over `image_id`'s.
    async fn load_base(
        &self,
        image_id: &str,
        tag: &str,
        layer: &Path,
        diff_id: &str,
        size: u64,
    ) -> Result<(), SandboxError> {
        let client = self.client()?;
        let parent = client
            .inspect_image(image_id)
            .await
            .map_err(|e| self.engine_err(e))?;
        let mut config = serde_json::to_value(parent.config.clone().unwrap_or_default())
            .map_err(|e| SandboxError::Workspace(e.to_string()))?;
        let labels = config
            .as_object_mut()
            .map(|c| c.entry("Labels").or_insert_with(|| serde_json::json!({})));
        if let Some(serde_json::Value::Object(l)) = labels {
            l.insert("handoff.base".into(), "1".into());
            l.insert("handoff.base.image".into(), image_id.into());
        } else if let Some(l) = labels {
            *l = serde_json::json!({"handoff.base": "1", "handoff.base.image": image_id});
        }
        let mut diff_ids: Vec<String> = parent
            .root_fs
            .as_ref()
            .and_then(|r| r.layers.clone())
            .unwrap_or_default();
        let parents = diff_ids.len();
        diff_ids.push(diff_id.to_string());
        let image_config = serde_json::json!({
            "architecture": parent.architecture.clone().unwrap_or_else(|| "amd64".into()),
            "os": parent.os.clone().unwrap_or_else(|| "linux".into()),
            "created": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "config": config,
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        });
        let config_bytes = serde_json::to_vec(&image_config)
            .map_err(|e| SandboxError::Workspace(e.to_string()))?;
        let config_name = format!("{}.json", pack::hex(&sha2::Sha256::digest(&config_bytes)));
        let mut layers: Vec<String> = (0..parents)
            .map(|i| format!("parent{i}/layer.tar"))
            .collect();
        layers.push("base/layer.tar".into());
        let manifest = serde_json::to_vec(&serde_json::json!([{
            "Config": config_name,
            "RepoTags": [tag],
            "Layers": layers,
        }]))
        .map_err(|e| SandboxError::Workspace(e.to_string()))?;

        let head = tar_header("base/layer.tar", size)?;
        let mut tail = padding(size);
        for (name, bytes) in [
            (config_name.as_str(), &config_bytes),
            ("manifest.json", &manifest),
        ] {
            tail.extend_from_slice(&tar_header(name, bytes.len() as u64)?);
            tail.extend_from_slice(bytes);
            tail.extend_from_slice(&padding(bytes.len() as u64));
        }
        tail.extend_from_slice(&[0u8; 1024]);
        let file = tokio::fs::File::open(layer)
            .await
            .map_err(|e| SandboxError::Workspace(format!("{}: {e}", layer.display())))?;
        let body = futures_util::stream::once(async move { Ok(bytes::Bytes::from(head)) })
            .chain(tokio_util::io::ReaderStream::new(file))
            .chain(futures_util::stream::once(async move {
                Ok(bytes::Bytes::from(tail))
            }));
        let options = bollard::query_parameters::ImportImageOptionsBuilder::default()
            .quiet(true)
            .build();
        let mut answers = client.import_image(options, bollard::body_try_stream(body), None);
        while let Some(answer) = answers.next().await {
            let info = answer.map_err(|e| self.engine_err(e))?;
            if let Some(e) = info.error_detail.and_then(|d| d.message) {
                return Err(SandboxError::Workspace(e));
            }
        }
        client
            .inspect_image(tag)
            .await
            .map(|_| ())
            .map_err(|e| self.engine_err(e))
    }

    /// The base image made the slow way: the layer copied into a container of the
    /// agent image that never runs, committed.
    async fn commit_base(
        &self,
        image_id: &str,
        tag: &str,
        layer: &Path,
    ) -> Result<(), SandboxError> {
        let client = self.client()?;
        let body = bollard::models::ContainerCreateBody {
            image: Some(image_id.to_string()),
            cmd: Some(vec!["true".into()]),
            entrypoint: Some(vec![]),
            network_disabled: Some(true),
            ..Default::default()
        };
        let created = client
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .map_err(|e| self.engine_err(e))?;
        let result = async {
            self.upload(&created.id, layer).await?;
            let (repo, tag_part) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
            let options = bollard::query_parameters::CommitContainerOptionsBuilder::default()
                .container(&created.id)
                .repo(repo)
                .tag(tag_part)
                .pause(false)
                .build();
            let labels = HashMap::from([
                ("handoff.base".to_string(), "1".to_string()),
                ("handoff.base.image".to_string(), image_id.to_string()),
            ]);
            let parent = client
                .inspect_image(image_id)
                .await
                .map_err(|e| self.engine_err(e))?;
            let mut config: bollard::models::ContainerConfig =
                serde_json::to_value(parent.config.clone().unwrap_or_default())
                    .and_then(serde_json::from_value)
                    .map_err(|e| SandboxError::Workspace(e.to_string()))?;
            let mut all = config.labels.take().unwrap_or_default();
            all.extend(labels);
            config.labels = Some(all);
            client
                .commit_container(options, config)
                .await
                .map_err(|e| self.engine_err(e))
        }
        .await;
        let _ = super::Sandbox::remove(self, &created.id).await;
        result.map(|_| ())
    }

    /// Brings a shipped container's results home (see [`super::Sandbox::collect`]);
    /// returns the files left in the container for want of room.
    pub(super) async fn collect_shipped(
        &self,
        id: &str,
        spec: &CollectSpec,
    ) -> Result<Vec<String>, SandboxError> {
        let Some(inspect) = self.inspect(id, false).await? else {
            // Removed outside Handoff: nothing to bring back (the task says so).
            tracing::warn!(container = id, "the container is gone; nothing to collect");
            return Ok(vec![]);
        };
        let shipped = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(SHIPPED_LABEL))
            .is_some_and(|v| v == "shipped");
        if !shipped {
            return Ok(vec![]);
        }
        collect(self, id, spec).await
    }

    /// The archive of `path` in the container, as a blocking reader; `None` when there
    /// is nothing at `path`.
    async fn archive(
        &self,
        id: &str,
        path: &str,
    ) -> Result<Option<Box<dyn Read + Send>>, SandboxError> {
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self.client()?.download_from_container(id, Some(options));
        let first = match stream.next().await {
            None => return Ok(None),
            Some(Err(e)) if super::docker::is_status(&e, 404) => return Ok(None),
            Some(Err(e)) => return Err(self.engine_err(e)),
            Some(Ok(b)) => b,
        };
        let rest = futures_util::stream::once(async move { Ok(first) })
            .chain(stream)
            .map(|r| r.map_err(std::io::Error::other))
            .boxed();
        let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(rest));
        Ok(Some(Box::new(reader)))
    }

    pub(super) async fn create_named(
        &self,
        spec: &SandboxSpec,
        body: bollard::models::ContainerCreateBody,
    ) -> Result<String, SandboxError> {
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        match self.client()?.create_container(Some(options), body).await {
            Ok(c) => Ok(c.id),
            Err(e) if super::docker::is_status(&e, 409) => Err(SandboxError::NameConflict {
                name: spec.name.clone(),
            }),
            Err(e) if super::docker::is_status(&e, 404) => Err(SandboxError::ImageMissing {
                image: spec.image.clone(),
                endpoint: self.endpoint_name(),
            }),
            Err(e) => Err(self.engine_err(e)),
        }
    }
}

/// Where a shipped workspace's results are read from: the one thing engines differ in
/// when bringing a result home (the Engine API's archive endpoints, or `exec` in a
/// Kubernetes pod). What it delivers is hostile input, checked by [`collect`] alone.
pub(crate) trait ResultSource: Sync {
    /// The paths under `/workspace` the agent changed, as the engine lists them;
    /// `None` when the engine keeps no such list: then the whole workspace is fetched
    /// and compared with what was sent in ([`Manifest`]).
    fn changes(
        &self,
        id: &str,
    ) -> impl std::future::Future<Output = Result<Option<Vec<(String, Kind)>>, SandboxError>> + Send;

    /// An archive of the folder or file `path` of the container, named from its last
    /// component (as `GET /containers/{id}/archive` names it), as a blocking reader;
    /// `None` when there is nothing at `path`.
    fn archive(
        &self,
        id: &str,
        path: &str,
    ) -> impl std::future::Future<Output = Result<Option<Box<dyn Read + Send>>, SandboxError>> + Send;
}

impl ResultSource for DockerSandbox {
    async fn changes(&self, id: &str) -> Result<Option<Vec<(String, Kind)>>, SandboxError> {
        let listed = self
            .client()?
            .container_changes(id)
            .await
            .map_err(|e| self.engine_err(e))?
            .unwrap_or_default();
        Ok(Some(
            listed
                .into_iter()
                .map(|c| {
                    let kind = match c.kind {
                        bollard::models::ChangeType::_1 => Kind::Added,
                        bollard::models::ChangeType::_2 => Kind::Deleted,
                        _ => Kind::Modified,
                    };
                    (c.path, kind)
                })
                .collect(),
        ))
    }

    async fn archive(
        &self,
        id: &str,
        path: &str,
    ) -> Result<Option<Box<dyn Read + Send>>, SandboxError> {
        DockerSandbox::archive(self, id, path).await
    }
}

/// Brings the results of the ended container `id` home from `source` into the host
/// folders of `spec` (see [`super::Sandbox::collect`]); returns the files left in the
/// container for want of room.
pub(crate) async fn collect<S: ResultSource>(
    source: &S,
    id: &str,
    spec: &CollectSpec,
) -> Result<Vec<String>, SandboxError> {
    let clock = std::time::Instant::now();
    let manifest = std::sync::Arc::new(Manifest::load(&spec.work));
    let listed = source.changes(id).await?;
    let whole = listed.is_none();
    let list = listed.unwrap_or_default();
    let plan = if whole {
        changes::Plan {
            fetch: vec![String::new()],
            ..Default::default()
        }
    } else {
        changes::plan(&list, MAX_FETCHES, MAX_CHANGES).map_err(ship_err)?
    };
    let mut budget = Budget {
        // Fetched whole, the workspace also brings back what was sent in unchanged.
        bytes: if whole {
            spec.max_bytes.saturating_add(manifest.sent_bytes)
        } else {
            spec.max_bytes
        },
        entries: 2 * MAX_CHANGES,
        ..Default::default()
    };

    // The workspace's changes, into a new upper folder.
    let staging = unpack::staging_for(&spec.upper);
    let mut writer = Writer::create(&staging, None).map_err(ship_err)?;
    let wanted = std::sync::Arc::new((!whole).then(|| plan.wanted.clone()));
    let mut sent_unchanged: Vec<Vec<u8>> = Vec::new();
    let mut seen: BTreeSet<Vec<u8>> = BTreeSet::new();
    for fetched in &plan.fetch {
        let path = if fetched.is_empty() {
            changes::WORKSPACE_IN_CONTAINER.to_string()
        } else {
            format!("{}/{fetched}", changes::WORKSPACE_IN_CONTAINER)
        };
        let Some(reader) = source.archive(id, &path).await? else {
            continue;
        };
        let fetched = fetched.clone();
        let wanted = wanted.clone();
        let manifest = manifest.clone();
        let (w, b, unchanged, s) = tokio::task::spawn_blocking(move || {
            let mut b = budget;
            let mut s = BTreeSet::new();
            let unchanged = unpack_changes(
                reader,
                &fetched,
                wanted.as_ref().as_ref(),
                &manifest,
                &writer,
                &mut b,
                &mut s,
            )?;
            Ok::<_, ShipError>((writer, b, unchanged, s))
        })
        .await
        .map_err(join_err)?
        .map_err(ship_err)?;
        writer = w;
        budget = b;
        sent_unchanged.extend(unchanged);
        seen.extend(s);
    }
    for rel in &sent_unchanged {
        writer.remove(rel).map_err(ship_err)?;
    }
    let deleted: Vec<Vec<u8>> = if whole {
        gone_since_sent(&manifest, &seen)
    } else {
        plan.deleted
            .iter()
            .filter(|d| !manifest.deleted.contains(&Manifest::key(d.as_bytes())))
            .map(|d| d.as_bytes().to_vec())
            .collect()
    };
    for d in &deleted {
        writer.whiteout(d, &mut budget).map_err(ship_err)?;
    }
    drop(writer);
    let owner = Some((spec.uid, spec.gid));
    unpack::replace_dir(&staging, &spec.upper).map_err(ship_err)?;
    rustix::fs::chown(
        spec.upper.as_path(),
        Some(rustix::process::Uid::from_raw(spec.uid)),
        Some(rustix::process::Gid::from_raw(spec.gid)),
    )
    .ok();
    if whole {
        // What was sent in counted only while it streamed by.
        budget.bytes = budget.bytes.saturating_sub(manifest.sent_bytes);
    }

    // HOME, the results folder and the setup's tool cache, whole.
    let mut folders = vec![
        (HOME_IN_SANDBOX.to_string(), spec.home.clone()),
        (OUT_DIR_IN_SANDBOX.to_string(), spec.out_dir.clone()),
    ];
    if let Some(cache) = &spec.cache_dir {
        folders.push((CACHE_DIR_IN_SANDBOX.to_string(), cache.clone()));
    }
    for (from, to) in folders {
        let staging = unpack::staging_for(&to);
        let writer = Writer::create(&staging, owner).map_err(ship_err)?;
        let skipped_before = budget.skipped.len();
        if let Some(reader) = source.archive(id, &from).await? {
            budget = tokio::task::spawn_blocking(move || {
                let mut b = budget;
                unpack_whole(reader, &writer, &mut b).map(|()| b)
            })
            .await
            .map_err(join_err)?
            .map_err(ship_err)?;
        }
        for skipped in &mut budget.skipped[skipped_before..] {
            let mut named = format!("{from}/").into_bytes();
            named.append(skipped);
            *skipped = named;
        }
        unpack::replace_dir(&staging, &to).map_err(ship_err)?;
    }
    tracing::info!(
        container = id,
        changes = list.len(),
        fetches = plan.fetch.len(),
        whole,
        ms = clock.elapsed().as_millis() as u64,
        skipped = budget.skipped.len(),
        "shipped workspace collected"
    );
    Ok(budget
        .skipped
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect())
}

/// The paths sent in (files, links, folders) that a whole workspace fetched back no
/// longer holds, topmost only: the agent deleted them.
fn gone_since_sent(manifest: &Manifest, seen: &BTreeSet<Vec<u8>>) -> Vec<Vec<u8>> {
    let decode = |k: &String| base64::engine::general_purpose::STANDARD.decode(k).ok();
    let missing: BTreeSet<Vec<u8>> = manifest
        .files
        .keys()
        .chain(manifest.links.keys())
        .chain(manifest.dirs.iter())
        .filter_map(decode)
        .filter(|p| !p.is_empty() && !seen.contains(p))
        .collect();
    missing
        .iter()
        .filter(|p| {
            let mut at = p.as_slice();
            while let Some(i) = at.iter().rposition(|&b| b == b'/') {
                at = &at[..i];
                if missing.contains(at) {
                    return false;
                }
            }
            true
        })
        .cloned()
        .collect()
}

/// Writes the input archive of `spec` to `to`; returns whether paths of the base
/// must be deleted in the container (then the archive brings the tools for it).
fn pack_input(
    spec: &SandboxSpec,
    above_base: &[PathBuf],
    base_tree: &Path,
    to: &Path,
) -> Result<bool, ShipError> {
    let owner = (spec.uid, spec.gid);
    let root = (0, 0);
    let file = std::fs::File::create(to).map_err(ShipError::write)?;
    let mut out = pack::TarOut::new(std::io::BufWriter::new(file));
    let lowers: Vec<&Path> = above_base.iter().map(PathBuf::as_path).collect();
    let upper = Some(spec.workspace.upper.as_path());
    let packed = pack::pack_workspace(&mut out, &lowers, upper, base_tree, owner)?;
    pack::write_tree(&mut out, Some(&spec.home), tar_path(HOME_IN_SANDBOX), owner)?;
    pack::write_tree(
        &mut out,
        Some(&spec.out_dir),
        tar_path(OUT_DIR_IN_SANDBOX),
        owner,
    )?;
    if let Some(cache) = &spec.cache_dir {
        pack::write_tree(&mut out, Some(cache), tar_path(CACHE_DIR_IN_SANDBOX), owner)?;
    }
    let prompt = std::fs::read(&spec.prompt_file)
        .map_err(|e| ShipError::Read(format!("{}: {e}", spec.prompt_file.display())))?;
    out.file(
        tar_path(PROMPT_FILE_IN_SANDBOX).as_bytes(),
        0o644,
        root,
        None,
        prompt.len() as u64,
        prompt.as_slice(),
    )?;
    let deletes = !packed.deletions.is_empty();
    if deletes {
        let busybox = static_busybox()?;
        let bytes = std::fs::read(&busybox)
            .map_err(|e| ShipError::Read(format!("{}: {e}", busybox.display())))?;
        out.dir(TOOLS_IN_SANDBOX.as_bytes(), 0o755, root)?;
        out.file(
            format!("{TOOLS_IN_SANDBOX}/busybox").as_bytes(),
            0o755,
            root,
            None,
            bytes.len() as u64,
            bytes.as_slice(),
        )?;
        let mut list = Vec::new();
        for d in &packed.deletions {
            list.extend_from_slice(changes::WORKSPACE_IN_CONTAINER.as_bytes());
            list.push(b'/');
            list.extend_from_slice(d);
            list.push(0);
        }
        out.file(
            format!("{TOOLS_IN_SANDBOX}/deleted").as_bytes(),
            0o644,
            root,
            None,
            list.len() as u64,
            list.as_slice(),
        )?;
    }
    let mut w = out.finish()?;
    w.flush().map_err(ShipError::write)?;
    drop(w);
    let mut manifest = packed.manifest;
    manifest.sent_bytes = std::fs::metadata(to).map_err(ShipError::write)?.len();
    manifest.save(&spec.workspace.work)?;
    Ok(deletes)
}

/// Writes the input archive of `spec` to `to` with the whole workspace in it, base
/// included, for an engine that takes no base image (Kubernetes): nothing of the
/// base needs deleting there, what the layers delete is simply not sent. Returns the
/// archive's size.
pub(crate) async fn pack_whole_input(spec: &SandboxSpec, to: &Path) -> Result<u64, SandboxError> {
    let spec = spec.clone();
    let to = to.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let ws = &spec.workspace;
        std::fs::create_dir_all(&ws.work).map_err(ShipError::write)?;
        let no_base = tempfile::tempdir_in(&ws.work).map_err(ShipError::write)?;
        let deletes = pack_input(&spec, &ws.lowers, no_base.path(), &to)?;
        debug_assert!(!deletes, "an empty base has nothing to delete");
        Ok(std::fs::metadata(&to).map_err(ShipError::write)?.len())
    })
    .await
    .map_err(join_err)?
    .map_err(ship_err)
}

/// Writes the base layer to `to`; returns its diff id (`sha256:…`) and size.
fn write_layer_file(base: &Path, owner: (u32, u32), to: &Path) -> Result<(String, u64), ShipError> {
    struct Hashing<W> {
        inner: W,
        hash: sha2::Sha256,
        size: u64,
    }
    impl<W: Write> Write for Hashing<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(buf)?;
            sha2::Digest::update(&mut self.hash, &buf[..n]);
            self.size += n as u64;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }
    let file = std::fs::File::create(to).map_err(ShipError::write)?;
    let out = Hashing {
        inner: std::io::BufWriter::new(file),
        hash: sha2::Sha256::new(),
        size: 0,
    };
    let mut out = pack::write_base_layer(out, base, owner)?;
    out.flush().map_err(ShipError::write)?;
    let digest = sha2::Digest::finalize(out.hash);
    Ok((format!("sha256:{}", pack::hex(&digest)), out.size))
}

use sha2::Digest as _;

fn tar_header(name: &str, size: u64) -> Result<Vec<u8>, SandboxError> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)
        .map_err(|e| SandboxError::Workspace(e.to_string()))?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h.as_bytes().to_vec())
}

fn padding(size: u64) -> Vec<u8> {
    vec![0u8; ((512 - size % 512) % 512) as usize]
}

/// Writes the entries of the archive fetched for `fetched` that are among `wanted`
/// into `writer`; returns the files and symlinks written that hold exactly what was
/// sent in (not the agent's work; the caller removes them).
fn unpack_changes(
    reader: impl Read,
    fetched: &str,
    wanted: Option<&BTreeSet<String>>,
    manifest: &Manifest,
    writer: &Writer,
    budget: &mut Budget,
    seen: &mut BTreeSet<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, ShipError> {
    let mut archive = tar::Archive::new(reader);
    let mut unchanged = Vec::new();
    let mut written: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let entries = archive
        .entries()
        .map_err(|e| ShipError::Read(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ShipError::Read(e.to_string()))?;
        let name = entry.path_bytes().into_owned();
        let Some(rel) = changes::entry_path(fetched, &name) else {
            return Err(ShipError::Refused(format!(
                "the archive of {fetched:?} holds {:?}",
                String::from_utf8_lossy(&name)
            )));
        };
        // The workspace folder itself, or a path the agent did not change.
        if rel.is_empty()
            || wanted.is_some_and(|w| !w.contains(String::from_utf8_lossy(&rel).as_ref()))
        {
            continue;
        }
        if wanted.is_none() {
            seen.insert(rel.clone());
        }
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644);
        match header.entry_type() {
            tar::EntryType::Directory => writer.dir(&rel, mode, budget)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                // Skipped (over the budget): left in the container, named by the caller.
                let Some(hash) = writer.file(&rel, mode, size, &mut entry, budget)? else {
                    continue;
                };
                if manifest.files.get(&Manifest::key(&rel)) == Some(&pack::hex(&hash)) {
                    unchanged.push(rel.clone());
                }
                written.insert(name.clone(), rel);
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                writer.symlink(&rel, &target, budget)?;
                if manifest.links.get(&Manifest::key(&rel)) == Some(&Manifest::key(&target)) {
                    unchanged.push(rel);
                }
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                match written.get(&target) {
                    Some(from) => writer.copy(from, &rel, budget)?,
                    None => {
                        tracing::debug!(path = %String::from_utf8_lossy(&rel), "a hard link to a file not brought back")
                    }
                }
            }
            tar::EntryType::Fifo => writer.fifo(&rel, budget)?,
            other => {
                tracing::debug!(path = %String::from_utf8_lossy(&rel), kind = ?other, "not brought back");
            }
        }
    }
    Ok(unchanged)
}

/// Writes a whole folder's archive into `writer`, its top folder being the writer's.
fn unpack_whole(reader: impl Read, writer: &Writer, budget: &mut Budget) -> Result<(), ShipError> {
    let mut archive = tar::Archive::new(reader);
    let mut written: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let entries = archive
        .entries()
        .map_err(|e| ShipError::Read(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ShipError::Read(e.to_string()))?;
        let name = entry.path_bytes().into_owned();
        let name_in = name.strip_prefix(b"./").unwrap_or(&name);
        // The archive's top entry is the folder itself.
        let Some(rel) = name_in
            .iter()
            .position(|&b| b == b'/')
            .map(|i| name_in[i + 1..].to_vec())
            .filter(|r| !r.iter().all(|&b| b == b'/'))
        else {
            continue;
        };
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644);
        match header.entry_type() {
            tar::EntryType::Directory => writer.dir(&rel, mode, budget)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                if writer.file(&rel, mode, size, &mut entry, budget)?.is_some() {
                    written.insert(name.clone(), rel);
                }
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                writer.symlink(&rel, &target, budget)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                if let Some(from) = written.get(&target) {
                    writer.copy(from, &rel, budget)?;
                }
            }
            tar::EntryType::Fifo => writer.fifo(&rel, budget)?,
            // Devices and anything else: never made.
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machines_busybox_is_static_and_tags_name_commit_image_and_uid() {
        assert!(
            static_busybox().is_ok(),
            "install busybox-static (scripts/setup.sh does)"
        );
        assert!(!is_static_elf(Path::new("/usr/bin/git")));
        assert_eq!(
            base_image_tag("0123abcd", "sha256:9cd4d4c678e7aaaa", 1000),
            "handoff-base/0123abcd:9cd4d4c678e7-u1000-l2"
        );
    }

    #[test]
    fn a_workspace_fetched_whole_names_what_it_no_longer_holds_topmost_only() {
        let mut m = Manifest::default();
        for f in ["a/b.txt", "a/c/d.txt", "e.txt", "f.txt"] {
            m.files.insert(Manifest::key(f.as_bytes()), "00".into());
        }
        m.links.insert(Manifest::key(b"l"), Manifest::key(b"e.txt"));
        for d in ["a", "a/c"] {
            m.dirs.insert(Manifest::key(d.as_bytes()));
        }
        let seen = |paths: &[&str]| -> BTreeSet<Vec<u8>> {
            paths.iter().map(|p| p.as_bytes().to_vec()).collect()
        };
        let names = |v: Vec<Vec<u8>>| -> Vec<String> {
            v.into_iter()
                .map(|p| String::from_utf8(p).unwrap())
                .collect()
        };
        // A folder gone with all it held: the folder alone.
        assert_eq!(
            names(gone_since_sent(&m, &seen(&["e.txt", "f.txt", "l"]))),
            ["a"]
        );
        // Files and a link gone from folders that stay.
        assert_eq!(
            names(gone_since_sent(
                &m,
                &seen(&["a", "a/c", "a/b.txt", "f.txt"])
            )),
            ["a/c/d.txt", "e.txt", "l"]
        );
        // Everything there: nothing gone.
        let all = seen(&["a", "a/c", "a/b.txt", "a/c/d.txt", "e.txt", "f.txt", "l"]);
        assert!(gone_since_sent(&m, &all).is_empty());
    }
}

/// What a container sends back is hostile input: the archives below are what a
/// compromised engine, or an agent that found a way to shape them, could send.
#[cfg(test)]
mod attack_tests {
    use super::*;

    /// One raw tar entry, its names written as they are (tar's own builder refuses
    /// hostile names, an attacker's does not).
    fn entry(out: &mut Vec<u8>, name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8]) {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_entry_type(kind);
        h.set_mtime(0);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(&padding(data.len() as u64));
    }

    fn file(out: &mut Vec<u8>, name: &str, data: &[u8]) {
        entry(out, name.as_bytes(), tar::EntryType::Regular, b"", data);
    }

    fn end(mut out: Vec<u8>) -> Vec<u8> {
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn budget() -> Budget {
        Budget {
            bytes: 1 << 20,
            entries: 1000,
            ..Default::default()
        }
    }

    struct Fixture {
        _tmp: tempfile::TempDir,
        outside: PathBuf,
        writer: Writer,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let writer = Writer::create(&tmp.path().join("upper"), None).unwrap();
        Fixture {
            _tmp: tmp,
            outside,
            writer,
        }
    }

    /// The workspace's changes from an archive of the whole workspace, every name
    /// of it wanted (the list of changes is the agent's too).
    fn changes(f: &Fixture, archive: &[u8], wanted: &[&str]) -> Result<(), ShipError> {
        let wanted = wanted.iter().map(|w| w.to_string()).collect();
        let mut b = budget();
        unpack_changes(
            archive,
            "",
            Some(&wanted),
            &Manifest::default(),
            &f.writer,
            &mut b,
            &mut BTreeSet::new(),
        )
        .map(|_| ())
    }

    fn whole(f: &Fixture, archive: &[u8], b: &mut Budget) -> Result<(), ShipError> {
        unpack_whole(archive, &f.writer, b)
    }

    fn nothing_outside(f: &Fixture) {
        let left: Vec<_> = std::fs::read_dir(&f.outside).unwrap().collect();
        assert!(left.is_empty(), "written outside: {left:?}");
    }

    #[test]
    fn base_tags_are_known_as_the_engines_list_them_and_nothing_else_is() {
        let tag = base_image_tag("0123abcd", "sha256:9cd4d4c678e7aa", 1000);
        assert!(is_base_tag(&tag));
        assert!(is_base_tag(&format!("localhost/{tag}")));
        assert!(is_base_tag(&format!("docker.io/{tag}")));
        for other in [
            "handoff-test/busybox-git:1",
            "registry.example.com/handoff-base/x:y",
            "docker.io/library/busybox:1.36",
            "handoff-based/x:y",
        ] {
            assert!(!is_base_tag(other), "{other}");
        }
    }

    #[test]
    fn the_whole_workspace_archive_starts_with_the_workspace_folder_itself() {
        let f = fixture();
        let mut a = vec![];
        entry(&mut a, b"workspace/", tar::EntryType::Directory, b"", b"");
        file(&mut a, "workspace/a.txt", b"x");
        changes(&f, &end(a), &["a.txt"]).unwrap();
        assert_eq!(std::fs::read(f.writer.path().join("a.txt")).unwrap(), b"x");
    }

    #[test]
    fn names_that_climb_out_or_start_at_the_root_are_refused() {
        let f = fixture();
        let climb = format!("workspace/../outside/{}", "x");
        let mut a = vec![];
        file(&mut a, &climb, b"evil");
        let err = changes(&f, &end(a), &["../outside/x"]).unwrap_err();
        assert!(err.to_string().contains("leaves its folder"), "{err}");

        let mut a = vec![];
        file(&mut a, "home/../../outside/x", b"evil");
        let err = whole(&f, &end(a), &mut budget()).unwrap_err();
        assert!(err.to_string().contains("leaves its folder"), "{err}");

        // An archive of another folder than the one asked for is refused whole.
        let mut a = vec![];
        file(&mut a, "etc/passwd", b"evil");
        let wanted = BTreeSet::from(["passwd".to_string()]);
        let err = unpack_changes(
            &end(a)[..],
            "src",
            Some(&wanted),
            &Manifest::default(),
            &f.writer,
            &mut budget(),
            &mut BTreeSet::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        nothing_outside(&f);
    }

    #[test]
    fn a_symlink_in_the_archive_is_data_never_a_way_out() {
        let f = fixture();
        let target = f.outside.display().to_string();
        let mut a = vec![];
        entry(
            &mut a,
            b"workspace/link",
            tar::EntryType::Symlink,
            target.as_bytes(),
            b"",
        );
        file(&mut a, "workspace/link/evil", b"through the link");
        let err = changes(&f, &end(a), &["link", "link/evil"]).unwrap_err();
        assert!(err.to_string().contains("below a symlink"), "{err}");
        nothing_outside(&f);
        // The link itself is kept as a link, pointing where it said (data).
        let link = f.writer.path().join("link");
        assert_eq!(std::fs::read_link(&link).unwrap(), f.outside);

        // A hard link to a host file brings nothing of it.
        let mut a = vec![];
        entry(
            &mut a,
            b"home/stolen",
            tar::EntryType::Link,
            b"/etc/passwd",
            b"",
        );
        whole(&f, &end(a), &mut budget()).unwrap();
        assert!(!f.writer.path().join("stolen").exists());
    }

    #[test]
    fn devices_and_huge_files_are_not_made_and_fifos_stay_inert() {
        let f = fixture();
        let mut a = vec![];
        for (name, kind) in [
            ("home/fifo", tar::EntryType::Fifo),
            ("home/tty", tar::EntryType::Char),
            ("home/disk", tar::EntryType::Block),
        ] {
            entry(&mut a, name.as_bytes(), kind, b"", b"");
        }
        file(&mut a, "home/ok", b"fine");
        whole(&f, &end(a), &mut budget()).unwrap();
        for name in ["tty", "disk"] {
            assert!(
                std::fs::symlink_metadata(f.writer.path().join(name)).is_err(),
                "{name} was made"
            );
        }
        // A FIFO stays one (an inert name the importer lists, never opens).
        use std::os::unix::fs::FileTypeExt;
        let fifo = std::fs::symlink_metadata(f.writer.path().join("fifo")).unwrap();
        assert!(fifo.file_type().is_fifo());
        assert_eq!(std::fs::read(f.writer.path().join("ok")).unwrap(), b"fine");

        // A file larger than what a result may hold is left out from its header,
        // before a byte of it is read or written, and named; what follows comes.
        let mut h = tar::Header::new_ustar();
        h.set_path("home/huge").unwrap();
        h.set_size(1 << 40);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut b = budget();
        // The archive ends inside it: only its header was read.
        assert!(whole(&f, h.as_bytes(), &mut b).is_err());
        assert!(!f.writer.path().join("huge").exists());
        assert_eq!(b.skipped, [b"huge".to_vec()]);
        let mut a = vec![];
        file(&mut a, "home/big", &[7u8; 4096]);
        file(&mut a, "home/after", b"small");
        let mut b = Budget {
            bytes: 1000,
            entries: 10,
            ..Default::default()
        };
        whole(&f, &end(a), &mut b).unwrap();
        assert!(!f.writer.path().join("big").exists());
        assert_eq!(
            std::fs::read(f.writer.path().join("after")).unwrap(),
            b"small"
        );
        assert_eq!(b.skipped, [b"big".to_vec()]);

        // So is a flood of entries.
        let mut a = vec![];
        for i in 0..20 {
            file(&mut a, &format!("home/f{i}"), b"");
        }
        let mut b = Budget {
            bytes: 1 << 20,
            entries: 10,
            ..Default::default()
        };
        let err = whole(&f, &end(a), &mut b).unwrap_err();
        assert!(err.to_string().contains("more entries"), "{err}");
    }
}
