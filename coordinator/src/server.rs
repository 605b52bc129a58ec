//! State shared by every connection of one coordinator: the catalog, the memory/disk runtime,
//! the configuration, and the registry of live sessions that cancel requests are matched against.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, Weak};

use basin_catalog::Catalog;
use datafusion::execution::runtime_env::RuntimeEnv;

use crate::config::CoordinatorConfig;
use crate::dist::Distribution;
use crate::membership::Membership;
use crate::query_log::QueryLog;
use crate::session::Session;

#[derive(Debug)]
pub(crate) struct ServerState {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) config: CoordinatorConfig,
    pub(crate) runtime: Arc<RuntimeEnv>,
    /// Executors, distributed planning and admission.
    pub(crate) dist: Arc<Distribution>,
    /// Running and recent queries (`basin.queries`).
    pub(crate) queries: Arc<QueryLog>,
    /// Keeps materialized views current.
    pub(crate) views: Arc<crate::continuous::Manager>,
    sessions: Mutex<HashMap<i32, Weak<Session>>>,
    next_pid: AtomicI32,
}

impl ServerState {
    pub(crate) fn new(
        catalog: Arc<Catalog>,
        config: CoordinatorConfig,
        runtime: Arc<RuntimeEnv>,
        membership: Arc<Membership>,
    ) -> Self {
        let dist = Arc::new(Distribution::new(
            membership,
            &config,
            Arc::clone(catalog.object_stores()),
        ));
        let views = Arc::new(crate::continuous::Manager::new(
            Arc::clone(&catalog),
            Arc::clone(&runtime),
            config.epoch_ms,
            config.checkpoint_interval_ms,
        ));
        Self {
            catalog,
            config,
            runtime,
            dist,
            views,
            queries: Arc::new(QueryLog::default()),
            sessions: Mutex::new(HashMap::new()),
            next_pid: AtomicI32::new(1000),
        }
    }

    /// A process id for BackendKeyData, unique among this coordinator's connections.
    pub(crate) fn allocate_pid(&self) -> i32 {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn register_session(&self, session: &Arc<Session>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| s.strong_count() > 0);
        sessions.insert(session.vars.backend_pid, Arc::downgrade(session));
    }

    pub(crate) fn unregister_session(&self, pid: i32) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(&pid);
    }

    /// Handles a CancelRequest: cancels the statement running on `pid` if `secret` matches.
    pub(crate) fn cancel(&self, pid: i32, secret: &[u8]) -> bool {
        let session = {
            let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions.get(&pid).and_then(Weak::upgrade)
        };
        match session {
            Some(session) if session.secret_matches(secret) => {
                session.cancel_running();
                true
            }
            _ => false,
        }
    }

    pub(crate) fn session_count(&self) -> usize {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.values().filter(|s| s.strong_count() > 0).count()
    }
}
