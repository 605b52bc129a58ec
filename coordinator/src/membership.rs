//! Cluster membership: the executors that registered with the control plane, their resources
//! and their liveness. Written by the control-plane service, read by the HTTP API and (later) the
//! scheduler through [`Membership::snapshot`].
//!
//! Liveness is heartbeat-based: an executor silent for [`HEARTBEAT_TIMEOUT`] is marked dead by
//! the reaper ([`Membership::run_reaper`]) and gets no more work. A dead executor that heartbeats
//! again is told it is unknown and re-registers, so it comes back with fresh information. Dead
//! entries stay visible for [`FORGET_DEAD_AFTER`] so operators can see what went away.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use basin_proto::ExecutorId;
use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How often executors are asked to heartbeat.
pub(crate) const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
/// Silence after which an executor is considered dead: five missed heartbeats.
pub(crate) const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a dead executor stays listed before it is forgotten.
pub(crate) const FORGET_DEAD_AFTER: Duration = Duration::from_secs(300);
/// How often the reaper looks for silent executors; bounds how late a death is noticed.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// Where an executor is in its life, as far as the coordinator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ExecutorState {
    /// Heartbeating and accepting work.
    Live,
    /// Heartbeating but shutting down: finishing its tasks, taking no new ones.
    Draining,
    /// Missed heartbeats for [`HEARTBEAT_TIMEOUT`]; gets no work.
    Dead,
}

/// What an executor tells the coordinator when it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registration {
    pub(crate) id: ExecutorId,
    /// gRPC URL the coordinator reaches the executor at.
    pub(crate) url: String,
    pub(crate) cores: u32,
    pub(crate) memory_bytes: u64,
    pub(crate) build_version: String,
    /// The executor's node (data directory) holding streaming-table shards; empty if none.
    pub(crate) node_id: String,
}

/// One executor as seen at the moment [`Membership::snapshot`] was called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecutorSnapshot {
    pub(crate) registration: Registration,
    pub(crate) state: ExecutorState,
    pub(crate) running_tasks: u32,
    pub(crate) last_heartbeat: Instant,
}

#[derive(Debug)]
struct Entry {
    registration: Registration,
    state: ExecutorState,
    running_tasks: u32,
    last_heartbeat: Instant,
}

/// The registry of executors. Shared as `Arc<Membership>`; every method takes `&self`.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    // A std mutex: critical sections are short and never cross an await.
    executors: Mutex<BTreeMap<ExecutorId, Entry>>,
}

impl Membership {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds an executor, or refreshes one that registers again (after a coordinator restart or
    /// after being declared dead). Returns true when the executor was already listed.
    pub(crate) fn register(&self, registration: Registration) -> bool {
        self.register_at(registration, Instant::now())
    }

    fn register_at(&self, registration: Registration, now: Instant) -> bool {
        let id = registration.id.clone();
        info!(
            executor_id = %id,
            url = registration.url,
            cores = registration.cores,
            memory_bytes = registration.memory_bytes,
            build_version = registration.build_version,
            "executor registered"
        );
        let node = registration.node_id.clone();
        let entry = Entry {
            registration,
            state: ExecutorState::Live,
            running_tasks: 0,
            last_heartbeat: now,
        };
        let mut executors = self.lock();
        if !node.is_empty() {
            // A node is locked by one executor at a time: an older one on it is gone.
            for (other, entry) in executors.iter_mut() {
                if *other != id
                    && entry.registration.node_id == node
                    && entry.state != ExecutorState::Dead
                {
                    info!(executor_id = %other, node, "executor replaced by a restart on its node");
                    entry.state = ExecutorState::Dead;
                }
            }
        }
        executors.insert(id, entry).is_some()
    }

    /// Records a heartbeat. Returns false when the executor is unknown or was declared dead: it
    /// must register again.
    pub(crate) fn heartbeat(&self, id: &ExecutorId, running_tasks: u32, draining: bool) -> bool {
        self.heartbeat_at(id, running_tasks, draining, Instant::now())
    }

    fn heartbeat_at(
        &self,
        id: &ExecutorId,
        running_tasks: u32,
        draining: bool,
        now: Instant,
    ) -> bool {
        let mut executors = self.lock();
        let Some(entry) = executors.get_mut(id) else {
            return false;
        };
        if entry.state == ExecutorState::Dead {
            return false;
        }
        if draining && entry.state != ExecutorState::Draining {
            info!(executor_id = %id, running_tasks, "executor draining");
        }
        entry.state = if draining {
            ExecutorState::Draining
        } else {
            ExecutorState::Live
        };
        entry.running_tasks = running_tasks;
        entry.last_heartbeat = now;
        true
    }

    /// Whether `id` is registered and not declared dead (draining ones still finish work).
    pub(crate) fn is_live(&self, id: &ExecutorId) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|entry| entry.state != ExecutorState::Dead)
    }

    /// Removes an executor that is leaving. Returns false when it was not listed.
    pub(crate) fn deregister(&self, id: &ExecutorId) -> bool {
        let known = self.lock().remove(id).is_some();
        if known {
            info!(executor_id = %id, "executor deregistered");
        }
        known
    }

    /// Declares an executor dead at once, e.g. when a query found it unreachable. It gets no
    /// work until it registers again (its next heartbeat is refused, which makes it re-register
    /// if it is in fact alive). Returns false when it was not live.
    pub(crate) fn mark_dead(&self, id: &ExecutorId, reason: &str) -> bool {
        let mut executors = self.lock();
        let Some(entry) = executors.get_mut(id) else {
            return false;
        };
        if entry.state == ExecutorState::Dead {
            return false;
        }
        warn!(executor_id = %id, reason, "marking executor dead");
        entry.state = ExecutorState::Dead;
        true
    }

    /// Records that a live executor drains (learned from a probe before its next heartbeat).
    pub(crate) fn mark_draining(&self, id: &ExecutorId) {
        if let Some(entry) = self.lock().get_mut(id)
            && entry.state == ExecutorState::Live
        {
            info!(executor_id = %id, "executor draining (seen by a probe)");
            entry.state = ExecutorState::Draining;
        }
    }

    /// gRPC URLs of the executors that take new work, ordered by executor ID.
    pub(crate) fn live_urls(&self) -> Vec<(ExecutorId, String)> {
        self.lock()
            .iter()
            .filter(|(_, entry)| entry.state == ExecutorState::Live)
            .map(|(id, entry)| (id.clone(), entry.registration.url.clone()))
            .collect()
    }

    /// Nodes of live executors that hold streaming-table shards, sorted.
    pub(crate) fn shard_nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .lock()
            .values()
            .filter(|e| e.state == ExecutorState::Live && !e.registration.node_id.is_empty())
            .map(|e| e.registration.node_id.clone())
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// The live (or draining) executor serving `node`, and its URL.
    pub(crate) fn node_executor(&self, node: &str) -> Option<(ExecutorId, String)> {
        self.lock()
            .iter()
            .find(|(_, e)| e.state != ExecutorState::Dead && e.registration.node_id == node)
            .map(|(id, e)| (id.clone(), e.registration.url.clone()))
    }

    /// All listed executors, ordered by ID.
    pub(crate) fn snapshot(&self) -> Vec<ExecutorSnapshot> {
        self.lock()
            .values()
            .map(|entry| ExecutorSnapshot {
                registration: entry.registration.clone(),
                state: entry.state,
                running_tasks: entry.running_tasks,
                last_heartbeat: entry.last_heartbeat,
            })
            .collect()
    }

    /// Marks executors dead that have been silent for [`HEARTBEAT_TIMEOUT`] at `now`, and forgets
    /// dead ones silent for [`FORGET_DEAD_AFTER`]. Returns how many died in this pass.
    pub(crate) fn reap(&self, now: Instant) -> usize {
        let mut died = 0;
        let mut executors = self.lock();
        executors.retain(|id, entry| {
            let silent_for = now.saturating_duration_since(entry.last_heartbeat);
            match entry.state {
                ExecutorState::Dead => silent_for < FORGET_DEAD_AFTER,
                ExecutorState::Live | ExecutorState::Draining => {
                    if silent_for >= HEARTBEAT_TIMEOUT {
                        warn!(
                            executor_id = %id,
                            silent_ms = silent_for.as_millis(),
                            running_tasks = entry.running_tasks,
                            "executor missed its heartbeats; marking it dead"
                        );
                        entry.state = ExecutorState::Dead;
                        died += 1;
                    }
                    true
                }
            }
        });
        died
    }

    /// Runs [`Self::reap`] every second until `shutdown` is cancelled. Spawn it once.
    pub(crate) async fn run_reaper(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(REAP_EVERY);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                now = ticker.tick() => {
                    self.reap(now);
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<ExecutorId, Entry>> {
        // Every critical section leaves the map consistent, so a panic elsewhere cannot have
        // left it half-updated.
        self.executors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(id: &str) -> Registration {
        Registration {
            id: ExecutorId::new(id),
            url: format!("http://127.0.0.1:0/{id}"),
            cores: 4,
            memory_bytes: 1 << 30,
            build_version: "0.1.0".to_owned(),
            node_id: String::new(),
        }
    }

    fn state_of(membership: &Membership, id: &str) -> Option<ExecutorState> {
        membership
            .snapshot()
            .into_iter()
            .find(|executor| executor.registration.id.as_str() == id)
            .map(|executor| executor.state)
    }

    #[test]
    fn register_heartbeat_deregister() {
        let membership = Membership::new();
        assert!(!membership.register(registration("a")));
        assert!(
            membership.register(registration("a")),
            "second registration refreshes"
        );
        assert_eq!(membership.snapshot().len(), 1);

        assert!(membership.heartbeat(&ExecutorId::new("a"), 3, false));
        let snapshot = membership.snapshot();
        assert_eq!(snapshot[0].running_tasks, 3);
        assert_eq!(snapshot[0].state, ExecutorState::Live);

        assert!(membership.heartbeat(&ExecutorId::new("a"), 1, true));
        assert_eq!(state_of(&membership, "a"), Some(ExecutorState::Draining));

        assert!(
            !membership.heartbeat(&ExecutorId::new("b"), 0, false),
            "unknown executor"
        );
        assert!(membership.deregister(&ExecutorId::new("a")));
        assert!(!membership.deregister(&ExecutorId::new("a")));
        assert!(membership.snapshot().is_empty());
    }

    #[test]
    fn snapshot_is_ordered_by_id() {
        let membership = Membership::new();
        for id in ["c", "a", "b"] {
            membership.register(registration(id));
        }
        let ids: Vec<_> = membership
            .snapshot()
            .into_iter()
            .map(|executor| executor.registration.id.into_string())
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    /// Plays a timeline on a synthetic clock: what the reaper does when it runs every
    /// [`REAP_EVERY`] while one executor heartbeats every [`HEARTBEAT_INTERVAL`] and one is silent.
    #[test]
    fn silent_executors_die_after_the_timeout_then_are_forgotten() {
        let membership = Membership::new();
        let start = Instant::now();
        let at = |offset: Duration| start + offset;
        membership.register_at(registration("quiet"), start);
        membership.register_at(registration("chatty"), start);
        let (quiet, chatty) = (ExecutorId::new("quiet"), ExecutorId::new("chatty"));

        let mut now = Duration::ZERO;
        while now + REAP_EVERY < HEARTBEAT_TIMEOUT {
            now += REAP_EVERY;
            if now
                .as_millis()
                .is_multiple_of(HEARTBEAT_INTERVAL.as_millis())
            {
                assert!(membership.heartbeat_at(&chatty, 0, false, at(now)));
            }
            assert_eq!(
                membership.reap(at(now)),
                0,
                "nobody dies before the timeout"
            );
        }
        assert_eq!(state_of(&membership, "quiet"), Some(ExecutorState::Live));

        now = HEARTBEAT_TIMEOUT;
        assert!(membership.heartbeat_at(&chatty, 0, false, at(now)));
        assert_eq!(membership.reap(at(now)), 1);
        assert_eq!(state_of(&membership, "quiet"), Some(ExecutorState::Dead));
        assert_eq!(state_of(&membership, "chatty"), Some(ExecutorState::Live));

        // A dead executor is told to register again rather than silently revived.
        assert!(!membership.heartbeat_at(&quiet, 0, false, at(now + REAP_EVERY)));
        assert_eq!(state_of(&membership, "quiet"), Some(ExecutorState::Dead));

        // Draining executors are reaped like live ones: draining is no excuse to go silent.
        assert!(membership.heartbeat_at(&chatty, 1, true, at(now)));
        assert_eq!(membership.reap(at(now + HEARTBEAT_TIMEOUT)), 1);
        assert_eq!(state_of(&membership, "chatty"), Some(ExecutorState::Dead));

        // Dead entries stay listed for a while, then go.
        assert_eq!(membership.reap(at(FORGET_DEAD_AFTER)), 0);
        assert_eq!(state_of(&membership, "quiet"), None, "forgotten");
        assert_eq!(
            state_of(&membership, "chatty"),
            Some(ExecutorState::Dead),
            "chatty died later, still listed"
        );
        membership.reap(at(HEARTBEAT_TIMEOUT + FORGET_DEAD_AFTER));
        assert!(membership.snapshot().is_empty());

        // Registering again brings an executor back.
        assert!(!membership.register_at(registration("quiet"), at(FORGET_DEAD_AFTER * 2)));
        assert_eq!(state_of(&membership, "quiet"), Some(ExecutorState::Live));
    }

    #[tokio::test]
    async fn reaper_stops_on_shutdown() {
        let membership = Arc::new(Membership::new());
        let shutdown = CancellationToken::new();
        let reaper = tokio::spawn(Arc::clone(&membership).run_reaper(shutdown.clone()));
        tokio::task::yield_now().await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), reaper)
            .await
            .expect("reaper stops promptly")
            .expect("reaper does not panic");
    }

    #[test]
    fn reap_uses_the_given_clock() {
        let membership = Membership::new();
        membership.register(registration("a"));
        let registered = membership.snapshot()[0].last_heartbeat;
        assert_eq!(
            membership.reap(registered + HEARTBEAT_TIMEOUT - Duration::from_millis(1)),
            0
        );
        assert_eq!(membership.reap(registered + HEARTBEAT_TIMEOUT), 1);
        assert_eq!(
            membership.reap(registered + HEARTBEAT_TIMEOUT),
            0,
            "dies once"
        );
        membership.reap(registered + FORGET_DEAD_AFTER);
        assert!(membership.snapshot().is_empty());
    }
}
