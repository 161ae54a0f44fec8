//! `handoff.trust`, and asking the user once per repository whose own configuration
//! is not trusted: until it is, the settings of it that would widen the sandbox are
//! ignored (see `crate::trust`), which the user should hear about where they work.

use std::sync::Arc;

use tower_lsp_server::ls_types::MessageType;

use crate::lsp::convert::to_proto;
use crate::lsp::error::{ErrorKind, LspError};
use crate::lsp::ext::{TrustArgs, TrustQuestion, TrustResult};
use crate::lsp::server::Server;
use crate::lsp::session::Repo;
use crate::sandbox::Sandbox;

pub async fn trust<S: Sandbox>(
    server: &Arc<Server<S>>,
    args: TrustArgs,
) -> Result<TrustResult, LspError> {
    let repo = server
        .session
        .with_current_config(server.session.repo_for_uri(args.uri.as_ref())?)?;
    let trusted = trust_repo(server, &repo, args.sha256.as_deref());
    if matches!(&trusted, Err(e) if e.kind == ErrorKind::StaleDocument) {
        ask_about_new_content(server, repo);
    }
    trusted
}

/// The content changed since the user was asked about it: asks about the new content.
fn ask_about_new_content<S: Sandbox>(server: &Arc<Server<S>>, repo: Arc<Repo<S>>) {
    if let Ok(repo) = server.session.with_current_config(repo) {
        ask_once(server, repo);
    }
}

/// Trusts the repository's configuration as it is now (only if it is still `expected`,
/// when given) and forgets the repository, so that it is read again in full.
fn trust_repo<S: Sandbox>(
    server: &Server<S>,
    repo: &Repo<S>,
    expected: Option<&str>,
) -> Result<TrustResult, LspError> {
    let workdir = repo.workdir().to_path_buf();
    let applied = repo.engine().config().ignored.clone();
    let recorded = crate::trust::trust_if(&workdir, expected)
        .map_err(|e| LspError::failed(format!("cannot record the trust: {e}")))?;
    let trusted = match recorded {
        crate::trust::Recorded::Trusted(_) => true,
        crate::trust::Recorded::NoConfig => false,
        crate::trust::Recorded::Changed => {
            return Err(LspError::stale(format!(
                "the configuration of {} changed since you were asked about it, so it was not \
                 trusted; review the new content, then trust it",
                workdir.display()
            )))
        }
    };
    // The next use of the repository reads its configuration again, in full.
    server.session.forget_repo(&workdir);
    Ok(TrustResult {
        repository: workdir.display().to_string(),
        trusted,
        applied,
    })
}

/// Once per repository, configuration content and server: when the configuration is
/// not trusted and settings of it are ignored, asks the user (in the background; the
/// answer may never come). Content that changed since it was last asked about (or
/// trusted) is asked about again.
pub fn ask_once<S: Sandbox>(server: &Arc<Server<S>>, repo: Arc<Repo<S>>) {
    let config = repo.engine().config();
    if config.trust.is_trusted() || config.ignored.is_empty() {
        return;
    }
    let Some(sha256) = config.trust.sha256() else {
        return;
    };
    if !server.session.first_trust_question(repo.workdir(), sha256) {
        return;
    }
    let question = format!(
        "Handoff: this repository's .handoff.toml is not trusted, so these settings of it \
         are ignored: {}. Trust it as it is now (like `handoff trust`)?",
        config.ignored.join(", ")
    );
    let actions = to_proto::trust_question_actions(&TrustQuestion {
        repository: repo.name(),
        ignored: config.ignored.clone(),
        sha256: sha256.to_string(),
    });
    let asked = sha256.to_string();
    let server = server.clone();
    server.session.spawn({
        let server = server.clone();
        async move {
            let picked = server.editor.ask_with(&question, actions).await;
            if picked.as_deref() != Some("Trust") {
                return;
            }
            let said = match trust_repo(&server, &repo, Some(&asked)) {
                Ok(r) => format!(
                    "Handoff: trusted {}'s configuration as it is now{}",
                    r.repository,
                    if r.applied.is_empty() {
                        String::new()
                    } else {
                        format!("; now applied: {}", r.applied.join(", "))
                    }
                ),
                Err(e) => {
                    if e.kind == ErrorKind::StaleDocument {
                        ask_about_new_content(&server, repo);
                    }
                    format!("Handoff: {}", e.message)
                }
            };
            server.editor.show_message(MessageType::INFO, said).await;
        }
    });
}
