//! End-to-end tests of the proxy over real sockets, all on 127.0.0.1: a proxy started
//! with `serve`, test servers the tests make, and a container played by raw TCP and
//! hyper clients.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::body::{full, ProxyBody};
use super::client::{Client, ClientError};
use super::proxy::Limits;
use super::server::serve_with_limits;
use super::*;

const SECRET: &str = "sk-ant-api03-the-real-key-that-stays-outside";
const PLACEHOLDER: &str = "placeholder-key-inside-the-container";
const WAIT: Duration = Duration::from_secs(10);

/// A running proxy on 127.0.0.1 with its control socket in a temp dir.
struct Proxy {
    dir: TempDir,
    sock: PathBuf,
    addr: SocketAddr,
    serve: JoinHandle<anyhow::Result<()>>,
}

impl Proxy {
    async fn start() -> Proxy {
        Proxy::start_with(Limits::default(), None).await
    }

    async fn start_with(limits: Limits, idle_exit: Option<Duration>) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("egress.sock");
        let opts = ServeOptions {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            control_socket: sock.clone(),
            idle_exit,
        };
        let serve = tokio::spawn(serve_with_limits(opts, limits, std::future::pending()));
        let pong = connect_when_up(&sock).await.ping().await.unwrap();
        Proxy {
            dir,
            sock,
            addr: pong.listen[0],
            serve,
        }
    }

    async fn client(&self) -> Client {
        Client::connect(&self.sock).await.unwrap()
    }

    async fn register(&self, task_key: &str, allow: &[String], routes: Vec<Route>) -> Grant {
        let grant = Grant {
            task_key: task_key.into(),
            token: new_token().unwrap(),
            allow: allow.iter().map(|r| r.parse().unwrap()).collect(),
            routes,
        };
        self.client().await.register(&grant).await.unwrap();
        grant
    }

    /// Waits for `serve` to return after a shutdown or idle exit.
    async fn exited(&mut self) {
        timeout(WAIT, &mut self.serve)
            .await
            .expect("proxy exits")
            .unwrap()
            .unwrap();
        assert!(!self.sock.exists(), "socket removed at exit");
    }

    async fn blocked(&self, task_key: &str) -> Vec<Blocked> {
        self.client().await.blocked(task_key).await.unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.serve.abort();
    }
}

async fn connect_when_up(sock: &std::path::Path) -> Client {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match Client::connect(sock).await {
            Ok(client) => return client,
            Err(ClientError::NotRunning { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(e) => panic!("proxy did not come up: {e}"),
        }
    }
}

fn basic(user: &str, token: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"));
    format!("Basic {encoded}")
}

/// Sends a raw CONNECT; returns the status, the response body and the stream, which
/// is the tunnel when the status is 200.
async fn connect(
    proxy: SocketAddr,
    target: &str,
    auth: Option<&str>,
) -> (StatusCode, String, HeaderMap, TcpStream) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let auth = auth
        .map(|value| format!("Proxy-Authorization: {value}\r\n"))
        .unwrap_or_default();
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = timeout(WAIT, stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            n,
            1,
            "connection closed mid-head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    // Only a test's view of a response head: status line, then "name: value" lines.
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let code = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let status = StatusCode::from_u16(code).unwrap();
    let mut map = HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').unwrap();
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    let length: usize = map
        .get("content-length")
        .map(|v| v.to_str().unwrap().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    timeout(WAIT, stream.read_exact(&mut body))
        .await
        .unwrap()
        .unwrap();
    (status, String::from_utf8(body).unwrap(), map, stream)
}

/// A TCP server that echoes every byte back.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.into_split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<ProxyBody>> + Send>>
        + Send
        + Sync,
>;

/// An HTTP/1 server answering every request with `handler`.
async fn http_server(handler: Handler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// What a test upstream received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: HeaderMap,
    body: Bytes,
}

/// An HTTP server that records each request and answers 200 "upstream ok".
async fn recording_server() -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let addr = http_server(Arc::new(move |req: Request<Incoming>| {
        let log = log.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            log.lock().unwrap().push(Seen {
                method: parts.method.to_string(),
                target: parts.uri.to_string(),
                headers: parts.headers,
                body,
            });
            Response::new(full("upstream ok"))
        })
    }))
    .await;
    (addr, seen)
}

/// Sends one request to the proxy over a fresh connection.
async fn send(proxy: SocketAddr, request: Request<Full<Bytes>>) -> Response<Incoming> {
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    timeout(WAIT, sender.send_request(request))
        .await
        .unwrap()
        .unwrap()
}

async fn body_text(response: Response<Incoming>) -> String {
    let bytes = timeout(WAIT, response.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn route(name: &str, upstream: SocketAddr) -> Route {
    Route {
        name: name.into(),
        upstream: url::Url::parse(&format!("http://{upstream}")).unwrap(),
        inject: vec![("x-api-key".into(), Secret::new(SECRET))],
        strip: vec!["x-api-key".into(), "authorization".into()],
    }
}

#[tokio::test]
async fn an_allowed_connect_tunnels_bytes_both_ways() {
    let proxy = Proxy::start().await;
    let echo = echo_server().await;
    let grant = proxy.register("repo/1", &[echo.to_string()], vec![]).await;

    let auth = basic("handoff", &grant.token);
    let (status, _, _, mut tunnel) = connect(proxy.addr, &echo.to_string(), Some(&auth)).await;
    assert_eq!(status, StatusCode::OK);
    for message in [&b"hello through the tunnel"[..], &[0u8, 255, 13, 10][..]] {
        tunnel.write_all(message).await.unwrap();
        let mut back = vec![0u8; message.len()];
        timeout(WAIT, tunnel.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, message);
    }
    assert_eq!(proxy.blocked("repo/1").await, vec![]);
}

#[tokio::test]
async fn a_blocked_connect_gets_403_saying_how_to_allow_it_and_is_counted() {
    let proxy = Proxy::start().await;
    let echo = echo_server().await;
    let grant = proxy.register("repo/1", &[], vec![]).await;
    let auth = basic("handoff", &grant.token);

    for _ in 0..2 {
        let (status, body, headers, _) = connect(proxy.addr, &echo.to_string(), Some(&auth)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            body.contains("Blocked by Handoff's egress policy"),
            "{body}"
        );
        assert!(body.contains(&format!("allow = [\"{echo}\"]")), "{body}");
        assert_eq!(headers["x-handoff-blocked"], echo.to_string().as_str());
    }
    // Refused before any lookup: the name need not exist.
    let (status, _, _, _) = connect(proxy.addr, "Exfil.Invalid.:443", Some(&auth)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let blocked = proxy.blocked("repo/1").await;
    assert_eq!(
        blocked,
        vec![
            Blocked {
                host: "127.0.0.1".into(),
                port: echo.port(),
                count: 2
            },
            Blocked {
                host: "exfil.invalid".into(),
                port: 443,
                count: 1
            },
        ]
    );
}

#[tokio::test]
async fn a_wrong_or_missing_token_gets_407_and_is_not_counted() {
    let proxy = Proxy::start().await;
    let echo = echo_server().await;
    let grant = proxy.register("repo/1", &[], vec![]).await;
    let other = new_token().unwrap();

    for auth in [
        None,
        Some(basic("handoff", &other)),
        Some(basic("someone", &grant.token)),
        Some(format!("Bearer {}", grant.token)),
        Some("Basic !!!not-base64".to_string()),
    ] {
        let (status, body, headers, _) =
            connect(proxy.addr, &echo.to_string(), auth.as_deref()).await;
        assert_eq!(
            status,
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "{auth:?}"
        );
        assert_eq!(headers["proxy-authenticate"], "Basic realm=\"handoff\"");
        assert!(body.contains("token"), "{body}");
    }
    assert_eq!(proxy.blocked("repo/1").await, vec![]);
}

#[tokio::test]
async fn the_proxy_never_connects_to_itself() {
    let proxy = Proxy::start().await;
    let grant = proxy
        .register("repo/1", &[proxy.addr.to_string()], vec![])
        .await;
    let auth = basic("handoff", &grant.token);
    let (status, body, _, _) = connect(proxy.addr, &proxy.addr.to_string(), Some(&auth)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("is Handoff's egress proxy itself"), "{body}");
    assert_eq!(proxy.blocked("repo/1").await, vec![]);
}

#[tokio::test]
async fn an_absolute_form_get_is_forwarded_to_an_allowed_server_and_a_blocked_one_recorded() {
    let proxy = Proxy::start().await;
    let (upstream, seen) = recording_server().await;
    let grant = proxy
        .register("repo/1", &[upstream.to_string()], vec![])
        .await;
    let auth = basic("handoff", &grant.token);

    let request = Request::get(format!("http://{upstream}/pkg/left-pad?v=1"))
        .header("proxy-authorization", &auth)
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "for the proxy only")
        .header("x-end-to-end", "kept")
        .body(Full::default())
        .unwrap();
    let response = send(proxy.addr, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response).await, "upstream ok");
    let seen = seen.lock().unwrap()[0].clone();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.target, "/pkg/left-pad?v=1");
    assert_eq!(seen.headers["host"], upstream.to_string().as_str());
    assert_eq!(seen.headers["x-end-to-end"], "kept");
    assert!(seen.headers.get("proxy-authorization").is_none());
    assert!(seen.headers.get("x-hop").is_none());

    let other = echo_server().await;
    let request = Request::get(format!("http://{other}/"))
        .header("proxy-authorization", &auth)
        .body(Full::default())
        .unwrap();
    let response = send(proxy.addr, request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(body_text(response)
        .await
        .contains(&format!("allow = [\"{other}\"]")));

    // Without the token nothing is forwarded, nor counted.
    let request = Request::get(format!("http://{upstream}/"))
        .body(Full::default())
        .unwrap();
    assert_eq!(
        send(proxy.addr, request).await.status(),
        StatusCode::PROXY_AUTHENTICATION_REQUIRED
    );
    assert_eq!(
        proxy.blocked("repo/1").await,
        vec![Blocked {
            host: "127.0.0.1".into(),
            port: other.port(),
            count: 1
        }]
    );
}

#[tokio::test]
async fn the_gateway_injects_the_real_key_in_place_of_the_placeholder() {
    let proxy = Proxy::start().await;
    let (upstream, seen) = recording_server().await;
    let grant = proxy
        .register("repo/1", &[], vec![route("anthropic", upstream)])
        .await;

    let url = format!(
        "{}/v1/messages?beta=true",
        grant.route_url(proxy.addr, "anthropic")
    );
    let path = url.strip_prefix(&format!("http://{}", proxy.addr)).unwrap();
    let request = Request::post(path)
        .header("host", proxy.addr.to_string())
        .header("x-api-key", PLACEHOLDER)
        .header("authorization", format!("Bearer {PLACEHOLDER}"))
        .header("anthropic-version", "2023-06-01")
        .body(Full::new(Bytes::from_static(br#"{"model":"m"}"#)))
        .unwrap();
    let response = send(proxy.addr, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response).await, "upstream ok");

    // A client that sends it through its HTTP_PROXY, ignoring NO_PROXY, gets the same.
    let request = Request::post(&url)
        .header("x-api-key", PLACEHOLDER)
        .body(Full::new(Bytes::from_static(b"second")))
        .unwrap();
    assert_eq!(send(proxy.addr, request).await.status(), StatusCode::OK);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.method, "POST");
        assert_eq!(request.target, "/v1/messages?beta=true");
        assert_eq!(
            request
                .headers
                .get_all("x-api-key")
                .iter()
                .collect::<Vec<_>>(),
            [SECRET]
        );
        assert!(request.headers.get("authorization").is_none());
        assert_eq!(request.headers["host"], upstream.to_string().as_str());
        let all = format!("{:?}", request.headers);
        assert!(!all.contains(PLACEHOLDER), "{all}");
        assert!(!all.contains(&grant.token), "{all}");
    }
    assert_eq!(seen[0].headers["anthropic-version"], "2023-06-01");
    assert_eq!(seen[0].body.as_ref(), br#"{"model":"m"}"#);
    assert_eq!(seen[1].body.as_ref(), b"second");
}

#[tokio::test]
async fn the_gateway_refuses_unknown_tokens_routes_and_dot_segments() {
    let proxy = Proxy::start().await;
    let (upstream, seen) = recording_server().await;
    let grant = proxy
        .register("repo/1", &[], vec![route("anthropic", upstream)])
        .await;
    let cases = [
        (
            format!("/t/{}/anthropic/v1", new_token().unwrap()),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("/t/{}/openai/v1", grant.token),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/t/{}/anthropic/v1/../admin", grant.token),
            StatusCode::BAD_REQUEST,
        ),
        ("/".to_string(), StatusCode::NOT_FOUND),
    ];
    for (path, want) in cases {
        let request = Request::get(&path).body(Full::default()).unwrap();
        assert_eq!(send(proxy.addr, request).await.status(), want, "{path}");
    }
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(proxy.blocked("repo/1").await, vec![]);
}

#[tokio::test]
async fn an_https_upstream_that_fails_its_handshake_is_a_502_not_a_crash() {
    let proxy = Proxy::start().await;
    // Speaks no TLS: the proxy's rustls client sends its hello and gets it echoed back.
    let echo = echo_server().await;
    let mut tls_route = route("anthropic", echo);
    tls_route.upstream = url::Url::parse(&format!("https://{echo}")).unwrap();
    let grant = proxy.register("repo/1", &[], vec![tls_route]).await;
    let request = Request::get(format!("/t/{}/anthropic/v1/models", grant.token))
        .body(Full::default())
        .unwrap();
    let response = send(proxy.addr, request).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(body_text(response)
        .await
        .contains("could not reach route anthropic"));
}

#[tokio::test]
async fn server_sent_events_stream_through_the_gateway() {
    // A stream outlasting the header read timeout is not cut by it.
    let limits = Limits {
        header_read_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let proxy = Proxy::start_with(limits, None).await;
    let (events, receiver) = tokio::sync::mpsc::channel::<&'static str>(4);
    let receiver = Arc::new(Mutex::new(Some(receiver)));
    let upstream = http_server(Arc::new(move |_req| {
        let receiver = receiver.lock().unwrap().take().expect("one request");
        Box::pin(async move {
            let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
                let event = receiver.recv().await?;
                Some((
                    Ok::<_, Infallible>(Frame::data(Bytes::from(event))),
                    receiver,
                ))
            });
            let mut response = Response::new(
                StreamBody::new(stream)
                    .map_err(|e| match e {})
                    .boxed_unsync(),
            );
            response
                .headers_mut()
                .insert("content-type", "text/event-stream".parse().unwrap());
            response
        })
    }))
    .await;
    let grant = proxy
        .register("repo/1", &[], vec![route("anthropic", upstream)])
        .await;

    events
        .send("event: message_start\ndata: one\n\n")
        .await
        .unwrap();
    let request = Request::post(format!("/t/{}/anthropic/v1/messages", grant.token))
        .body(Full::default())
        .unwrap();
    let response = send(proxy.addr, request).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    // The second event is sent only once the first has arrived: a proxy that
    // buffered the response would never deliver either.
    let first = timeout(WAIT, body.frame())
        .await
        .expect("first event streamed");
    let first = first.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first.as_ref(), b"event: message_start\ndata: one\n\n");
    tokio::time::sleep(Duration::from_millis(500)).await;
    events
        .send("event: message_stop\ndata: two\n\n")
        .await
        .unwrap();
    drop(events);
    let rest = timeout(WAIT, body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(rest.as_ref(), b"event: message_stop\ndata: two\n\n");
}

#[tokio::test]
async fn the_control_channel_registers_reports_and_shuts_down() {
    let proxy = Proxy::start().await;
    let mode = std::fs::metadata(&proxy.sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // The private staging directory is gone: only the socket and its lock remain.
    let mut files: Vec<_> = std::fs::read_dir(proxy.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["egress.sock", "egress.sock.lock"]);

    let mut client = proxy.client().await;
    let pong = client.ping().await.unwrap();
    assert_eq!(pong.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(pong.listen, vec![proxy.addr]);
    assert_eq!(pong.tasks, 0);

    // A second proxy cannot take the socket over.
    let second = serve(ServeOptions {
        listen: vec![],
        control_socket: proxy.sock.clone(),
        idle_exit: None,
    })
    .await
    .unwrap_err();
    assert!(second.to_string().contains("already serves"), "{second}");

    let grant = proxy.register("repo/1", &[], vec![]).await;
    assert_eq!(client.ping().await.unwrap().tasks, 1);
    let auth = basic("handoff", &grant.token);
    connect(proxy.addr, "blocked.invalid:443", Some(&auth)).await;
    assert_eq!(
        client.blocked("repo/1").await.unwrap(),
        vec![Blocked {
            host: "blocked.invalid".into(),
            port: 443,
            count: 1
        }]
    );

    let mut bad = grant.clone();
    bad.token = "short".into();
    let err = client.register(&bad).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Refused {
                code: ErrorCode::InvalidGrant,
                ..
            }
        ),
        "{err}"
    );
    let err = client.blocked("repo/unknown").await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Refused {
                code: ErrorCode::UnknownTask,
                ..
            }
        ),
        "{err}"
    );

    // One more listen address, e.g. the gateway of a network made after start.
    assert_eq!(
        client.listen("127.0.0.1:0".parse().unwrap()).await.unwrap(),
        proxy.addr
    );
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let added = client.listen(free).await.unwrap();
    assert_eq!(added, free);
    assert_eq!(client.ping().await.unwrap().listen, vec![proxy.addr, added]);
    let (status, _, _, _) = connect(added, "blocked.invalid:443", Some(&auth)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let blocked = client.unregister("repo/1").await.unwrap();
    assert_eq!(
        blocked,
        vec![Blocked {
            host: "blocked.invalid".into(),
            port: 443,
            count: 2
        }]
    );
    assert_eq!(client.unregister("repo/1").await.unwrap(), vec![]);
    let (status, _, _, _) = connect(proxy.addr, "blocked.invalid:443", Some(&auth)).await;
    assert_eq!(
        status,
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        "token withdrawn"
    );
    assert_eq!(client.ping().await.unwrap().tasks, 0);

    client.shutdown().await.unwrap();
    let mut proxy = proxy;
    proxy.exited().await;
    assert!(matches!(
        Client::connect(&proxy.sock).await,
        Err(ClientError::NotRunning { .. })
    ));
}

#[tokio::test]
async fn an_idle_proxy_exits_by_itself() {
    let mut proxy = Proxy::start_with(Limits::default(), Some(Duration::from_millis(200))).await;
    {
        // An open control connection and a registered task both keep it alive.
        let mut client = proxy.client().await;
        proxy.register("repo/1", &[], vec![]).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!proxy.serve.is_finished());
        client.unregister("repo/1").await.unwrap();
    }
    proxy.exited().await;
}

#[tokio::test]
async fn unregistering_a_task_ends_its_tunnels() {
    let proxy = Proxy::start().await;
    let echo = echo_server().await;
    let grant = proxy.register("repo/1", &[echo.to_string()], vec![]).await;
    let auth = basic("handoff", &grant.token);
    let (status, _, _, mut tunnel) = connect(proxy.addr, &echo.to_string(), Some(&auth)).await;
    assert_eq!(status, StatusCode::OK);
    tunnel.write_all(b"x").await.unwrap();
    let mut byte = [0u8; 1];
    tunnel.read_exact(&mut byte).await.unwrap();

    proxy.client().await.unregister("repo/1").await.unwrap();
    let mut rest = Vec::new();
    timeout(WAIT, tunnel.read_to_end(&mut rest))
        .await
        .expect("tunnel closed")
        .unwrap();
}

#[tokio::test]
async fn connections_per_task_are_bounded() {
    let limits = Limits {
        max_connections_per_task: 1,
        ..Limits::default()
    };
    let proxy = Proxy::start_with(limits, None).await;
    let echo = echo_server().await;
    let grant = proxy.register("repo/1", &[echo.to_string()], vec![]).await;
    let auth = basic("handoff", &grant.token);

    let (status, _, _, first) = connect(proxy.addr, &echo.to_string(), Some(&auth)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _, _) = connect(proxy.addr, &echo.to_string(), Some(&auth)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _, _, _) = connect(proxy.addr, &echo.to_string(), Some(&auth)).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_is_dropped() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let proxy = Proxy::start_with(limits, None).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: ")
        .await
        .unwrap();
    let mut rest = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut rest))
        .await
        .expect("connection closed by the proxy")
        .ok();
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn neither_the_secret_nor_the_token_reaches_the_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime has one thread, so every task of the proxy logs here.
    let _guard = tracing::subscriber::set_default(subscriber);

    let proxy = Proxy::start().await;
    let (upstream, _) = recording_server().await;
    let grant = proxy
        .register("repo/1", &[], vec![route("anthropic", upstream)])
        .await;
    let request = Request::post(format!("/t/{}/anthropic/v1/messages", grant.token))
        .header("x-api-key", PLACEHOLDER)
        .body(Full::default())
        .unwrap();
    assert_eq!(send(proxy.addr, request).await.status(), StatusCode::OK);
    let auth = basic("handoff", &grant.token);
    connect(proxy.addr, "blocked.invalid:443", Some(&auth)).await;
    let mut bad = grant.clone();
    bad.routes[0].inject[0].0 = "bad header".into();
    proxy.client().await.register(&bad).await.unwrap_err();
    proxy.client().await.unregister("repo/1").await.unwrap();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for expected in ["registered", "gateway", "egress blocked", "unregistered"] {
        assert!(log.contains(expected), "{expected:?} missing from:\n{log}");
    }
    assert!(!log.contains(SECRET), "{log}");
    assert!(!log.contains(&grant.token), "{log}");
}
