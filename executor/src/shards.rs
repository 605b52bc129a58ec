//! Streaming-table shards hosted on this executor's node (its data directory).
//!
//! The coordinator owns the tables; this executor makes their appends durable in
//! `basin_catalog::stream_log` logs under `<data dir>/<table path>/shard-<k>/` (group commit,
//! fsync before the answer) and reads them back when the coordinator (re)opens a shard. It keeps
//! no rows in memory: the coordinator mirrors what it acknowledged.
//!
//! The node's identity is `<data dir>/node_id`, created once, so shards find their way back to
//! an executor restarted on the same directory. `<data dir>/LOCK` is held while the executor runs:
//! two executors on one directory would corrupt each other's logs.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use basin_catalog::ipc;
use basin_catalog::stream_log::{LogError, LogOptions, StreamLog};
use basin_proto::shard::v1::shard_service_server::{ShardService, ShardServiceServer};
use basin_proto::shard::v1::{
    AppendRequest, AppendResponse, DropTableRequest, DropTableResponse, OpenShardRequest,
    ReleaseRequest, ReleaseResponse, ShardBatch, ShardRef,
};
use futures::Stream;
use tonic::{Request, Response, Status};

use crate::{Error, Result};

use basin_proto::MAX_SHARD_MESSAGE_BYTES as MAX_MESSAGE_BYTES;

/// How long reopening a shard waits for appends still running on the old log (less than the
/// coordinator's call timeout, so it hears why).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(20);

/// One shard's log, if open. Opening, closing and dropping a shard hold its slot; appends hold
/// it only to take the log, so one shard's recovery never stalls another's appends.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<StreamLog>>>>;

/// The shard logs of this node.
pub(crate) struct ShardStore {
    dir: PathBuf,
    node_id: String,
    slots: std::sync::Mutex<HashMap<(String, u32), Slot>>,
    /// Held (locked) for the life of the process.
    _lock: File,
}

impl ShardStore {
    /// Opens the node in `dir`: creates it and its identity on first use, and locks it.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let context = |what: &str| {
            let what = format!("{what} {}", dir.display());
            move |e: std::io::Error| Error::Config(format!("cannot {what}: {e}"))
        };
        std::fs::create_dir_all(dir).map_err(context("create data directory"))?;
        let lock = File::create(dir.join("LOCK")).map_err(context("open the lock file in"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Config(format!(
                    "data directory {} is in use by another executor: give each executor its own",
                    dir.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(context("lock")(e)),
        }
        let id_path = dir.join("node_id");
        let node_id = match std::fs::read_to_string(&id_path) {
            Ok(id) if !id.trim().is_empty() => id.trim().to_owned(),
            Ok(_) | Err(_) => {
                let id = format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                let tmp = dir.join("node_id.tmp");
                std::fs::write(&tmp, &id)
                    .and_then(|()| File::open(&tmp)?.sync_all())
                    .and_then(|()| std::fs::rename(&tmp, &id_path))
                    .and_then(|()| File::open(dir)?.sync_all())
                    .map_err(context("write the node identity in"))?;
                id
            }
        };
        Ok(Self {
            dir: dir.to_owned(),
            node_id,
            slots: std::sync::Mutex::new(HashMap::new()),
            _lock: lock,
        })
    }

    pub(crate) fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The directory of a table's shards. The coordinator names tables
    /// `streams/<database>/<schema>/<table>_<oid>`; anything else is refused, so a path can
    /// neither leave the data directory nor name one directory two ways.
    fn table_dir(&self, table_path: &str) -> std::result::Result<PathBuf, Status> {
        let parts: Vec<&str> = table_path.split('/').collect();
        let safe = parts.len() == 4
            && parts[0] == "streams"
            && parts.iter().all(|part| {
                !part.is_empty()
                    && !part.starts_with('.')
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            });
        if !safe {
            return Err(Status::invalid_argument(format!(
                "bad table path {table_path:?}"
            )));
        }
        Ok(self.dir.join(table_path))
    }

    fn check_node(&self, node_id: &str) -> std::result::Result<(), Status> {
        if node_id != self.node_id {
            return Err(Status::failed_precondition(format!(
                "this executor serves node {}, not {node_id}",
                self.node_id
            )));
        }
        Ok(())
    }

    fn key(
        &self,
        shard: Option<ShardRef>,
    ) -> std::result::Result<((String, u32), PathBuf), Status> {
        let shard = shard.ok_or_else(|| Status::invalid_argument("no shard named"))?;
        self.check_node(&shard.node_id)?;
        let dir = self
            .table_dir(&shard.table_path)?
            .join(format!("shard-{}", shard.shard));
        Ok(((shard.table_path, shard.shard), dir))
    }

    fn slot(&self, key: &(String, u32)) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(slots.entry(key.clone()).or_default())
    }

    async fn log(&self, key: &(String, u32)) -> std::result::Result<Arc<StreamLog>, Status> {
        let slot = self.slot(key);
        let log = slot.lock().await.clone();
        log.ok_or_else(|| {
            Status::failed_precondition(format!(
                "shard {} of {} is not open on node {}",
                key.1, key.0, self.node_id
            ))
        })
    }
}

/// Waits for appends still using `log` to finish, then closes it. On timeout the log is
/// handed back: its writer still runs, and a second log on the same files would corrupt them.
async fn close(mut log: Arc<StreamLog>) -> std::result::Result<(), (Arc<StreamLog>, Status)> {
    let since = Instant::now();
    loop {
        match Arc::try_unwrap(log) {
            Ok(log) => {
                log.close().await;
                return Ok(());
            }
            Err(shared) if since.elapsed() < CLOSE_TIMEOUT => {
                log = shared;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(shared) => {
                return Err((
                    shared,
                    Status::unavailable("appends to the shard's old log are still running"),
                ));
            }
        }
    }
}

/// Closes the log in `slot`, if any; on failure it stays in the slot.
async fn close_slot(slot: &mut Option<Arc<StreamLog>>) -> std::result::Result<(), Status> {
    if let Some(old) = slot.take()
        && let Err((old, status)) = close(old).await
    {
        *slot = Some(old);
        return Err(status);
    }
    Ok(())
}

fn log_status(error: LogError) -> Status {
    match error {
        LogError::Schema(_) | LogError::Arrow(_) => Status::invalid_argument(error.to_string()),
        LogError::Corrupt { .. } => Status::data_loss(error.to_string()),
        LogError::Io { .. } | LogError::Failed(_) => Status::internal(error.to_string()),
    }
}

struct ShardGrpc {
    store: Arc<ShardStore>,
}

type BatchStream = Pin<Box<dyn Stream<Item = std::result::Result<ShardBatch, Status>> + Send>>;

#[tonic::async_trait]
impl ShardService for ShardGrpc {
    type OpenShardStream = BatchStream;

    async fn open_shard(
        &self,
        request: Request<OpenShardRequest>,
    ) -> std::result::Result<Response<BatchStream>, Status> {
        let request = request.into_inner();
        let (key, dir) = self.store.key(request.shard)?;
        let schema = ipc::decode_schema(&request.schema_ipc)
            .map_err(|e| Status::invalid_argument(format!("bad schema: {e}")))?;
        let keep_from = request.keep_from;
        let slot = self.store.slot(&key);
        let mut slot = slot.lock().await;
        close_slot(&mut slot).await?;
        let options = LogOptions {
            retain: false,
            ..LogOptions::default()
        };
        let log = StreamLog::open(&dir, schema, options, keep_from)
            .await
            .map_err(log_status)?;
        let tail = log.tail(keep_from);
        log.forget_below(u64::MAX);
        // Rows below `keep_from` are in the lake.
        if let Err(error) = log.delete_below(keep_from).await {
            tracing::warn!(%error, "could not delete compacted log segments");
        }
        *slot = Some(Arc::new(log));
        drop(slot);
        tracing::info!(
            table = key.0,
            shard = key.1,
            keep_from,
            batches = tail.len(),
            "opened shard"
        );
        let batches = futures::stream::iter(tail.into_iter().map(|(offset, batch)| {
            ipc::encode_batch(&batch)
                .map(|batch_ipc| ShardBatch { offset, batch_ipc })
                .map_err(|e| Status::internal(format!("encode batch: {e}")))
        }));
        Ok(Response::new(Box::pin(batches)))
    }

    async fn append(
        &self,
        request: Request<AppendRequest>,
    ) -> std::result::Result<Response<AppendResponse>, Status> {
        let request = request.into_inner();
        let (key, _) = self.store.key(request.shard)?;
        let log = self.store.log(&key).await?;
        let (end, rows) = log
            .append_ipc(request.batch_ipc)
            .await
            .map_err(log_status)?;
        Ok(Response::new(AppendResponse {
            offset: end - rows as u64,
            disk_bytes: log.disk_bytes(),
        }))
    }

    async fn release(
        &self,
        request: Request<ReleaseRequest>,
    ) -> std::result::Result<Response<ReleaseResponse>, Status> {
        let request = request.into_inner();
        let (key, _) = self.store.key(request.shard)?;
        let log = self.store.log(&key).await?;
        log.delete_below(request.below).await.map_err(log_status)?;
        Ok(Response::new(ReleaseResponse {
            disk_bytes: log.disk_bytes(),
        }))
    }

    async fn drop_table(
        &self,
        request: Request<DropTableRequest>,
    ) -> std::result::Result<Response<DropTableResponse>, Status> {
        let request = request.into_inner();
        self.store.check_node(&request.node_id)?;
        let table_path = request.table_path;
        let dir = self.store.table_dir(&table_path)?;
        let slots: Vec<Slot> = self
            .store
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(key, _)| key.0 == table_path)
            .map(|(_, slot)| Arc::clone(slot))
            .collect();
        for slot in slots {
            close_slot(&mut *slot.lock().await).await?;
        }
        self.store
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|key, _| key.0 != table_path);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Status::internal(format!("remove {}: {e}", dir.display()))),
        }
        tracing::info!(table = table_path, "dropped table's shards");
        Ok(Response::new(DropTableResponse {}))
    }
}

/// The shard service over `store`.
pub(crate) fn server(store: Arc<ShardStore>) -> ShardServiceServer<impl ShardService> {
    ShardServiceServer::new(ShardGrpc { store })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_identity_survives_reopening_and_the_directory_is_exclusive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ShardStore::open(dir.path()).expect("open");
        let id = first.node_id().to_owned();
        assert!(id.starts_with("node-"), "{id}");
        let Err(Error::Config(message)) = ShardStore::open(dir.path()) else {
            panic!("a second executor on the same directory must be refused");
        };
        assert!(message.contains("in use"), "{message}");
        drop(first);
        let again = ShardStore::open(dir.path()).expect("reopen");
        assert_eq!(again.node_id(), id);
    }

    #[test]
    fn table_paths_stay_inside_the_data_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ShardStore::open(dir.path()).expect("open");
        assert!(store.table_dir("streams/basin/public/events_12").is_ok());
        for bad in [
            "",
            "streams",
            "../x",
            "/etc",
            "a/../../b",
            "streams/a/b c/d",
            "./a",
            "streams/basin//public/e",
            "streams/basin/./e",
            "streams/basin/../e",
            "tables/basin/public/e",
        ] {
            assert!(store.table_dir(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
