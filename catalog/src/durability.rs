//! Making writes to Basin-managed tables survive power loss. Delta Lake writes through
//! `object_store`'s local store, which never fsyncs; before a write is acknowledged, the files
//! it created (data files, the commit in `_delta_log/`) and their directories are fsynced here.

use std::fs::File;
use std::path::Path;
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::store::sync_dir;

/// Fsyncs every file under `dir` modified at or after `since`, then every directory that holds
/// one, then `dir` itself. Files older than `since` were made durable by earlier writes.
pub(crate) fn sync_tree_since(dir: &Path, since: SystemTime) -> Result<()> {
    let mut touched_dirs = Vec::new();
    sync_files(dir, since, &mut touched_dirs)?;
    for directory in touched_dirs {
        sync_dir(&directory)?;
    }
    sync_dir(dir)
}

fn sync_files(dir: &Path, since: SystemTime, touched: &mut Vec<std::path::PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
    let mut any_new = false;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
        let path = entry.path();
        let metadata = entry
            .metadata()
            .map_err(|e| Error::io(format!("stat {}", path.display()), e))?;
        if metadata.is_dir() {
            sync_files(&path, since, touched)?;
        } else if metadata.modified().is_ok_and(|m| m >= since) {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(format!("fsync {}", path.display()), e))?;
            any_new = true;
        }
    }
    if any_new {
        touched.push(dir.to_path_buf());
    }
    Ok(())
}
