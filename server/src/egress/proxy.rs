//! The HTTP side of the proxy: one request in, one decision out.
//!
//! Three kinds of request reach it: `CONNECT host:port` (tunnelled when allowed),
//! absolute-form `GET http://host:port/…` (forwarded when allowed), and gateway requests
//! `/t/<token>/<route>/…` (forwarded to the route's upstream with its credentials).
//! Everything else is refused with a status and a sentence saying why.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tracing::{debug, info};

use super::body::{empty, full, Guarded, ProxyBody};
use super::dial::dial;
use super::headers::strip_hop_by_hop;
use super::registry::{ActiveGrant, ActiveRoute, Registry};
use super::rule::Destination;
use super::tunnel::relay;

/// Every bound the proxy enforces, in one place.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Resolving and connecting to an allowed destination or a route's upstream.
    pub connect_timeout: Duration,
    /// A CONNECT tunnel with no byte either way for this long is closed.
    pub tunnel_idle: Duration,
    /// Waiting for an upstream's response head (model APIs may think for minutes).
    pub response_timeout: Duration,
    /// A response body with no frame for this long is ended.
    pub body_idle: Duration,
    /// A client connection must send a complete request head within this time,
    /// counted from when the proxy starts waiting for it (idle keep-alive included).
    pub header_read_timeout: Duration,
    /// Tunnels and forwarded requests open at once for one task.
    pub max_connections_per_task: usize,
    /// Client connections open at once, all tasks and unauthenticated ones together.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connect_timeout: Duration::from_secs(10),
            tunnel_idle: Duration::from_secs(10 * 60),
            response_timeout: Duration::from_secs(10 * 60),
            body_idle: Duration::from_secs(10 * 60),
            header_read_timeout: Duration::from_secs(30),
            max_connections_per_task: 256,
            max_connections: 4096,
        }
    }
}

pub(crate) struct Proxy {
    pub registry: Arc<Registry>,
    pub limits: Limits,
    /// The addresses the proxy listens on; never a destination.
    own: RwLock<Vec<SocketAddr>>,
    /// Pooled client for gateway upstreams (trusted URLs from the front-end's config).
    upstream: HttpClient<HttpsConnector<HttpConnector>, Incoming>,
}

/// The user part of the proxy URL the container gets: `http://handoff:<token>@…`.
pub(crate) const PROXY_USER: &str = "handoff";

impl Proxy {
    pub fn new(registry: Arc<Registry>, limits: Limits) -> anyhow::Result<Proxy> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(limits.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let upstream = HttpClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(Proxy {
            registry,
            limits,
            own: RwLock::default(),
            upstream,
        })
    }

    pub fn add_own_address(&self, addr: SocketAddr) {
        self.own
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(addr);
    }

    pub fn own_addresses(&self) -> Vec<SocketAddr> {
        self.own.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<ProxyBody> {
        if req.method() == Method::CONNECT {
            return self.connect(req).await;
        }
        if req.uri().authority().is_some() {
            if self.is_own(req.uri()) {
                return self.gateway(req).await;
            }
            return self.forward(req).await;
        }
        if req.uri().path().starts_with("/t/") {
            return self.gateway(req).await;
        }
        text(
            StatusCode::NOT_FOUND,
            "This is Handoff's egress proxy: use it as HTTP(S)_PROXY, or reach a gateway \
             route at /t/<token>/<route>/.\n",
        )
    }

    /// The grant named by `Proxy-Authorization: Basic base64(handoff:<token>)`.
    fn proxy_grant(&self, req: &Request<Incoming>) -> Option<Arc<ActiveGrant>> {
        let value = req
            .headers()
            .get(header::PROXY_AUTHORIZATION)?
            .to_str()
            .ok()?;
        let (scheme, encoded) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, token) = decoded.split_once(':')?;
        if user != PROXY_USER {
            return None;
        }
        self.registry.authenticate(token)
    }

    /// Whether an absolute-form URI points at the proxy itself (a client that sends
    /// gateway requests through its HTTP_PROXY): those are served, not forwarded.
    fn is_own(&self, uri: &Uri) -> bool {
        let (Some(host), Some(scheme)) = (uri.host(), uri.scheme_str()) else {
            return false;
        };
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let Ok(ip) = host.parse::<std::net::IpAddr>() else {
            return false;
        };
        self.own_addresses()
            .iter()
            .any(|own| own.port() == port && own.ip() == ip)
    }

    fn refuse(&self, grant: &ActiveGrant, dest: &Destination) -> Response<ProxyBody> {
        self.registry.record_blocked(&grant.task_key, dest);
        info!(task = %grant.task_key, %dest, "egress blocked");
        let mut response = text(
            StatusCode::FORBIDDEN,
            format!(
                "Blocked by Handoff's egress policy: {dest} is not on this task's allowlist.\n\
                 To allow it, add it to the agent profile: allow = [\"{dest}\"]\n"
            ),
        );
        if let Ok(value) = HeaderValue::from_str(&dest.to_string()) {
            response.headers_mut().insert("x-handoff-blocked", value);
        }
        response
    }

    async fn connect(self: Arc<Self>, mut req: Request<Incoming>) -> Response<ProxyBody> {
        let Some(grant) = self.proxy_grant(&req) else {
            return proxy_auth_required();
        };
        let Some((host, port)) = req
            .uri()
            .authority()
            .and_then(|a| Some((a.host().to_string(), a.port_u16()?)))
        else {
            return text(
                StatusCode::BAD_REQUEST,
                "CONNECT needs a host:port target.\n",
            );
        };
        let dest = match Destination::new(&host, port) {
            Ok(dest) => dest,
            Err(reason) => return text(StatusCode::BAD_REQUEST, format!("{reason}\n")),
        };
        if !grant.allows(&dest) {
            return self.refuse(&grant, &dest);
        }
        let Some(slot) = grant.try_connection() else {
            return too_many(&grant);
        };
        let upstream = match dial(&dest, &self.own_addresses(), self.limits.connect_timeout).await {
            Ok(stream) => stream,
            Err(e) => return dial_failed(&grant, e),
        };
        debug!(task = %grant.task_key, %dest, "tunnel open");
        let on_upgrade = hyper::upgrade::on(&mut req);
        let idle = self.limits.tunnel_idle;
        let cancel = grant.cancel.clone();
        let task_key = grant.task_key.clone();
        // Owned by the grant's cancel token: unregister and shutdown end it.
        tokio::spawn(async move {
            let _slot = slot;
            let upgraded = tokio::select! {
                upgraded = on_upgrade => upgraded,
                () = cancel.cancelled() => return,
            };
            match upgraded {
                Ok(client) => {
                    let end = relay(TokioIo::new(client), upstream, idle, cancel).await;
                    debug!(task = %task_key, %dest, ?end, "tunnel closed");
                }
                Err(e) => debug!(task = %task_key, %dest, "CONNECT upgrade failed: {e}"),
            }
        });
        Response::new(empty())
    }

    async fn forward(self: Arc<Self>, req: Request<Incoming>) -> Response<ProxyBody> {
        let Some(grant) = self.proxy_grant(&req) else {
            return proxy_auth_required();
        };
        if req.uri().scheme_str() != Some("http") {
            return text(
                StatusCode::BAD_REQUEST,
                "Only http:// URLs are forwarded; HTTPS goes through CONNECT (set HTTPS_PROXY).\n",
            );
        }
        let Some(host) = req.uri().host().map(str::to_string) else {
            return text(StatusCode::BAD_REQUEST, "The URL has no host.\n");
        };
        let port = req.uri().port_u16().unwrap_or(80);
        let dest = match Destination::new(&host, port) {
            Ok(dest) => dest,
            Err(reason) => return text(StatusCode::BAD_REQUEST, format!("{reason}\n")),
        };
        if !grant.allows(&dest) {
            return self.refuse(&grant, &dest);
        }
        let Some(slot) = grant.try_connection() else {
            return too_many(&grant);
        };
        let stream = match dial(&dest, &self.own_addresses(), self.limits.connect_timeout).await {
            Ok(stream) => stream,
            Err(e) => return dial_failed(&grant, e),
        };
        let (mut sender, conn) =
            match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                Ok(pair) => pair,
                Err(e) => return bad_gateway(&grant, &dest.to_string(), &e),
            };
        let cancel = grant.cancel.clone();
        // Ends with the response body, or when the grant is withdrawn.
        tokio::spawn(async move {
            tokio::select! {
                _ = conn => {}
                () = cancel.cancelled() => {}
            }
        });

        let (mut parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        parts.uri = match path.parse() {
            Ok(uri) => uri,
            Err(_) => return text(StatusCode::BAD_REQUEST, "The URL's path is invalid.\n"),
        };
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        // The URL, not the Host header, says where the request goes (RFC 9112 §3.2.2).
        let host_header = if port == 80 {
            host
        } else {
            format!("{host}:{port}")
        };
        match HeaderValue::from_str(&host_header) {
            Ok(value) => parts.headers.insert(header::HOST, value),
            Err(_) => return text(StatusCode::BAD_REQUEST, "The URL's host is invalid.\n"),
        };
        let sent = sender.send_request(Request::from_parts(parts, body));
        let response = match tokio::time::timeout(self.limits.response_timeout, sent).await {
            Err(_) => return gateway_timeout(&dest.to_string(), self.limits.response_timeout),
            Ok(Err(e)) => return bad_gateway(&grant, &dest.to_string(), &e),
            Ok(Ok(response)) => response,
        };
        debug!(task = %grant.task_key, %dest, status = %response.status(), "forwarded");
        self.pass_back(response, slot, &grant)
    }

    async fn gateway(self: Arc<Self>, req: Request<Incoming>) -> Response<ProxyBody> {
        let Some(target) = GatewayPath::parse(req.uri().path()) else {
            return text(
                StatusCode::NOT_FOUND,
                "A gateway request looks like /t/<token>/<route>/<path>.\n",
            );
        };
        let Some(grant) = self.registry.authenticate(target.token) else {
            return text(
                StatusCode::FORBIDDEN,
                "Unknown or withdrawn Handoff egress token.\n",
            );
        };
        let Some(route) = grant.route(target.route) else {
            return text(
                StatusCode::NOT_FOUND,
                format!("This task has no gateway route named {:?}.\n", target.route),
            );
        };
        if target.has_dot_segment() {
            return text(
                StatusCode::BAD_REQUEST,
                "A gateway path may not contain \".\" or \"..\" segments.\n",
            );
        }
        let uri = match upstream_uri(&route, target.rest, req.uri().query()) {
            Some(uri) => uri,
            None => return text(StatusCode::BAD_REQUEST, "The gateway path is invalid.\n"),
        };
        let Some(slot) = grant.try_connection() else {
            return too_many(&grant);
        };

        let (mut parts, body) = req.into_parts();
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        // The client set the gateway as Host; the pool sets the upstream's.
        parts.headers.remove(header::HOST);
        for name in &route.strip {
            parts.headers.remove(name);
        }
        for (name, value) in &route.inject {
            parts.headers.insert(name.clone(), value.clone());
        }
        let method = parts.method.clone();
        let sent = self.upstream.request(Request::from_parts(parts, body));
        let response = match tokio::time::timeout(self.limits.response_timeout, sent).await {
            Err(_) => return gateway_timeout(&route.name, self.limits.response_timeout),
            Ok(Err(e)) => return bad_gateway(&grant, &format!("route {}", route.name), &e),
            Ok(Ok(response)) => response,
        };
        debug!(
            task = %grant.task_key,
            route = %route.name,
            %method,
            status = %response.status(),
            "gateway"
        );
        self.pass_back(response, slot, &grant)
    }

    /// An upstream response on its way to the container, streamed.
    fn pass_back(
        &self,
        response: Response<Incoming>,
        slot: tokio::sync::OwnedSemaphorePermit,
        grant: &ActiveGrant,
    ) -> Response<ProxyBody> {
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let body = Guarded::wrap(
            body,
            slot,
            self.limits.body_idle,
            grant.cancel.clone().cancelled_owned(),
        );
        Response::from_parts(parts, body)
    }
}

/// `/t/<token>/<route>/<rest>`, split on the raw (still percent-encoded) path.
struct GatewayPath<'a> {
    token: &'a str,
    route: &'a str,
    /// Without its leading `/`; may be empty.
    rest: &'a str,
}

impl<'a> GatewayPath<'a> {
    fn parse(path: &'a str) -> Option<GatewayPath<'a>> {
        let after = path.strip_prefix("/t/")?;
        let (token, after) = after.split_once('/')?;
        let (route, rest) = after.split_once('/').unwrap_or((after, ""));
        if token.is_empty() || route.is_empty() {
            return None;
        }
        Some(GatewayPath { token, route, rest })
    }

    /// `.` or `..` segments (also percent-encoded) would let a path climb out of the
    /// upstream's base path; the proxy does not guess what the upstream makes of them.
    fn has_dot_segment(&self) -> bool {
        self.rest.split('/').any(|segment| {
            let lower = segment.to_ascii_lowercase().replace("%2e", ".");
            lower == "." || lower == ".."
        })
    }
}

fn upstream_uri(route: &ActiveRoute, rest: &str, query: Option<&str>) -> Option<Uri> {
    let base = route.upstream.as_str().trim_end_matches('/');
    let mut target = format!("{base}/{rest}");
    if let Some(query) = query {
        target.push('?');
        target.push_str(query);
    }
    target.parse().ok()
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<ProxyBody> {
    let mut response = Response::new(full(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn proxy_auth_required() -> Response<ProxyBody> {
    let mut response = text(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        "Handoff's egress proxy needs this task's token: use the HTTPS_PROXY URL Handoff set.\n",
    );
    response.headers_mut().insert(
        header::PROXY_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"handoff\""),
    );
    response
}

fn too_many(grant: &ActiveGrant) -> Response<ProxyBody> {
    info!(task = %grant.task_key, "egress connection limit reached");
    text(
        StatusCode::TOO_MANY_REQUESTS,
        "This task has too many connections open through Handoff's egress proxy.\n",
    )
}

fn dial_failed(grant: &ActiveGrant, error: super::dial::DialError) -> Response<ProxyBody> {
    info!(task = %grant.task_key, "egress connect failed: {error}");
    let status = if error.is_refusal() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::BAD_GATEWAY
    };
    text(status, format!("Handoff's egress proxy: {error}.\n"))
}

fn bad_gateway(
    grant: &ActiveGrant,
    what: &str,
    error: &dyn std::error::Error,
) -> Response<ProxyBody> {
    let mut cause = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        cause.push_str(": ");
        cause.push_str(&inner.to_string());
        source = inner.source();
    }
    info!(task = %grant.task_key, "upstream {what} failed: {cause}");
    text(
        StatusCode::BAD_GATEWAY,
        format!("Handoff's egress proxy could not reach {what}.\n"),
    )
}

fn gateway_timeout(what: &str, after: Duration) -> Response<ProxyBody> {
    text(
        StatusCode::GATEWAY_TIMEOUT,
        format!(
            "{what} did not answer within {}s (Handoff's egress proxy).\n",
            after.as_secs()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_paths() {
        type Parts = Option<(&'static str, &'static str, &'static str)>;
        let cases: &[(&str, Parts)] = &[
            (
                "/t/tok/anthropic/v1/messages",
                Some(("tok", "anthropic", "v1/messages")),
            ),
            ("/t/tok/anthropic/", Some(("tok", "anthropic", ""))),
            ("/t/tok/anthropic", Some(("tok", "anthropic", ""))),
            ("/t/tok/", None),
            ("/t/tok", None),
            ("/t//anthropic/x", None),
            ("/x/tok/anthropic", None),
        ];
        for &(path, want) in cases {
            let got = GatewayPath::parse(path).map(|g| (g.token, g.route, g.rest));
            assert_eq!(got, want, "{path}");
        }
        for (rest, dot) in [
            ("a/../b", true),
            ("%2E%2e/x", true),
            ("./x", true),
            ("a..b/c", false),
        ] {
            let path = format!("/t/tok/r/{rest}");
            assert_eq!(
                GatewayPath::parse(&path).unwrap().has_dot_segment(),
                dot,
                "{rest}"
            );
        }
    }

    #[test]
    fn upstream_uris_keep_the_base_path_and_query() {
        let route = |base: &str| ActiveRoute {
            name: "r".into(),
            upstream: url::Url::parse(base).unwrap(),
            inject: vec![],
            strip: vec![],
        };
        let cases = [
            (
                "https://api.example.com",
                "v1/messages",
                Some("beta=true"),
                "https://api.example.com/v1/messages?beta=true",
            ),
            (
                "https://api.example.com/",
                "",
                None,
                "https://api.example.com/",
            ),
            (
                "http://127.0.0.1:9/api/",
                "v1/x%20y",
                None,
                "http://127.0.0.1:9/api/v1/x%20y",
            ),
        ];
        for (base, rest, query, want) in cases {
            assert_eq!(
                upstream_uri(&route(base), rest, query).unwrap().to_string(),
                want
            );
        }
    }
}
