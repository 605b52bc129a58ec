//! A streaming table's log shards, wherever they live.
//!
//! A *local* shard is a [`StreamLog`] in the coordinator's data directory. A *remote* shard's log
//! lives on an executor's *node* (its data directory, whose identity survives restarts): the
//! executor makes appends durable there, and the coordinator keeps a mirror of the rows it
//! acknowledged and has not compacted yet, which scans and compaction read. The coordinator talks
//! to nodes through [`ShardHosts`], implemented over gRPC by the coordinator crate.
//!
//! Rules that keep a remote shard exact:
//! - An append holds the shard's gate (shared) for its whole call; compaction and reopening take
//!   it exclusively, so when they look at the mirror no append is in flight. A hole left in the
//!   mirror is then an append that failed (never acknowledged), and compaction may pass it.
//! - A failed call whose outcome is unknown closes the shard; it is reopened from the node's log
//!   (from the lake's offset on), which brings back whatever that append did write.
//! - A node that restarted (a new executor incarnation) has no log open: the shard is reopened
//!   from disk before it takes appends again.
//! - Scans need the mirror loaded at least once since this process opened the table; before
//!   that the shard's acknowledged rows are unknown and a scan fails instead of missing them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;

use crate::stream_log::{LogError, StreamLog};

/// One shard as the coordinator and a node both name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShardRef {
    /// The table's storage path (`StreamSpec::path`), unique per table.
    pub table_path: String,
    pub shard: u32,
}

/// Why a call to a node failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The node has no open log for the shard (it restarted): nothing was written.
    #[error("{0}")]
    NotOpen(String),
    /// The node is not connected: nothing was sent.
    #[error("{0}")]
    Unreachable(String),
    /// The call failed midway; an append may or may not have been made durable.
    #[error("{0}")]
    Failed(String),
}

/// A batch read back from a node's log.
#[derive(Debug)]
pub struct RemoteBatch {
    /// Log offset of the batch's first row.
    pub offset: u64,
    pub batch: RecordBatch,
    /// Its encoded size, as the log counts memory.
    pub bytes: usize,
}

/// A node's answer to an append.
#[derive(Debug, Clone, Copy)]
pub struct RemoteAck {
    /// Log offset of the batch's first row.
    pub offset: u64,
    /// The shard's bytes on the node's disk.
    pub disk_bytes: u64,
}

/// The nodes that host shards, and the calls the coordinator makes to them.
#[async_trait::async_trait]
pub trait ShardHosts: Send + Sync + std::fmt::Debug {
    /// Nodes that can take new shards now, in a stable order.
    fn nodes(&self) -> Vec<String>;
    /// The executor now serving `node`, if one is live. A different answer than at the last
    /// open means the node restarted and its shards must be reopened.
    fn incarnation(&self, node: &str) -> Option<String>;
    /// Opens (or reopens) a shard's log on `node`; returns its rows from `keep_from` on.
    async fn open(
        &self,
        node: &str,
        shard: &ShardRef,
        schema: &Schema,
        keep_from: u64,
    ) -> Result<Vec<RemoteBatch>, RemoteError>;
    /// Appends one batch, encoded as an Arrow IPC stream; returns once it is durable.
    async fn append(
        &self,
        node: &str,
        shard: &ShardRef,
        payload: Vec<u8>,
    ) -> Result<RemoteAck, RemoteError>;
    /// Lets the node delete log segments holding only rows below `below`; returns its disk
    /// bytes after.
    async fn release(&self, node: &str, shard: &ShardRef, below: u64) -> Result<u64, RemoteError>;
    /// Closes and deletes every shard of a dropped table on `node`.
    async fn drop_table(&self, node: &str, table_path: &str) -> Result<(), RemoteError>;
}

/// Why one shard did not take an append.
#[derive(Debug)]
pub(super) enum AppendFailure {
    /// Nothing was written: another shard may take the batch.
    Skipped(String),
    /// The local log failed; nothing was acknowledged.
    Log(LogError),
    /// The node failed midway: the batch may or may not be durable there.
    Unknown(String),
}

#[derive(Debug)]
pub(super) enum Shard {
    Local(StreamLog),
    Remote(RemoteShard),
}

impl Shard {
    /// Rows acknowledged and not yet forgotten whose batch starts at `from` or later.
    pub(super) fn tail(&self, from: u64) -> Vec<(u64, RecordBatch)> {
        match self {
            Shard::Local(log) => log.tail(from),
            Shard::Remote(remote) => remote
                .mirror()
                .batches
                .range(from..)
                .map(|(offset, (batch, _))| (*offset, batch.clone()))
                .collect(),
        }
    }

    /// The rows compaction may take: the tail from `from`, up to the first hole. A remote
    /// shard's mirror has a hole where an append is in flight or failed after its executor
    /// wrote it (the executor's log has no holes, so a reopen fills it).
    pub(super) fn compactable(&self, from: u64) -> Vec<(u64, RecordBatch)> {
        let mut expected = from;
        let mut run = Vec::new();
        for (offset, batch) in self.tail(from) {
            if offset != expected {
                break;
            }
            expected = offset.saturating_add(batch.num_rows() as u64);
            run.push((offset, batch));
        }
        run
    }

    pub(super) fn memory_bytes(&self) -> usize {
        match self {
            Shard::Local(log) => log.memory_bytes(),
            Shard::Remote(remote) => remote.mirror().memory_bytes,
        }
    }

    pub(super) fn disk_bytes(&self) -> u64 {
        match self {
            Shard::Local(log) => log.disk_bytes(),
            Shard::Remote(remote) => remote.disk_bytes.load(Ordering::Relaxed),
        }
    }

    /// Drops rows before `upto` from memory: they are in the lake now.
    pub(super) fn forget_below(&self, upto: u64) {
        match self {
            Shard::Local(log) => log.forget_below(upto),
            Shard::Remote(remote) => {
                let mut mirror = remote.mirror.write().unwrap_or_else(|e| e.into_inner());
                let kept = mirror.batches.split_off(&upto);
                mirror.batches = kept;
                mirror.memory_bytes = mirror.batches.values().map(|(_, bytes)| bytes).sum();
            }
        }
    }

    /// Deletes log files holding only rows before `upto`, wherever they are.
    pub(super) async fn delete_below(
        &self,
        upto: u64,
        hosts: Option<&dyn ShardHosts>,
    ) -> Result<(), String> {
        match self {
            Shard::Local(log) => log.delete_below(upto).await.map_err(|e| e.to_string()),
            Shard::Remote(remote) => {
                let Some(hosts) = hosts else { return Ok(()) };
                if remote.released.load(Ordering::Acquire) >= upto || !remote.is_open() {
                    return Ok(());
                }
                let disk = hosts
                    .release(&remote.node, &remote.shard, upto)
                    .await
                    .map_err(|e| e.to_string())?;
                remote.disk_bytes.store(disk, Ordering::Relaxed);
                remote.released.fetch_max(upto, Ordering::AcqRel);
                Ok(())
            }
        }
    }

    /// Whether an append may go to this shard now.
    pub(super) fn appendable(&self, hosts: Option<&dyn ShardHosts>) -> bool {
        match self {
            Shard::Local(log) => !log.is_broken(),
            Shard::Remote(remote) => hosts.is_some_and(|hosts| remote.is_current(hosts)),
        }
    }

    /// Whether scans can see every acknowledged row of this shard; why not otherwise.
    pub(super) fn readable(&self, table: &str) -> Result<(), String> {
        match self {
            Shard::Local(_) => Ok(()),
            Shard::Remote(remote) if remote.loaded.load(Ordering::Acquire) => Ok(()),
            Shard::Remote(remote) => {
                let why = remote
                    .last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_else(|| {
                        ": its executor has not connected since the coordinator started".to_owned()
                    });
                Err(format!(
                    "shard {} of {table} lives on executor node {} and is not readable yet{why}",
                    remote.shard.shard, remote.node
                ))
            }
        }
    }

    /// Appends `batch`; returns once it is durable and visible to scans.
    pub(super) async fn append(
        &self,
        batch: RecordBatch,
        hosts: Option<&dyn ShardHosts>,
    ) -> Result<(), AppendFailure> {
        match self {
            Shard::Local(log) => log
                .append(batch)
                .await
                .map(drop)
                .map_err(AppendFailure::Log),
            Shard::Remote(remote) => {
                let Some(hosts) = hosts else {
                    return Err(AppendFailure::Skipped(
                        "no executors are connected".to_owned(),
                    ));
                };
                remote.append(batch, hosts).await
            }
        }
    }

    pub(super) fn as_remote(&self) -> Option<&RemoteShard> {
        match self {
            Shard::Local(_) => None,
            Shard::Remote(remote) => Some(remote),
        }
    }
}

/// The acknowledged, not yet compacted rows of a remote shard, by first offset.
#[derive(Debug, Default)]
pub(super) struct Mirror {
    batches: BTreeMap<u64, (RecordBatch, usize)>,
    memory_bytes: usize,
}

/// A shard whose log lives on an executor's node.
#[derive(Debug)]
pub(super) struct RemoteShard {
    pub(super) node: String,
    pub(super) shard: ShardRef,
    /// The executor incarnation the log was opened on; `None` until opened, and again after a
    /// call failed (it must be reopened).
    opened_on: Mutex<Option<String>>,
    /// Whether the mirror was loaded from the node since this process opened the table.
    loaded: AtomicBool,
    mirror: RwLock<Mirror>,
    /// Appends hold it shared; snapshots for compaction and reopening hold it exclusively.
    pub(super) gate: tokio::sync::RwLock<()>,
    disk_bytes: AtomicU64,
    /// The node was told to delete its log below this offset.
    released: AtomicU64,
    /// End of the furthest batch this process acknowledged: a reloaded log must reach it.
    acked_end: AtomicU64,
    /// Why the last open failed, for scans' error message.
    last_error: Mutex<Option<String>>,
}

impl RemoteShard {
    pub(super) fn new(node: String, shard: ShardRef) -> Self {
        Self {
            node,
            shard,
            opened_on: Mutex::new(None),
            loaded: AtomicBool::new(false),
            mirror: RwLock::new(Mirror::default()),
            gate: tokio::sync::RwLock::new(()),
            disk_bytes: AtomicU64::new(0),
            released: AtomicU64::new(0),
            acked_end: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    fn mirror(&self) -> std::sync::RwLockReadGuard<'_, Mirror> {
        self.mirror.read().unwrap_or_else(|e| e.into_inner())
    }

    fn opened_on(&self) -> Option<String> {
        self.opened_on
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn is_open(&self) -> bool {
        self.opened_on().is_some()
    }

    /// Open on the executor that serves its node now.
    fn is_current(&self, hosts: &dyn ShardHosts) -> bool {
        self.opened_on()
            .is_some_and(|opened| hosts.incarnation(&self.node).as_deref() == Some(&opened))
    }

    /// The incarnation to (re)open on, when the shard needs it and its node is live.
    pub(super) fn needs_open(&self, hosts: &dyn ShardHosts) -> Option<String> {
        let current = hosts.incarnation(&self.node)?;
        (self.opened_on().as_deref() != Some(current.as_str())).then_some(current)
    }

    fn close(&self) {
        *self.opened_on.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn append(
        &self,
        batch: RecordBatch,
        hosts: &dyn ShardHosts,
    ) -> Result<(), AppendFailure> {
        let _gate = self.gate.read().await;
        if !self.is_current(hosts) {
            return Err(AppendFailure::Skipped(format!(
                "shard {} is not open on a live executor",
                self.shard.shard
            )));
        }
        let payload =
            crate::ipc::encode_batch(&batch).map_err(|e| AppendFailure::Log(LogError::Arrow(e)))?;
        let bytes = payload.len();
        match hosts.append(&self.node, &self.shard, payload).await {
            Ok(ack) => {
                let end = ack.offset.saturating_add(batch.num_rows() as u64);
                let mut mirror = self.mirror.write().unwrap_or_else(|e| e.into_inner());
                if mirror.batches.contains_key(&ack.offset) {
                    // Two batches at one offset: the node is not keeping its log's order.
                    drop(mirror);
                    self.close();
                    return Err(AppendFailure::Unknown(format!(
                        "node {} answered offset {} twice",
                        self.node, ack.offset
                    )));
                }
                mirror.memory_bytes += bytes;
                mirror.batches.insert(ack.offset, (batch, bytes));
                drop(mirror);
                self.acked_end.fetch_max(end, Ordering::AcqRel);
                self.disk_bytes.store(ack.disk_bytes, Ordering::Relaxed);
                Ok(())
            }
            Err(RemoteError::NotOpen(message) | RemoteError::Unreachable(message)) => {
                self.close();
                Err(AppendFailure::Skipped(message))
            }
            Err(RemoteError::Failed(message)) => {
                self.close();
                Err(AppendFailure::Unknown(message))
            }
        }
    }

    /// Replaces the mirror with the node's log, keeping rows from `compacted` (the lake's
    /// offset now) on. The caller holds the gate (no append in flight) and the publication lock
    /// (compaction cannot move `compacted` meanwhile). Refuses a log that ends before rows this
    /// process acknowledged: it is not the log they were written to.
    pub(super) fn loaded_from(
        &self,
        incarnation: String,
        batches: Vec<RemoteBatch>,
        compacted: u64,
    ) -> Result<(), String> {
        let mut mirror = Mirror::default();
        let mut end = compacted;
        for RemoteBatch {
            offset,
            batch,
            bytes,
        } in batches
        {
            end = end.max(offset.saturating_add(batch.num_rows() as u64));
            if offset < compacted {
                continue;
            }
            mirror.memory_bytes += bytes;
            mirror.batches.insert(offset, (batch, bytes));
        }
        let acked = self.acked_end.load(Ordering::Acquire);
        if end < acked {
            return Err(format!(
                "node {}'s log of shard {} ends at row {end}, before row {acked} which was \
                 acknowledged: it is not the log the rows were written to",
                self.node, self.shard.shard
            ));
        }
        *self.mirror.write().unwrap_or_else(|e| e.into_inner()) = mirror;
        // What the node kept below `keep_from` is deleted at the next release.
        self.released.store(0, Ordering::Release);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *self.opened_on.lock().unwrap_or_else(|e| e.into_inner()) = Some(incarnation);
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    pub(super) fn open_failed(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(first: i64, rows: i64) -> RemoteBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let values = Int64Array::from((first..first + rows).collect::<Vec<_>>());
        RemoteBatch {
            offset: u64::try_from(first).expect("offset"),
            batch: RecordBatch::try_new(schema, vec![Arc::new(values)]).expect("batch"),
            bytes: 100,
        }
    }

    fn offsets(rows: &[(u64, RecordBatch)]) -> Vec<u64> {
        rows.iter().map(|(offset, _)| *offset).collect()
    }

    fn remote() -> Shard {
        Shard::Remote(RemoteShard::new(
            "node-a".to_owned(),
            ShardRef {
                table_path: "streams/d/s/t_1".to_owned(),
                shard: 0,
            },
        ))
    }

    #[test]
    fn compaction_stops_at_a_hole_while_scans_see_every_acknowledged_batch() {
        let shard = remote();
        let Shard::Remote(inner) = &shard else {
            unreachable!()
        };
        assert!(shard.readable("t").is_err(), "not loaded yet");
        // Rows 5..7 are missing: an append in flight, or one that failed after it was written.
        inner
            .loaded_from(
                "exec-1".to_owned(),
                vec![batch(0, 3), batch(3, 2), batch(7, 2)],
                0,
            )
            .expect("load");
        assert!(shard.readable("t").is_ok());
        assert_eq!(offsets(&shard.tail(0)), vec![0, 3, 7]);
        assert_eq!(offsets(&shard.compactable(0)), vec![0, 3]);
        assert_eq!(offsets(&shard.compactable(3)), vec![3]);
        assert_eq!(shard.memory_bytes(), 300);
        shard.forget_below(5);
        assert_eq!(offsets(&shard.tail(0)), vec![7]);
        assert!(
            shard.compactable(5).is_empty(),
            "the hole blocks compaction"
        );
        assert_eq!(shard.memory_bytes(), 100);
    }

    #[test]
    fn a_reload_drops_compacted_rows_and_refuses_a_log_behind_the_acknowledgements() {
        let shard = remote();
        let Shard::Remote(inner) = &shard else {
            unreachable!()
        };
        // The lake already holds rows below 3: they are not loaded again.
        inner
            .loaded_from("exec-1".to_owned(), vec![batch(0, 3), batch(3, 2)], 3)
            .expect("load");
        assert_eq!(offsets(&shard.tail(0)), vec![3]);
        inner.acked_end.store(9, Ordering::Release);
        let refused = inner
            .loaded_from("exec-2".to_owned(), vec![batch(3, 2)], 3)
            .expect_err("a log ending at 5 cannot hold rows acknowledged up to 9");
        assert!(refused.contains("acknowledged"), "{refused}");
        assert_eq!(offsets(&shard.tail(0)), vec![3], "the mirror is kept");
    }
}
