//! Where Basin keeps the files of the tables it manages: under the data directory, or in an
//! object store given as `--data-url s3://bucket/prefix` (the catalog file and logs stay in the
//! data directory). The URL is recorded in the catalog the first time, so a restart without it
//! (or with another one) still finds the tables.

use std::path::Path;

use url::Url;

use crate::error::{Error, Result};
use crate::model::{CatalogState, RelationKind};

/// What the catalog's recorded URL and the configured one amount to.
pub(crate) enum Resolved {
    /// Files under the data directory.
    Local,
    /// Files under this URL, already recorded.
    Remote(Url),
    /// Files under this URL, to be recorded now.
    Record(Url),
}

pub(crate) fn resolve(state: &CatalogState, configured: Option<&str>) -> Result<Resolved> {
    let configured = configured
        .filter(|u| !u.trim().is_empty())
        .map(parse)
        .transpose()?;
    let recorded = state.data_url.as_deref().map(parse).transpose()?;
    match (recorded, configured) {
        (None, None) => Ok(Resolved::Local),
        (Some(recorded), None) => Ok(Resolved::Remote(recorded)),
        (Some(recorded), Some(configured)) if recorded == configured => {
            Ok(Resolved::Remote(recorded))
        }
        (Some(recorded), Some(configured)) => Err(Error::InvalidOption(format!(
            "this data directory's tables live under {recorded}, not {configured}; start with \
             --data-url {recorded} (or without --data-url)"
        ))),
        (None, Some(configured)) => {
            let local_tables = state
                .relations
                .iter()
                .filter(|r| {
                    matches!(
                        r.kind,
                        RelationKind::Managed { .. } | RelationKind::Stream(_)
                    )
                })
                .count();
            if local_tables > 0 {
                return Err(Error::InvalidOption(format!(
                    "this data directory already holds {local_tables} Basin-managed table(s) \
                     on local disk; --data-url {configured} applies to new data directories \
                     only"
                )));
            }
            Ok(Resolved::Record(configured))
        }
    }
}

/// `s3://bucket/prefix` as a directory URL (trailing `/`).
fn parse(text: &str) -> Result<Url> {
    let mut url = Url::parse(text.trim())
        .map_err(|e| Error::InvalidOption(format!("data URL \"{text}\" is not a URL: {e}")))?;
    if url.scheme() != "s3" || url.host_str().is_none_or(str::is_empty) {
        return Err(Error::InvalidOption(format!(
            "data URL \"{text}\" must look like s3://bucket/prefix"
        )));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `file://<data_dir>/`.
pub(crate) fn local_root(data_dir: &Path) -> Result<Url> {
    Url::from_directory_path(data_dir).map_err(|()| {
        Error::Unsupported(format!(
            "data directory {} is not an absolute path",
            data_dir.display()
        ))
    })
}

/// The URL of `path` (relative, e.g. `tables/basin/public/t_16384`) under `root`, as a
/// directory.
pub(crate) fn url_under(root: &Url, path: &str) -> Result<Url> {
    root.join(&format!("{}/", path.trim_end_matches('/')))
        .map_err(|e| Error::Unsupported(format!("table path {path} under {root}: {e}")))
}
