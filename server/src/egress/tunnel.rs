//! Relaying an accepted CONNECT: bytes both ways until both sides have finished, the
//! tunnel has been quiet for the idle bound, or the task's grant is withdrawn.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How a tunnel ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TunnelEnd {
    /// Both sides closed (or one failed).
    Closed,
    /// No byte in either direction for the idle bound.
    Idle,
    /// The task was unregistered or the proxy is shutting down.
    Cancelled,
}

pub(crate) async fn relay<C, U>(
    client: C,
    upstream: U,
    idle: Duration,
    cancel: CancellationToken,
) -> TunnelEnd
where
    C: AsyncRead + AsyncWrite,
    U: AsyncRead + AsyncWrite,
{
    let start = Instant::now();
    // Milliseconds since `start` of the last byte seen in either direction.
    let last_activity = AtomicU64::new(0);
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut upstream_read, mut upstream_write) = tokio::io::split(upstream);

    let both_ways = async {
        tokio::join!(
            pump(&mut client_read, &mut upstream_write, &last_activity, start),
            pump(&mut upstream_read, &mut client_write, &last_activity, start),
        )
    };
    let watchdog = async {
        loop {
            let last = Duration::from_millis(last_activity.load(Ordering::Relaxed));
            let deadline = start + last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    };
    tokio::select! {
        _ = both_ways => TunnelEnd::Closed,
        () = watchdog => TunnelEnd::Idle,
        () = cancel.cancelled() => TunnelEnd::Cancelled,
    }
}

/// Copies one direction; at end of input, shuts down the other side's write half so
/// the peer sees the half-close.
async fn pump<R, W>(reader: &mut R, writer: &mut W, last_activity: &AtomicU64, start: Instant)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = start.elapsed().as_millis() as u64;
        last_activity.store(now, Ordering::Relaxed);
        if writer.write_all(&buf[..n]).await.is_err() {
            break;
        }
        let now = start.elapsed().as_millis() as u64;
        last_activity.store(now, Ordering::Relaxed);
    }
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_flow_both_ways_and_half_close_propagates() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (upstream, mut upstream_peer) = tokio::io::duplex(64);
        let relay = tokio::spawn(relay(
            client,
            upstream,
            Duration::from_secs(5),
            CancellationToken::new(),
        ));
        client_peer.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        upstream_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        upstream_peer.write_all(b"pong").await.unwrap();
        client_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        client_peer.shutdown().await.unwrap();
        let mut rest = Vec::new();
        upstream_peer.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        drop(upstream_peer);
        assert_eq!(relay.await.unwrap(), TunnelEnd::Closed);
    }

    #[tokio::test]
    async fn a_quiet_tunnel_ends_after_the_idle_bound() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (upstream, _upstream_peer) = tokio::io::duplex(64);
        let relay = tokio::spawn(relay(
            client,
            upstream,
            Duration::from_millis(200),
            CancellationToken::new(),
        ));
        // Traffic keeps it open past the bound…
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            client_peer.write_all(b"x").await.unwrap();
        }
        assert!(!relay.is_finished());
        // …silence ends it.
        let end = tokio::time::timeout(Duration::from_secs(5), relay)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(end, TunnelEnd::Idle);
    }

    #[tokio::test]
    async fn cancelling_the_grant_ends_the_tunnel() {
        let (client, _c) = tokio::io::duplex(64);
        let (upstream, _u) = tokio::io::duplex(64);
        let cancel = CancellationToken::new();
        let relay = tokio::spawn(relay(
            client,
            upstream,
            Duration::from_secs(60),
            cancel.clone(),
        ));
        cancel.cancel();
        assert_eq!(relay.await.unwrap(), TunnelEnd::Cancelled);
    }
}
