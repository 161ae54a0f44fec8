//! Claims: which front-end is starting or finalizing a task while it works outside
//! the repository lock.
//!
//! Starting (a base checkout of a large repository) and finalizing (importing a large
//! result) can take seconds; the lock is only held to change records, so other
//! front-ends stay responsive. A task in `starting` or `finalizing` carries the claim
//! of the process doing that work: another front-end leaves it alone while that
//! process lives, and takes the work over once it has died (even by `kill -9`).

use serde::{Deserialize, Serialize};

/// A process, named so that a recycled pid is not mistaken for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/<pid>/stat`).
    pub start_ticks: u64,
    /// This boot's id; a claim from before a reboot is dead.
    pub boot_id: String,
}

impl Claim {
    /// A claim by this process.
    pub fn mine() -> Claim {
        let pid = std::process::id();
        Claim {
            pid,
            start_ticks: start_ticks(pid).unwrap_or(0),
            boot_id: boot_id(),
        }
    }

    /// Whether the claiming process is still alive.
    pub fn is_alive(&self) -> bool {
        self.boot_id == boot_id() && start_ticks(self.pid) == Some(self.start_ticks)
    }

    pub fn is_mine(&self) -> bool {
        *self == Claim::mine()
    }
}

pub(super) fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Field 22 of `/proc/<pid>/stat`; the command name (field 2) may hold spaces and
/// parentheses, so fields are counted after its last `)`.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_or_recycled_one_is_not() {
        let me = Claim::mine();
        assert!(me.is_alive() && me.is_mine());
        assert!(me.start_ticks > 0);
        let recycled = Claim {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert!(!recycled.is_alive());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = Claim {
            pid,
            start_ticks: 1,
            boot_id: me.boot_id.clone(),
        };
        assert!(!gone.is_alive());
        let rebooted = Claim {
            boot_id: "another boot".into(),
            ..me
        };
        assert!(!rebooted.is_alive());
    }
}
