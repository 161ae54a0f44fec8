//! Header hygiene for forwarded messages: what belongs to one hop and must not be
//! passed on (RFC 9110 §7.6.1), and the proxy's own credentials.

use http::header::{self, HeaderMap, HeaderName};

/// Headers that describe one connection, not the message.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, those the `Connection` header names, `Upgrade` (the
/// proxy forwards no protocol switch) and `Proxy-Authorization`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// Headers a route may neither inject nor strip: they frame the message or address
/// the hop, and the proxy sets them itself.
pub(crate) fn is_framing_or_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
        || [header::HOST, header::CONTENT_LENGTH, header::UPGRADE].contains(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic abc"),
            ("x-private", "1"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("accept", "text/event-stream"),
            ("content-length", "3"),
        ] {
            h.append(name, value.parse().unwrap());
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["accept", "content-length"]);
    }
}
