//! Per-query memory limits on the coordinator.
//!
//! All queries on the coordinator share one memory pool. DataFusion's fair pool divides it among
//! operators that can spill, but operators that cannot (a top-K heap, a hash join's build
//! side, an array aggregate) take what is free, so one runaway query could leave nothing for
//! the rest and fail every other session with 53200. Each query therefore runs on a
//! [`QueryMemoryPool`]: its own account over the shared pool, refused past the query's limit
//! (`SET basin.query_memory_limit`, default half of the coordinator's pool), so spilling
//! operators spill and the rest fail with 53200 while other queries keep their share.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionState;

/// The session setting that caps one query's memory on the coordinator.
pub(crate) const SETTING: &str = "basin.query_memory_limit";

/// One query's account over the shared pool; see the module docs.
#[derive(Debug)]
pub(crate) struct QueryMemoryPool {
    shared: Arc<dyn MemoryPool>,
    limit: usize,
    used: AtomicUsize,
}

impl QueryMemoryPool {
    pub(crate) fn new(shared: Arc<dyn MemoryPool>, limit: usize) -> Self {
        Self {
            shared,
            limit,
            used: AtomicUsize::new(0),
        }
    }
}

impl std::fmt::Display for QueryMemoryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "query pool (limit {} bytes) over {}",
            self.limit, self.shared
        )
    }
}

impl MemoryPool for QueryMemoryPool {
    fn name(&self) -> &str {
        "query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.shared.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.shared.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.shared.grow(reservation, additional);
        self.used.fetch_add(additional, Ordering::Relaxed);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.shared.shrink(reservation, shrink);
        self.used.fetch_sub(shrink, Ordering::Relaxed);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let claimed = self.used.fetch_add(additional, Ordering::Relaxed);
        if claimed.saturating_add(additional) > self.limit {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the query needs more than its memory limit of {} MiB ({} held, {} more asked \
                 for by {}); operators that can spill have spilled. Raise it with SET {SETTING} \
                 = '<size>' (at most the coordinator's pool)",
                self.limit >> 20,
                claimed,
                additional,
                reservation.consumer().name(),
            )));
        }
        if let Err(err) = self.shared.try_grow(reservation, additional) {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(err);
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

/// The limit a query gets: `setting` (a size such as `'256MB'`) when given, else half of the
/// shared pool; never more than the pool.
pub(crate) fn query_limit(shared: &dyn MemoryPool, setting: Option<&str>) -> Option<usize> {
    let pool = match shared.memory_limit() {
        MemoryLimit::Finite(bytes) => bytes,
        MemoryLimit::Infinite | MemoryLimit::Unknown => usize::MAX,
    };
    let asked = setting
        .map(|text| text.trim().trim_matches('\''))
        .filter(|text| !text.is_empty() && *text != "0")
        .and_then(basin_catalog::streams::parse_bytes)
        .and_then(|bytes| usize::try_from(bytes).ok());
    match asked {
        Some(bytes) => Some(bytes.min(pool)),
        None if pool == usize::MAX => None,
        None => Some(pool / 2),
    }
}

/// The session's `basin.query_memory_limit` as of a statement, carried in its session config.
#[derive(Debug)]
pub(crate) struct QueryMemorySetting(pub(crate) Option<String>);

/// The runtime one query planned in `state` runs on: the shared one with the memory pool
/// replaced by the query's own [`QueryMemoryPool`] (the shared runtime itself when neither the
/// pool nor the session sets a limit).
pub(crate) fn query_runtime(state: &SessionState) -> Arc<RuntimeEnv> {
    let runtime = state.runtime_env();
    let setting = state
        .config()
        .get_extension::<QueryMemorySetting>()
        .and_then(|s| s.0.clone());
    let Some(limit) = query_limit(runtime.memory_pool.as_ref(), setting.as_deref()) else {
        return Arc::clone(runtime);
    };
    Arc::new(RuntimeEnv {
        memory_pool: Arc::new(QueryMemoryPool::new(
            Arc::clone(&runtime.memory_pool),
            limit,
        )),
        disk_manager: Arc::clone(&runtime.disk_manager),
        cache_manager: Arc::clone(&runtime.cache_manager),
        object_store_registry: Arc::clone(&runtime.object_store_registry),
    })
}

/// A task context for one query planned in `state`, on [`query_runtime`].
pub(crate) fn query_task_ctx(state: &SessionState) -> Arc<TaskContext> {
    Arc::new(TaskContext::from(state).with_runtime(query_runtime(state)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    #[test]
    fn a_query_is_held_to_its_limit_and_others_keep_the_rest() {
        let shared: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1000));
        let first: Arc<dyn MemoryPool> = Arc::new(QueryMemoryPool::new(Arc::clone(&shared), 600));
        let second: Arc<dyn MemoryPool> = Arc::new(QueryMemoryPool::new(Arc::clone(&shared), 600));
        let big = MemoryConsumer::new("big").register(&first);
        big.try_grow(600).expect("within the query's limit");
        let err = big.try_grow(1).expect_err("past the query's limit");
        assert!(
            matches!(err, DataFusionError::ResourcesExhausted(_)),
            "{err}"
        );
        assert_eq!(shared.reserved(), 600);
        let small = MemoryConsumer::new("small").register(&second);
        small.try_grow(400).expect("the rest of the pool");
        assert!(small.try_grow(1).is_err(), "the shared pool is full");
        drop(big);
        assert_eq!(shared.reserved(), 400);
        assert_eq!(first.reserved(), 0);
    }

    #[test]
    fn limits_come_from_the_setting_or_half_the_pool() {
        let shared = GreedyMemoryPool::new(1 << 30);
        assert_eq!(query_limit(&shared, None), Some(1 << 29));
        assert_eq!(query_limit(&shared, Some("'256MB'")), Some(256 << 20));
        assert_eq!(query_limit(&shared, Some("4GiB")), Some(1 << 30));
        assert_eq!(query_limit(&shared, Some("0")), Some(1 << 29));
        let unbounded = datafusion::execution::memory_pool::UnboundedMemoryPool::default();
        assert_eq!(query_limit(&unbounded, None), None);
        assert_eq!(query_limit(&unbounded, Some("1MB")), Some(1 << 20));
    }
}
