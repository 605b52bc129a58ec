//! Compaction: moves a streaming table's log tail into its Delta lake, one Parquet file per
//! event-time partition (hour or day), rows sorted by event time, all in one Delta commit that
//! also records each shard's next offset. Only after that commit and its files are fsynced is
//! the log released.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch};
use arrow::compute::{
    SortColumn, SortOptions, cast, concat, concat_batches, interleave, lexsort_to_indices, take,
};
use arrow::datatypes::{DataType, TimeUnit};
use deltalake::DeltaTable;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use futures::FutureExt;
use std::sync::atomic::Ordering;

use super::{Published, StreamTable};
use crate::error::{Error, Result};
use crate::model::TimePartitioning;

/// Runs compaction rounds for `table` every `compaction_interval_ms`, or sooner when appends
/// ask for room, until the table is dropped or closed.
pub(super) fn spawn(table: Weak<StreamTable>) {
    tokio::spawn(async move {
        loop {
            let Some(table) = table.upgrade() else { return };
            if table.dropped.load(Ordering::Acquire) {
                return;
            }
            let interval = Duration::from_millis(table.spec.compaction_interval_ms.max(10));
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = table.wake.notified() => {}
            }
            if table.dropped.load(Ordering::Acquire) {
                return;
            }
            let round = std::panic::AssertUnwindSafe(compact_once(&table)).catch_unwind();
            let error = match round.await {
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => error.to_string(),
                Err(panic) => {
                    table.needs_reconcile.store(true, Ordering::Release);
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    format!("compaction panicked: {message}")
                }
            };
            tracing::warn!(table = %table.name, %error, "compaction failed; will retry");
            table.counters.compaction_failed(error);
            drop(table);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// The Delta application id under which shard `shard` records its compacted offset.
fn app_id(shard: u32) -> String {
    format!("basin-shard-{shard}")
}

/// The first log offset of `shard` not yet in `lake`.
pub(super) async fn compacted_offset(
    lake: &DeltaTable,
    shard: u32,
) -> Result<u64, deltalake::DeltaTableError> {
    let version = lake
        .snapshot()?
        .transaction_version(lake.log_store().as_ref(), app_id(shard))
        .await?;
    Ok(version.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
}

/// One round: everything in the log now goes to the lake. Returns the rows moved. After a
/// failed round (which may have committed), the next starts by reconciling with the lake.
pub(super) async fn compact_once(table: &StreamTable) -> Result<u64> {
    let outcome = round(table).await;
    if outcome.is_err() {
        table.needs_reconcile.store(true, Ordering::Release);
    }
    outcome
}

async fn round(table: &StreamTable) -> Result<u64> {
    let mut lake_guard = table.compacting.lock().await;
    let Some(lake) = lake_guard.as_mut() else {
        return Ok(0);
    };
    if table.dropped.load(Ordering::Acquire) {
        return Ok(0);
    }
    if table.needs_reconcile.swap(false, Ordering::AcqRel) {
        reconcile(table, lake).await?;
    }
    let published = table
        .published
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut next = published.compacted.clone();
    let mut batches = Vec::new();
    // Rows a pinned reader, the latest epoch or the last view checkpoint still needs stay in
    // the log.
    let bound = table.epochs.compaction_bound(table.oid, table.shards.len());
    for (index, shard) in table.shards.iter().enumerate() {
        let limit = bound
            .as_ref()
            .and_then(|b| b.get(index).copied())
            .unwrap_or(u64::MAX);
        // Only the unbroken run of offsets from the lake's: past a hole (an append in flight,
        // or one that failed after its executor wrote it) rows would land below the lake's
        // offset and never be compacted.
        for (offset, batch) in shard
            .compactable(published.compacted[index])
            .into_iter()
            .take_while(|(offset, batch)| offset.saturating_add(batch.num_rows() as u64) <= limit)
        {
            next[index] = offset.checked_add(batch.num_rows() as u64).ok_or_else(|| {
                Error::Unsupported(format!("log offset overflow in shard {index}"))
            })?;
            batches.push(batch);
        }
    }
    if batches.is_empty() {
        // Rows a reopen loaded below the lake's offset are dropped here at the latest.
        for (shard, offset) in table.shards.iter().zip(&published.compacted) {
            shard.forget_below(*offset);
        }
        super::retention::apply(table, lake).await?;
        return Ok(0);
    }
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let started = SystemTime::now();
    let parts = partition_by_time(
        &table.schema,
        table.spec.event_time.as_deref(),
        table.spec.partition_by,
        &batches,
    )?;
    drop(batches);
    let mut writer =
        RecordBatchWriter::for_table(lake).map_err(|e| Error::delta(&table.name, e))?;
    let mut adds = Vec::new();
    for part in parts {
        writer
            .write(part)
            .await
            .map_err(|e| Error::delta(&table.name, e))?;
        adds.extend(
            writer
                .flush()
                .await
                .map_err(|e| Error::delta(&table.name, e))?,
        );
    }
    // The data files must be durable before a commit names them.
    if let Ok(dir) = table.lake_url.to_file_path() {
        let files: Vec<std::path::PathBuf> = adds.iter().map(|add| dir.join(&add.path)).collect();
        tokio::task::spawn_blocking(move || sync_files(&dir, &files))
            .await
            .map_err(|e| Error::io("fsync lake files", std::io::Error::other(e)))??;
    }
    let adds: Vec<Action> = adds.into_iter().map(Action::Add).collect();
    let offsets = next
        .iter()
        .enumerate()
        .map(|(shard, offset)| {
            Transaction::new(
                app_id(u32::try_from(shard).unwrap_or(u32::MAX)),
                i64::try_from(*offset).unwrap_or(i64::MAX),
            )
        })
        .collect();
    let snapshot = lake.snapshot().map_err(|e| Error::delta(&table.name, e))?;
    CommitBuilder::from(CommitProperties::default().with_application_transactions(offsets))
        .with_actions(adds)
        .build(
            Some(snapshot),
            lake.log_store(),
            DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: None,
                predicate: None,
            },
        )
        .await
        .map_err(|e| Error::delta(&table.name, e))?;
    // object_store's local store never fsyncs: the commit (and a checkpoint it may have
    // written) must be durable before the log forgets these rows.
    sync_lake_log(table, started).await?;
    lake.update_state()
        .await
        .map_err(|e| Error::delta(&table.name, e))?;
    let files = crate::tables::active_files(lake, &table.lake_url)
        .map_err(|e| Error::delta(&table.name, e))?;
    {
        let mut current = table.published.write().unwrap_or_else(|e| e.into_inner());
        *current = Published {
            files: Arc::new(files),
            compacted: next.clone(),
            lake_version: lake
                .version()
                .map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX)),
        };
        // Under the same lock as the swap, so no scan sees the rows twice or not at all.
        for (shard, offset) in table.shards.iter().zip(&next) {
            shard.forget_below(*offset);
        }
    }
    table.room.notify_waiters();
    for (shard, offset) in table.shards.iter().zip(&next) {
        if let Err(error) = shard.delete_below(*offset, table.hosts.as_deref()).await {
            tracing::warn!(table = %table.name, %error, "could not delete compacted log segments");
        }
    }
    table.counters.compacted(rows);
    tracing::debug!(table = %table.name, rows, "compacted log into the lake");
    super::retention::apply(table, lake).await?;
    Ok(rows)
}

/// Brings what scans see in line with the lake. After a round failed between
/// its Delta commit and publishing (an fsync or checkpoint error, a crash of the task), the
/// lake already holds rows the log still shows: make the lake durable, publish its files and
/// offsets, forget those rows. Otherwise the next round would commit them twice.
async fn reconcile(table: &StreamTable, lake: &mut DeltaTable) -> Result<()> {
    lake.update_state()
        .await
        .map_err(|e| Error::delta(&table.name, e))?;
    let mut offsets = Vec::with_capacity(table.shards.len());
    for shard in 0..table.shards.len() {
        let shard = u32::try_from(shard).unwrap_or(u32::MAX);
        offsets.push(
            compacted_offset(lake, shard)
                .await
                .map_err(|e| Error::delta(&table.name, e))?,
        );
    }
    let current = table
        .published
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .compacted
        .clone();
    if offsets == current {
        return Ok(());
    }
    tracing::warn!(table = %table.name, ?current, lake = ?offsets, "publishing a compaction that committed but did not finish");
    if let Ok(dir) = table.lake_url.to_file_path() {
        tokio::task::spawn_blocking(move || {
            crate::durability::sync_tree_since(&dir, SystemTime::UNIX_EPOCH)
        })
        .await
        .map_err(|e| Error::io("fsync lake", std::io::Error::other(e)))??;
    }
    let files = crate::tables::active_files(lake, &table.lake_url)
        .map_err(|e| Error::delta(&table.name, e))?;
    let mut published = table.published.write().unwrap_or_else(|e| e.into_inner());
    *published = Published {
        files: Arc::new(files),
        compacted: offsets.clone(),
        lake_version: lake
            .version()
            .map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX)),
    };
    for (shard, offset) in table.shards.iter().zip(&offsets) {
        shard.forget_below(*offset);
    }
    Ok(())
}

/// Fsyncs `files`, then `dir` (their names).
fn sync_files(dir: &std::path::Path, files: &[std::path::PathBuf]) -> Result<()> {
    for file in files {
        std::fs::File::open(file)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(format!("fsync {}", file.display()), e))?;
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("fsync {}", dir.display()), e))
}

/// Fsyncs what the commit wrote under `_delta_log/` (the commit, a checkpoint). File times
/// come from a coarse clock, so files from a little before `started` are synced too.
pub(super) async fn sync_lake_log(table: &StreamTable, started: SystemTime) -> Result<()> {
    let Ok(dir) = table.lake_url.to_file_path() else {
        return Ok(());
    };
    let since = started
        .checked_sub(Duration::from_secs(2))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    tokio::task::spawn_blocking(move || {
        crate::durability::sync_tree_since(&dir.join("_delta_log"), since)?;
        crate::store::sync_dir(&dir)
    })
    .await
    .map_err(|e| Error::io("fsync lake log", std::io::Error::other(e)))?
}

/// Sorts the rows of `batches` by the event-time column and splits them into one batch per
/// partition (hour/day); without an event-time column, one batch as appended. The rows are
/// gathered straight from `batches` in sorted order (one copy; concatenating first and then
/// taking copied every row twice).
fn partition_by_time(
    schema: &arrow::datatypes::SchemaRef,
    event_time: Option<&str>,
    partitioning: TimePartitioning,
    batches: &[RecordBatch],
) -> Result<Vec<RecordBatch>> {
    let Some(index) = event_time.and_then(|name| schema.index_of(name).ok()) else {
        return Ok(vec![concat_batches(schema, batches).map_err(arrow_error)?]);
    };
    let keys = batches
        .iter()
        .map(|batch| to_micros(batch.column(index)))
        .collect::<Result<Vec<_>>>()?;
    let micros =
        concat(&keys.iter().map(AsRef::as_ref).collect::<Vec<_>>()).map_err(arrow_error)?;
    let order = lexsort_to_indices(
        &[SortColumn {
            values: Arc::clone(&micros),
            options: Some(SortOptions {
                descending: false,
                nulls_first: true,
            }),
        }],
        None,
    )
    .map_err(arrow_error)?;
    // Each sorted position as (batch, row in it).
    let mut starts = Vec::with_capacity(batches.len());
    let mut total = 0;
    for batch in batches {
        starts.push(total);
        total += batch.num_rows();
    }
    let positions: Vec<(usize, usize)> = order
        .values()
        .iter()
        .map(|&global| {
            let global = global as usize;
            let batch = starts.partition_point(|&start| start <= global) - 1;
            (batch, global - starts[batch])
        })
        .collect();
    let sorted_columns = (0..schema.fields().len())
        .map(|column| {
            let arrays: Vec<&dyn Array> =
                batches.iter().map(|b| b.column(column).as_ref()).collect();
            interleave(&arrays, &positions)
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(arrow_error)?;
    let sorted = RecordBatch::try_new(Arc::clone(schema), sorted_columns).map_err(arrow_error)?;
    let Some(width) = partitioning.width_micros() else {
        return Ok(vec![sorted]);
    };
    let keys = take(micros.as_ref(), &order, None).map_err(arrow_error)?;
    let keys = keys
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| Error::Unsupported("event time is not a timestamp".to_owned()))?;
    let bucket = |i: usize| keys.is_valid(i).then(|| keys.value(i).div_euclid(width));
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 1..=sorted.num_rows() {
        if i == sorted.num_rows() || bucket(i) != bucket(start) {
            parts.push(sorted.slice(start, i - start));
            start = i;
        }
    }
    Ok(parts)
}

/// The event-time column as microseconds since the epoch.
fn to_micros(column: &ArrayRef) -> Result<ArrayRef> {
    let micros = match column.data_type() {
        DataType::Timestamp(_, _) => cast(
            &cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))
                .map_err(arrow_error)?,
            &DataType::Int64,
        ),
        DataType::Date32 => {
            let days = cast(column, &DataType::Int64).map_err(arrow_error)?;
            arrow::compute::kernels::numeric::mul(&days, &Int64Array::new_scalar(86_400_000_000))
        }
        other => {
            return Err(Error::Unsupported(format!(
                "event-time column has type {other}; expected a timestamp or date"
            )));
        }
    };
    micros.map_err(arrow_error)
}

fn arrow_error(error: arrow::error::ArrowError) -> Error {
    Error::DataFusion(error.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};

    #[test]
    fn rows_of_several_batches_are_sorted_by_event_time_and_split_per_hour() {
        let hour = 3_600_000_000_i64;
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = |ts: Vec<Option<i64>>, names: Vec<&str>| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(TimestampMicrosecondArray::from(ts)),
                    Arc::new(StringArray::from(names)),
                ],
            )
            .expect("batch")
        };
        let batches = [
            batch(vec![Some(hour + 5), Some(3), None], vec!["b1", "a2", "n"]),
            batch(vec![Some(1), Some(hour + 1)], vec!["a1", "b0"]),
        ];
        let parts = partition_by_time(&schema, Some("ts"), TimePartitioning::Hour, &batches)
            .expect("partitioned");
        let names: Vec<Vec<String>> = parts
            .iter()
            .map(|part| {
                part.column(1)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("strings")
                    .iter()
                    .map(|v| v.unwrap_or_default().to_owned())
                    .collect()
            })
            .collect();
        assert_eq!(names, [vec!["n"], vec!["a1", "a2"], vec!["b0", "b1"]]);
        let whole =
            partition_by_time(&schema, None, TimePartitioning::Hour, &batches).expect("one batch");
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].num_rows(), 5);
    }
}
