//! TPC-H data for the `tpch/` files: generated once by `basin datagen tpch` into
//! `sql-tests/data/tpch-sf<scale>/` (gitignored) and reused by later runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result, paths};

/// The scale factor the corpus's expected answers were computed for.
pub const SCALE: &str = "0.01";

/// The eight TPC-H tables; `basin datagen tpch` writes `<table>.parquet` for each.
pub const TABLES: [&str; 8] = [
    "region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem",
];

/// `sql-tests/data/tpch-sf<SCALE>`.
pub fn data_dir() -> PathBuf {
    paths::crate_dir()
        .join("data")
        .join(format!("tpch-sf{SCALE}"))
}

/// True when `dir` holds a Parquet file for every table.
pub fn is_complete(dir: &Path) -> bool {
    TABLES
        .iter()
        .all(|table| dir.join(format!("{table}.parquet")).is_file())
}

/// Makes sure `dir` holds the TPC-H data at [`SCALE`], generating it with `basin` if it does not.
/// Generation goes to a sibling directory that is renamed into place only when complete, so an
/// interrupted run never leaves half a data set behind.
pub fn ensure_data(basin: &Path, dir: &Path) -> Result<()> {
    if is_complete(dir) {
        return Ok(());
    }
    let parent = dir
        .parent()
        .ok_or_else(|| Error::new(format!("{} has no parent directory", dir.display())))?;
    fs::create_dir_all(parent)
        .map_err(|err| Error::context(format_args!("create {}", parent.display()), err))?;
    let staging = parent.join(format!(
        ".{}.tmp-{}",
        dir.file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("tpch"),
        std::process::id()
    ));
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .map_err(|err| Error::context(format_args!("remove {}", staging.display()), err))?;
    }

    let output = Command::new(basin)
        .args(["datagen", "tpch", "--scale", SCALE, "--output"])
        .arg(&staging)
        .output()
        .map_err(|err| Error::context(format_args!("run {} datagen", basin.display()), err))?;
    if !output.status.success() || !is_complete(&staging) {
        let _ = fs::remove_dir_all(&staging);
        return Err(Error::new(format!(
            "`{} datagen tpch --scale {SCALE} --output {}` failed ({}) or did not write all of \
             {TABLES:?}\nstdout: {}\nstderr: {}",
            basin.display(),
            staging.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        )));
    }

    if dir.exists() {
        // Incomplete leftovers of an older layout or an interrupted copy.
        fs::remove_dir_all(dir)
            .map_err(|err| Error::context(format_args!("remove {}", dir.display()), err))?;
    }
    match fs::rename(&staging, dir) {
        Ok(()) => Ok(()),
        // Another runner finished first; its copy is as good as ours.
        Err(_) if is_complete(dir) => {
            let _ = fs::remove_dir_all(&staging);
            Ok(())
        }
        Err(err) => Err(Error::context(
            format_args!("move {} to {}", staging.display(), dir.display()),
            err,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_complete_only_with_every_table() {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        for table in &TABLES[..7] {
            fs::write(dir.path().join(format!("{table}.parquet")), b"x").expect("write a file");
        }
        assert!(!is_complete(dir.path()), "lineitem is missing");
        fs::write(dir.path().join("lineitem.parquet"), b"x").expect("write a file");
        assert!(is_complete(dir.path()));
    }

    #[test]
    fn failed_generation_leaves_nothing_behind() {
        let root = tempfile::tempdir().expect("create a temporary directory");
        let dir = root.path().join("tpch");
        let err =
            ensure_data(Path::new("/bin/false"), &dir).expect_err("/bin/false generates nothing");
        assert!(err.to_string().contains("datagen tpch"), "{err}");
        assert!(!dir.exists());
        let leftovers: Vec<_> = fs::read_dir(root.path())
            .expect("list the directory")
            .collect();
        assert!(
            leftovers.is_empty(),
            "staging directory left behind: {leftovers:?}"
        );
    }
}
