//! The control channel: front-ends register and withdraw tasks over a unix socket,
//! one JSON request per line, one JSON reply per line.
//!
//! ```text
//! → {"op":"register","grant":{"task_key":"r/12","token":"…","allow":["x.example:443"],"routes":[]}}
//! ← {"reply":"registered"}
//! → {"op":"blocked","task_key":"r/12"}
//! ← {"reply":"blocked","blocked":[{"host":"evil.example","port":443,"count":2}]}
//! ```
//!
//! The socket is mode 0600: whoever can connect is the user, and may read back nothing
//! secret (no reply carries a token or an injected value).

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, info, warn};

use super::grant::Grant;
use super::registry::Blocked;
use super::server::Daemon;

/// Longest request line accepted: a grant with a few routes is a few kilobytes.
pub(crate) const MAX_LINE: usize = 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Adds a task or replaces its grant (its blocked counts are kept).
    Register {
        grant: Grant,
    },
    /// Removes a task, ends its connections, and returns what it was refused.
    Unregister {
        task_key: String,
    },
    /// What the task was refused so far.
    Blocked {
        task_key: String,
    },
    /// Listens on one more address (e.g. the gateway of a network made after start);
    /// port 0 reuses the port of a listener already on that IP, or picks one.
    Listen {
        addr: SocketAddr,
    },
    Ping,
    /// Replies, then stops the proxy.
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum ControlReply {
    Registered,
    Unregistered { found: bool, blocked: Vec<Blocked> },
    Blocked { blocked: Vec<Blocked> },
    Listening { addr: SocketAddr },
    Pong(Pong),
    ShuttingDown,
    Error { code: ErrorCode, message: String },
}

/// What `ping` tells about the running proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// Handoff's version, to restart a proxy left by an older front-end.
    pub version: String,
    pub pid: u32,
    /// Every address the proxy listens on, with the ports actually bound.
    pub listen: Vec<SocketAddr>,
    /// Tasks registered now.
    pub tasks: usize,
}

/// Why a request was refused, for programs; the message is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line was not a request (bad JSON, unknown op, too long).
    BadRequest,
    /// `register` refused the grant; the message says which field.
    InvalidGrant,
    /// No task is registered under that key (after a proxy restart, for one).
    UnknownTask,
    /// `listen` could not bind the address.
    ListenFailed,
}

pub(crate) async fn serve_control(listener: UnixListener, daemon: Arc<Daemon>) {
    let shutdown = daemon.shutdown.clone();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    warn!("control socket accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => return,
        };
        let daemon = daemon.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _client = daemon.control_client();
            tokio::select! {
                () = connection(stream, &daemon) => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

async fn connection(stream: UnixStream, daemon: &Daemon) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                debug!("control connection read failed: {e}");
                return;
            }
        }
        let too_long = line.len() > MAX_LINE;
        let (reply, stop) = if too_long {
            (
                error(
                    ErrorCode::BadRequest,
                    format!("request longer than {MAX_LINE} bytes"),
                ),
                false,
            )
        } else {
            match serde_json::from_slice::<ControlRequest>(&line) {
                Ok(ControlRequest::Shutdown) => (ControlReply::ShuttingDown, true),
                Ok(request) => (handle(request, daemon).await, false),
                // serde's message may quote the line, and a register line carries
                // secrets: it goes back to the sender only, never to the log.
                Err(e) => (error(ErrorCode::BadRequest, e.to_string()), false),
            }
        };
        let mut out = serde_json::to_vec(&reply).unwrap_or_default();
        out.push(b'\n');
        if write.write_all(&out).await.is_err() || write.flush().await.is_err() {
            return;
        }
        if stop {
            info!("shutdown requested on the control socket");
            daemon.shutdown.cancel();
            return;
        }
        if too_long {
            // The rest of the oversized line would parse as garbage.
            return;
        }
    }
}

async fn handle(request: ControlRequest, daemon: &Daemon) -> ControlReply {
    let registry = &daemon.proxy.registry;
    match request {
        ControlRequest::Register { grant } => {
            let task_key = grant.task_key.clone();
            match registry.register(grant) {
                Ok(()) => {
                    info!(task = %task_key, "registered");
                    ControlReply::Registered
                }
                Err(e) => error(ErrorCode::InvalidGrant, e.to_string()),
            }
        }
        ControlRequest::Unregister { task_key } => {
            let found = registry.unregister(&task_key);
            info!(task = %task_key, found = found.is_some(), "unregistered");
            ControlReply::Unregistered {
                found: found.is_some(),
                blocked: found.unwrap_or_default(),
            }
        }
        ControlRequest::Blocked { task_key } => match registry.blocked(&task_key) {
            Some(blocked) => ControlReply::Blocked { blocked },
            None => error(
                ErrorCode::UnknownTask,
                format!("no task {task_key:?} is registered with the egress proxy"),
            ),
        },
        ControlRequest::Listen { addr } => match daemon.listen(addr).await {
            Ok(addr) => ControlReply::Listening { addr },
            Err(e) => error(ErrorCode::ListenFailed, format!("listen on {addr}: {e}")),
        },
        ControlRequest::Ping => ControlReply::Pong(daemon.pong()),
        ControlRequest::Shutdown => ControlReply::ShuttingDown,
    }
}

fn error(code: ErrorCode, message: String) -> ControlReply {
    ControlReply::Error { code, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let request: ControlRequest =
            serde_json::from_str(r#"{"op":"unregister","task_key":"r/1"}"#).unwrap();
        assert!(matches!(request, ControlRequest::Unregister { task_key } if task_key == "r/1"));
        let reply = ControlReply::Blocked {
            blocked: vec![Blocked {
                host: "evil.example".into(),
                port: 443,
                count: 2,
            }],
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"reply":"blocked","blocked":[{"host":"evil.example","port":443,"count":2}]}"#
        );
        let reply = error(ErrorCode::UnknownTask, "no".into());
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"reply":"error","code":"unknown_task","message":"no"}"#
        );
        let pong = ControlReply::Pong(Pong {
            version: "1".into(),
            pid: 7,
            listen: vec!["127.0.0.1:3128".parse().unwrap()],
            tasks: 0,
        });
        let json = serde_json::to_string(&pong).unwrap();
        assert_eq!(
            json,
            r#"{"reply":"pong","version":"1","pid":7,"listen":["127.0.0.1:3128"],"tasks":0}"#
        );
        assert_eq!(serde_json::from_str::<ControlReply>(&json).unwrap(), pong);
    }
}
