//! The append log of a streaming table shard: where acknowledged rows live until compaction
//! moves them into the lake.
//!
//! An append returns only once its rows are on disk: written, `fdatasync`ed, and, when the
//! write started a new segment file, the directory fsynced too. Appends that arrive while a
//! sync runs are committed together in the next group, so the disk's few hundred syncs per
//! second bound commit groups, not rows. Rows become visible to readers (`batches`) in the same
//! step that acknowledges them, so a reader after an acknowledgement sees them.
//!
//! On disk a shard is a directory of segment files `<first row offset, 20 digits>.bsl`. A segment
//! is a sequence of frames, one per appended batch:
//!
//! ```text
//! "BSL1" | payload length u32 LE | row count u32 LE | CRC-32 of payload u32 LE | payload
//! ```
//!
//! where the payload is an Arrow IPC stream (schema, one batch, end marker). Opening a log reads
//! every frame back; a torn last frame (a crash mid-write, never acknowledged) is cut off, while
//! a bad checksum anywhere before the last frame is corruption and refuses to open rather than
//! return fewer rows.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use tokio::sync::{mpsc, oneshot};

use self::frames::SegmentError;

const SEGMENT_SUFFIX: &str = "bsl";

/// Errors of the append log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("stream log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("stream log {path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("batch does not match the table: {0}")]
    Schema(String),
    #[error("stream log encoding: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("stream log is closed after an earlier write failure: {0}")]
    Failed(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Settings of one log.
#[derive(Debug, Clone, Copy)]
pub struct LogOptions {
    /// A segment that reached this size is closed; the next group starts a new one.
    pub segment_bytes: u64,
    /// Most bytes committed in one group (one sync).
    pub max_group_bytes: usize,
    /// Appends waiting for their group; more wait for room (back-pressure).
    pub queue_depth: usize,
    /// Whether acknowledged batches stay in memory for [`StreamLog::tail`]. A log whose reader
    /// is elsewhere (a shard hosted for the coordinator) keeps only what recovery read back.
    pub retain: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 * 1024 * 1024,
            max_group_bytes: 16 * 1024 * 1024,
            queue_depth: 256,
            retain: true,
        }
    }
}

/// What readers see: every acknowledged batch not yet released, in order, with the log offset
/// of its first row.
#[derive(Debug, Default)]
struct Visible {
    /// (first row offset, batch, its encoded size).
    batches: std::collections::VecDeque<(u64, RecordBatch, usize)>,
    /// Offset after the last acknowledged row: the log's row count since it was created.
    rows: u64,
    /// Memory held by `batches`, counted as their encoded (IPC) size: batches decoded without
    /// copying share one buffer, which Arrow's own accounting would count once per column.
    memory_bytes: usize,
    /// Commit groups (syncs) since the log was opened.
    groups: u64,
}

struct Append {
    batch: RecordBatch,
    frame: Vec<u8>,
    done: oneshot::Sender<Result<u64, LogError>>,
}

/// One shard's append log. Cheap to share behind an `Arc`; appends from many tasks are
/// committed in groups by one writer task.
#[derive(Debug)]
pub struct StreamLog {
    schema: SchemaRef,
    dir: PathBuf,
    visible: Arc<RwLock<Visible>>,
    appends: mpsc::Sender<Append>,
    /// Set once a write or sync failed: the log acknowledges nothing more until reopened.
    broken: Arc<std::sync::atomic::AtomicBool>,
    /// The writer task; it ends once every append has been answered and the log is dropped.
    writer: tokio::task::JoinHandle<()>,
}

impl StreamLog {
    /// Opens (creating if needed) the log in `dir` and reads back every committed row from
    /// offset `keep_from` on (rows before it are already in the lake).
    pub async fn open(
        dir: &Path,
        schema: SchemaRef,
        options: LogOptions,
        keep_from: u64,
    ) -> Result<Self, LogError> {
        let dir = dir.to_owned();
        let recovered = {
            let (dir, schema) = (dir.clone(), Arc::clone(&schema));
            tokio::task::spawn_blocking(move || recover(&dir, &schema, keep_from))
                .await
                .map_err(|e| LogError::Failed(format!("recovery task: {e}")))??
        };
        let memory_bytes = recovered.batches.iter().map(|(_, _, bytes)| bytes).sum();
        let visible = Arc::new(RwLock::new(Visible {
            rows: recovered.rows,
            batches: recovered.batches.into(),
            memory_bytes,
            groups: 0,
        }));
        let (appends, queue) = mpsc::channel(options.queue_depth.max(1));
        let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = Writer {
            dir: dir.clone(),
            options,
            segment: recovered.segment,
            next_offset: recovered.rows,
            visible: Arc::clone(&visible),
            broken: Arc::clone(&broken),
        };
        let writer = tokio::spawn(writer.run(queue));
        Ok(Self {
            schema,
            dir,
            visible,
            appends,
            broken,
            writer,
        })
    }

    /// Closes the log: answers appends already queued, then waits for the writer to let go of
    /// its files, so the log can be opened again (recovered) from disk.
    pub async fn close(self) {
        let Self {
            appends, writer, ..
        } = self;
        drop(appends);
        let _ = writer.await;
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Whether a failed write or sync stopped this log (until it is reopened).
    pub fn is_broken(&self) -> bool {
        self.broken.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `batch` durably. Returns the log's row count after it once the rows are synced
    /// to disk and visible to readers; an error means they were not acknowledged.
    pub async fn append(&self, batch: RecordBatch) -> Result<u64, LogError> {
        self.check_schema(&batch)?;
        if batch.num_rows() == 0 {
            return Ok(self.rows());
        }
        let payload = crate::ipc::encode_batch(&batch)?;
        self.commit(batch, payload).await
    }

    /// [`StreamLog::append`] for a batch that arrives already encoded as an Arrow IPC stream
    /// (schema, one batch): it is checked and written as it came, not encoded again. Returns
    /// the log's row count after it and the batch's rows.
    pub async fn append_ipc(&self, payload: Vec<u8>) -> Result<(u64, usize), LogError> {
        let batch = crate::ipc::decode_batch(&payload)?;
        self.check_schema(&batch)?;
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok((self.rows(), 0));
        }
        Ok((self.commit(batch, payload).await?, rows))
    }

    fn check_schema(&self, batch: &RecordBatch) -> Result<(), LogError> {
        if batch.schema().fields() != self.schema.fields() {
            return Err(LogError::Schema(format!(
                "expected columns {:?}, got {:?}",
                self.schema.fields(),
                batch.schema().fields()
            )));
        }
        Ok(())
    }

    async fn commit(&self, batch: RecordBatch, payload: Vec<u8>) -> Result<u64, LogError> {
        let frame = frame(&payload, batch.num_rows())?;
        let (done, acked) = oneshot::channel();
        self.appends
            .send(Append { batch, frame, done })
            .await
            .map_err(|_| LogError::Failed("writer stopped".to_owned()))?;
        acked
            .await
            .map_err(|_| LogError::Failed("writer stopped".to_owned()))?
    }

    /// Every acknowledged batch not yet released, oldest first.
    pub fn batches(&self) -> Vec<RecordBatch> {
        self.tail(0).into_iter().map(|(_, b)| b).collect()
    }

    /// Acknowledged batches whose first row is at offset `from` or later, with that offset.
    pub fn tail(&self, from: u64) -> Vec<(u64, RecordBatch)> {
        self.visible
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .batches
            .iter()
            .filter(|(offset, _, _)| *offset >= from)
            .map(|(offset, batch, _)| (*offset, batch.clone()))
            .collect()
    }

    /// Arrow memory held by unreleased batches.
    pub fn memory_bytes(&self) -> usize {
        self.visible
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .memory_bytes
    }

    /// Forgets rows before offset `upto` (they are safely in the lake): drops them from memory
    /// and deletes closed segment files that hold only such rows. `upto` must fall on a batch
    /// boundary, as offsets returned by [`StreamLog::tail`] do.
    pub async fn release_below(&self, upto: u64) -> Result<(), LogError> {
        self.forget_below(upto);
        self.delete_below(upto).await
    }

    /// The memory half of [`StreamLog::release_below`]: readers stop seeing rows before `upto`.
    pub fn forget_below(&self, upto: u64) {
        let mut visible = self.visible.write().unwrap_or_else(|e| e.into_inner());
        while let Some((offset, batch, bytes)) = visible.batches.front() {
            if offset + batch.num_rows() as u64 > upto {
                break;
            }
            visible.memory_bytes = visible.memory_bytes.saturating_sub(*bytes);
            visible.batches.pop_front();
        }
    }

    /// The disk half of [`StreamLog::release_below`]: deletes closed segments holding only rows
    /// before `upto`.
    pub async fn delete_below(&self, upto: u64) -> Result<(), LogError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || delete_segments_below(&dir, upto))
            .await
            .map_err(|e| LogError::Failed(format!("truncate task: {e}")))?
    }

    /// Bytes of segment files on disk.
    pub fn disk_bytes(&self) -> u64 {
        list_segments(&self.dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|(_, path)| fs::metadata(path).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Acknowledged rows.
    pub fn rows(&self) -> u64 {
        self.visible.read().unwrap_or_else(|e| e.into_inner()).rows
    }

    /// Commit groups (one write and sync each) since the log was opened.
    pub fn commit_groups(&self) -> u64 {
        self.visible
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .groups
    }
}

/// The log frame around one batch's IPC payload.
fn frame(payload: &[u8], rows: usize) -> Result<Vec<u8>, LogError> {
    frames::encode_frame(payload, rows)
        .ok_or_else(|| LogError::Schema("a single batch over 4 GiB or 4 billion rows".to_owned()))
}

/// The segment being appended to.
struct Segment {
    path: PathBuf,
    file: File,
    len: u64,
}

struct Recovered {
    batches: Vec<(u64, RecordBatch, usize)>,
    rows: u64,
    segment: Option<Segment>,
}

fn segment_name(first_offset: u64) -> String {
    format!("{first_offset:020}.{SEGMENT_SUFFIX}")
}

/// Segment files of `dir` by first offset, oldest first.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut segments: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .map_err(io_error(dir))?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let stem = path.file_stem()?.to_str()?;
            let offset = stem.parse::<u64>().ok()?;
            (path.extension()? == SEGMENT_SUFFIX).then_some((offset, path))
        })
        .collect();
    segments.sort();
    Ok(segments)
}

/// Deletes every segment whose rows all lie before `upto`, oldest first so a crash midway leaves
/// a contiguous log. The newest segment is never deleted: the writer appends to it.
fn delete_segments_below(dir: &Path, upto: u64) -> Result<(), LogError> {
    let segments = list_segments(dir)?;
    let mut deleted = false;
    for pair in segments.windows(2) {
        let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
        if *next_first > upto {
            break;
        }
        fs::remove_file(path).map_err(io_error(path))?;
        deleted = true;
    }
    if deleted {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(dir))?;
    }
    Ok(())
}

fn recover(dir: &Path, schema: &SchemaRef, keep_from: u64) -> Result<Recovered, LogError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let segments = list_segments(dir)?;
    let mut batches = Vec::new();
    // A truncated log starts at its oldest remaining segment.
    let mut rows = segments.first().map_or(0, |(first, _)| *first);
    if rows > keep_from {
        return Err(LogError::Corrupt {
            path: dir.to_owned(),
            offset: 0,
            reason: format!(
                "the log starts at row {rows} but the lake holds rows only up to offset \
                 {keep_from}: rows in between are missing"
            ),
        });
    }
    let last = segments.len().checked_sub(1);
    for (index, (first_offset, path)) in segments.iter().enumerate() {
        if *first_offset != rows {
            return Err(LogError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason: format!("segment starts at row {first_offset}, expected {rows}"),
            });
        }
        let is_last = Some(index) == last;
        let (segment_batches, valid_len) = read_segment(path, schema, is_last)?;
        for (batch, bytes) in segment_batches {
            let offset = rows;
            rows += batch.num_rows() as u64;
            if offset < keep_from && rows > keep_from {
                return Err(LogError::Corrupt {
                    path: path.clone(),
                    offset: 0,
                    reason: format!(
                        "the lake holds rows up to offset {keep_from}, inside the batch of rows \
                         {offset}..{rows}"
                    ),
                });
            }
            if rows > keep_from {
                batches.push((offset, batch, bytes));
            }
        }
        if is_last {
            let file = OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(io_error(path))?;
            let on_disk = file.metadata().map_err(io_error(path))?.len();
            if on_disk != valid_len {
                // A torn frame from a crash mid-write: it was never acknowledged.
                file.set_len(valid_len).map_err(io_error(path))?;
                file.sync_all().map_err(io_error(path))?;
            }
            check_reaches(dir, rows, keep_from)?;
            return Ok(Recovered {
                batches,
                rows,
                segment: Some(Segment {
                    path: path.clone(),
                    file,
                    len: valid_len,
                }),
            });
        }
    }
    check_reaches(dir, rows, keep_from)?;
    Ok(Recovered {
        batches,
        rows,
        segment: None,
    })
}

/// The lake never holds rows the log did not have: if it claims more, log files were lost.
fn check_reaches(dir: &Path, rows: u64, keep_from: u64) -> Result<(), LogError> {
    if keep_from > rows {
        return Err(LogError::Corrupt {
            path: dir.to_owned(),
            offset: 0,
            reason: format!(
                "the lake holds rows up to offset {keep_from} but the log ends at {rows}: log \
                 segments are missing"
            ),
        });
    }
    Ok(())
}

/// Reads a segment's frames. In the last segment an incomplete or damaged final frame ends the
/// log (returned length excludes it); anywhere else damage is corruption.
fn read_segment(
    path: &Path,
    schema: &SchemaRef,
    is_last: bool,
) -> Result<(Vec<(RecordBatch, usize)>, u64), LogError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_error(path))?;
    frames::decode_segment(&bytes, schema, is_last).map_err(|error| match error {
        SegmentError::Corrupt { offset, reason } => LogError::Corrupt {
            path: path.to_owned(),
            offset,
            reason: reason.to_owned(),
        },
        SegmentError::Arrow(error) => LogError::Arrow(error),
    })
}

/// The single task that writes, syncs and acknowledges.
struct Writer {
    dir: PathBuf,
    options: LogOptions,
    segment: Option<Segment>,
    next_offset: u64,
    visible: Arc<RwLock<Visible>>,
    broken: Arc<std::sync::atomic::AtomicBool>,
}

impl Writer {
    async fn run(mut self, mut queue: mpsc::Receiver<Append>) {
        let mut failed: Option<String> = None;
        while let Some(first) = queue.recv().await {
            let mut group = vec![first];
            let mut bytes = group[0].frame.len();
            while bytes < self.options.max_group_bytes {
                match queue.try_recv() {
                    Ok(next) => {
                        bytes += next.frame.len();
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            if let Some(reason) = &failed {
                for append in group {
                    let _ = append.done.send(Err(LogError::Failed(reason.clone())));
                }
                continue;
            }
            match self.commit(&group).await {
                Ok(()) => {
                    let mut visible = self.visible.write().unwrap_or_else(|e| e.into_inner());
                    visible.groups += 1;
                    for append in group {
                        let offset = visible.rows;
                        visible.rows += append.batch.num_rows() as u64;
                        if self.options.retain {
                            visible.memory_bytes += append.frame.len();
                            visible
                                .batches
                                .push_back((offset, append.batch, append.frame.len()));
                        }
                        let _ = append.done.send(Ok(visible.rows));
                    }
                }
                Err(err) => {
                    // After a failed write or sync the file's state is unknown: acknowledge
                    // nothing more until the log is reopened (and recovered) from disk.
                    let reason = err.to_string();
                    tracing::error!(dir = %self.dir.display(), error = %reason, "stream log write failed");
                    for append in group {
                        let _ = append.done.send(Err(LogError::Failed(reason.clone())));
                    }
                    failed = Some(reason);
                    self.broken
                        .store(true, std::sync::atomic::Ordering::Release);
                }
            }
        }
    }

    /// Writes the group's frames and syncs them (and the directory for a new segment).
    async fn commit(&mut self, group: &[Append]) -> Result<(), LogError> {
        let rows: u64 = group.iter().map(|a| a.batch.num_rows() as u64).sum();
        let mut data = Vec::with_capacity(group.iter().map(|a| a.frame.len()).sum());
        for append in group {
            data.extend_from_slice(&append.frame);
        }
        let roll = self
            .segment
            .as_ref()
            .is_none_or(|s| s.len >= self.options.segment_bytes);
        let dir = self.dir.clone();
        let first_offset = self.next_offset;
        let current = self.segment.take();
        let segment = tokio::task::spawn_blocking(move || -> Result<Segment, LogError> {
            let mut segment = match (roll, current) {
                (false, Some(segment)) => segment,
                (_, _) => {
                    let path = dir.join(segment_name(first_offset));
                    let file = OpenOptions::new()
                        .create_new(true)
                        .append(true)
                        .open(&path)
                        .map_err(io_error(&path))?;
                    // The new name must survive a power loss too.
                    File::open(&dir)
                        .and_then(|d| d.sync_all())
                        .map_err(io_error(&dir))?;
                    Segment { path, file, len: 0 }
                }
            };
            segment
                .file
                .write_all(&data)
                .map_err(io_error(&segment.path))?;
            segment.file.sync_data().map_err(io_error(&segment.path))?;
            segment.len += data.len() as u64;
            Ok(segment)
        })
        .await
        .map_err(|e| LogError::Failed(format!("writer task: {e}")))??;
        self.segment = Some(segment);
        self.next_offset += rows;
        Ok(())
    }
}

#[path = "stream_log_frames.rs"]
mod frames;

#[cfg(test)]
#[path = "stream_log_tests.rs"]
mod tests;
