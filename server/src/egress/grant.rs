//! What a front-end registers for a task: its token, its allowlist and its gateway
//! routes with the credentials to inject.
//!
//! Secret values only travel from the front-end to the proxy over the control socket;
//! every `Debug` here redacts them, and nothing in `egress/` writes them anywhere.

use std::collections::HashSet;
use std::fmt;

use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use url::Url;

use super::rule::Rule;

/// A task's permission to go out through the proxy.
#[derive(Clone, Serialize, Deserialize)]
pub struct Grant {
    /// Identifies the task in `blocked` and `unregister`, e.g. `"<repo-key>/<task-id>"`.
    pub task_key: String,
    /// What the container presents: `Proxy-Authorization: Basic base64(handoff:<token>)`
    /// or the path prefix `/t/<token>/`. Make it with [`new_token`].
    pub token: String,
    /// Destinations the container may reach through CONNECT or absolute-form HTTP.
    pub allow: Vec<Rule>,
    /// Upstreams reached through the gateway at `/t/<token>/<route.name>/…`.
    pub routes: Vec<Route>,
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("task_key", &self.task_key)
            .field("token", &"<redacted>")
            .field("allow", &self.allow)
            .field("routes", &self.routes)
            .finish()
    }
}

/// A gateway route: requests to `/t/<token>/<name>/<rest>` go to `<upstream>/<rest>`
/// with the `strip` headers removed and the `inject` headers set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Route {
    /// Path segment naming the route, e.g. `"anthropic"`: lowercase letters, digits, `-`, `_`.
    pub name: String,
    /// `http` or `https` base URL, e.g. `https://api.anthropic.com`; a path is kept as a prefix.
    pub upstream: Url,
    /// Headers set on every request, replacing what the client sent under that name.
    pub inject: Vec<(String, Secret)>,
    /// Headers removed from every request (the placeholders the agent sends).
    pub strip: Vec<String>,
}

/// A credential value. Its `Debug` never shows it; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A fresh token: 256 random bits as 64 lowercase hex digits, safe in a URL path and
/// in the user part of `http://handoff:<token>@host:port`.
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Shortest token accepted: 32 hex digits or 22 base64url characters carry ≥ 128 bits.
const MIN_TOKEN_LEN: usize = 22;
const MAX_TOKEN_LEN: usize = 256;
const MAX_TASK_KEY_LEN: usize = 512;

/// Why a grant was refused at `register`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("task key is empty, longer than {MAX_TASK_KEY_LEN} bytes, or has control characters")]
    TaskKey,
    #[error(
        "token must be {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} characters of A-Z a-z 0-9 - _ \
         (make one with egress::new_token)"
    )]
    Token,
    #[error("the token is already registered for another task")]
    TokenInUse,
    #[error("route name {0:?} must be 1 to 64 characters of a-z 0-9 - _")]
    RouteName(String),
    #[error("route {0:?} is listed twice")]
    DuplicateRoute(String),
    #[error("route {route:?}: upstream must be an http or https URL with a host and no user, query or fragment")]
    Upstream { route: String },
    #[error("route {route:?}: {header:?} is not a header that can be set or removed")]
    Header { route: String, header: String },
    // The value itself is never quoted: it is a secret.
    #[error("route {route:?}: the value injected as {header:?} is not a valid header value")]
    HeaderValue { route: String, header: String },
}

impl Grant {
    /// Checks what the proxy relies on: a token usable in a URL and a header, route
    /// names usable as a path segment, header names and values HTTP accepts.
    pub fn validate(&self) -> Result<(), GrantError> {
        if self.task_key.is_empty()
            || self.task_key.len() > MAX_TASK_KEY_LEN
            || self.task_key.chars().any(char::is_control)
        {
            return Err(GrantError::TaskKey);
        }
        if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&self.token.len())
            || !self
                .token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(GrantError::Token);
        }
        let mut names = HashSet::new();
        for route in &self.routes {
            route.headers()?;
            if !names.insert(route.name.as_str()) {
                return Err(GrantError::DuplicateRoute(route.name.clone()));
            }
        }
        Ok(())
    }
}

/// A route's headers in the form the gateway uses.
pub(crate) struct RouteHeaders {
    pub inject: Vec<(HeaderName, HeaderValue)>,
    pub strip: Vec<HeaderName>,
}

impl Route {
    /// Validates the route and converts its headers; injected values are marked
    /// sensitive so that `http`'s own `Debug` hides them too.
    pub(crate) fn headers(&self) -> Result<RouteHeaders, GrantError> {
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_name {
            return Err(GrantError::RouteName(self.name.clone()));
        }
        let url = &self.upstream;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(GrantError::Upstream {
                route: self.name.clone(),
            });
        }
        let header = |name: &str| -> Result<HeaderName, GrantError> {
            let bad = || GrantError::Header {
                route: self.name.clone(),
                header: name.to_string(),
            };
            let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            if super::headers::is_framing_or_hop_by_hop(&parsed) {
                return Err(bad());
            }
            Ok(parsed)
        };
        let mut inject = Vec::with_capacity(self.inject.len());
        for (name, value) in &self.inject {
            let name = header(name)?;
            let mut value =
                HeaderValue::from_str(value.expose()).map_err(|_| GrantError::HeaderValue {
                    route: self.name.clone(),
                    header: name.to_string(),
                })?;
            value.set_sensitive(true);
            inject.push((name, value));
        }
        let strip = self
            .strip
            .iter()
            .map(|name| header(name))
            .collect::<Result<_, _>>()?;
        Ok(RouteHeaders { inject, strip })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-ant-the-real-secret-value";

    fn route() -> Route {
        Route {
            name: "anthropic".into(),
            upstream: Url::parse("https://api.anthropic.com").unwrap(),
            inject: vec![("x-api-key".into(), Secret::new(SECRET))],
            strip: vec!["x-api-key".into(), "authorization".into()],
        }
    }

    fn grant() -> Grant {
        Grant {
            task_key: "repo/12".into(),
            token: new_token().unwrap(),
            allow: vec!["registry.npmjs.org".parse().unwrap()],
            routes: vec![route()],
        }
    }

    #[test]
    fn debug_never_shows_the_secret_or_the_token() {
        let grant = grant();
        for shown in [
            format!("{grant:?}"),
            format!("{grant:#?}"),
            format!("{:?}", grant.routes[0]),
            format!("{:?}", grant.routes[0].inject),
            format!("{:?}", grant.routes[0].headers().unwrap().inject),
        ] {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains(&grant.token), "{shown}");
            assert!(shown.contains("x-api-key"), "{shown}");
        }
    }

    #[test]
    fn tokens_are_fresh_256_bit_hex() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn validation_names_what_is_wrong() {
        type Change = Box<dyn Fn(&mut Grant)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|g| g.task_key.clear()), "task key"),
            (Box::new(|g| g.task_key = "a\nb".into()), "task key"),
            (Box::new(|g| g.token = "short".into()), "token must be"),
            (
                Box::new(|g| g.token = format!("{}/x", g.token)),
                "token must be",
            ),
            (
                Box::new(|g| g.routes[0].name = "Anthropic".into()),
                "route name \"Anthropic\"",
            ),
            (Box::new(|g| g.routes[0].name = "a/b".into()), "route name"),
            (
                Box::new(|g| g.routes.push(g.routes[0].clone())),
                "listed twice",
            ),
            (
                Box::new(|g| g.routes[0].upstream = Url::parse("ftp://x.example").unwrap()),
                "upstream must be",
            ),
            (
                Box::new(|g| g.routes[0].upstream = Url::parse("https://u:p@x.example").unwrap()),
                "upstream must be",
            ),
            (
                Box::new(|g| g.routes[0].upstream = Url::parse("https://x.example/?q").unwrap()),
                "upstream must be",
            ),
            (
                Box::new(|g| g.routes[0].strip.push("bad header".into())),
                "\"bad header\"",
            ),
            (
                Box::new(|g| g.routes[0].strip.push("connection".into())),
                "\"connection\"",
            ),
            (
                Box::new(|g| g.routes[0].inject.push(("host".into(), Secret::new("x")))),
                "\"host\"",
            ),
            (
                Box::new(|g| {
                    g.routes[0].inject[0].1 = Secret::new(format!("{SECRET}\r\nx: y"));
                }),
                "value injected as \"x-api-key\"",
            ),
        ];
        for (change, want) in cases {
            let mut g = grant();
            change(&mut g);
            let err = g.validate().expect_err(want).to_string();
            assert!(err.contains(want), "{err}");
            assert!(!err.contains(SECRET), "{err}");
        }
        grant().validate().unwrap();
    }

    #[test]
    fn grants_cross_the_control_socket_as_json() {
        let g = grant();
        let json = serde_json::to_string(&g).unwrap();
        let back: Grant = serde_json::from_str(&json).unwrap();
        assert_eq!(back.routes[0].inject[0].1.expose(), SECRET);
        assert_eq!(back.allow, g.allow);
        assert_eq!(
            back.routes[0].upstream.as_str(),
            "https://api.anthropic.com/"
        );
    }
}
