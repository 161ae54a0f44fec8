//! The egress proxy: a task container's only way out.
//!
//! The proxy listens on the gateway address of an internal Docker network, where the
//! container has no other route. It lets through what the task's [`Grant`] allows and
//! nothing else:
//!
//! - `CONNECT host:port` and absolute-form `http://host:port/…` requests, authenticated
//!   by `Proxy-Authorization: Basic base64(handoff:<token>)`, to destinations on the
//!   task's allowlist ([`Rule`]); every other destination gets a 403 saying how to allow
//!   it and is counted per task ([`Blocked`]);
//! - gateway requests `http://<gateway>/t/<token>/<route>/<path>` to a configured
//!   upstream, with the placeholder credential headers removed and the real ones
//!   injected ([`Route`]), so API keys never enter the container.
//!
//! It runs as a detached process ([`spawn_detached`], [`serve`]) because tasks outlive
//! the front-ends that start them; front-ends register and withdraw grants over a unix
//! socket ([`client::Client`]).
//!
//! This module knows nothing of tasks, Docker or configuration files: the engine turns a
//! profile's `allow` and credentials into a [`Grant`] and the container's environment
//! (see [`Grant::proxy_url`] and [`Grant::route_url`]). Secret values live only in the
//! proxy's memory: no `Debug` shows them, no log line or reply carries them.

mod body;
pub mod client;
mod control;
mod dial;
mod grant;
mod headers;
mod proxy;
mod registry;
mod rule;
mod server;
mod spawn;
mod tunnel;

#[cfg(test)]
mod tests;

pub use control::{ControlReply, ControlRequest, ErrorCode, Pong};
pub use grant::{new_token, Grant, GrantError, Route, Secret};
pub use registry::{Blocked, OTHER_HOSTS};
pub use rule::{Rule, RuleError, DEFAULT_RULE_PORT};
pub use server::{serve, serve_until, ServeOptions};
pub use spawn::{spawn_detached, ServeArgs};

use std::net::SocketAddr;

impl Grant {
    /// The `HTTPS_PROXY` / `HTTP_PROXY` value for the container, with the token:
    /// `http://handoff:<token>@<gateway>`.
    pub fn proxy_url(&self, gateway: SocketAddr) -> String {
        format!("http://{}:{}@{gateway}", proxy::PROXY_USER, self.token)
    }

    /// The base URL the container uses for a gateway route, without a trailing slash:
    /// `http://<gateway>/t/<token>/<route>` (e.g. `ANTHROPIC_BASE_URL`).
    pub fn route_url(&self, gateway: SocketAddr, route: &str) -> String {
        format!("http://{gateway}/t/{}/{route}", self.token)
    }
}
