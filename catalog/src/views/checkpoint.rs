//! Checkpoints of materialized-view state: one manifest per checkpoint naming the epoch, the
//! streaming-table offsets that epoch had reached, and one Arrow IPC file of state per view.
//! All views are checkpointed at the same epoch, so after a crash they resume together from
//! those offsets (replayed from the tables' logs, which compaction keeps until the next
//! checkpoint) and converge to exactly the contents a batch query would give.
//!
//! Files are written and fsynced first; the manifest is then replaced atomically
//! (`checkpoint.json.tmp`, fsync, rename, fsync of the directory). Older checkpoints are
//! removed only after that.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Oid;
use crate::store::sync_dir;

const MANIFEST: &str = "checkpoint.json";
const MANIFEST_TMP: &str = "checkpoint.json.tmp";

/// What one checkpoint holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub epoch: u64,
    /// Per streaming table read by a checkpointed view: the lowest offset per shard any view
    /// resumes from (what the table's log must keep).
    pub tables: BTreeMap<Oid, Vec<u64>>,
    pub views: BTreeMap<Oid, ViewState>,
}

/// One view's state in a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ViewState {
    /// The defining query the state belongs to: a view re-created under the same OID with
    /// another query does not resume from it.
    pub sql: String,
    /// File name within the checkpoint's directory.
    pub file: String,
    pub rows: u64,
    /// Per streaming table the view reads, the offsets its state covers.
    #[serde(default)]
    pub cursors: BTreeMap<Oid, Vec<u64>>,
    /// `EMIT ON WINDOW CLOSE` views: the emitted rows of closed windows (a second file), the
    /// watermark (microseconds) and the late rows dropped so far.
    #[serde(default)]
    pub closed_file: Option<String>,
    #[serde(default)]
    pub watermark: Option<i64>,
    #[serde(default)]
    pub late_rows: u64,
}

/// State to write for one view.
#[derive(Debug)]
pub struct ViewStateData {
    pub oid: Oid,
    pub sql: String,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub cursors: BTreeMap<Oid, Vec<u64>>,
    /// Emitted rows of closed windows (`EMIT ON WINDOW CLOSE`).
    pub closed: Option<(SchemaRef, Vec<RecordBatch>)>,
    pub watermark: Option<i64>,
    pub late_rows: u64,
}

fn root(data_dir: &Path) -> PathBuf {
    data_dir.join("views")
}

fn epoch_dir(data_dir: &Path, epoch: u64) -> PathBuf {
    root(data_dir).join("checkpoints").join(epoch.to_string())
}

/// The latest checkpoint's manifest, if any.
pub fn read_manifest(data_dir: &Path) -> Result<Option<Manifest>> {
    let path = root(data_dir).join(MANIFEST);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Corrupt {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
    }
}

/// The state `manifest` holds for `view`.
pub fn read_state(
    data_dir: &Path,
    manifest: &Manifest,
    view: &ViewState,
) -> Result<Vec<RecordBatch>> {
    read_ipc(&epoch_dir(data_dir, manifest.epoch).join(&view.file))
}

/// The emitted rows of closed windows `manifest` holds for `view`, if it has any.
pub fn read_closed(
    data_dir: &Path,
    manifest: &Manifest,
    view: &ViewState,
) -> Result<Option<Vec<RecordBatch>>> {
    view.closed_file
        .as_ref()
        .map(|file| read_ipc(&epoch_dir(data_dir, manifest.epoch).join(file)))
        .transpose()
}

fn read_ipc(path: &Path) -> Result<Vec<RecordBatch>> {
    let path = path.to_path_buf();
    let file = File::open(&path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let reader = FileReader::try_new(BufReader::new(file), None).map_err(|e| Error::Corrupt {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    reader
        .map(|batch| {
            batch.map_err(|e| Error::Corrupt {
                path: path.display().to_string(),
                message: e.to_string(),
            })
        })
        .collect()
}

/// Writes a checkpoint at `epoch` and makes it the latest. Blocking: call from a blocking
/// task.
pub fn write(data_dir: &Path, epoch: u64, views: Vec<ViewStateData>) -> Result<Manifest> {
    // What the logs must keep: per table, the lowest offset any view resumes from.
    let mut tables: BTreeMap<Oid, Vec<u64>> = BTreeMap::new();
    for view in &views {
        for (table, offsets) in &view.cursors {
            let kept = tables.entry(*table).or_insert_with(|| offsets.clone());
            for (slot, offset) in kept.iter_mut().zip(offsets) {
                *slot = (*slot).min(*offset);
            }
        }
    }
    let dir = epoch_dir(data_dir, epoch);
    fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    let mut manifest = Manifest {
        epoch,
        tables,
        views: BTreeMap::new(),
    };
    for view in views {
        let file = format!("{}.arrow", view.oid);
        let rows = write_ipc(&dir.join(&file), &view.schema, &view.batches)?;
        let closed_file = match &view.closed {
            Some((schema, batches)) => {
                let name = format!("{}.closed.arrow", view.oid);
                write_ipc(&dir.join(&name), schema, batches)?;
                Some(name)
            }
            None => None,
        };
        manifest.views.insert(
            view.oid,
            ViewState {
                sql: view.sql,
                file,
                rows,
                cursors: view.cursors,
                closed_file,
                watermark: view.watermark,
                late_rows: view.late_rows,
            },
        );
    }
    sync_dir(&dir)?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Corrupt {
        path: MANIFEST.to_owned(),
        message: format!("cannot serialise checkpoint manifest: {e}"),
    })?;
    let root = root(data_dir);
    let tmp = root.join(MANIFEST_TMP);
    let context = |what: &str| format!("{what} {}", tmp.display());
    let mut file = File::create(&tmp).map_err(|e| Error::io(context("create"), e))?;
    file.write_all(&bytes)
        .map_err(|e| Error::io(context("write"), e))?;
    file.sync_all()
        .map_err(|e| Error::io(context("fsync"), e))?;
    drop(file);
    fs::rename(&tmp, root.join(MANIFEST)).map_err(|e| Error::io(context("rename"), e))?;
    sync_dir(&root)?;
    remove_older(data_dir, epoch);
    Ok(manifest)
}

/// Writes `batches` as an Arrow IPC file at `path` and fsyncs it; returns the rows written.
fn write_ipc(path: &Path, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<u64> {
    let context = |what: &str| format!("{what} {}", path.display());
    let out = File::create(path).map_err(|e| Error::io(context("create"), e))?;
    let mut writer = FileWriter::try_new(BufWriter::new(out), schema)
        .map_err(|e| Error::io(context("write"), std::io::Error::other(e)))?;
    let mut rows = 0u64;
    for batch in batches {
        rows += batch.num_rows() as u64;
        writer
            .write(batch)
            .map_err(|e| Error::io(context("write"), std::io::Error::other(e)))?;
    }
    writer
        .finish()
        .map_err(|e| Error::io(context("write"), std::io::Error::other(e)))?;
    let mut buffered = writer
        .into_inner()
        .map_err(|e| Error::io(context("write"), std::io::Error::other(e)))?;
    buffered
        .flush()
        .map_err(|e| Error::io(context("write"), e))?;
    let out = buffered
        .into_inner()
        .map_err(|e| Error::io(context("write"), e.into_error()))?;
    out.sync_all().map_err(|e| Error::io(context("fsync"), e))?;
    Ok(rows)
}

/// Removes checkpoint directories older than `epoch` (best effort: leftovers are harmless).
fn remove_older(data_dir: &Path, epoch: u64) {
    let parent = root(data_dir).join("checkpoints");
    let Ok(entries) = fs::read_dir(&parent) else {
        return;
    };
    for entry in entries.flatten() {
        let older = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u64>().ok())
            .is_some_and(|e| e < epoch);
        if older && let Err(error) = fs::remove_dir_all(entry.path()) {
            tracing::warn!(path = %entry.path().display(), %error, "could not remove old checkpoint");
        }
    }
}
