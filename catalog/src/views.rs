//! Materialized views at read time, and the epochs that keep them consistent with the
//! streaming tables they read.
//!
//! The coordinator's continuous-query manager closes an *epoch* every few milliseconds: it
//! captures, per streaming table, the log offset each shard has durably reached, brings every
//! materialized view up to those offsets, and then commits one [`Committed`] snapshot holding
//! both. A query that reads a materialized view pins that snapshot ([`ReadPin`]), so it sees
//! every view and every streaming table as of the same epoch: never half an epoch, never two
//! views out of step.
//!
//! Compaction must not move rows a pinned reader or a view's recovery still needs out of the
//! log: [`Epochs::compaction_bound`] caps it at the offsets of the latest committed epoch, of
//! every pinned snapshot, and of the last durable view checkpoint.

pub mod checkpoint;
mod provider;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

pub use self::provider::MaterializedViewProvider;
use crate::model::Oid;

/// Where a materialized view keeps files of its own (none yet besides checkpoints).
pub(crate) fn view_dir(data_dir: &Path, oid: Oid) -> PathBuf {
    data_dir.join("views").join(oid.to_string())
}

/// A materialized view's rows as of one epoch.
#[derive(Debug, Clone)]
pub struct ViewContents {
    pub schema: SchemaRef,
    pub batches: Arc<Vec<RecordBatch>>,
}

impl ViewContents {
    pub fn empty(schema: SchemaRef) -> Self {
        Self {
            schema,
            batches: Arc::new(Vec::new()),
        }
    }

    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// One committed epoch: per streaming table the offsets its shards had reached, and every
/// materialized view's rows computed from exactly those.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    pub epoch: u64,
    pub tables: HashMap<Oid, Arc<[u64]>>,
    pub views: HashMap<Oid, ViewContents>,
    /// Tables with a shard whose rows were not readable when this epoch was captured (its
    /// executor had not reported them since a restart): their offsets here may lag rows that
    /// were acknowledged.
    pub unreadable: HashSet<Oid>,
    /// Views that read such a table, directly or through other views.
    pub behind: HashSet<Oid>,
}

impl Committed {
    /// Whether reading `views` and `tables` at this epoch could miss acknowledged rows.
    pub fn lags(&self, views: &[Oid], tables: &[Oid]) -> bool {
        views.iter().any(|oid| self.behind.contains(oid))
            || tables.iter().any(|oid| self.unreadable.contains(oid))
    }
}

/// The snapshot a statement reads, carried in its `SessionConfig` extensions so table
/// providers see it at scan time.
#[derive(Debug, Clone)]
pub struct ReadPin(pub Arc<Committed>);

/// The epoch clock's shared state: what is committed, what readers have pinned, and what the
/// last checkpoint still needs.
#[derive(Debug)]
pub struct Epochs {
    committed: RwLock<Arc<Committed>>,
    /// Epoch numbers pinned by statements still planning, with their snapshots.
    pins: Mutex<Vec<(u64, Arc<Committed>)>>,
    next_pin: AtomicU64,
    /// Per streaming table, the offsets the last durable checkpoint resumes from.
    holds: RwLock<HashMap<Oid, Vec<u64>>>,
    /// The epoch now gathering writes (committed epoch + 1 or more).
    open: AtomicU64,
    /// Tells waiters (strict reads, CREATE) that an epoch committed.
    commits: tokio::sync::watch::Sender<u64>,
}

impl Default for Epochs {
    fn default() -> Self {
        Self {
            committed: RwLock::new(Arc::new(Committed::default())),
            pins: Mutex::new(Vec::new()),
            next_pin: AtomicU64::new(0),
            holds: RwLock::new(HashMap::new()),
            open: AtomicU64::new(1),
            commits: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Epochs {
    /// The latest committed snapshot.
    pub fn committed(&self) -> Arc<Committed> {
        Arc::clone(&self.committed.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Publishes the next snapshot; readers that pin from now on see it. Waiters on the
    /// epoch are told by [`Epochs::announce`], once the committer has published what goes
    /// with it.
    pub fn commit(&self, next: Arc<Committed>) {
        *self.committed.write().unwrap_or_else(|e| e.into_inner()) = next;
    }

    /// Wakes the waiters of the committed epoch.
    pub fn announce(&self) {
        let epoch = self.committed().epoch;
        self.commits.send_replace(epoch);
    }

    /// The epoch writes acknowledged now belong to: the one the next capture closes, or a
    /// later one. A session that wrote waits for it in strict mode.
    pub fn open_epoch(&self) -> u64 {
        self.open.load(Ordering::SeqCst)
    }

    /// Closes the open epoch before its offsets are captured: writes acknowledged after this
    /// report a later epoch. Returns the epoch being closed.
    pub fn close_open_epoch(&self) -> u64 {
        self.open.fetch_add(1, Ordering::SeqCst)
    }

    /// Continues the epoch numbers of an earlier run (from its last checkpoint), so epochs
    /// only ever grow.
    pub fn resume_after(&self, epoch: u64) {
        self.open.fetch_max(epoch + 1, Ordering::SeqCst);
    }

    /// Waits until epoch `epoch` (or a later one) is committed; false after `timeout`.
    pub async fn wait_committed(&self, epoch: u64, timeout: Duration) -> bool {
        let mut receiver = self.commits.subscribe();
        let reached = receiver.wait_for(|committed| *committed >= epoch);
        matches!(tokio::time::timeout(timeout, reached).await, Ok(Ok(_)))
    }

    /// Pins the latest committed snapshot until the guard drops: compaction leaves the rows it
    /// names in the logs meanwhile.
    pub fn pin(self: &Arc<Self>) -> PinGuard {
        let snapshot = self.committed();
        let id = self.next_pin.fetch_add(1, Ordering::Relaxed);
        self.pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, Arc::clone(&snapshot)));
        PinGuard {
            epochs: Arc::clone(self),
            id,
            snapshot,
        }
    }

    /// What the last durable checkpoint resumes from, per streaming table.
    pub fn set_holds(&self, holds: HashMap<Oid, Vec<u64>>) {
        *self.holds.write().unwrap_or_else(|e| e.into_inner()) = holds;
    }

    /// Per shard, the first offset compaction must not move into the lake yet; `None` when
    /// nothing holds the table.
    pub(crate) fn compaction_bound(&self, table: Oid, shards: usize) -> Option<Vec<u64>> {
        let mut bound: Option<Vec<u64>> = None;
        let mut lower = |offsets: &[u64]| {
            let current = bound.get_or_insert_with(|| vec![u64::MAX; shards]);
            for (slot, offset) in current.iter_mut().zip(offsets) {
                *slot = (*slot).min(*offset);
            }
        };
        if let Some(offsets) = self.committed().tables.get(&table) {
            lower(offsets);
        }
        for (_, snapshot) in self.pins.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            if let Some(offsets) = snapshot.tables.get(&table) {
                lower(offsets);
            }
        }
        if let Some(offsets) = self
            .holds
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&table)
        {
            lower(offsets);
        }
        bound
    }
}

/// A pinned snapshot; unpinned on drop.
#[derive(Debug)]
pub struct PinGuard {
    epochs: Arc<Epochs>,
    id: u64,
    snapshot: Arc<Committed>,
}

impl PinGuard {
    pub fn snapshot(&self) -> &Arc<Committed> {
        &self.snapshot
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        self.epochs
            .pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _)| *id != self.id);
    }
}
