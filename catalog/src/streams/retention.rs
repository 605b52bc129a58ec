//! Retention (`WITH (retention = '7 days')`): after each compaction round, lake files whose
//! newest event time is older than the retention are removed from the Delta table in one
//! commit, so queries stop seeing them at once. The files themselves are deleted a grace period
//! later, so queries already reading them finish. Retention works per file (one per hour or day
//! partition), so a row can outlive it by up to one partition; rows still in the log tail are
//! kept until they are compacted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use datafusion::common::ScalarValue;
use datafusion::common::stats::Precision;
use deltalake::DeltaTable;
use deltalake::kernel::Action;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::protocol::DeltaOperation;

use super::{Published, StreamTable};
use crate::error::{Error, Result};

/// How long a file removed by retention stays on disk for queries that already planned it.
const DELETE_GRACE: Duration = Duration::from_secs(600);

/// Removes expired files from the lake; returns how many.
pub(super) async fn apply(table: &StreamTable, lake: &mut DeltaTable) -> Result<usize> {
    delete_expired_files(table);
    let (Some(secs), Some(column)) = (table.spec.retention_secs, &table.spec.event_time) else {
        return Ok(0);
    };
    let Ok(index) = table.schema.index_of(column) else {
        return Ok(0);
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let cutoff = now.saturating_sub(
        i64::try_from(secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000),
    );
    let state = lake.snapshot().map_err(|e| Error::delta(&table.name, e))?;
    let schema = state.snapshot().arrow_schema();
    let mut removes = Vec::new();
    let mut paths = Vec::new();
    for file in state
        .snapshot()
        .try_log_data()
        .map_err(|e| Error::delta(&table.name, e))?
        .iter()
    {
        let size = u64::try_from(file.size()).unwrap_or(0);
        let newest = crate::delta_stats::file_statistics(&schema, file.stats().as_deref(), size)
            .and_then(
                |stats| match &stats.column_statistics.get(index)?.max_value {
                    Precision::Exact(value) => micros(value),
                    _ => None,
                },
            );
        if newest.is_some_and(|newest| newest < cutoff) {
            paths.push(file.path().into_owned());
            removes.push(Action::Remove(file.remove_action(true)));
        }
    }
    if removes.is_empty() {
        return Ok(0);
    }
    let started = SystemTime::now();
    let removed = removes.len();
    CommitBuilder::default()
        .with_actions(removes)
        .build(
            Some(state),
            lake.log_store(),
            DeltaOperation::Delete {
                predicate: Some(format!("{column} older than the {secs}s retention")),
            },
        )
        .await
        .map_err(|e| Error::delta(&table.name, e))?;
    super::compact::sync_lake_log(table, started).await?;
    lake.update_state()
        .await
        .map_err(|e| Error::delta(&table.name, e))?;
    let files = crate::tables::active_files(lake, &table.lake_url)
        .map_err(|e| Error::delta(&table.name, e))?;
    {
        let mut published = table.published.write().unwrap_or_else(|e| e.into_inner());
        *published = Published {
            files: Arc::new(files),
            compacted: published.compacted.clone(),
            lake_version: lake
                .version()
                .map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX)),
        };
    }
    if let Ok(dir) = table.lake_url.to_file_path() {
        let due = Instant::now() + DELETE_GRACE;
        table
            .expired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(paths.into_iter().map(|p| (due, dir.join(p))));
    }
    tracing::info!(table = %table.name, files = removed, "retention removed lake files");
    Ok(removed)
}

/// Deletes files whose grace period is over.
fn delete_expired_files(table: &StreamTable) {
    let now = Instant::now();
    let due: Vec<PathBuf> = {
        let mut expired = table.expired.lock().unwrap_or_else(|e| e.into_inner());
        let (due, later): (Vec<_>, Vec<_>) = expired.drain(..).partition(|(at, _)| *at <= now);
        *expired = later;
        due.into_iter().map(|(_, path)| path).collect()
    };
    for path in due {
        if let Err(error) = std::fs::remove_file(&path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), %error, "could not delete an expired lake file");
        }
    }
}

/// A timestamp or date bound as microseconds since the epoch.
fn micros(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some(*v),
        ScalarValue::Date32(Some(days)) => i64::from(*days).checked_mul(86_400_000_000),
        _ => None,
    }
}
