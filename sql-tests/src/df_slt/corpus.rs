//! DataFusion's `.slt` files as data: where they are, which of them run, and the reviewed skip
//! list (`sql-tests/df-slt/skip.toml`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The crate whose `test_files/` is the corpus, and its version.
pub const CRATE: &str = "datafusion-sqllogictest";
pub const VERSION: &str = "55.2.0";

/// Environment variable naming the unpacked crate directory (the one holding `test_files/`).
pub const CORPUS_ENV: &str = "BASIN_DF_SLT_DIR";

/// The unpacked crate: `$BASIN_DF_SLT_DIR`, else `~/.cache/basin-df-slt/<crate>-<version>`,
/// where `scripts/df-slt.sh` puts it.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CORPUS_ENV).filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache")
        .join("basin-df-slt")
        .join(format!("{CRATE}-{VERSION}"))
}

/// Every `*.slt` under `<dir>/test_files`, as (path relative to `test_files/` with `/`, absolute
/// path), sorted.
pub fn discover(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let root = dir.join("test_files");
    if !root.is_dir() {
        return Err(Error::new(format!(
            "no DataFusion corpus at {}: fetch it with scripts/df-slt.sh --fetch, or point {} \
             at an unpacked {CRATE} {VERSION}",
            root.display(),
            CORPUS_ENV
        )));
    }
    crate::paths::slt_files(&root)
}

/// The reviewed skip list: file (or directory, ending in `/`) under `test_files/` → reason.
#[derive(Debug, Default)]
pub struct SkipList {
    entries: BTreeMap<String, String>,
}

impl SkipList {
    /// Reads a TOML file of `"path" = "reason"` pairs (tables group them, their names are only
    /// headings).
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path)
            .map_err(|err| Error::context(format_args!("read {}", path.display()), err))?;
        Self::parse(&text)
            .map_err(|err| Error::context(format_args!("parse {}", path.display()), err))
    }

    fn parse(text: &str) -> Result<Self> {
        let table: toml::Table = text.parse().map_err(|err| Error::new(format!("{err}")))?;
        let mut entries = BTreeMap::new();
        collect(&table, &mut entries)?;
        Ok(Self { entries })
    }

    /// Why `file` is skipped, if it is.
    pub fn reason(&self, file: &str) -> Option<&str> {
        if let Some(reason) = self.entries.get(file) {
            return Some(reason);
        }
        self.entries
            .iter()
            .find(|(key, _)| key.ends_with('/') && file.starts_with(key.as_str()))
            .map(|(_, reason)| reason.as_str())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn collect(table: &toml::Table, entries: &mut BTreeMap<String, String>) -> Result<()> {
    for (key, value) in table {
        match value {
            toml::Value::String(reason) => {
                entries.insert(key.clone(), reason.clone());
            }
            toml::Value::Table(group) => collect(group, entries)?,
            other => {
                return Err(Error::new(format!(
                    "\"{key}\" must be a reason (a string), not {}",
                    other.type_str()
                )));
            }
        }
    }
    Ok(())
}

/// DataFusion's `setup_scratch_dir`: a fresh `test_files/scratch/<file stem>/` for files that
/// write there (`COPY ... TO`, `INSERT INTO` external tables).
pub fn setup_scratch_dir(dir: &Path, file: &str) -> Result<()> {
    let stem = Path::new(file)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scratch = dir.join("test_files").join("scratch").join(stem);
    if scratch.exists() {
        fs::remove_dir_all(&scratch)
            .map_err(|err| Error::context(format_args!("clear {}", scratch.display()), err))?;
    }
    fs::create_dir_all(&scratch)
        .map_err(|err| Error::context(format_args!("create {}", scratch.display()), err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_list_matches_files_and_directories() {
        let list = SkipList::parse(
            "[data]\n\"avro.slt\" = \"needs avro files\"\n[dialect]\n\"spark/\" = \"spark\"\n",
        )
        .expect("valid skip list");
        assert_eq!(list.reason("avro.slt"), Some("needs avro files"));
        assert_eq!(list.reason("spark/math/abs.slt"), Some("spark"));
        assert_eq!(list.reason("aggregate.slt"), None);
        assert!(SkipList::parse("\"a.slt\" = 1").is_err());
    }
}
