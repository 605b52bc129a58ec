//! Streaming tables at run time. Every ingest path (INSERT, COPY, HTTP, Flight) ends in
//! [`StreamTable::append`]: the batch is checked against the schema, spread round-robin over the
//! table's log shards, and acknowledged once its shard has synced it. A background compactor
//! moves the log into the table's Delta lake and releases it; scans read the lake's files plus
//! the log's tail, so a row is visible from its acknowledgement on, before and after compaction.
//!
//! The lake is the authority for what has been compacted: every compaction commits, in the same
//! Delta transaction as its files, each shard's next offset as an application transaction
//! (`txn` action `basin-shard-<k>`). After a crash the log is replayed from those offsets, so a
//! row is in the lake or in the log tail, never both and never neither.

mod compact;
mod create;
pub use create::parse_bytes;
mod placement;
mod provider;
mod retention;
mod shard;
mod stats;
mod tail_pruning;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use tokio::sync::Notify;
use url::Url;

pub use self::create::StreamDefinition;
pub use self::provider::StreamTableProvider;
use self::shard::{AppendFailure, RemoteShard, Shard};
pub use self::shard::{RemoteAck, RemoteBatch, RemoteError, ShardHosts, ShardRef};
use self::stats::Counters;
pub use self::stats::IngestStats;
use crate::delta_files::DataFile;
use crate::error::{Error, Result};
use crate::model::{Oid, RelationEntry, RelationKind, StreamSpec};
use crate::store::Catalog;
use crate::stream_log::{LogError, LogOptions, StreamLog};

/// Unreleased log memory per table above which appends wait for compaction (and HTTP answers
/// 503): ingest slows rather than exhausting memory.
pub const DEFAULT_MAX_LOG_MEMORY: usize = 512 * 1024 * 1024;

/// A row the table refused, and why. `row` counts from 1 within the request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
pub struct RowError {
    pub row: Option<u64>,
    pub column: Option<String>,
    pub message: String,
    /// SQLSTATE: 22P02 bad value, 23502 NULL in a NOT NULL column, 22P04 bad framing.
    pub sqlstate: &'static str,
}

impl RowError {
    fn describe(&self) -> String {
        match (self.row, &self.column) {
            (Some(row), Some(column)) => {
                format!("row {row}, column \"{column}\": {}", self.message)
            }
            (Some(row), None) => format!("row {row}: {}", self.message),
            (None, Some(column)) => format!("column \"{column}\": {}", self.message),
            (None, None) => self.message.clone(),
        }
    }
}

/// Why an append was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The data does not fit the table; nothing of the batch was written.
    #[error(transparent)]
    Rejected(#[from] RowError),
    /// The log could not make the batch durable; nothing was acknowledged.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The table was dropped.
    #[error("streaming table {0} was dropped")]
    Dropped(String),
    /// No shard can take appends now (their executors are gone); nothing was written.
    #[error("{0}")]
    Unavailable(String),
    /// An executor failed while making the batch durable: it may or may not have been
    /// written, and was not acknowledged.
    #[error("{0}")]
    Unknown(String),
    /// The log stayed over its memory budget for [`MAX_BACKPRESSURE_WAIT`]: compaction is not
    /// keeping up (or failing); nothing of the batch was written.
    #[error("{0}")]
    Stalled(String),
}

/// Longest an append waits for compaction to make room before it fails.
pub const MAX_BACKPRESSURE_WAIT: Duration = Duration::from_secs(60);

/// Longest an append or a scan waits for a shard's executor to (re)connect before it fails.
pub const UNAVAILABLE_WAIT: Duration = Duration::from_secs(10);

/// What the compactor last published: the lake's files and, per shard, the first log offset
/// not in them.
#[derive(Debug, Clone)]
struct Published {
    files: Arc<Vec<DataFile>>,
    compacted: Vec<u64>,
    lake_version: i64,
}

/// One open streaming table: its shards, its lake, its counters.
#[derive(Debug)]
pub struct StreamTable {
    oid: Oid,
    name: String,
    spec: StreamSpec,
    schema: SchemaRef,
    lake_url: Url,
    shards: Vec<Shard>,
    /// How remote shards are reached; `None` when no executor can host shards.
    hosts: Option<Arc<dyn ShardHosts>>,
    next_shard: AtomicUsize,
    published: RwLock<Published>,
    counters: Counters,
    max_log_memory: usize,
    /// Signalled when compaction released memory.
    room: Notify,
    /// Signalled to start a compaction round now.
    wake: Notify,
    dropped: AtomicBool,
    /// Set when a compaction round failed: the next one first reconciles with the lake.
    needs_reconcile: AtomicBool,
    /// Serialises compaction rounds (the background task and explicit requests).
    compacting: tokio::sync::Mutex<Option<deltalake::DeltaTable>>,
    /// Lake files removed by retention, with when they may be deleted from disk.
    expired: std::sync::Mutex<Vec<(std::time::Instant, PathBuf)>>,
    /// What readers and view checkpoints still need from the log (bounds compaction).
    epochs: Arc<crate::views::Epochs>,
    /// When the first append since the last epoch capture was acknowledged: the oldest row an
    /// epoch carries, for view freshness.
    first_ack: std::sync::Mutex<Option<std::time::Instant>>,
}

impl StreamTable {
    pub fn oid(&self) -> Oid {
        self.oid
    }

    /// The table's qualified name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    pub fn spec(&self) -> &StreamSpec {
        &self.spec
    }

    /// Appends `batch` durably; returns once it is synced and visible to every reader. Waits
    /// while the log holds more than its memory budget (compaction is behind).
    pub async fn append(&self, batch: RecordBatch) -> Result<u64, IngestError> {
        let batch = self.conform(batch)?;
        if batch.num_rows() == 0 {
            return Ok(0);
        }
        let waiting_since = std::time::Instant::now();
        while self.pressure().is_some() {
            if self.dropped.load(Ordering::Acquire) {
                return Err(IngestError::Dropped(self.name.clone()));
            }
            if waiting_since.elapsed() > MAX_BACKPRESSURE_WAIT {
                let last = self.stats().last_compaction_error;
                return Err(IngestError::Stalled(format!(
                    "ingest into {} stalled: its log has been over its memory budget for {}s \
                     while compaction catches up{}",
                    self.name,
                    MAX_BACKPRESSURE_WAIT.as_secs(),
                    last.map(|e| format!(" (last compaction error: {e})"))
                        .unwrap_or_default()
                )));
            }
            self.wake.notify_one();
            let _ = tokio::time::timeout(Duration::from_millis(100), self.room.notified()).await;
        }
        if self.dropped.load(Ordering::Acquire) {
            return Err(IngestError::Dropped(self.name.clone()));
        }
        // Round-robin over the shards, past any that cannot take appends now (a broken log, an
        // executor that is gone). A batch whose commit failed midway is never retried
        // elsewhere: the failed write may still be durable, and the retry a duplicate.
        let rows = batch.num_rows() as u64;
        let bytes = batch.get_array_memory_size() as u64;
        let hosts = self.hosts.as_deref();
        let deadline = std::time::Instant::now() + UNAVAILABLE_WAIT;
        loop {
            let start = self.next_shard.fetch_add(1, Ordering::Relaxed);
            let mut skipped = Vec::new();
            let mut delivered = false;
            for shard in (0..self.shards.len()).map(|i| (start + i) % self.shards.len()) {
                if !self.shards[shard].appendable(hosts) {
                    continue;
                }
                match self.shards[shard].append(batch.clone(), hosts).await {
                    Ok(()) => {
                        delivered = true;
                        break;
                    }
                    Err(AppendFailure::Skipped(why)) => {
                        skipped.push(format!("shard {shard}: {why}"));
                        continue;
                    }
                    Err(AppendFailure::Log(error)) => return Err(IngestError::Log(error)),
                    Err(AppendFailure::Unknown(why)) => {
                        return Err(IngestError::Unknown(format!(
                            "the executor holding shard {shard} of {} failed while making the \
                             rows durable; they were not acknowledged and may or may not have \
                             been written: {why}",
                            self.name
                        )));
                    }
                }
            }
            if delivered {
                break;
            }
            if self.dropped.load(Ordering::Acquire) {
                return Err(IngestError::Dropped(self.name.clone()));
            }
            if std::time::Instant::now() >= deadline {
                return Err(IngestError::Unavailable(format!(
                    "no shard of {} could take rows for {}s: their executors are not \
                     connected{}",
                    self.name,
                    UNAVAILABLE_WAIT.as_secs(),
                    if skipped.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", skipped.join("; "))
                    }
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.counters.appended(rows, bytes);
        self.first_ack
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(std::time::Instant::now);
        if self.shards.iter().map(Shard::memory_bytes).sum::<usize>() > self.max_log_memory / 2 {
            // Half the budget used: compact now rather than at the next interval.
            self.wake.notify_one();
        }
        Ok(rows)
    }

    /// `Some(retry after)` while the log is over its memory budget: callers that can refuse
    /// (HTTP) should, callers that can wait (COPY, Flight) wait in [`StreamTable::append`].
    pub fn pressure(&self) -> Option<Duration> {
        let memory: usize = self.shards.iter().map(Shard::memory_bytes).sum();
        (memory > self.max_log_memory).then(|| {
            self.wake.notify_one();
            Duration::from_secs(1)
        })
    }

    /// The share of its memory budget the log holds now (compaction frees it).
    pub fn log_memory_share(&self) -> f64 {
        let memory: usize = self.shards.iter().map(Shard::memory_bytes).sum();
        memory as f64 / self.max_log_memory.max(1) as f64
    }

    /// Counts rows refused by a front end before they reached [`StreamTable::append`].
    pub fn record_rejected(&self, rows: u64) {
        self.counters.rejected(rows);
    }

    /// Checks `batch` against the table: same column count, names and types (front ends
    /// convert first) and no NULL in a NOT NULL column; returns it with the table's schema.
    fn conform(&self, batch: RecordBatch) -> Result<RecordBatch, RowError> {
        let fields = self.schema.fields();
        if batch.num_columns() != fields.len() {
            return Err(RowError {
                row: None,
                column: None,
                message: format!(
                    "expected {} columns, got {}",
                    fields.len(),
                    batch.num_columns()
                ),
                sqlstate: "22P04",
            });
        }
        for (field, column) in fields.iter().zip(batch.columns()) {
            if column.data_type() != field.data_type() {
                return Err(RowError {
                    row: None,
                    column: Some(field.name().clone()),
                    message: format!(
                        "expected type {}, got {}",
                        field.data_type(),
                        column.data_type()
                    ),
                    sqlstate: "42804",
                });
            }
            if !field.is_nullable()
                && column.null_count() > 0
                && let Some(row) = (0..column.len()).find(|&i| column.is_null(i))
            {
                self.counters.rejected(batch.num_rows() as u64);
                return Err(RowError {
                    row: Some(row as u64 + 1),
                    column: Some(field.name().clone()),
                    message: "null value violates not-null constraint".to_owned(),
                    sqlstate: "23502",
                });
            }
        }
        for (field, column) in fields.iter().zip(batch.columns()) {
            if let Some(row) = out_of_range(column) {
                self.counters.rejected(batch.num_rows() as u64);
                return Err(RowError {
                    row: Some(row as u64 + 1),
                    column: Some(field.name().clone()),
                    message: "date/time value out of range".to_owned(),
                    sqlstate: "22008",
                });
            }
        }
        RecordBatch::try_new(Arc::clone(&self.schema), batch.columns().to_vec()).map_err(|e| {
            RowError {
                row: None,
                column: None,
                message: e.to_string(),
                sqlstate: "22P04",
            }
        })
    }

    /// What scans see now: the lake's files and every log batch after them. Taken under the
    /// publication lock so a compaction cannot move rows between the two halves meanwhile.
    /// Fails while a remote shard's rows are not known yet (its executor has not connected).
    fn snapshot(&self) -> std::result::Result<(Arc<Vec<DataFile>>, Vec<RecordBatch>), String> {
        for shard in &self.shards {
            shard.readable(&self.name)?;
        }
        let published = self.published.read().unwrap_or_else(|e| e.into_inner());
        let tail = self
            .shards
            .iter()
            .zip(&published.compacted)
            .flat_map(|(shard, from)| shard.tail(*from))
            .map(|(_, batch)| batch)
            .collect();
        Ok((Arc::clone(&published.files), tail))
    }

    /// Like [`StreamTable::snapshot`], but only the log rows below `offsets` (per shard): the
    /// table as of a committed epoch. Compaction never moves rows past a pinned epoch's
    /// offsets into the lake, so the files hold nothing newer.
    fn snapshot_at(
        &self,
        offsets: &[u64],
    ) -> std::result::Result<(Arc<Vec<DataFile>>, Vec<RecordBatch>), String> {
        for shard in &self.shards {
            shard.readable(&self.name)?;
        }
        let published = self.published.read().unwrap_or_else(|e| e.into_inner());
        if published
            .compacted
            .iter()
            .zip(offsets)
            .any(|(compacted, cap)| compacted > cap)
        {
            tracing::warn!(table = %self.name, "lake is ahead of the pinned epoch; reading the latest rows");
            drop(published);
            return self.snapshot();
        }
        let tail = self
            .shards
            .iter()
            .zip(&published.compacted)
            .zip(offsets)
            .flat_map(|((shard, from), cap)| {
                shard
                    .tail(*from)
                    .into_iter()
                    .filter(move |(offset, _)| offset < cap)
            })
            .map(|(_, batch)| batch)
            .collect();
        Ok((Arc::clone(&published.files), tail))
    }

    /// Per shard, the end of the unbroken run of durable rows from `previous` (or the lake's
    /// offset): where an epoch closed now ends. A shard not readable yet stays where it was;
    /// the flag says whether every shard was readable.
    pub fn capture(&self, previous: Option<&[u64]>) -> (Arc<[u64]>, bool) {
        let published = self.published.read().unwrap_or_else(|e| e.into_inner());
        let mut readable = true;
        let offsets = self
            .shards
            .iter()
            .enumerate()
            .map(|(index, shard)| {
                let from = previous
                    .and_then(|p| p.get(index).copied())
                    .unwrap_or(0)
                    .max(published.compacted[index]);
                if shard.readable(&self.name).is_err() {
                    readable = false;
                    return from;
                }
                shard
                    .compactable(from)
                    .last()
                    .map_or(from, |(offset, batch)| offset + batch.num_rows() as u64)
            })
            .collect();
        (offsets, readable)
    }

    /// The rows between two captures, `from` (exclusive of earlier rows) up to `to`, per
    /// shard. Fails if compaction already moved some of them into the lake (the caller then
    /// rebuilds from a full snapshot).
    pub fn delta(&self, from: &[u64], to: &[u64]) -> std::result::Result<Vec<RecordBatch>, String> {
        let published = self.published.read().unwrap_or_else(|e| e.into_inner());
        let mut batches = Vec::new();
        for (index, shard) in self.shards.iter().enumerate() {
            let (start, end) = (
                from.get(index).copied().unwrap_or(0),
                to.get(index).copied().unwrap_or(0),
            );
            if start >= end {
                continue;
            }
            if published.compacted[index] > start {
                return Err(format!(
                    "rows {start}.. of shard {index} of {} were compacted before they were read",
                    self.name
                ));
            }
            batches.extend(
                shard
                    .tail(start)
                    .into_iter()
                    .take_while(|(offset, _)| *offset < end)
                    .map(|(_, batch)| batch),
            );
        }
        Ok(batches)
    }

    /// When the oldest append since the previous call was acknowledged.
    pub fn take_first_ack(&self) -> Option<std::time::Instant> {
        self.first_ack
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Waits (up to [`UNAVAILABLE_WAIT`]) until every shard's rows are known, as after a
    /// coordinator restart while executors reconnect.
    pub(super) async fn wait_readable(&self) -> std::result::Result<(), String> {
        let deadline = std::time::Instant::now() + UNAVAILABLE_WAIT;
        loop {
            let unreadable = self
                .shards
                .iter()
                .find_map(|shard| shard.readable(&self.name).err());
            match unreadable {
                None => return Ok(()),
                Some(why) if std::time::Instant::now() >= deadline => return Err(why),
                Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Counters and sizes for `basin.ingest_stats`.
    pub fn stats(&self) -> IngestStats {
        let published = self
            .published
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let log_rows: u64 = self
            .shards
            .iter()
            .zip(&published.compacted)
            .flat_map(|(shard, from)| shard.tail(*from))
            .map(|(_, batch)| batch.num_rows() as u64)
            .sum();
        self.counters.snapshot(
            log_rows,
            self.shards.iter().map(Shard::disk_bytes).sum(),
            self.shards.iter().map(Shard::memory_bytes).sum::<usize>() as u64,
            published.files.iter().filter_map(|f| f.rows).sum::<usize>() as u64,
            published.files.len() as u64,
            published.lake_version,
        )
    }

    fn stop(&self) {
        self.dropped.store(true, Ordering::Release);
        self.wake.notify_one();
        self.room.notify_waiters();
    }
}

/// First row of a date or timestamp column outside the years the lake's writers handle
/// (chrono's range, about ±262,000 years): such a value would stop compaction.
fn out_of_range(column: &arrow::array::ArrayRef) -> Option<usize> {
    use arrow::array::{Date32Array, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, TimeUnit};
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let min_days = (chrono::NaiveDate::MIN - epoch).num_days();
    let max_days = (chrono::NaiveDate::MAX - epoch).num_days();
    let first_outside = |values: &mut dyn Iterator<Item = Option<i64>>, low: i64, high: i64| {
        values
            .enumerate()
            .find(|(_, v)| v.is_some_and(|v| v < low || v > high))
            .map(|(row, _)| row)
    };
    match column.data_type() {
        DataType::Date32 => {
            let dates = column.as_any().downcast_ref::<Date32Array>()?;
            first_outside(
                &mut dates.iter().map(|d| d.map(i64::from)),
                min_days,
                max_days,
            )
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let times = column
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()?;
            const DAY_MICROS: i64 = 86_400_000_000;
            first_outside(
                &mut times.iter(),
                min_days.saturating_mul(DAY_MICROS),
                max_days.saturating_mul(DAY_MICROS),
            )
        }
        _ => None,
    }
}

/// The streaming tables this process has open, by OID.
#[derive(Debug, Default)]
pub(crate) struct StreamRegistry {
    tables: tokio::sync::Mutex<HashMap<Oid, Arc<StreamTable>>>,
    /// The same tables, readable without waiting for a table being opened.
    open: std::sync::RwLock<Vec<Arc<StreamTable>>>,
    /// Executors that host shards, once the coordinator set them.
    hosts: std::sync::OnceLock<Arc<dyn ShardHosts>>,
}

impl Catalog {
    /// The open streaming table `entry`, opening (and recovering) it on first use.
    pub async fn stream_table(self: &Arc<Self>, entry: &RelationEntry) -> Result<Arc<StreamTable>> {
        let RelationKind::Stream(spec) = &entry.kind else {
            return Err(Error::WrongObjectType(format!(
                "\"{}\" is not a streaming table",
                entry.name
            )));
        };
        let mut tables = self.streams().tables.lock().await;
        if let Some(table) = tables.get(&entry.oid) {
            return Ok(Arc::clone(table));
        }
        let hosts = self.streams().hosts.get().cloned();
        let table = Arc::new(
            open_stream(
                self.data_dir(),
                self.lake_root(),
                entry,
                spec,
                hosts,
                Arc::clone(self.epochs()),
            )
            .await?,
        );
        compact::spawn(Arc::downgrade(&table));
        tables.insert(entry.oid, Arc::clone(&table));
        self.streams()
            .open
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&table));
        drop(tables);
        // Remote shards whose executors are connected open now (without holding the registry),
        // so a new table takes rows at once; the keeper opens the others as their executors
        // come. Appends and scans meanwhile wait for them.
        placement::open_remote(&table).await;
        placement::spawn_keeper(Arc::downgrade(&table));
        Ok(table)
    }

    /// Opens every streaming table, so logs left by a crash are recovered and compacted
    /// without waiting for a first query. Errors are logged per table.
    pub async fn open_streams(self: &Arc<Self>) {
        let snapshot = self.snapshot();
        for entry in &snapshot.relations {
            if matches!(entry.kind, RelationKind::Stream(_))
                && let Err(error) = self.stream_table(entry).await
            {
                tracing::error!(table = %entry.name, %error, "could not open streaming table");
            }
        }
    }

    /// Every open streaming table.
    pub fn open_stream_tables(&self) -> Vec<Arc<StreamTable>> {
        self.streams()
            .open
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Closes a dropped streaming table; its files are removed by the caller afterwards.
    pub(crate) async fn close_stream(&self, oid: Oid) {
        self.streams()
            .open
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|t| t.oid != oid);
        let removed = self.streams().tables.lock().await.remove(&oid);
        if let Some(table) = removed {
            table.stop();
            placement::drop_remote(&table).await;
            // Let a running compaction round finish before its files go away (without holding
            // the registry, so other tables carry on).
            drop(table.compacting.lock().await);
        }
    }

    /// Runs one compaction round of `table` now; returns the rows moved into the lake.
    pub async fn compact_stream(&self, table: &StreamTable) -> Result<u64> {
        compact::compact_once(table).await
    }
}

async fn open_stream(
    data_dir: &std::path::Path,
    lake_root: &url::Url,
    entry: &RelationEntry,
    spec: &StreamSpec,
    hosts: Option<Arc<dyn ShardHosts>>,
    epochs: Arc<crate::views::Epochs>,
) -> Result<StreamTable> {
    let dir = data_dir.join(&spec.path);
    let lake_url = crate::tables::managed_table_url(lake_root, &format!("{}/lake", spec.path))?;
    let name = format!("{}.{}", entry.schema, entry.name);
    let lake = deltalake::open_table(lake_url.clone())
        .await
        .map_err(|e| Error::delta(&name, e))?;
    let files =
        crate::tables::active_files(&lake, &lake_url).map_err(|e| Error::delta(&name, e))?;
    let lake_version = lake
        .version()
        .map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX));
    let schema = entry.arrow_schema();
    let mut shards = Vec::new();
    let mut compacted = Vec::new();
    for shard in 0..spec.shards.max(1) {
        let from = compact::compacted_offset(&lake, shard)
            .await
            .map_err(|e| Error::delta(&name, e))?;
        compacted.push(from);
        if let Some(node) = spec.nodes.get(shard as usize).filter(|n| !n.is_empty()) {
            let shard = ShardRef {
                table_path: spec.path.clone(),
                shard,
            };
            shards.push(Shard::Remote(RemoteShard::new(node.clone(), shard)));
            continue;
        }
        let log = StreamLog::open(
            &shard_dir(&dir, shard),
            Arc::clone(&schema),
            LogOptions::default(),
            from,
        )
        .await
        .map_err(|e| Error::io(format!("open log of {name}"), std::io::Error::other(e)))?;
        shards.push(Shard::Local(log));
    }
    tracing::info!(table = %name, shards = shards.len(), lake_files = files.len(), "opened streaming table");
    Ok(StreamTable {
        oid: entry.oid,
        name,
        spec: spec.clone(),
        schema,
        lake_url,
        shards,
        hosts,
        next_shard: AtomicUsize::new(0),
        published: RwLock::new(Published {
            files: Arc::new(files),
            compacted,
            lake_version,
        }),
        counters: Counters::default(),
        max_log_memory: spec
            .log_memory_limit
            .and_then(|b| usize::try_from(b).ok())
            .unwrap_or(DEFAULT_MAX_LOG_MEMORY),
        room: Notify::new(),
        wake: Notify::new(),
        dropped: AtomicBool::new(false),
        needs_reconcile: AtomicBool::new(false),
        compacting: tokio::sync::Mutex::new(Some(lake)),
        expired: std::sync::Mutex::new(Vec::new()),
        epochs,
        first_ack: std::sync::Mutex::new(None),
    })
}

fn shard_dir(table_dir: &std::path::Path, shard: u32) -> PathBuf {
    table_dir.join("log").join(format!("shard-{shard}"))
}
