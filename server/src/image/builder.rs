//! The engine side of image building, through bollard: look an image up, build a
//! context with the classic builder and no network, import a root file system, tag.

use std::collections::HashMap;

use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateImageOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::context::BuildContext;
use super::ImageError;

fn engine_err(what: impl Into<String>) -> impl FnOnce(BollardError) -> ImageError {
    let what = what.into();
    move |e| ImageError::Engine {
        what,
        message: e.to_string(),
    }
}

/// The image's id, or `None` when the engine has no such image.
pub async fn image_id(docker: &Docker, image: &str) -> Result<Option<String>, ImageError> {
    match docker.inspect_image(image).await {
        Ok(inspect) => Ok(Some(inspect.id.unwrap_or_default())),
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(engine_err(format!("cannot inspect image {image}"))(e)),
    }
}

/// Splits `repo[:tag]` as Docker does: a colon after the last slash starts the tag.
pub fn split_reference(reference: &str) -> Result<(&str, &str), ImageError> {
    if reference.contains('@') {
        return Err(ImageError::Engine {
            what: format!("cannot tag an image as {reference}"),
            message: "a digest reference names an image in a registry; set the profile's `image` to a name with a tag".into(),
        });
    }
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => Ok((
            &reference[..name_start + i],
            &reference[name_start + i + 1..],
        )),
        None => Ok((reference, "latest")),
    }
}

/// Tags `image` (a name or an id) as `reference`, replacing what that name pointed to.
pub async fn tag(docker: &Docker, image: &str, reference: &str) -> Result<(), ImageError> {
    let (repo, tag) = split_reference(reference)?;
    let options = TagImageOptionsBuilder::default()
        .repo(repo)
        .tag(tag)
        .build();
    docker
        .tag_image(image, Some(options))
        .await
        .map_err(engine_err(format!("cannot tag {image} as {reference}")))
}

pub struct Build<'a> {
    pub context: BuildContext,
    /// The Dockerfile's path in the context.
    pub dockerfile: &'a str,
    pub tag: &'a str,
    pub build_args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    /// The stage of a multi-stage Dockerfile to build (its last when `None`).
    pub target: Option<&'a str>,
}

/// Builds with the classic builder and network `none`, forwarding the builder's
/// output lines to `progress`. A failing step is named in the error.
pub async fn build(
    docker: &Docker,
    build: Build<'_>,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ImageError> {
    let mut options = BuildImageOptionsBuilder::default();
    if let Some(target) = build.target {
        options = options.target(target);
    }
    let options = options
        .dockerfile(build.dockerfile)
        .t(build.tag)
        .networkmode("none")
        .buildargs(&build.build_args)
        .labels(&build.labels)
        .rm(true)
        .forcerm(true)
        .build();
    let body = bollard::body_try_stream(build.context.into_tar_stream());
    let mut stream = docker.build_image(options, None, Some(body));
    let mut step = String::from("before the first step (reading the build context)");
    let mut output = String::new();
    let failed = |step: &str, message: String| ImageError::BuildFailed {
        image: build.tag.to_string(),
        step: step.to_string(),
        message: message.trim().to_string(),
    };
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            // bollard turns an `errorDetail` into this error.
            Err(BollardError::DockerStreamError { error }) => return Err(failed(&step, error)),
            Err(e) => return Err(failed(&step, e.to_string())),
        };
        if let Some(detail) = info.error_detail {
            return Err(failed(&step, detail.message.unwrap_or_default()));
        }
        if let Some(text) = info.stream {
            // Lines may arrive split across messages; forward whole lines only.
            output.push_str(&text);
            while let Some(end) = output.find('\n') {
                let line: String = output.drain(..=end).collect();
                let line = line.trim_end();
                if line.starts_with("Step ") {
                    step = line.to_string();
                }
                if !line.trim().is_empty() {
                    progress(line);
                }
            }
        }
    }
    if !output.trim().is_empty() {
        progress(output.trim_end());
    }
    Ok(())
}

/// `docker import`: makes the image `repo:tag` from a root file system tar stream.
pub async fn import_rootfs(
    docker: &Docker,
    rootfs: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    reference: &str,
    changes: &[&str],
) -> Result<(), ImageError> {
    let (repo, tag) = split_reference(reference)?;
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .changes(changes.iter().map(|c| c.to_string()).collect())
        .build();
    let body = bollard::body_try_stream(rootfs);
    let mut stream = docker.create_image(Some(options), Some(body), None);
    while let Some(item) = stream.next().await {
        item.map_err(engine_err(format!(
            "cannot import the root file system as {reference}"
        )))?;
    }
    Ok(())
}

/// Removes an image by name, if there; used to drop a half-made one.
pub async fn remove(docker: &Docker, image: &str) {
    let _ = docker
        .remove_image(
            image,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag_colon() {
        let cases = [
            ("handoff/claude:latest", ("handoff/claude", "latest")),
            ("handoff/claude", ("handoff/claude", "latest")),
            (
                "localhost:5000/team/agent:v2",
                ("localhost:5000/team/agent", "v2"),
            ),
            (
                "localhost:5000/team/agent",
                ("localhost:5000/team/agent", "latest"),
            ),
            ("busybox:1.36", ("busybox", "1.36")),
        ];
        for (reference, want) in cases {
            assert_eq!(split_reference(reference).unwrap(), want, "{reference}");
        }
        assert!(split_reference("x@sha256:abc").is_err());
    }
}
