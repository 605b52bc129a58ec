//! Checkpoints of materialized-view state: one manifest per checkpoint naming the epoch, the
//! streaming-table offsets that epoch had reached, and one Arrow IPC file of state per view.
//! All views are checkpointed at the same epoch, so after a crash they resume together from
//! those offsets (replayed from the tables' logs, which compaction keeps until the next
//! checkpoint) and converge to exactly the contents a batch query would give.
//!
//! Checkpoints live where Basin-managed tables live ([`Location`]): under the data directory
//! ([`local`]: files fsynced, then the manifest replaced atomically by rename) or under the
//! `--data-url` bucket prefix ([`bucket`]: state objects put first, then the manifest object
//! overwritten in one PUT, which S3 makes atomic). Older checkpoints are removed only after
//! the new manifest is in place.

mod bucket;
mod local;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Oid;

const MANIFEST: &str = "checkpoint.json";

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

/// Where checkpoints are kept.
#[derive(Clone)]
pub enum Location {
    /// `<data dir>/views/`.
    Local(PathBuf),
    /// `<prefix>/views/` in a bucket; `url` names it in messages.
    Bucket {
        store: Arc<dyn ObjectStore>,
        root: object_store::path::Path,
        url: String,
    },
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(dir) => write!(f, "{}", dir.display()),
            Location::Bucket { url, .. } => f.write_str(url),
        }
    }
}

/// The latest checkpoint's manifest, if any.
pub async fn read_manifest(location: &Location) -> Result<Option<Manifest>> {
    let found = match location {
        Location::Local(dir) => {
            let dir = dir.clone();
            blocking(move || local::read(&dir.join(MANIFEST))).await?
        }
        Location::Bucket { store, root, url } => {
            bucket::read(store, &root.clone().join(MANIFEST), url).await?
        }
    };
    let Some(bytes) = found else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Corrupt {
            path: format!("{location:?}/{MANIFEST}"),
            message: e.to_string(),
        })
}

/// The state `manifest` holds for `view`.
pub async fn read_state(
    location: &Location,
    manifest: &Manifest,
    view: &ViewState,
) -> Result<Vec<RecordBatch>> {
    read_ipc(location, manifest.epoch, &view.file).await
}

/// The emitted rows of closed windows `manifest` holds for `view`, if it has any.
pub async fn read_closed(
    location: &Location,
    manifest: &Manifest,
    view: &ViewState,
) -> Result<Option<Vec<RecordBatch>>> {
    match &view.closed_file {
        Some(file) => Ok(Some(read_ipc(location, manifest.epoch, file).await?)),
        None => Ok(None),
    }
}

async fn read_ipc(location: &Location, epoch: u64, file: &str) -> Result<Vec<RecordBatch>> {
    let name = format!("{location:?}/checkpoints/{epoch}/{file}");
    let bytes = match location {
        Location::Local(dir) => {
            let path = local::epoch_dir(dir, epoch).join(file);
            blocking(move || local::read(&path)).await?
        }
        Location::Bucket { store, root, url } => {
            bucket::read(store, &bucket::epoch_dir(root, epoch).join(file), url).await?
        }
    };
    let bytes = bytes.ok_or_else(|| Error::Corrupt {
        path: name.clone(),
        message: "the checkpoint's manifest names this file but it is missing".to_owned(),
    })?;
    decode_ipc(bytes, &name)
}

/// Writes a checkpoint at `epoch` and makes it the latest.
pub async fn write(location: &Location, epoch: u64, views: Vec<ViewStateData>) -> Result<Manifest> {
    // Encoding copies every row of every view: off the async workers.
    let (manifest, files) = blocking(move || encode(epoch, views)).await?;
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Corrupt {
        path: MANIFEST.to_owned(),
        message: format!("cannot serialise checkpoint manifest: {e}"),
    })?;
    match location {
        Location::Local(dir) => {
            let dir = dir.clone();
            blocking(move || local::write(&dir, epoch, files, &manifest_bytes)).await?;
        }
        Location::Bucket { store, root, url } => {
            bucket::write(store, root, url, epoch, files, manifest_bytes).await?;
        }
    }
    Ok(manifest)
}

/// A checkpoint's files: (name, Arrow IPC bytes).
type Files = Vec<(String, Vec<u8>)>;

/// The manifest of a checkpoint at `epoch` and the files it names.
fn encode(epoch: u64, views: Vec<ViewStateData>) -> Result<(Manifest, Files)> {
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
    let mut manifest = Manifest {
        epoch,
        tables,
        views: BTreeMap::new(),
    };
    let mut files = Vec::new();
    for view in views {
        let file = format!("{}.arrow", view.oid);
        let (bytes, rows) = encode_ipc(&view.schema, &view.batches)?;
        files.push((file.clone(), bytes));
        let closed_file = match &view.closed {
            Some((schema, batches)) => {
                let name = format!("{}.closed.arrow", view.oid);
                files.push((name.clone(), encode_ipc(schema, batches)?.0));
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
    Ok((manifest, files))
}

/// `batches` as an Arrow IPC file, and the rows they hold.
fn encode_ipc(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<(Vec<u8>, u64)> {
    let failed = |e: arrow::error::ArrowError| {
        Error::io("encode checkpoint state", std::io::Error::other(e))
    };
    let mut writer = FileWriter::try_new(Vec::new(), schema).map_err(failed)?;
    let mut rows = 0u64;
    for batch in batches {
        rows += batch.num_rows() as u64;
        writer.write(batch).map_err(failed)?;
    }
    writer.finish().map_err(failed)?;
    Ok((writer.into_inner().map_err(failed)?, rows))
}

fn decode_ipc(bytes: Vec<u8>, name: &str) -> Result<Vec<RecordBatch>> {
    let corrupt = |e: arrow::error::ArrowError| Error::Corrupt {
        path: name.to_owned(),
        message: e.to_string(),
    };
    FileReader::try_new(Cursor::new(bytes), None)
        .map_err(corrupt)?
        .map(|batch| batch.map_err(corrupt))
        .collect()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::io("checkpoint task", std::io::Error::other(e)))?
}
