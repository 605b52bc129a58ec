//! Ingest counters of one streaming table and the rates `basin.ingest_stats` shows.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Rates are measured over windows of about this long.
const RATE_WINDOW: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(super) struct Counters {
    rows: AtomicU64,
    bytes: AtomicU64,
    batches: AtomicU64,
    rejected: AtomicU64,
    compactions: AtomicU64,
    compacted_rows: AtomicU64,
    last_compaction: Mutex<Option<SystemTime>>,
    opened: SystemTime,
    last_compaction_error: Mutex<Option<String>>,
    /// Start of the current rate window and the totals then; the previous window's rates.
    window: Mutex<RateWindow>,
}

#[derive(Debug)]
struct RateWindow {
    started: Instant,
    rows: u64,
    bytes: u64,
    rows_per_sec: f64,
    bytes_per_sec: f64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            compacted_rows: AtomicU64::new(0),
            last_compaction: Mutex::new(None),
            opened: SystemTime::now(),
            last_compaction_error: Mutex::new(None),
            window: Mutex::new(RateWindow {
                started: Instant::now(),
                rows: 0,
                bytes: 0,
                rows_per_sec: 0.0,
                bytes_per_sec: 0.0,
            }),
        }
    }
}

/// One table's ingest state, as `basin.ingest_stats` and `GET /v1/tables` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IngestStats {
    pub rows_total: u64,
    pub bytes_total: u64,
    pub batches_total: u64,
    pub rejected_rows: u64,
    pub rows_per_sec: f64,
    pub bytes_per_sec: f64,
    /// Acknowledged rows not yet in the lake.
    pub log_rows: u64,
    pub log_disk_bytes: u64,
    pub log_memory_bytes: u64,
    pub lake_rows: u64,
    pub lake_files: u64,
    pub lake_version: i64,
    pub compactions: u64,
    /// Seconds since the last compaction round finished while rows wait in the log (0 when the
    /// log is empty): how far the lake trails ingest.
    pub compaction_lag_secs: f64,
    pub last_compaction_error: Option<String>,
}

impl Counters {
    pub(super) fn appended(&self, rows: u64, bytes: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn rejected(&self, rows: u64) {
        self.rejected.fetch_add(rows, Ordering::Relaxed);
    }

    pub(super) fn compacted(&self, rows: u64) {
        self.compactions.fetch_add(1, Ordering::Relaxed);
        self.compacted_rows.fetch_add(rows, Ordering::Relaxed);
        *self
            .last_compaction
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(SystemTime::now());
        *self
            .last_compaction_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub(super) fn compaction_failed(&self, error: String) {
        *self
            .last_compaction_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(error);
    }

    pub(super) fn snapshot(
        &self,
        log_rows: u64,
        log_disk_bytes: u64,
        log_memory_bytes: u64,
        lake_rows: u64,
        lake_files: u64,
        lake_version: i64,
    ) -> IngestStats {
        let rows = self.rows.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let (rows_per_sec, bytes_per_sec) = {
            let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
            let elapsed = window.started.elapsed();
            if elapsed >= RATE_WINDOW {
                let secs = elapsed.as_secs_f64();
                window.rows_per_sec = rows.saturating_sub(window.rows) as f64 / secs;
                window.bytes_per_sec = bytes.saturating_sub(window.bytes) as f64 / secs;
                window.started = Instant::now();
                window.rows = rows;
                window.bytes = bytes;
            } else if window.rows_per_sec == 0.0 && elapsed.as_secs_f64() > 0.2 {
                // Before the first full window, the rate so far.
                let secs = elapsed.as_secs_f64();
                return self.finish(
                    rows,
                    bytes,
                    rows.saturating_sub(window.rows) as f64 / secs,
                    bytes.saturating_sub(window.bytes) as f64 / secs,
                    (log_rows, log_disk_bytes, log_memory_bytes),
                    (lake_rows, lake_files, lake_version),
                );
            }
            (window.rows_per_sec, window.bytes_per_sec)
        };
        self.finish(
            rows,
            bytes,
            rows_per_sec,
            bytes_per_sec,
            (log_rows, log_disk_bytes, log_memory_bytes),
            (lake_rows, lake_files, lake_version),
        )
    }

    fn finish(
        &self,
        rows: u64,
        bytes: u64,
        rows_per_sec: f64,
        bytes_per_sec: f64,
        (log_rows, log_disk_bytes, log_memory_bytes): (u64, u64, u64),
        (lake_rows, lake_files, lake_version): (u64, u64, i64),
    ) -> IngestStats {
        let last = *self
            .last_compaction
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let compaction_lag_secs = if log_rows == 0 {
            0.0
        } else {
            last.unwrap_or(self.opened)
                .elapsed()
                .ok()
                .map_or(0.0, |d| d.as_secs_f64())
        };
        IngestStats {
            rows_total: rows,
            bytes_total: bytes,
            batches_total: self.batches.load(Ordering::Relaxed),
            rejected_rows: self.rejected.load(Ordering::Relaxed),
            rows_per_sec,
            bytes_per_sec,
            log_rows,
            log_disk_bytes,
            log_memory_bytes,
            lake_rows,
            lake_files,
            lake_version,
            compactions: self.compactions.load(Ordering::Relaxed),
            compaction_lag_secs,
            last_compaction_error: self
                .last_compaction_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}
