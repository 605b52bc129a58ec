//! The durable catalog: one JSON document, replaced atomically on every change.
//!
//! A change is applied to a copy of the state, written to `catalog.json.tmp`, fsynced, renamed
//! over `catalog.json`, and the directory fsynced, before readers see it. A crash at any point
//! leaves either the old or the new catalog, never half of one. DDL is rare, so rewriting the
//! whole document is cheaper than a log and far simpler to get right.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::error::{Error, Result};
use crate::model::CatalogState;

const CATALOG_FILE: &str = "catalog.json";
const CATALOG_TMP_FILE: &str = "catalog.json.tmp";

/// The catalog of one Basin cluster. Readers take cheap immutable snapshots; writers are
/// serialised so OIDs are handed out once.
#[derive(Debug)]
pub struct Catalog {
    data_dir: PathBuf,
    current: Arc<RwLock<Arc<CatalogState>>>,
    writer: Arc<tokio::sync::Mutex<()>>,
    streams: crate::streams::StreamRegistry,
    epochs: Arc<crate::views::Epochs>,
    object_stores: Arc<crate::object_stores::ObjectStores>,
    /// Root of Basin-managed table files: the data directory, or the `--data-url` bucket.
    lake_root: url::Url,
    /// One lock per Basin-managed table, held by each write from its first file to its Delta
    /// commit (see [`Catalog::lock_table_writes`]).
    pub(crate) table_writes:
        std::sync::Mutex<std::collections::HashMap<crate::model::Oid, Arc<tokio::sync::Mutex<()>>>>,
    /// Providers of external tables, reused while their entry is unchanged.
    pub(crate) providers: crate::provider_cache::ProviderCache,
}

impl Catalog {
    /// Opens the catalog under `data_dir`, creating a fresh one (database `basin`, schema
    /// `public`) the first time.
    pub fn open(data_dir: &Path) -> Result<Arc<Self>> {
        Self::open_with(
            data_dir,
            None,
            crate::object_stores::ObjectStores::default(),
        )
    }

    /// [`Self::open`] with Basin-managed table files under `data_url` (`s3://bucket/prefix`)
    /// instead of the data directory, and `object_stores` for reaching it.
    pub fn open_with(
        data_dir: &Path,
        data_url: Option<&str>,
        object_stores: crate::object_stores::ObjectStores,
    ) -> Result<Arc<Self>> {
        fs::create_dir_all(data_dir)
            .map_err(|e| Error::io(format!("create data directory {}", data_dir.display()), e))?;
        let data_dir = fs::canonicalize(data_dir)
            .map_err(|e| Error::io(format!("resolve data directory {}", data_dir.display()), e))?;
        let path = data_dir.join(CATALOG_FILE);
        let mut state = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<CatalogState>(&bytes).map_err(|e| Error::Corrupt {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let state = CatalogState::bootstrap();
                persist(&data_dir, &state)?;
                state
            }
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        tracing::info!(
            data_dir = %data_dir.display(),
            relations = state.relations.len(),
            version = state.version,
            "opened catalog"
        );
        let epochs = Arc::new(crate::views::Epochs::default());
        let object_stores = Arc::new(object_stores);
        register_bucket_options(&object_stores, &state);
        crate::object_stores::register_with_delta(&object_stores);
        let lake_root = match crate::data_url::resolve(&state, data_url)? {
            crate::data_url::Resolved::Local => crate::data_url::local_root(&data_dir)?,
            crate::data_url::Resolved::Remote(url) => url,
            crate::data_url::Resolved::Record(url) => {
                state.data_url = Some(url.to_string());
                persist(&data_dir, &state)?;
                url
            }
        };
        Ok(Arc::new(Self {
            data_dir,
            current: Arc::new(RwLock::new(Arc::new(state))),
            writer: Arc::new(tokio::sync::Mutex::new(())),
            streams: crate::streams::StreamRegistry::default(),
            epochs,
            object_stores,
            lake_root,
            table_writes: Default::default(),
            providers: Default::default(),
        }))
    }

    /// Root URL of Basin-managed table files (ends with `/`): `file://<data dir>/` or the
    /// `--data-url` bucket prefix.
    pub fn lake_root(&self) -> &url::Url {
        &self.lake_root
    }

    /// Where materialized-view checkpoints live: beside Basin-managed tables.
    pub fn view_checkpoints(&self) -> Result<crate::views::checkpoint::Location> {
        use crate::views::checkpoint::Location;
        if let Ok(dir) = self.lake_root.to_file_path() {
            return Ok(Location::Local(dir.join("views")));
        }
        let bucket = self.lake_root.host_str().unwrap_or_default();
        let root = object_store::path::Path::from_url_path(self.lake_root.path())
            .map_err(|e| Error::InvalidOption(format!("data URL {}: {e}", self.lake_root)))?
            .join("views");
        Ok(Location::Bucket {
            store: self.object_stores.s3_store(bucket)?,
            root,
            url: format!("{}views", self.lake_root),
        })
    }

    /// Reads the last view checkpoint's epoch and log offsets, so epochs continue after it and
    /// compaction keeps what it resumes from, from the first round on. Call once after
    /// opening, before streaming tables open.
    pub async fn resume_view_checkpoint(&self) -> Result<()> {
        let location = self.view_checkpoints()?;
        if let Some(manifest) = crate::views::checkpoint::read_manifest(&location).await? {
            self.epochs.resume_after(manifest.epoch);
            self.epochs.set_holds(manifest.tables.into_iter().collect());
        }
        Ok(())
    }

    /// Where `s3://` URLs lead, for every runtime that reads this catalog's tables.
    pub fn object_stores(&self) -> &Arc<crate::object_stores::ObjectStores> {
        &self.object_stores
    }

    /// The directory that holds the catalog and Basin-managed tables (absolute).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub(crate) fn streams(&self) -> &crate::streams::StreamRegistry {
        &self.streams
    }

    /// The epoch clock materialized views and streaming-table reads share.
    pub fn epochs(&self) -> &Arc<crate::views::Epochs> {
        &self.epochs
    }

    /// The latest committed state. Never blocks on writers for longer than a pointer swap.
    pub fn snapshot(&self) -> Arc<CatalogState> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Applies `change` to a copy of the state and makes it durable before anyone sees it.
    /// If `change` fails nothing is written.
    ///
    /// Once `change` has succeeded, writing the file and publishing the new state happen on a
    /// blocking task that owns the writer lock: a caller that is cancelled (statement timeout,
    /// cancel request) cannot leave the file half-written or disk and memory disagreeing.
    pub async fn update<T>(
        &self,
        change: impl FnOnce(&mut CatalogState) -> Result<T>,
    ) -> Result<T> {
        let writer = Arc::clone(&self.writer).lock_owned().await;
        let mut next = (*self.snapshot()).clone();
        let output = change(&mut next)?;
        next.version += 1;
        let data_dir = self.data_dir.clone();
        let current = Arc::clone(&self.current);
        tokio::task::spawn_blocking(move || {
            let _writer = writer;
            persist(&data_dir, &next)?;
            *current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
            Ok::<_, Error>(())
        })
        .await
        .map_err(|e| Error::io("persist catalog", std::io::Error::other(e)))??;
        Ok(output)
    }
}

fn persist(data_dir: &Path, state: &CatalogState) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| Error::Corrupt {
        path: CATALOG_FILE.to_owned(),
        message: format!("cannot serialise catalog: {e}"),
    })?;
    let tmp = data_dir.join(CATALOG_TMP_FILE);
    let context = |what: &str| format!("{what} {}", tmp.display());
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| Error::io(context("create"), e))?;
    file.write_all(&bytes)
        .map_err(|e| Error::io(context("write"), e))?;
    file.sync_all()
        .map_err(|e| Error::io(context("fsync"), e))?;
    drop(file);
    fs::rename(&tmp, data_dir.join(CATALOG_FILE)).map_err(|e| Error::io(context("rename"), e))?;
    sync_dir(data_dir)
}

/// Makes a rename or file creation inside `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("fsync directory {}", dir.display()), e))
}

/// Gives each bucket the `aws.*` options its external tables were created with. The options
/// were checked at CREATE; a conflict here (a hand-edited catalog) keeps the first and says so.
fn register_bucket_options(stores: &crate::object_stores::ObjectStores, state: &CatalogState) {
    use crate::model::RelationKind;
    use crate::object_stores::{S3Options, s3_bucket};
    for relation in &state.relations {
        let RelationKind::External {
            location, options, ..
        } = &relation.kind
        else {
            continue;
        };
        let Some(bucket) = s3_bucket(location) else {
            continue;
        };
        let applied = S3Options::from_table_options(options)
            .and_then(|parsed| stores.set_bucket_options(&bucket, &parsed));
        if let Err(error) = applied {
            tracing::warn!(table = %relation.name, %bucket, %error, "ignored the table's S3 options");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DEFAULT_DATABASE;

    #[tokio::test]
    async fn changes_survive_reopen_and_failed_changes_leave_no_trace() {
        let dir = tempfile::tempdir().expect("temp dir");
        let catalog = Catalog::open(dir.path()).expect("open fresh catalog");
        let oid = catalog
            .update(|state| Ok(state.allocate_oid()))
            .await
            .expect("allocate oid");
        let failed: Result<()> = catalog
            .update(|state| {
                state.allocate_oid();
                Err(Error::Unsupported("no".to_owned()))
            })
            .await;
        assert!(failed.is_err());
        drop(catalog);

        let reopened = Catalog::open(dir.path()).expect("reopen catalog");
        let state = reopened.snapshot();
        assert_eq!(state.next_oid, oid + 1, "failed change must not persist");
        assert_eq!(state.databases[0].name, DEFAULT_DATABASE);
        assert!(state.schema(DEFAULT_DATABASE, "public").is_some());
    }

    #[test]
    fn corrupt_catalog_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join(CATALOG_FILE), b"{not json").expect("write garbage");
        let error = Catalog::open(dir.path()).expect_err("corrupt catalog must not open");
        assert!(error.to_string().contains("is corrupt"), "{error}");
    }
}
