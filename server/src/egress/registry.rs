//! The proxy's table of registered tasks: who holds which token, what each may reach,
//! and what each was refused.
//!
//! The table is private state reached through named operations; no caller holds its
//! lock across an await.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::grant::{Grant, GrantError};
use super::rule::{Destination, Rule};

/// Distinct destinations recorded per task; later new ones are summed under
/// [`OTHER_HOSTS`] so a task cannot grow the table without bound.
const MAX_BLOCKED_ENTRIES: usize = 1024;
/// The `host` under which refusals past [`MAX_BLOCKED_ENTRIES`] are counted (port 0).
pub const OTHER_HOSTS: &str = "(other hosts)";

/// One destination a task was refused, and how many times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    pub host: String,
    pub port: u16,
    pub count: u64,
}

/// A registered task as the request handlers see it.
pub(crate) struct ActiveGrant {
    pub task_key: String,
    allow: Vec<Rule>,
    routes: HashMap<String, Arc<ActiveRoute>>,
    connections: Arc<Semaphore>,
    /// Cancelled at `unregister` (and at shutdown): the task's tunnels and streams end.
    pub cancel: CancellationToken,
}

pub(crate) struct ActiveRoute {
    pub name: String,
    pub upstream: Url,
    pub inject: Vec<(HeaderName, HeaderValue)>,
    pub strip: Vec<HeaderName>,
}

impl ActiveGrant {
    pub fn allows(&self, dest: &Destination) -> bool {
        self.allow.iter().any(|rule| rule.allows(dest))
    }

    pub fn route(&self, name: &str) -> Option<Arc<ActiveRoute>> {
        self.routes.get(name).cloned()
    }

    /// A slot for one more connection of this task, or `None` at the limit.
    pub fn try_connection(&self) -> Option<OwnedSemaphorePermit> {
        self.connections.clone().try_acquire_owned().ok()
    }
}

struct TaskEntry {
    token: String,
    grant: Arc<ActiveGrant>,
    blocked: BTreeMap<(String, u16), u64>,
}

#[derive(Default)]
struct Table {
    tokens: HashMap<String, Arc<ActiveGrant>>,
    tasks: HashMap<String, TaskEntry>,
}

pub(crate) struct Registry {
    table: Mutex<Table>,
    max_connections_per_task: usize,
    /// Parent of every grant's token, cancelled at shutdown.
    shutdown: CancellationToken,
    /// Number of registered tasks, watched by the idle-exit timer.
    registered: watch::Sender<usize>,
}

impl Registry {
    pub fn new(max_connections_per_task: usize, shutdown: CancellationToken) -> Registry {
        Registry {
            table: Mutex::default(),
            max_connections_per_task,
            shutdown,
            registered: watch::Sender::new(0),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves plain maps behind, still consistent
        // enough to serve; refusing every later request would be worse.
        self.table
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Adds a task, or replaces its grant (new token, rules, routes) keeping what it
    /// was refused so far. Connections made under the old grant go on.
    pub fn register(&self, grant: Grant) -> Result<(), GrantError> {
        grant.validate()?;
        let mut routes = HashMap::new();
        for route in &grant.routes {
            let headers = route.headers()?;
            routes.insert(
                route.name.clone(),
                Arc::new(ActiveRoute {
                    name: route.name.clone(),
                    upstream: route.upstream.clone(),
                    inject: headers.inject,
                    strip: headers.strip,
                }),
            );
        }
        let active = Arc::new(ActiveGrant {
            task_key: grant.task_key.clone(),
            allow: grant.allow,
            routes,
            connections: Arc::new(Semaphore::new(self.max_connections_per_task)),
            cancel: self.shutdown.child_token(),
        });

        let mut table = self.table();
        if let Some(holder) = table.tokens.get(&grant.token) {
            if holder.task_key != grant.task_key {
                return Err(GrantError::TokenInUse);
            }
        }
        let blocked = match table.tasks.remove(&grant.task_key) {
            Some(old) => {
                table.tokens.remove(&old.token);
                old.blocked
            }
            None => BTreeMap::new(),
        };
        table.tokens.insert(grant.token.clone(), active.clone());
        table.tasks.insert(
            grant.task_key,
            TaskEntry {
                token: grant.token,
                grant: active,
                blocked,
            },
        );
        self.registered.send_replace(table.tasks.len());
        Ok(())
    }

    /// Removes a task, ends its connections and returns what it was refused
    /// (`None` if it was not registered).
    pub fn unregister(&self, task_key: &str) -> Option<Vec<Blocked>> {
        let mut table = self.table();
        let entry = table.tasks.remove(task_key)?;
        table.tokens.remove(&entry.token);
        self.registered.send_replace(table.tasks.len());
        drop(table);
        entry.grant.cancel.cancel();
        Some(blocked_list(&entry.blocked))
    }

    pub fn authenticate(&self, token: &str) -> Option<Arc<ActiveGrant>> {
        self.table().tokens.get(token).cloned()
    }

    /// Counts a refused destination for the task, if it is still registered.
    pub fn record_blocked(&self, task_key: &str, dest: &Destination) {
        let mut table = self.table();
        let Some(entry) = table.tasks.get_mut(task_key) else {
            return;
        };
        let mut key = (dest.host.to_string(), dest.port);
        if !entry.blocked.contains_key(&key) && entry.blocked.len() >= MAX_BLOCKED_ENTRIES {
            key = (OTHER_HOSTS.to_string(), 0);
        }
        *entry.blocked.entry(key).or_insert(0) += 1;
    }

    pub fn blocked(&self, task_key: &str) -> Option<Vec<Blocked>> {
        self.table()
            .tasks
            .get(task_key)
            .map(|entry| blocked_list(&entry.blocked))
    }

    pub fn registered(&self) -> watch::Receiver<usize> {
        self.registered.subscribe()
    }
}

fn blocked_list(blocked: &BTreeMap<(String, u16), u64>) -> Vec<Blocked> {
    blocked
        .iter()
        .map(|((host, port), count)| Blocked {
            host: host.clone(),
            port: *port,
            count: *count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::grant::new_token;

    fn grant(task_key: &str, token: &str) -> Grant {
        Grant {
            task_key: task_key.into(),
            token: token.into(),
            allow: vec!["allowed.example:443".parse().unwrap()],
            routes: vec![],
        }
    }

    fn dest(host: &str, port: u16) -> Destination {
        Destination::new(host, port).unwrap()
    }

    #[test]
    fn blocked_counts_survive_re_registration_until_unregister() {
        let registry = Registry::new(4, CancellationToken::new());
        let (t1, t2) = (new_token().unwrap(), new_token().unwrap());
        registry.register(grant("repo/1", &t1)).unwrap();
        registry.record_blocked("repo/1", &dest("evil.example", 443));
        registry.record_blocked("repo/1", &dest("evil.example", 443));
        registry.record_blocked("repo/1", &dest("[::1]", 22));

        registry.register(grant("repo/1", &t2)).unwrap();
        assert!(registry.authenticate(&t1).is_none(), "old token retired");
        let active = registry.authenticate(&t2).unwrap();
        assert!(active.allows(&dest("allowed.example", 443)));

        let want = vec![
            Blocked {
                host: "::1".into(),
                port: 22,
                count: 1,
            },
            Blocked {
                host: "evil.example".into(),
                port: 443,
                count: 2,
            },
        ];
        assert_eq!(registry.blocked("repo/1").unwrap(), want);
        assert_eq!(registry.unregister("repo/1").unwrap(), want);
        assert!(active.cancel.is_cancelled());
        assert_eq!(registry.blocked("repo/1"), None);
        assert_eq!(registry.unregister("repo/1"), None);
        assert_eq!(*registry.registered().borrow(), 0);
    }

    #[test]
    fn a_token_belongs_to_one_task() {
        let registry = Registry::new(4, CancellationToken::new());
        let token = new_token().unwrap();
        registry.register(grant("repo/1", &token)).unwrap();
        assert_eq!(
            registry.register(grant("repo/2", &token)),
            Err(GrantError::TokenInUse)
        );
        assert_eq!(registry.authenticate(&token).unwrap().task_key, "repo/1");
    }

    #[test]
    fn distinct_blocked_destinations_are_bounded() {
        let registry = Registry::new(4, CancellationToken::new());
        registry
            .register(grant("repo/1", &new_token().unwrap()))
            .unwrap();
        for port in 1..=(MAX_BLOCKED_ENTRIES as u16 + 10) {
            registry.record_blocked("repo/1", &dest("spray.example", port));
        }
        let blocked = registry.blocked("repo/1").unwrap();
        assert_eq!(blocked.len(), MAX_BLOCKED_ENTRIES + 1);
        assert_eq!(
            blocked[0],
            Blocked {
                host: OTHER_HOSTS.into(),
                port: 0,
                count: 10
            }
        );
    }

    #[test]
    fn connections_per_task_are_limited() {
        let registry = Registry::new(2, CancellationToken::new());
        let token = new_token().unwrap();
        registry.register(grant("repo/1", &token)).unwrap();
        let active = registry.authenticate(&token).unwrap();
        let a = active.try_connection().unwrap();
        let _b = active.try_connection().unwrap();
        assert!(active.try_connection().is_none());
        drop(a);
        assert!(active.try_connection().is_some());
    }
}
