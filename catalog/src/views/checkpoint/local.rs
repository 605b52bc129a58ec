//! Checkpoints under the data directory: state files written and fsynced first, then the
//! manifest replaced atomically (`checkpoint.json.tmp`, fsync, rename, fsync of the directory).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::MANIFEST;
use crate::error::{Error, Result};
use crate::store::sync_dir;

const MANIFEST_TMP: &str = "checkpoint.json.tmp";

pub(super) fn epoch_dir(root: &Path, epoch: u64) -> PathBuf {
    root.join("checkpoints").join(epoch.to_string())
}

/// The bytes of `path`, or `None` if it does not exist.
pub(super) fn read(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
    }
}

pub(super) fn write(
    root: &Path,
    epoch: u64,
    files: Vec<(String, Vec<u8>)>,
    manifest: &[u8],
) -> Result<()> {
    let dir = epoch_dir(root, epoch);
    fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    for (name, bytes) in files {
        write_synced(&dir.join(name), &bytes)?;
    }
    sync_dir(&dir)?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    let tmp = root.join(MANIFEST_TMP);
    write_synced(&tmp, manifest)?;
    fs::rename(&tmp, root.join(MANIFEST))
        .map_err(|e| Error::io(format!("rename {}", tmp.display()), e))?;
    sync_dir(root)?;
    remove_older(root, epoch);
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let context = |what: &str| format!("{what} {}", path.display());
    let mut file = File::create(path).map_err(|e| Error::io(context("create"), e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io(context("write"), e))?;
    file.sync_all().map_err(|e| Error::io(context("fsync"), e))
}

/// Removes checkpoint directories older than `epoch` (best effort: leftovers are harmless).
fn remove_older(root: &Path, epoch: u64) {
    let parent = root.join("checkpoints");
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
