//! The domain of agent profiles: what a profile is and the values it holds, with no
//! knowledge of the files they are written in (`crate::config` reads those and builds
//! these).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// No network at all: only `lo`.
    None,
    /// Only through Handoff's egress proxy, to the profile's `allow` list (and the
    /// model API, with the credential added by the proxy): the default of the
    /// built-in agents.
    Egress,
    /// Docker's default bridge: the whole network, unfiltered.
    Bridge,
    /// The host's network: its loopback services too. Refused unless the user's own
    /// configuration allows it (`allow_host_network = true`).
    Host,
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::None => "none",
            Network::Egress => "egress",
            Network::Bridge => "bridge",
            Network::Host => "host",
        })
    }
}

/// A size written as `512m`, `2g`, `1.5g` or a number of bytes (memory, disk and
/// import limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemorySize(pub i64);

impl MemorySize {
    pub fn parse(s: &str) -> Result<MemorySize, String> {
        let t = s.trim().to_ascii_lowercase();
        let t = t.strip_suffix('b').unwrap_or(&t);
        let (num, mult) = match t.chars().last() {
            Some('k') => (&t[..t.len() - 1], 1i64 << 10),
            Some('m') => (&t[..t.len() - 1], 1 << 20),
            Some('g') => (&t[..t.len() - 1], 1 << 30),
            _ => (t, 1),
        };
        let value: f64 = num
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a size; write e.g. \"512m\" or \"2g\""))?;
        if value.is_nan() || value < 0.0 {
            return Err(format!(
                "`{s}` is not a size; write e.g. \"512m\" or \"2g\""
            ));
        }
        Ok(MemorySize((value * mult as f64) as i64))
    }
}

impl<'de> Deserialize<'de> for MemorySize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => MemorySize::parse(&n.to_string()),
            Raw::Str(s) => MemorySize::parse(&s),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// Commands around the agent, from the top level of a file or a profile (the
/// profile's win): `setup` before it, `check` after it, in the same container.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Steps {
    pub setup: Option<String>,
    /// Whether what `setup` leaves is kept as an environment for the next task
    /// (`setup_snapshot`; yes unless set to false).
    pub snapshot: Option<bool>,
    pub check: Option<String>,
    /// Follow-up turns the agent gets to repair a failing check.
    pub check_retries: Option<u32>,
}

impl Steps {
    /// `self` with the unset fields taken from `under`.
    pub fn over(&self, under: &Steps) -> Steps {
        Steps {
            setup: self.setup.clone().or_else(|| under.setup.clone()),
            snapshot: self.snapshot.or(under.snapshot),
            check: self.check.clone().or_else(|| under.check.clone()),
            check_retries: self.check_retries.or(under.check_retries),
        }
    }
}

/// Repair turns after a failing check when nothing says otherwise.
pub const DEFAULT_CHECK_RETRIES: u32 = 1;

/// What one task may use: time, and what it may bring home and leave on disk.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Limits {
    /// Wall-clock time of one turn's agent, after which it is stopped.
    pub timeout_secs: u64,
    /// Bytes of new file content a task may bring into the repository.
    pub import_bytes: u64,
    /// Bytes the task's writable folders (workspace changes, HOME) may hold.
    pub disk_bytes: u64,
    /// Model turns the agent may take over all of the task's turns.
    pub max_turns: Option<u32>,
    /// US dollars the agent may spend over all of the task's turns.
    pub max_cost_usd: Option<f64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_secs: 2 * 3600,
            import_bytes: 100 << 20,
            disk_bytes: 10 << 30,
            max_turns: None,
            max_cost_usd: None,
        }
    }
}

/// A duration written as `90s`, `30m`, `2h`, `1d` or a number of seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. \"30m\" or \"2h\""))?;
    let mult = match unit.trim() {
        "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        _ => return Err(format!("`{text}`: unknown unit; use s, m, h or d")),
    };
    let secs = (n * mult).round();
    if secs.is_nan() || secs < 1.0 {
        return Err(format!("`{text}` must be at least one second"));
    }
    // Ten years is forever enough; beyond, the number is a mistake.
    if secs > 10.0 * 365.0 * 86400.0 {
        return Err(format!("`{text}` is longer than ten years"));
    }
    Ok(secs as u64)
}

/// A duration as people read it: `2h`, `1h30m`, `45m`, `90s`.
pub fn duration_text(secs: u64) -> String {
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (h, 0, 0) if h > 0 => format!("{h}h"),
        (h, m, 0) if h > 0 => format!("{h}h{m:02}m"),
        (0, m, 0) => format!("{m}m"),
        (0, 0, s) => format!("{s}s"),
        (h, m, s) => format!(
            "{}{m}m{s:02}s",
            if h > 0 {
                format!("{h}h")
            } else {
                String::new()
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("1.5h"), Ok(5400));
        // Less than a second is no time at all, not a timeout of 0 s.
        assert!(parse_duration("0.4s").is_err());
        assert!(parse_duration("1e30h").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("3w").is_err());
        assert_eq!(duration_text(7200), "2h");
        assert_eq!(duration_text(5400), "1h30m");
        assert_eq!(duration_text(90), "1m30s");
        assert_eq!(duration_text(45), "45s");
    }
}
