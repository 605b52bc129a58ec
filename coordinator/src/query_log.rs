//! Running and recent queries, for `basin.queries`: each statement that runs a query gets an
//! entry when it starts; the entry learns its plan shape, counts the rows sent and records how
//! it ended. The log keeps every running query and the most recent finished ones.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::error::Result as DfResult;
use datafusion::physical_plan::{RecordBatchStream, SendableRecordBatchStream};
use futures::Stream;

use crate::dist::RunInfo;

/// Finished queries kept for `basin.queries`.
const KEEP_FINISHED: usize = 200;

#[derive(Debug, Default)]
pub(crate) struct QueryLog {
    next_id: AtomicU64,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    list: VecDeque<Arc<QueryEntry>>,
    /// The list is trimmed when it grows to this length (at least double its length after the
    /// last trim), so that the walk over it costs each start O(1) on average however many
    /// queries are running.
    trim_at: usize,
}

#[derive(Debug)]
pub(crate) struct QueryEntry {
    pub(crate) id: u64,
    pub(crate) pid: i32,
    pub(crate) user: String,
    pub(crate) text: String,
    pub(crate) started: SystemTime,
    started_at: Instant,
    progress: Mutex<Progress>,
}

/// What changes while a query runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    pub(crate) state: &'static str,
    pub(crate) duration: Option<Duration>,
    pub(crate) rows: u64,
    pub(crate) run: RunInfo,
    pub(crate) error: Option<String>,
}

impl QueryLog {
    /// Records a query that starts now.
    pub(crate) fn start(&self, pid: i32, user: &str, text: &str) -> QueryHandle {
        let entry = Arc::new(QueryEntry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            pid,
            user: user.to_owned(),
            // Secret option values (aws.secret_access_key ...) never reach basin.queries.
            text: basin_catalog::object_stores::redact_sql(text),
            started: SystemTime::now(),
            started_at: Instant::now(),
            progress: Mutex::new(Progress {
                state: "running",
                ..Progress::default()
            }),
        });
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.list.push_back(Arc::clone(&entry));
        if entries.list.len() >= entries.trim_at {
            trim(&mut entries.list);
            entries.trim_at = entries.list.len() + KEEP_FINISHED.max(entries.list.len());
        }
        drop(entries);
        QueryHandle {
            entry,
            handed_over: false,
        }
    }

    /// Every running query and the most recent finished ones, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<Arc<QueryEntry>> {
        let mut list = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .list
            .clone();
        trim(&mut list);
        list.into()
    }
}

/// Drops the oldest finished entries beyond [`KEEP_FINISHED`]; running ones always stay.
fn trim(list: &mut VecDeque<Arc<QueryEntry>>) {
    let finished = list.iter().filter(|e| e.is_finished()).count();
    let mut excess = finished.saturating_sub(KEEP_FINISHED);
    list.retain(|e| {
        if excess > 0 && e.is_finished() {
            excess -= 1;
            false
        } else {
            true
        }
    });
}

impl QueryEntry {
    pub(crate) fn progress(&self) -> Progress {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn is_finished(&self) -> bool {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .duration
            .is_some()
    }

    /// Time since start for running queries, total time for finished ones.
    pub(crate) fn elapsed(&self) -> Duration {
        self.progress()
            .duration
            .unwrap_or_else(|| self.started_at.elapsed())
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.progress.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn end(&self, state: &'static str, error: Option<String>) {
        let duration = self.started_at.elapsed();
        self.update(|p| {
            if p.duration.is_none() {
                p.state = state;
                p.duration = Some(duration);
                p.error = error;
            }
        });
    }
}

/// The statement's handle on its log entry. Dropping it before [`Self::finish`], [`Self::fail`]
/// or [`Self::track`] (the statement was cancelled or timed out, e.g. while queued) ends the
/// entry as cancelled.
#[derive(Debug)]
pub(crate) struct QueryHandle {
    entry: Arc<QueryEntry>,
    /// Set once the entry is ended or handed to a tracked stream (which ends it).
    handed_over: bool,
}

impl Drop for QueryHandle {
    fn drop(&mut self) {
        if !self.handed_over {
            self.entry.end("cancelled", None);
        }
    }
}

impl QueryHandle {
    pub(crate) fn set_run(&self, run: RunInfo) {
        self.entry.update(|p| p.run = run);
    }

    /// Marks the query as waiting for admission (`queued`) or running again.
    pub(crate) fn set_queued(&self, queued: bool) {
        self.entry.update(|p| {
            if p.duration.is_none() {
                p.state = if queued { "queued" } else { "running" };
            }
        });
    }

    pub(crate) fn fail(mut self, error: &str) {
        self.entry.end("failed", Some(error.to_owned()));
        self.handed_over = true;
    }

    pub(crate) fn finish(mut self) {
        self.entry.end("finished", None);
        self.handed_over = true;
    }

    /// Wraps the result stream: counts rows, and ends the entry when the stream ends, fails or
    /// is dropped early (cancelled, timed out, or a portal closed).
    pub(crate) fn track(mut self, stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
        self.handed_over = true;
        Box::pin(TrackedStream {
            inner: stream,
            entry: Arc::clone(&self.entry),
        })
    }
}

struct TrackedStream {
    inner: SendableRecordBatchStream,
    entry: Arc<QueryEntry>,
}

impl Stream for TrackedStream {
    type Item = DfResult<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(batch))) => {
                let rows = batch.num_rows() as u64;
                self.entry.update(|p| p.rows += rows);
            }
            Poll::Ready(Some(Err(err))) => self.entry.end("failed", Some(err.to_string())),
            Poll::Ready(None) => self.entry.end("finished", None),
            Poll::Pending => {}
        }
        polled
    }
}

impl RecordBatchStream for TrackedStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        // A no-op when the stream already ended.
        self.entry.end("cancelled", None);
    }
}
