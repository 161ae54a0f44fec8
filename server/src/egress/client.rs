//! What a front-end uses to talk to a running egress proxy over its control socket.
//!
//! A [`ClientError::NotRunning`] means nothing listens on the socket: start the proxy
//! ([`super::spawn_detached`]) and connect again. Every call is bounded in time, so a
//! wedged proxy cannot hang a front-end.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::control::{ControlReply, ControlRequest, ErrorCode, Pong, MAX_LINE};
use super::grant::Grant;
use super::registry::Blocked;

/// How long one request may take, connect included.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the egress proxy is not running (no answer on {})", path.display())]
    NotRunning {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the egress proxy did not answer within {}s", CALL_TIMEOUT.as_secs())]
    Timeout,
    #[error("lost the connection to the egress proxy")]
    Io(#[from] std::io::Error),
    #[error("the egress proxy sent a reply Handoff does not understand: {0}")]
    Protocol(String),
    #[error("the egress proxy refused: {message}")]
    Refused { code: ErrorCode, message: String },
}

/// One connection to the proxy's control socket; requests are answered in order.
pub struct Client {
    stream: BufReader<UnixStream>,
}

impl Client {
    pub async fn connect(sock_path: &Path) -> Result<Client, ClientError> {
        let connecting = UnixStream::connect(sock_path);
        let stream = match tokio::time::timeout(CALL_TIMEOUT, connecting).await {
            Err(_) => return Err(ClientError::Timeout),
            Ok(Err(source)) => {
                return Err(ClientError::NotRunning {
                    path: sock_path.to_path_buf(),
                    source,
                })
            }
            Ok(Ok(stream)) => stream,
        };
        Ok(Client {
            stream: BufReader::new(stream),
        })
    }

    /// Registers a task, or replaces its grant (what it was refused is kept).
    pub async fn register(&mut self, grant: &Grant) -> Result<(), ClientError> {
        let request = ControlRequest::Register {
            grant: grant.clone(),
        };
        match self.call(&request).await? {
            ControlReply::Registered => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Withdraws a task's grant, ends its connections, and returns what it was
    /// refused: the final list for the task record. Unknown tasks give an empty list.
    pub async fn unregister(&mut self, task_key: &str) -> Result<Vec<Blocked>, ClientError> {
        let request = ControlRequest::Unregister {
            task_key: task_key.to_string(),
        };
        match self.call(&request).await? {
            ControlReply::Unregistered { blocked, .. } => Ok(blocked),
            other => Err(unexpected(other)),
        }
    }

    /// What the task was refused so far; `Refused { code: UnknownTask }` if the proxy
    /// does not know it.
    pub async fn blocked(&mut self, task_key: &str) -> Result<Vec<Blocked>, ClientError> {
        let request = ControlRequest::Blocked {
            task_key: task_key.to_string(),
        };
        match self.call(&request).await? {
            ControlReply::Blocked { blocked } => Ok(blocked),
            other => Err(unexpected(other)),
        }
    }

    /// Makes the proxy listen on one more address; returns the address bound.
    pub async fn listen(&mut self, addr: SocketAddr) -> Result<SocketAddr, ClientError> {
        match self.call(&ControlRequest::Listen { addr }).await? {
            ControlReply::Listening { addr } => Ok(addr),
            other => Err(unexpected(other)),
        }
    }

    pub async fn ping(&mut self) -> Result<Pong, ClientError> {
        match self.call(&ControlRequest::Ping).await? {
            ControlReply::Pong(pong) => Ok(pong),
            other => Err(unexpected(other)),
        }
    }

    /// Stops the proxy; every task's connections end.
    pub async fn shutdown(&mut self) -> Result<(), ClientError> {
        match self.call(&ControlRequest::Shutdown).await? {
            ControlReply::ShuttingDown => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn call(&mut self, request: &ControlRequest) -> Result<ControlReply, ClientError> {
        let mut line =
            serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        let exchange = async {
            self.stream.get_mut().write_all(&line).await?;
            let mut reply = Vec::new();
            (&mut self.stream)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut reply)
                .await?;
            Ok::<_, std::io::Error>(reply)
        };
        let reply = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| ClientError::Timeout)??;
        if reply.is_empty() {
            return Err(ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let reply: ControlReply =
            serde_json::from_slice(&reply).map_err(|e| ClientError::Protocol(e.to_string()))?;
        match reply {
            ControlReply::Error { code, message } => Err(ClientError::Refused { code, message }),
            reply => Ok(reply),
        }
    }
}

fn unexpected(reply: ControlReply) -> ClientError {
    ClientError::Protocol(format!("unexpected reply {reply:?}"))
}
