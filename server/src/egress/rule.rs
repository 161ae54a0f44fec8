//! Allowlist rules (`"api.anthropic.com:443"`, `"*.githubusercontent.com:443"`,
//! `"[::1]:8080"`) and the destinations they are checked against.
//!
//! A rule names a host as the client names it: a name rule matches a CONNECT or URL that
//! spells that name, an address rule matches that address written literally. Which
//! addresses a name resolves to is the dialer's concern (`dial.rs`), not this module's.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The port a rule gets when it names none: agents talk HTTPS.
pub const DEFAULT_RULE_PORT: u16 = 443;

/// One entry of a task's egress allowlist.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    host: RuleHost,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum RuleHost {
    /// Exactly this name (lowercase, no trailing dot).
    Name(String),
    /// Any name ending in `.` + this suffix; the suffix itself is not included.
    AnySubdomainOf(String),
    /// This address, written literally by the client.
    Ip(IpAddr),
}

/// Why a rule did not parse; the message quotes the rule and says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allow rule {input:?}: {reason}")]
pub struct RuleError {
    pub input: String,
    pub reason: String,
}

impl Rule {
    /// Whether a connection to `dest` is allowed by this rule.
    pub(crate) fn allows(&self, dest: &Destination) -> bool {
        if self.port != dest.port {
            return false;
        }
        match (&self.host, &dest.host) {
            (RuleHost::Name(name), Host::Name(want)) => name == want,
            (RuleHost::AnySubdomainOf(suffix), Host::Name(want)) => want
                .strip_suffix(suffix.as_str())
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            (RuleHost::Ip(ip), Host::Ip(want)) => canonical_ip(*ip) == canonical_ip(*want),
            _ => false,
        }
    }
}

impl FromStr for Rule {
    type Err = RuleError;

    fn from_str(input: &str) -> Result<Rule, RuleError> {
        let fail = |reason: String| RuleError {
            input: input.to_string(),
            reason,
        };
        let text = input.trim();
        if text.is_empty() {
            return Err(fail(
                "it is empty; write host:port, e.g. \"api.example.com:443\"".into(),
            ));
        }
        if text.contains("://") {
            let hint = url::Url::parse(text)
                .ok()
                .and_then(|url| {
                    let host = url.host_str()?.to_string();
                    Some(format!(
                        ", e.g. \"{host}:{}\"",
                        url.port_or_known_default()?
                    ))
                })
                .unwrap_or_default();
            return Err(fail(format!("a rule is host:port, not a URL{hint}")));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| c.is_whitespace() || matches!(c, '/' | '@' | '?' | '#'))
        {
            return Err(fail(format!(
                "{bad:?} cannot appear in a rule; write host:port, e.g. \"api.example.com:443\""
            )));
        }

        let (host, port) = split_host_port(text).map_err(fail)?;
        let port = match port {
            None => DEFAULT_RULE_PORT,
            Some(p) => parse_port(p).map_err(fail)?,
        };
        let host = match host {
            HostText::Bracketed(inner) => match inner.parse::<Ipv6Addr>() {
                Ok(ip) => RuleHost::Ip(IpAddr::V6(ip)),
                Err(_) => return Err(fail(format!("[{inner}] is not an IPv6 address"))),
            },
            HostText::Plain("*") => {
                return Err(fail(
                    "\"*\" would allow every host; list the hosts the agent needs".into(),
                ))
            }
            HostText::Plain(h) => {
                if let Some(suffix) = h.strip_prefix("*.") {
                    if suffix.contains('*') {
                        return Err(fail(wildcard_reason()));
                    }
                    RuleHost::AnySubdomainOf(normalize_name(suffix).map_err(fail)?)
                } else if h.contains('*') {
                    return Err(fail(wildcard_reason()));
                } else if let Ok(ip) = h.parse::<Ipv4Addr>() {
                    RuleHost::Ip(IpAddr::V4(ip))
                } else {
                    RuleHost::Name(normalize_name(h).map_err(fail)?)
                }
            }
        };
        Ok(Rule { host, port })
    }
}

fn wildcard_reason() -> String {
    "a wildcard can only stand for the leading labels, as in \"*.example.com:443\"".into()
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            RuleHost::Name(name) => write!(f, "{name}:{}", self.port),
            RuleHost::AnySubdomainOf(suffix) => write!(f, "*.{suffix}:{}", self.port),
            RuleHost::Ip(IpAddr::V4(ip)) => write!(f, "{ip}:{}", self.port),
            RuleHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rule, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A host as a client named it in a CONNECT target or an absolute URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// Lowercase, without a trailing dot.
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    /// Bare form (no brackets around IPv6), as recorded in `blocked`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Where a client asked to go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    pub host: Host,
    pub port: u16,
}

impl Destination {
    /// From the host part of a URI (IPv6 in brackets, as `http::Uri::host` gives it).
    pub fn new(host: &str, port: u16) -> Result<Destination, String> {
        let host = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Host::Ip(IpAddr::V6(
                inner
                    .parse()
                    .map_err(|_| format!("[{inner}] is not an IPv6 address"))?,
            ))
        } else if let Ok(ip) = host.parse::<Ipv4Addr>() {
            Host::Ip(IpAddr::V4(ip))
        } else {
            Host::Name(normalize_name(host)?)
        };
        if port == 0 {
            return Err("port 0 is not a destination".into());
        }
        Ok(Destination { host, port })
    }
}

impl fmt::Display for Destination {
    /// In allow-rule syntax, so it can be pasted into `allow = [...]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            host => write!(f, "{host}:{}", self.port),
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.5`) compare as the IPv4 address.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

enum HostText<'a> {
    Bracketed(&'a str),
    Plain(&'a str),
}

fn split_host_port(text: &str) -> Result<(HostText<'_>, Option<&str>), String> {
    if let Some(rest) = text.strip_prefix('[') {
        let (inner, after) = rest
            .split_once(']')
            .ok_or_else(|| "an IPv6 address needs a closing \"]\"".to_string())?;
        return match after {
            "" => Ok((HostText::Bracketed(inner), None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((HostText::Bracketed(inner), Some(port))),
                None => Err(format!(
                    "unexpected {after:?} after \"]\"; write \"[{inner}]:443\""
                )),
            },
        };
    }
    match text.matches(':').count() {
        0 => Ok((HostText::Plain(text), None)),
        1 => {
            let (host, port) = text.split_once(':').unwrap_or((text, ""));
            Ok((HostText::Plain(host), Some(port)))
        }
        _ if text.parse::<Ipv6Addr>().is_ok() => Err(format!(
            "write an IPv6 address in brackets, e.g. \"[{text}]:443\""
        )),
        _ => Err("too many \":\"; write host:port, e.g. \"api.example.com:443\"".into()),
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port {text:?} is not a number from 1 to 65535")),
        Ok(port) => Ok(port),
    }
}

/// Lowercases a host name, drops one trailing dot, and checks it is a DNS name.
fn normalize_name(name: &str) -> Result<String, String> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err("the host name is empty".into());
    }
    if !trimmed.is_ascii() {
        return Err(format!(
            "{name:?} is not ASCII; write an internationalized name in its xn-- form"
        ));
    }
    let lower = trimmed.to_ascii_lowercase();
    if lower.len() > 253 {
        return Err("the host name is longer than 253 characters".into());
    }
    for label in lower.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(format!("{name:?} is not a valid host name or IP address"));
        }
    }
    // A name whose last label is numeric reads as an IPv4 address to URL parsers
    // ("10.0.0.256", "1.2.3"): refuse it rather than guess.
    if lower
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("{name:?} is not a valid host name or IP address"));
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_rules_parse_to_their_canonical_form() {
        let cases = [
            ("api.anthropic.com:443", "api.anthropic.com:443"),
            ("registry.npmjs.org", "registry.npmjs.org:443"),
            ("*.githubusercontent.com:443", "*.githubusercontent.com:443"),
            ("API.Example.COM.:8443", "api.example.com:8443"),
            ("  padded.example  ", "padded.example:443"),
            ("10.0.0.5:8080", "10.0.0.5:8080"),
            ("[::1]:8080", "[::1]:8080"),
            ("[2001:DB8::1]", "[2001:db8::1]:443"),
            ("under_score.example:80", "under_score.example:80"),
            ("localhost:3000", "localhost:3000"),
        ];
        for (input, want) in cases {
            let rule: Rule = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(rule.to_string(), want, "{input}");
        }
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        let cases = [
            ("", "it is empty"),
            (
                "https://api.example.com",
                "not a URL, e.g. \"api.example.com:443\"",
            ),
            (
                "http://example.com:8080/x",
                "not a URL, e.g. \"example.com:8080\"",
            ),
            ("example.com/path", "'/' cannot appear"),
            ("user@example.com", "'@' cannot appear"),
            (
                "example.com:0",
                "port \"0\" is not a number from 1 to 65535",
            ),
            ("example.com:65536", "port \"65536\""),
            ("example.com:https", "port \"https\""),
            ("example.com:", "port \"\""),
            (
                "::1",
                "write an IPv6 address in brackets, e.g. \"[::1]:443\"",
            ),
            ("[::1", "closing \"]\""),
            ("[::1]8080", "unexpected \"8080\" after \"]\""),
            ("[example.com]:443", "is not an IPv6 address"),
            ("*", "would allow every host"),
            ("*:443", "would allow every host"),
            (
                "api.*.example.com",
                "wildcard can only stand for the leading labels",
            ),
            (
                "*example.com",
                "wildcard can only stand for the leading labels",
            ),
            (
                "*.*.example.com",
                "wildcard can only stand for the leading labels",
            ),
            ("*.", "host name is empty"),
            ("exa mple.com", "' ' cannot appear"),
            ("-bad.example", "not a valid host name"),
            ("a..b", "not a valid host name"),
            ("10.0.0.256:80", "not a valid host name or IP address"),
            ("bücher.example", "xn-- form"),
            ("a:b:c", "too many \":\""),
        ];
        for (input, want) in cases {
            let err = input
                .parse::<Rule>()
                .expect_err(&format!("{input:?} should not parse"));
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("invalid allow rule {input:?}: ")),
                "{message}"
            );
            assert!(message.contains(want), "{input:?}: {message}");
        }
    }

    fn dest(host: &str, port: u16) -> Destination {
        Destination::new(host, port).unwrap()
    }

    #[test]
    fn matching_follows_host_port_and_wildcards() {
        let cases: &[(&str, &str, u16, bool)] = &[
            ("api.anthropic.com:443", "api.anthropic.com", 443, true),
            ("api.anthropic.com:443", "API.Anthropic.com.", 443, true),
            ("api.anthropic.com:443", "api.anthropic.com", 80, false),
            (
                "api.anthropic.com:443",
                "evil.api.anthropic.com",
                443,
                false,
            ),
            (
                "*.githubusercontent.com",
                "raw.githubusercontent.com",
                443,
                true,
            ),
            (
                "*.githubusercontent.com",
                "a.b.githubusercontent.com",
                443,
                true,
            ),
            (
                "*.githubusercontent.com",
                "githubusercontent.com",
                443,
                false,
            ),
            (
                "*.githubusercontent.com",
                "evilgithubusercontent.com",
                443,
                false,
            ),
            ("10.0.0.5:8080", "10.0.0.5", 8080, true),
            ("10.0.0.5:8080", "[::ffff:10.0.0.5]", 8080, true),
            ("10.0.0.5:8080", "10.0.0.6", 8080, false),
            ("[::1]:8080", "[::1]", 8080, true),
            ("[::1]:8080", "[0:0:0:0:0:0:0:1]", 8080, true),
            // A name rule never matches an address, even one the name resolves to.
            ("localhost:3000", "127.0.0.1", 3000, false),
            ("127.0.0.1:3000", "localhost", 3000, false),
        ];
        for &(rule, host, port, want) in cases {
            let parsed: Rule = rule.parse().unwrap();
            assert_eq!(
                parsed.allows(&dest(host, port)),
                want,
                "{rule} vs {host}:{port}"
            );
        }
    }

    #[test]
    fn destinations_display_in_rule_syntax() {
        assert_eq!(dest("[::1]", 8080).to_string(), "[::1]:8080");
        assert_eq!(dest("[::1]", 8080).host.to_string(), "::1");
        assert_eq!(dest("Example.COM.", 443).to_string(), "example.com:443");
        assert!(Destination::new("exa mple", 443).is_err());
        assert!(Destination::new("example.com", 0).is_err());
    }

    #[test]
    fn rules_round_trip_through_json_as_strings() {
        let rules: Vec<Rule> = serde_json::from_str(r#"["*.example.com", "[::1]:80"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&rules).unwrap(),
            r#"["*.example.com:443","[::1]:80"]"#
        );
        let err = serde_json::from_str::<Vec<Rule>>(r#"["*"]"#).unwrap_err();
        assert!(err.to_string().contains("would allow every host"), "{err}");
    }
}
