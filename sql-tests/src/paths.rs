//! Where things live: the workspace, the `basin` binary, the corpus and its data.
//!
//! `CARGO_BIN_EXE_basin` only exists for tests of the crate that owns the binary, so the harness
//! finds `target/debug/basin` itself. The Python client tests (`tests/clients/conftest.py`) use
//! the same rules.

use std::env;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Environment variable naming the `basin` binary to test, overriding the lookup in the target
/// directory.
pub const BASIN_BIN_ENV: &str = "BASIN_BIN";

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// This crate's directory, `sql-tests/`.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.slt` corpus, `sql-tests/slt/`.
pub fn corpus_dir() -> PathBuf {
    crate_dir().join("slt")
}

/// Small data files checked into the repository that `.slt` files read (`${TESTDATA}`).
pub fn testdata_dir() -> PathBuf {
    crate_dir().join("testdata")
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace root if relative),
/// else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// The `basin` binary under test: `$BASIN_BIN` (relative to the workspace root if relative, as
/// cargo runs tests from the crate directory), else `<target>/debug/basin`. The test command
/// (`scripts/test.sh`) builds it before running the tests.
pub fn basin_binary() -> Result<PathBuf> {
    let path = match env::var_os(BASIN_BIN_ENV) {
        Some(path) if !path.is_empty() => workspace_root().join(path),
        _ => target_dir().join("debug").join("basin"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::new(format!(
            "basin binary not found at {}: build it first with `cargo build -p basin`, or point \
             {BASIN_BIN_ENV} at one",
            path.display()
        )))
    }
}

/// Every `*.slt` file under `dir`, as (path relative to `dir` joined with `/`, full path),
/// sorted: Basin's corpus and DataFusion's are both walked with this.
pub fn slt_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let read_error =
        |current: &Path, err| Error::context(format_args!("read {}", current.display()), err);
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(|err| read_error(&current, err))? {
            let path = entry.map_err(|err| read_error(&current, err))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "slt")
                && let Ok(relative) = path.strip_prefix(dir)
            {
                let name = relative
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push((name, path));
            }
        }
    }
    files.sort();
    Ok(files)
}
