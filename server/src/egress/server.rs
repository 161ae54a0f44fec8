//! The proxy as a long-lived process: its listeners, its control socket, and when it
//! stops (a `shutdown` request, the caller's stop signal, or no task for `idle_exit`).

use std::convert::Infallible;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::control::{serve_control, Pong};
use super::proxy::{Limits, Proxy};
use super::registry::Registry;

/// How to run the proxy; see [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Addresses containers reach the proxy on (the gateway of each internal network;
    /// `127.0.0.1:0` in tests). More can be added at run time with `listen`.
    pub listen: Vec<SocketAddr>,
    /// Path of the control socket, created with mode 0600. Its directory must exist;
    /// a lock file `<path>.lock` beside it keeps a second proxy from taking it over.
    pub control_socket: PathBuf,
    /// Exit after this long with no task registered and no control connection open.
    pub idle_exit: Option<Duration>,
}

/// Runs the proxy until a `shutdown` request or `idle_exit`.
pub async fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    serve_until(opts, std::future::pending()).await
}

/// [`serve`], also stopping when `stop` completes (e.g. on SIGTERM).
pub async fn serve_until(opts: ServeOptions, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
    serve_with_limits(opts, Limits::default(), stop).await
}

pub(crate) async fn serve_with_limits(
    opts: ServeOptions,
    limits: Limits,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (control_listener, control) = ControlSocket::claim(&opts.control_socket)?;
    let shutdown = CancellationToken::new();
    let registry = Arc::new(Registry::new(
        limits.max_connections_per_task,
        shutdown.clone(),
    ));
    let daemon = Arc::new(Daemon {
        connections: Arc::new(Semaphore::new(limits.max_connections)),
        proxy: Arc::new(Proxy::new(registry.clone(), limits)?),
        shutdown: shutdown.clone(),
        control_clients: watch::Sender::new(0),
    });
    // Whatever happens below, the spawned loops end with this function.
    let _stop_all = shutdown.clone().drop_guard();
    for addr in &opts.listen {
        daemon.listen(*addr).await?;
    }
    info!(
        listen = ?daemon.proxy.own_addresses(),
        control = %opts.control_socket.display(),
        "egress proxy serving"
    );
    tokio::spawn(serve_control(control_listener, daemon.clone()));

    let idle = idle_exit(
        opts.idle_exit,
        registry.registered(),
        daemon.control_clients.subscribe(),
    );
    tokio::select! {
        () = shutdown.cancelled() => info!("egress proxy shutting down"),
        () = idle => info!("egress proxy exiting: no task for {:?}", opts.idle_exit),
        () = stop => info!("egress proxy stopped"),
    }
    shutdown.cancel();
    drop(control);
    Ok(())
}

/// State shared by the listeners and the control channel.
pub(crate) struct Daemon {
    pub proxy: Arc<Proxy>,
    pub shutdown: CancellationToken,
    /// Client connections open, across every listener.
    connections: Arc<Semaphore>,
    /// Open control connections: the proxy does not idle out while a front-end talks to it.
    control_clients: watch::Sender<usize>,
}

/// Counts one open control connection while alive.
pub(crate) struct ControlClient<'a>(&'a watch::Sender<usize>);

impl Drop for ControlClient<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Daemon {
    pub fn control_client(&self) -> ControlClient<'_> {
        self.control_clients.send_modify(|n| *n += 1);
        ControlClient(&self.control_clients)
    }

    pub fn pong(&self) -> Pong {
        Pong {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            listen: self.proxy.own_addresses(),
            tasks: *self.proxy.registry.registered().borrow(),
        }
    }

    /// Starts serving on `addr` (see `ControlRequest::Listen`) and returns the address bound.
    pub async fn listen(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let own = self.proxy.own_addresses();
        if let Some(existing) = own
            .iter()
            .find(|o| o.ip() == addr.ip() && (addr.port() == 0 || o.port() == addr.port()))
        {
            return Ok(*existing);
        }
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        self.proxy.add_own_address(bound);
        info!(%bound, "listening");
        tokio::spawn(accept_loop(
            listener,
            self.proxy.clone(),
            self.connections.clone(),
            self.shutdown.clone(),
        ));
        Ok(bound)
    }
}

async fn accept_loop(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    connections: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, typically: wait instead of spinning.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => return,
        };
        let Ok(slot) = connections.clone().try_acquire_owned() else {
            warn!("connection limit reached; closing a new connection");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let header_read_timeout = proxy.limits.header_read_timeout;
            let service = service_fn(move |req| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(proxy.handle(req).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                _ = connection => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

/// Completes after `idle` with no task registered and no control connection open;
/// never when `idle` is `None`.
async fn idle_exit(
    idle: Option<Duration>,
    mut tasks: watch::Receiver<usize>,
    mut clients: watch::Receiver<usize>,
) {
    let Some(idle) = idle else {
        return std::future::pending().await;
    };
    loop {
        let busy = *tasks.borrow_and_update() > 0 || *clients.borrow_and_update() > 0;
        let quiet = async {
            if busy {
                std::future::pending().await
            } else {
                tokio::time::sleep(idle).await
            }
        };
        tokio::select! {
            () = quiet => return,
            _ = tasks.changed() => {}
            _ = clients.changed() => {}
        }
    }
}

/// The control socket's file and the lock that makes it ours; dropping it removes
/// the file.
struct ControlSocket {
    path: PathBuf,
    /// Inode of the socket file we made, so we remove only ours.
    inode: u64,
    _lock: File,
}

impl ControlSocket {
    /// Takes the lock beside `path`, then binds the socket in a private directory,
    /// narrows it to 0600 and renames it into place: there is no moment at which
    /// someone else could connect to it, and a stale socket is replaced atomically.
    fn claim(path: &Path) -> anyhow::Result<(UnixListener, ControlSocket)> {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| {
                format!(
                    "cannot open the egress proxy's lock file {}",
                    Path::new(&lock_path).display()
                )
            })?;
        if lock.try_lock().is_err() {
            bail!(
                "another Handoff egress proxy already serves {}; stop it with its `shutdown` \
                 request or use another control socket",
                path.display()
            );
        }
        lock.set_len(0)?;
        writeln!(lock, "{}", std::process::id())?;

        let staging = tempfile::Builder::new()
            .prefix(".egress-")
            .tempdir_in(parent)
            .with_context(|| {
                format!("cannot create a private directory in {}", parent.display())
            })?;
        fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o700))?;
        let staged = staging.path().join("s");
        let listener = UnixListener::bind(&staged)
            .with_context(|| format!("cannot bind a unix socket in {}", parent.display()))?;
        fs::set_permissions(&staged, fs::Permissions::from_mode(0o600))?;
        fs::rename(&staged, path)
            .with_context(|| format!("cannot move the control socket to {}", path.display()))?;
        let inode = fs::symlink_metadata(path)?.ino();
        let socket = ControlSocket {
            path: path.to_path_buf(),
            inode,
            _lock: lock,
        };
        Ok((listener, socket))
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        if fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = fs::remove_file(&self.path);
        }
    }
}
