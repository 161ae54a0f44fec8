//! Opening the proxy's side of an allowed connection: resolving the name itself (the
//! container has no resolver that reaches out) and connecting within a time bound.
//!
//! Two refusals live here because only the resolved address reveals them: the proxy
//! never connects to one of its own listen addresses (a loop), and a *name* rule never
//! reaches a loopback, link-local (cloud metadata), multicast or unspecified address:
//! the proxy runs on the user's host, so `evil.example → 127.0.0.1` would otherwise
//! open the host's local services to the agent. Allowing such an address takes a rule
//! that spells it (`"127.0.0.1:8080"`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::rule::{canonical_ip, Destination, Host};

#[derive(Debug, thiserror::Error)]
pub(crate) enum DialError {
    #[error("could not resolve {dest}: {source}")]
    Resolve {
        dest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{dest} resolved to no address")]
    NoAddress { dest: String },
    #[error("{dest} is Handoff's egress proxy itself")]
    Itself { dest: String },
    #[error(
        "{dest} resolves only to local or link-local addresses ({addrs}), which a host \
         name rule never reaches; allow the address itself if that is intended"
    )]
    LocalAddress { dest: String, addrs: String },
    #[error("could not connect to {dest} within {}s", .after.as_secs())]
    Timeout { dest: String, after: Duration },
    #[error("could not connect to {dest}: {source}")]
    Connect {
        dest: String,
        #[source]
        source: std::io::Error,
    },
}

impl DialError {
    /// Refusals the proxy decided (as opposed to the network failing).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            DialError::Itself { .. } | DialError::LocalAddress { .. }
        )
    }
}

/// Connects to `dest`, trying its addresses in resolver order until one answers, all
/// within `budget`.
pub(crate) async fn dial(
    dest: &Destination,
    own: &[SocketAddr],
    budget: Duration,
) -> Result<TcpStream, DialError> {
    let deadline = Instant::now() + budget;
    let shown = dest.to_string();
    let timeout = || DialError::Timeout {
        dest: shown.clone(),
        after: budget,
    };
    let candidates: Vec<SocketAddr> = match &dest.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, dest.port)],
        Host::Name(name) => {
            let resolved = timeout_at(
                deadline,
                tokio::net::lookup_host((name.as_str(), dest.port)),
            )
            .await
            .map_err(|_| timeout())?
            .map_err(|source| DialError::Resolve {
                dest: shown.clone(),
                source,
            })?
            .collect::<Vec<_>>();
            let (public, local): (Vec<_>, Vec<_>) =
                resolved.into_iter().partition(|a| !is_local(a.ip()));
            if public.is_empty() && !local.is_empty() {
                let addrs = local
                    .iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(DialError::LocalAddress { dest: shown, addrs });
            }
            public
        }
    };
    let (own_hits, candidates): (Vec<_>, Vec<_>) =
        candidates.into_iter().partition(|a| is_own(*a, own));
    if candidates.is_empty() {
        return Err(if own_hits.is_empty() {
            DialError::NoAddress { dest: shown }
        } else {
            DialError::Itself { dest: shown }
        });
    }

    let mut last_error = None;
    for addr in candidates {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(timeout()),
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last_error = Some(e),
        }
    }
    Err(DialError::Connect {
        dest: shown,
        source: last_error.unwrap_or_else(|| std::io::Error::other("no address")),
    })
}

/// Addresses a host name must not lead to (see the module docs).
fn is_local(ip: IpAddr) -> bool {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unicast_link_local()
        }
    }
}

/// Whether `addr` reaches one of the proxy's listeners.
fn is_own(addr: SocketAddr, own: &[SocketAddr]) -> bool {
    let ip = canonical_ip(addr.ip());
    own.iter().any(|listen| {
        listen.port() == addr.port()
            && (canonical_ip(listen.ip()) == ip
                || listen.ip().is_unspecified()
                || ip.is_unspecified())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_own_addresses() {
        for (ip, local) in [
            ("127.0.0.1", true),
            ("127.5.0.1", true),
            ("0.0.0.0", true),
            ("169.254.169.254", true),
            ("224.0.0.1", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("fe80::1", true),
            ("10.0.0.5", false),
            ("192.168.1.1", false),
            ("2001:db8::1", false),
        ] {
            assert_eq!(is_local(ip.parse().unwrap()), local, "{ip}");
        }
        let own: Vec<SocketAddr> = vec!["172.18.0.1:3128".parse().unwrap()];
        assert!(is_own("172.18.0.1:3128".parse().unwrap(), &own));
        assert!(is_own("[::ffff:172.18.0.1]:3128".parse().unwrap(), &own));
        assert!(is_own("0.0.0.0:3128".parse().unwrap(), &own));
        assert!(!is_own("172.18.0.1:3129".parse().unwrap(), &own));
        assert!(!is_own("172.18.0.2:3128".parse().unwrap(), &own));
        let any: Vec<SocketAddr> = vec!["0.0.0.0:3128".parse().unwrap()];
        assert!(is_own("10.1.2.3:3128".parse().unwrap(), &any));
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused() {
        let dest = Destination::new("localhost", 9).unwrap();
        let err = dial(&dest, &[], Duration::from_secs(5)).await.unwrap_err();
        assert!(err.is_refusal(), "{err}");
        assert!(err.to_string().contains("never reaches"), "{err}");
    }
}
