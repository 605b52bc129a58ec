//! `COPY ... TO 'file'` in Postgres syntax for the formats only DataFusion writes: it becomes
//! DataFusion's own `COPY ... TO ... STORED AS`, so `COPY t TO '/lake/t.parquet'` and
//! `COPY (SELECT ...) TO 's3://b/out/' (FORMAT parquet)` write Parquet. Text, CSV and binary
//! (Postgres's formats) stay with the wire layer's COPY encoder.

use datafusion::sql::parser::{CopyToSource, CopyToStatement, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{
    CopyOption, CopySource, CopyTarget, Statement as SqlStatement,
};

use datafusion::logical_expr::LogicalPlan;
use object_store::ObjectStoreExt;

use crate::error::{Error, Result};

/// Formats DataFusion writes and Postgres does not, by their `STORED AS` name.
const DATAFUSION_FORMATS: [(&str, &str); 4] = [
    ("parquet", "PARQUET"),
    ("json", "JSON"),
    ("ndjson", "JSON"),
    ("arrow", "ARROW"),
];

/// Marks a COPY whose target is one file. DataFusion 55's physical planner reads
/// `single_file_output` from the plan's options, but its SQL planner renames every option
/// without a dot to `format.<name>`, which the file formats then refuse; so the SQL carries
/// this key and [`Staged::of`] replaces it in the plan.
const SINGLE_FILE: &str = "basin.single_file_output";

/// A COPY that writes one file, redirected to a temporary name beside it: DataFusion's sinks
/// finish the file they were writing even when the query fails part-way (the demux ends as at
/// the end of data), which would leave a truncated file under the target's name. The rows go to
/// the temporary object, which is renamed onto the target only after the COPY succeeded
/// (atomic on a local disk; copy then delete on S3) and deleted otherwise.
pub(super) struct Staged {
    pub(super) plan: LogicalPlan,
    temporary: datafusion::datasource::listing::ListingTableUrl,
    target: datafusion::datasource::listing::ListingTableUrl,
}

impl Staged {
    /// `plan` staged, when it is a COPY writing one file.
    pub(super) fn of(plan: &LogicalPlan) -> Result<Option<Self>> {
        use datafusion::datasource::listing::ListingTableUrl;
        let LogicalPlan::Copy(copy) = plan else {
            return Ok(None);
        };
        let target = ListingTableUrl::parse(&copy.output_url)?;
        let single = match copy.options.get("single_file_output").map(|v| v.trim()) {
            _ if copy.options.contains_key(SINGLE_FILE) => true,
            Some("true") => true,
            Some(_) => false,
            None => !target.is_collection() && target.file_extension().is_some(),
        };
        if !single || !copy.partition_by.is_empty() {
            return Ok(None);
        }
        let url = target.get_url();
        let name = url
            .path_segments()
            .and_then(|mut segments| segments.next_back())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| Error::user("42602", format!("no file name in \"{url}\"")))?;
        let mut temporary_url = url.clone();
        temporary_url
            .path_segments_mut()
            .map_err(|()| Error::user("42602", format!("\"{url}\" cannot name a file")))?
            .pop()
            .push(&format!(".{name}.basin-{}.tmp", uuid::Uuid::new_v4()));
        let temporary = ListingTableUrl::try_new(temporary_url, None)?;
        let mut staged = copy.clone();
        staged.output_url = temporary.as_str().to_owned();
        staged.options.remove(SINGLE_FILE);
        staged
            .options
            .insert("single_file_output".to_owned(), "true".to_owned());
        Ok(Some(Self {
            plan: LogicalPlan::Copy(staged),
            temporary,
            target,
        }))
    }

    /// Moves the finished file onto the target's name.
    pub(super) async fn publish(
        &self,
        state: &datafusion::execution::session_state::SessionState,
    ) -> Result<()> {
        let store = state
            .runtime_env()
            .object_store(self.target.object_store())?;
        let moved = store
            .rename(self.temporary.prefix(), self.target.prefix())
            .await;
        if let Err(error) = moved {
            self.discard(state).await;
            return Err(Error::user(
                "58030",
                format!("could not write COPY file \"{}\": {error}", self.target),
            ));
        }
        Ok(())
    }

    /// Removes what a failed COPY wrote.
    pub(super) async fn discard(&self, state: &datafusion::execution::session_state::SessionState) {
        if let Ok(store) = state
            .runtime_env()
            .object_store(self.temporary.object_store())
        {
            let _ = store.delete(self.temporary.prefix()).await;
        }
    }
}

/// `statement` as DataFusion's COPY when it is a `COPY ... TO 'file'` asking for one of
/// [`DATAFUSION_FORMATS`]: by `FORMAT`, or with no format by the file's extension.
pub(super) fn as_datafusion(statement: &SqlStatement) -> Result<Option<DfStatement>> {
    let SqlStatement::Copy {
        source,
        to: true,
        target: CopyTarget::File { filename },
        options,
        legacy_options,
        ..
    } = statement
    else {
        return Ok(None);
    };
    if !legacy_options.is_empty() {
        return Ok(None);
    }
    let named = options.iter().find_map(|option| match option {
        CopyOption::Format(name) => Some(name.value.to_lowercase()),
        _ => None,
    });
    let by_extension = || {
        let lower = filename.to_lowercase();
        let extension = lower.rsplit_once('.')?.1.to_owned();
        Some(extension).filter(|e| !e.contains('/'))
    };
    let Some(stored_as) = named
        .or_else(by_extension)
        .and_then(|name| DATAFUSION_FORMATS.iter().find(|(n, _)| *n == name))
        .map(|(_, stored_as)| (*stored_as).to_owned())
    else {
        return Ok(None);
    };
    if let Some(other) = options
        .iter()
        .find(|option| !matches!(option, CopyOption::Format(_)))
    {
        return Err(Error::unsupported(format!(
            "COPY option {other} does not apply to FORMAT {}",
            stored_as.to_lowercase()
        )));
    }
    let is_url = url::Url::parse(filename).is_ok_and(|url| url.scheme().len() > 1);
    if !is_url && !std::path::Path::new(filename.as_str()).is_absolute() {
        return Err(Error::user(
            "42602",
            "relative path not allowed for COPY to file",
        ));
    }
    let source = match source {
        CopySource::Table {
            table_name,
            columns,
        } if columns.is_empty() => CopyToSource::Relation(table_name.clone()),
        CopySource::Table {
            table_name,
            columns,
        } => {
            let list = columns
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("SELECT {list} FROM {table_name}");
            let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
            let query = datafusion::sql::sqlparser::parser::Parser::new(&dialect)
                .try_with_sql(&sql)
                .and_then(|mut parser| parser.parse_query())
                .map_err(|e| Error::syntax(e.to_string()))?;
            CopyToSource::Query(query)
        }
        CopySource::Query(query) => CopyToSource::Query(query.clone()),
    };
    Ok(Some(DfStatement::CopyTo(CopyToStatement {
        source,
        target: filename.to_string(),
        partitioned_by: Vec::new(),
        stored_as: Some(stored_as),
        // Postgres names a file; DataFusion would make a path without an extension a
        // directory of files. A trailing slash still asks for a directory.
        options: if filename.ends_with('/') {
            Vec::new()
        } else {
            vec![(
                SINGLE_FILE.to_owned(),
                datafusion::sql::sqlparser::ast::Value::SingleQuotedString("true".to_owned()),
            )]
        },
    })))
}

/// Checks that a COPY can create files where `target` (a path, or a `file://` URL; other
/// stores are checked by their writes) says, by creating and removing an empty probe file in
/// the directory it will write into, which the write would create anyway. Catches a missing
/// or read-only directory before any row is computed, and file systems such as `/proc` where
/// object_store 0.13's local store retries creating its staging file forever (the directory
/// exists, yet creating a file in it says "not found").
pub(crate) fn check_local_target(target: &str) -> Result<()> {
    let path = match url::Url::parse(target) {
        Ok(url) if url.scheme() == "file" => match url.to_file_path() {
            Ok(path) => path,
            Err(()) => {
                return Err(Error::user(
                    "42602",
                    format!("invalid file URL \"{target}\""),
                ));
            }
        },
        Ok(url) if url.scheme().len() > 1 => return Ok(()),
        _ => std::path::PathBuf::from(target),
    };
    let directory = if path.is_dir() || target.ends_with('/') {
        path.as_path()
    } else {
        match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => std::path::Path::new("."),
        }
    };
    let failed = |e: std::io::Error| {
        file_access_error(
            &e,
            format!(
                "could not create files in \"{}\" for COPY: {e}",
                directory.display()
            ),
        )
    };
    std::fs::create_dir_all(directory).map_err(failed)?;
    let probe = directory.join(format!(".basin-copy-probe-{}", uuid::Uuid::new_v4()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(failed)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// An I/O failure with the SQLSTATE Postgres gives it for file access.
pub(crate) fn file_access_error(error: &std::io::Error, message: String) -> Error {
    let sqlstate = match error.kind() {
        std::io::ErrorKind::NotFound => "58P01",
        std::io::ErrorKind::PermissionDenied => "42501",
        _ => "58030",
    };
    Error::user(sqlstate, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(sql: &str) -> Result<Option<String>> {
        let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
        let statement = datafusion::sql::sqlparser::parser::Parser::new(&dialect)
            .try_with_sql(sql)
            .and_then(|mut parser| parser.parse_statement())
            .expect("parses");
        Ok(as_datafusion(&statement)?.map(|s| s.to_string()))
    }

    #[test]
    fn parquet_json_and_arrow_go_to_datafusion() {
        let converted = convert("COPY t TO '/out/t.parquet'").expect("converts");
        assert_eq!(
            converted.as_deref(),
            Some(
                "COPY t TO /out/t.parquet STORED AS PARQUET OPTIONS ('basin.single_file_output' 'true')"
            )
        );
        let converted = convert("COPY (SELECT 1) TO 's3://b/x' WITH (FORMAT json)")
            .expect("converts")
            .expect("is DataFusion's");
        assert!(converted.contains("STORED AS JSON"), "{converted}");
        assert!(convert("COPY t TO 'o.parquet'").is_err(), "relative");
        let converted = convert("COPY t (a, b) TO '/o.arrow'")
            .expect("converts")
            .expect("is DataFusion's");
        assert!(converted.contains("SELECT a, b FROM t"), "{converted}");
    }

    #[test]
    fn postgres_formats_stay() {
        for sql in [
            "COPY t TO '/out/t.csv'",
            "COPY t TO '/out/t.parquet' WITH (FORMAT csv)",
            "COPY t TO '/out/dir.v2/t'",
            "COPY t TO STDOUT",
            "COPY t TO '/out/t.parquet' CSV HEADER",
        ] {
            assert_eq!(convert(sql).expect("fine"), None, "{sql}");
        }
        assert!(convert("COPY t TO '/t.parquet' WITH (FORMAT parquet, HEADER)").is_err());
    }

    #[test]
    fn local_targets_are_probed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("a/b/out.csv");
        check_local_target(nested.to_str().expect("utf-8")).expect("creatable");
        assert!(dir.path().join("a/b").is_dir());
        assert_eq!(
            std::fs::read_dir(dir.path().join("a/b"))
                .expect("dir")
                .count(),
            0
        );
        check_local_target("s3://bucket/x.parquet").expect("not local");
        if std::path::Path::new("/proc/self").exists() {
            let error = check_local_target("/proc/x.parquet").expect_err("not creatable");
            assert!(error.to_string().contains("/proc"), "{error}");
        }
    }
}
