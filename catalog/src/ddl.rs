//! Catalog changes: schemas, lake tables, Basin-managed (Delta) tables and views.
//!
//! Each operation does its slow work (schema inference, writing data) first and records the
//! relation in the durable catalog last, so a statement that fails or is interrupted leaves no
//! half-made relation behind: it is either absent or complete.

use std::sync::Arc;

use arrow::array::{Array, UInt64Array};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProviderFactory;
use datafusion::datasource::listing_table_factory::ListingTableFactory;
use datafusion::datasource::provider_as_source;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{CreateExternalTable, LogicalPlan, LogicalPlanBuilder, cast, col};
use datafusion::physical_plan::collect;
use deltalake::protocol::SaveMode;

use crate::delta_types::managed_schema;
use crate::error::{Error, Result};
use crate::model::{ColumnEntry, FileFormat, RelationEntry, RelationKind, SchemaEntry};
use crate::object_stores::{S3Options, is_store_option, s3_bucket};
use crate::store::Catalog;
use crate::tables::{columns_of, external_table_command, managed_table_url, open_delta};

/// Which kind of relation a `DROP` names; dropping a view with `DROP TABLE` is an error as in
/// Postgres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropKind {
    Table,
    View,
    MaterializedView,
}

impl DropKind {
    fn noun(self) -> &'static str {
        match self {
            DropKind::Table => "table",
            DropKind::View => "view",
            DropKind::MaterializedView => "materialized view",
        }
    }

    fn matches(self, kind: &RelationKind) -> bool {
        match kind {
            RelationKind::View { .. } => self == DropKind::View,
            RelationKind::MaterializedView(_) => self == DropKind::MaterializedView,
            _ => self == DropKind::Table,
        }
    }
}

/// Where a new relation goes.
#[derive(Debug, Clone)]
pub struct RelationName {
    pub database: String,
    pub schema: String,
    pub name: String,
}

impl std::fmt::Display for RelationName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.schema == crate::model::DEFAULT_SCHEMA {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}.{}", self.schema, self.name)
        }
    }
}

impl Catalog {
    pub async fn create_schema(
        &self,
        database: &str,
        name: &str,
        if_not_exists: bool,
    ) -> Result<()> {
        self.update(|state| {
            if state.schema(database, name).is_some() {
                return if if_not_exists {
                    Ok(())
                } else {
                    Err(Error::AlreadyExists {
                        kind: "schema",
                        name: name.to_owned(),
                    })
                };
            }
            let oid = state.allocate_oid();
            state.schemas.push(SchemaEntry {
                oid,
                database: database.to_owned(),
                name: name.to_owned(),
            });
            Ok(())
        })
        .await
    }

    pub async fn drop_schema(
        &self,
        database: &str,
        name: &str,
        if_exists: bool,
        cascade: bool,
    ) -> Result<()> {
        let dropped = self
            .update(|state| {
                if state.schema(database, name).is_none() {
                    return if if_exists {
                        Ok(Vec::new())
                    } else {
                        Err(Error::NotFound {
                            kind: "schema",
                            name: name.to_owned(),
                        })
                    };
                }
                let members: Vec<RelationEntry> =
                    state.relations_in(database, name).cloned().collect();
                if !members.is_empty() && !cascade {
                    return Err(Error::DependentObjects(format!(
                        "cannot drop schema \"{name}\" because other objects depend on it"
                    )));
                }
                state
                    .relations
                    .retain(|r| !(r.database == database && r.schema == name));
                state
                    .schemas
                    .retain(|s| !(s.database == database && s.name == name));
                Ok(members)
            })
            .await?;
        for relation in dropped {
            self.remove_managed_files(&relation);
        }
        Ok(())
    }

    /// `CREATE EXTERNAL TABLE`: validates the location and format, infers the schema when none
    /// is declared, and records the table.
    pub async fn create_external_table(
        &self,
        state: &SessionState,
        target: &RelationName,
        cmd: &CreateExternalTable,
    ) -> Result<()> {
        if self.exists(target, cmd.if_not_exists, cmd.or_replace)? {
            return Ok(());
        }
        let format = match cmd.file_type.to_ascii_uppercase().as_str() {
            "PARQUET" => FileFormat::Parquet,
            "CSV" => FileFormat::Csv,
            "JSON" | "NDJSON" => FileFormat::Json,
            other => {
                return Err(Error::Unsupported(format!(
                    "external tables stored as {other} are not supported; use PARQUET, CSV or JSON"
                )));
            }
        };
        let [location] = cmd.locations.as_slice() else {
            return Err(Error::Unsupported(
                "an external table needs exactly one LOCATION".to_owned(),
            ));
        };
        let location = absolute_location(location)?;
        let store_options = S3Options::from_table_options(&cmd.options)?;
        let bucket = s3_bucket(&location);
        let mut configured_bucket = None;
        if let Some(bucket) = &bucket {
            if self
                .object_stores()
                .set_bucket_options(bucket, &store_options)?
            {
                configured_bucket = Some(bucket.clone());
            }
        } else if !store_options.is_empty() {
            return Err(Error::InvalidOption(format!(
                "aws.* options apply to s3:// locations, not \"{location}\""
            )));
        }
        let created = self
            .create_external_table_at(state, target, cmd, location, format)
            .await;
        // Options a failed CREATE brought (wrong credentials, say) must not stick to the bucket.
        if created.is_err()
            && let Some(bucket) = configured_bucket
        {
            self.object_stores().remove_bucket_options(&bucket);
        }
        created
    }

    async fn create_external_table_at(
        &self,
        state: &SessionState,
        target: &RelationName,
        cmd: &CreateExternalTable,
        location: String,
        format: FileFormat,
    ) -> Result<()> {
        let mut normalized = cmd.clone();
        normalized.locations = vec![location.clone()];
        normalized.file_type = format.as_str().to_uppercase();
        normalized.options.retain(|key, _| !is_store_option(key));
        let provider = ListingTableFactory::new()
            .create(state, &normalized)
            .await?;
        let columns = columns_of(provider.as_ref());
        // Replaying the stored definition must give the same table; check it now rather than
        // at the first query after a restart.
        let replay = external_table_command(
            &target.name,
            &location,
            format,
            &cmd.table_partition_cols,
            cmd.options.clone(),
            Some(&columns),
        )?;
        ListingTableFactory::new().create(state, &replay).await?;
        let kind = RelationKind::External {
            location,
            format,
            partition_columns: cmd.table_partition_cols.clone(),
            options: cmd.options.clone().into_iter().collect(),
        };
        self.record_relation(target, kind, columns, cmd.or_replace)
            .await
            .map(|_| ())
    }

    /// `CREATE TABLE ... (columns)` and `CREATE TABLE ... AS SELECT`: a Delta table under the
    /// data directory, filled from `input` (an empty relation for a plain `CREATE TABLE`).
    /// Returns the number of rows written.
    pub async fn create_managed_table(
        &self,
        state: &SessionState,
        target: &RelationName,
        input: LogicalPlan,
        if_not_exists: bool,
    ) -> Result<u64> {
        if self.exists(target, if_not_exists, false)? {
            return Ok(0);
        }
        let oid = self.update(|s| Ok(s.allocate_oid())).await?;
        let path = format!(
            "tables/{}/{}/{}_{oid}",
            path_component(&target.database),
            path_component(&target.schema),
            path_component(&target.name)
        );
        let url = managed_table_url(self.lake_root(), &path)?;
        let result = self.write_new_delta_table(state, target, &url, input).await;
        let (rows, declared) = match result {
            Ok(written) => written,
            Err(error) => {
                self.remove_lake_files(&path);
                return Err(error);
            }
        };
        let provider = open_delta(&url, &target.name, &declared).await?;
        let columns = columns_of(provider.as_ref());
        let recorded = self
            .update(|s| {
                if s.relation(&target.database, &target.schema, &target.name)
                    .is_some()
                {
                    return Err(Error::AlreadyExists {
                        kind: "relation",
                        name: target.to_string(),
                    });
                }
                s.relations.push(RelationEntry {
                    oid,
                    database: target.database.clone(),
                    schema: target.schema.clone(),
                    name: target.name.clone(),
                    kind: RelationKind::Managed { path: path.clone() },
                    columns,
                });
                Ok(())
            })
            .await;
        if let Err(error) = recorded {
            self.remove_lake_files(&path);
            return Err(error);
        }
        Ok(rows)
    }

    async fn write_new_delta_table(
        &self,
        state: &SessionState,
        target: &RelationName,
        url: &url::Url,
        input: LogicalPlan,
    ) -> Result<(u64, Vec<ColumnEntry>)> {
        let input_schema: SchemaRef = Arc::new(input.schema().as_arrow().clone());
        // A declared column list keeps its NOT NULLs; CREATE TABLE AS copies no constraints,
        // as in Postgres.
        let declared = matches!(input, LogicalPlan::EmptyRelation(_));
        let schema = managed_schema(&input_schema, declared)?;
        let delta_schema = schema.storage;
        if let Ok(path) = url.to_file_path() {
            std::fs::create_dir_all(&path)
                .map_err(|e| Error::io(format!("create table directory {}", path.display()), e))?;
        }
        create_empty_delta(url, Arc::clone(&delta_schema), target).await?;
        let provider = open_delta(url, &target.name, &[]).await?;
        let casts = delta_schema
            .fields()
            .iter()
            .zip(input_schema.fields())
            .map(|(to, from)| {
                cast(
                    col(datafusion::common::Column::new_unqualified(from.name())),
                    to.data_type().clone(),
                )
                .alias(to.name())
            })
            .collect::<Vec<_>>();
        let plan = LogicalPlanBuilder::from(input).project(casts)?.build()?;
        let insert = LogicalPlanBuilder::insert_into(
            plan,
            target.name.clone(),
            provider_as_source(provider),
            InsertOp::Append,
        )?
        .build()?;
        let physical = state.create_physical_plan(&insert).await?;
        let batches = collect(physical, state.task_ctx()).await?;
        Ok((
            count_from(&batches),
            crate::model::columns_of(&schema.logical),
        ))
    }

    /// `CREATE VIEW name AS query`: the query is planned now to catch errors, stored as text.
    pub async fn create_view(
        &self,
        state: &SessionState,
        target: &RelationName,
        sql: &str,
        or_replace: bool,
    ) -> Result<()> {
        if self.exists(target, false, or_replace)? {
            return Ok(());
        }
        let plan = state.create_logical_plan(sql).await?;
        let columns = crate::model::columns_of(plan.schema().as_arrow());
        self.record_relation(
            target,
            RelationKind::View {
                sql: sql.to_owned(),
                default_schema: Some(state.config_options().catalog.default_schema.clone()),
            },
            columns,
            or_replace,
        )
        .await
        .map(|_| ())
    }

    /// `CREATE MATERIALIZED VIEW name [WITH (...)] AS query`: recorded with the columns `plan`
    /// produces. The caller has planned and classified the query; the coordinator's
    /// continuous-query manager starts maintaining it.
    pub async fn create_materialized_view(
        &self,
        target: &RelationName,
        spec: crate::model::MaterializedViewSpec,
        schema: &arrow::datatypes::Schema,
        if_not_exists: bool,
    ) -> Result<Option<u32>> {
        if self.exists(target, if_not_exists, false)? {
            return Ok(None);
        }
        let columns = crate::model::columns_of(schema);
        let mut seen = std::collections::HashSet::new();
        if let Some(duplicate) = columns.iter().find(|c| !seen.insert(c.name.clone())) {
            return Err(Error::DuplicateColumn(format!(
                "column \"{}\" specified more than once; name the view's columns with AS",
                duplicate.name
            )));
        }
        self.record_relation(target, RelationKind::MaterializedView(spec), columns, false)
            .await
            .map(Some)
    }

    /// `DROP TABLE` / `DROP VIEW` / `DROP MATERIALIZED VIEW`. Managed table files are removed
    /// after the catalog no longer names them. A relation a materialized view reads cannot be
    /// dropped while the view exists.
    pub async fn drop_relation(
        &self,
        target: &RelationName,
        kind: DropKind,
        if_exists: bool,
    ) -> Result<()> {
        let dropped = self
            .update(|state| {
                let Some(entry) = state.relation(&target.database, &target.schema, &target.name)
                else {
                    return if if_exists {
                        Ok(None)
                    } else {
                        Err(Error::NotFound {
                            kind: kind.noun(),
                            name: target.to_string(),
                        })
                    };
                };
                if !kind.matches(&entry.kind) {
                    return Err(Error::WrongObjectType(format!(
                        "\"{target}\" is not a {}",
                        kind.noun()
                    )));
                }
                if let Some(dependent) = state.relations.iter().find(|r| {
                    matches!(&r.kind, RelationKind::MaterializedView(spec)
                        if spec_reads(spec, &entry.name))
                        && r.oid != entry.oid
                }) {
                    return Err(Error::DependentObjects(format!(
                        "cannot drop {} \"{target}\" because materialized view \"{}\" \
                         depends on it",
                        kind.noun(),
                        dependent.name
                    )));
                }
                let entry = entry.clone();
                state.relations.retain(|r| r.oid != entry.oid);
                Ok(Some(entry))
            })
            .await?;
        if let Some(entry) = dropped {
            self.close_stream(entry.oid).await;
            self.remove_managed_files(&entry);
        }
        Ok(())
    }

    /// Whether `target` exists, and whether that is fine (`IF NOT EXISTS`: skip; `OR REPLACE`:
    /// go on and replace). Errors if the schema is missing or the name is taken.
    fn exists(&self, target: &RelationName, if_not_exists: bool, or_replace: bool) -> Result<bool> {
        let snapshot = self.snapshot();
        if snapshot.schema(&target.database, &target.schema).is_none() {
            return Err(Error::NotFound {
                kind: "schema",
                name: target.schema.clone(),
            });
        }
        match snapshot.relation(&target.database, &target.schema, &target.name) {
            None => Ok(false),
            Some(_) if if_not_exists => Ok(true),
            Some(_) if or_replace => Ok(false),
            Some(_) => Err(Error::AlreadyExists {
                kind: "relation",
                name: target.to_string(),
            }),
        }
    }

    async fn record_relation(
        &self,
        target: &RelationName,
        kind: RelationKind,
        columns: Vec<ColumnEntry>,
        or_replace: bool,
    ) -> Result<u32> {
        let replaced = self
            .update(|state| {
                if state.schema(&target.database, &target.schema).is_none() {
                    return Err(Error::NotFound {
                        kind: "schema",
                        name: target.schema.clone(),
                    });
                }
                let existing = state
                    .relation(&target.database, &target.schema, &target.name)
                    .cloned();
                if let Some(old) = &existing
                    && std::mem::discriminant(&old.kind) != std::mem::discriminant(&kind)
                {
                    // CREATE OR REPLACE VIEW must never replace (and delete) a table.
                    return Err(Error::WrongObjectType(format!(
                        "\"{target}\" is not a {}",
                        match kind {
                            RelationKind::View { .. } => "view",
                            _ => "table of this kind",
                        }
                    )));
                }
                let oid = match &existing {
                    Some(_) if !or_replace => {
                        return Err(Error::AlreadyExists {
                            kind: "relation",
                            name: target.to_string(),
                        });
                    }
                    // Postgres keeps the OID on CREATE OR REPLACE.
                    Some(old) => old.oid,
                    None => state.allocate_oid(),
                };
                state.relations.retain(|r| r.oid != oid);
                state.relations.push(RelationEntry {
                    oid,
                    database: target.database.clone(),
                    schema: target.schema.clone(),
                    name: target.name.clone(),
                    kind,
                    columns,
                });
                Ok((oid, existing))
            })
            .await?;
        let (oid, existing) = replaced;
        if let Some(old) = existing {
            self.remove_managed_files(&old);
        }
        Ok(oid)
    }

    /// Serialises writes to managed table `target` within this process; `None` for other
    /// relation kinds (streaming tables group-commit concurrent writes on their own). Delta's
    /// optimistic commits would retry a lost race anyway, but that needs the store's
    /// put-if-absent to be atomic, which S3 and MinIO guarantee and simpler S3-compatible
    /// servers (s3s-fs checks, then writes) do not; in one process the lock makes the race
    /// impossible and saves the conflict retries.
    pub async fn lock_table_writes(
        &self,
        target: &RelationName,
    ) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let snapshot = self.snapshot();
        let entry = snapshot.relation(&target.database, &target.schema, &target.name)?;
        if !matches!(entry.kind, RelationKind::Managed { .. }) {
            return None;
        }
        let lock = Arc::clone(
            self.table_writes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(entry.oid)
                .or_default(),
        );
        Some(lock.lock_owned().await)
    }

    /// Makes the files a write to managed table `database.schema.name` created since `since`
    /// durable. A no-op for other relation kinds. Call before acknowledging the write.
    pub async fn sync_writes(
        &self,
        target: &RelationName,
        since: std::time::SystemTime,
    ) -> Result<()> {
        let snapshot = self.snapshot();
        let Some(RelationKind::Managed { path }) = snapshot
            .relation(&target.database, &target.schema, &target.name)
            .map(|r| &r.kind)
        else {
            return Ok(());
        };
        // Object stores acknowledge a PUT once it is durable; only local files need fsync.
        let Ok(dir) = managed_table_url(self.lake_root(), path)?.to_file_path() else {
            return Ok(());
        };
        let synced =
            tokio::task::spawn_blocking(move || crate::durability::sync_tree_since(&dir, since))
                .await
                .map_err(|e| Error::io("fsync table files", std::io::Error::other(e)))?;
        // The Delta commit is already in the log (visible to every reader): a failed sync
        // leaves its fate unknown, not refused.
        synced.map_err(|error| match error {
            Error::Io { context, source } => Error::NotDurable { context, source },
            other => other,
        })
    }

    /// Removes the files of a Basin-managed table at `path` (relative to the lake root):
    /// a directory under the data directory, or every object under the prefix in the bucket
    /// (in the background; a failure is logged and leaves only unreferenced objects).
    pub(crate) fn remove_lake_files(&self, path: &str) {
        let url = match managed_table_url(self.lake_root(), path) {
            Ok(url) => url,
            Err(error) => {
                tracing::warn!(path, %error, "could not remove table files");
                return;
            }
        };
        if let Ok(dir) = url.to_file_path() {
            remove_dir_logged(&dir);
            return;
        }
        let bucket = url.host_str().unwrap_or_default().to_owned();
        let store = match self.object_stores().s3_store(&bucket) {
            Ok(store) => store,
            Err(error) => {
                tracing::warn!(%url, %error, "could not remove table files");
                return;
            }
        };
        let Ok(prefix) = object_store::path::Path::from_url_path(url.path()) else {
            return;
        };
        tokio::spawn(async move {
            use futures::{StreamExt, TryStreamExt};
            let locations = store
                .list(Some(&prefix))
                .map_ok(|meta| meta.location)
                .boxed();
            let failed = store.delete_stream(locations).try_collect::<Vec<_>>().await;
            if let Err(error) = failed {
                tracing::warn!(%url, %error, "could not remove every table file");
            }
        });
    }

    /// A streaming table's local directory (its log) and its lake, wherever that lives.
    pub(crate) fn remove_stream_files(&self, path: &str) {
        remove_dir_logged(&self.data_dir().join(path));
        if self.lake_root().scheme() != "file" {
            self.remove_lake_files(&format!("{path}/lake"));
        }
    }

    /// Drops a bucket's table options once no external table gives it any.
    fn forget_bucket_options(&self, entry: &RelationEntry) {
        let RelationKind::External { location, .. } = &entry.kind else {
            return;
        };
        let Some(bucket) = s3_bucket(location) else {
            return;
        };
        let still_configured = self.snapshot().relations.iter().any(|r| {
            matches!(&r.kind, RelationKind::External { location, options, .. }
                if s3_bucket(location).as_deref() == Some(bucket.as_str())
                    && options.keys().any(|k| is_store_option(k)))
        });
        if !still_configured {
            self.object_stores().remove_bucket_options(&bucket);
        }
    }

    fn remove_managed_files(&self, entry: &RelationEntry) {
        self.forget_bucket_options(entry);
        match &entry.kind {
            RelationKind::Managed { path } => self.remove_lake_files(path),
            RelationKind::Stream(spec) => self.remove_stream_files(&spec.path),
            RelationKind::MaterializedView(_) => {
                remove_dir_logged(&crate::views::view_dir(self.data_dir(), entry.oid));
            }
            RelationKind::External { .. } | RelationKind::View { .. } => {}
        }
    }
}

/// Whether a materialized view's query names relation `name` (a token match on identifiers:
/// conservative, so a false positive only refuses a DROP that CASCADE-less Postgres might
/// allow).
fn spec_reads(spec: &crate::model::MaterializedViewSpec, name: &str) -> bool {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, &spec.sql).tokenize() else {
        return true;
    };
    tokens.iter().any(|t| match t {
        Token::Word(w) if w.quote_style.is_some() => w.value == name,
        Token::Word(w) => w.value.eq_ignore_ascii_case(name),
        _ => false,
    })
}

/// Creates an empty Delta table of `schema` at `url`; fails if one is there.
pub(crate) async fn create_empty_delta(
    url: &url::Url,
    schema: SchemaRef,
    target: &RelationName,
) -> Result<()> {
    // Built, not loaded: there is no table at `url` yet.
    let table = deltalake::DeltaTableBuilder::from_url(url.clone())
        .and_then(|builder| builder.build())
        .map_err(|e| Error::delta(target.to_string(), e))?;
    table
        .write(vec![RecordBatch::new_empty(schema)])
        .with_save_mode(SaveMode::ErrorIfExists)
        .with_table_name(target.name.clone())
        .await
        .map_err(|e| Error::delta(target.to_string(), e))?;
    Ok(())
}

/// An identifier as a directory name: letters, digits and `_` only (quoted identifiers may hold
/// `/` or `..`), at most 64 characters. The OID suffix keeps paths unique.
pub(crate) fn path_component(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if cleaned.is_empty() {
        "_".to_owned()
    } else {
        cleaned
    }
}

fn count_from(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .filter_map(|b| {
            let column = b.columns().first()?;
            let counts = column.as_any().downcast_ref::<UInt64Array>()?;
            Some(counts.iter().flatten().sum::<u64>())
        })
        .sum()
}

/// Local paths become absolute so the table still resolves when Basin restarts elsewhere;
/// URLs (`s3://`, `file://`) are kept as given.
fn absolute_location(location: &str) -> Result<String> {
    if location.contains("://") {
        return Ok(location.to_owned());
    }
    let trailing_slash = location.ends_with('/');
    let absolute = std::path::absolute(location)
        .map_err(|e| Error::io(format!("resolve location {location}"), e))?;
    let mut text = absolute.to_string_lossy().into_owned();
    if trailing_slash && !text.ends_with('/') {
        text.push('/');
    }
    Ok(text)
}

pub(crate) fn remove_dir_logged(path: &std::path::Path) {
    match std::fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not remove table files")
        }
    }
}
