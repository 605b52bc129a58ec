//! Turns catalog entries into DataFusion `TableProvider`s: lake files through DataFusion's
//! listing tables, Basin-managed tables through Delta Lake, views by planning their SQL.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::catalog::TableProviderFactory;
use datafusion::common::{DFSchema, TableReference};
use datafusion::datasource::TableProvider;
use datafusion::datasource::listing_table_factory::ListingTableFactory;
use datafusion::datasource::view::ViewTable;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::CreateExternalTable;
use url::Url;

use crate::delta_files::{DataFile, DeltaFilesTable};
use crate::error::{Error, Result};
use crate::model::{ColumnEntry, FileFormat, RelationEntry, RelationKind};

/// Builds the provider that reads `entry`. `state` plans views and resolves file formats.
pub(crate) async fn open_relation(
    entry: &RelationEntry,
    lake_root: &Url,
    state: &SessionState,
) -> DfResult<Arc<dyn TableProvider>> {
    match &entry.kind {
        RelationKind::External {
            location,
            format,
            partition_columns,
            options,
        } => {
            let cmd = external_table_command(
                &entry.name,
                location,
                *format,
                partition_columns,
                options
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                Some(&entry.columns),
            )?;
            ListingTableFactory::new().create(state, &cmd).await
        }
        RelationKind::Managed { path } => {
            let url = managed_table_url(lake_root, path)?;
            open_delta(&url, &entry.name, &entry.columns)
                .await
                .map_err(DataFusionError::from)
        }
        RelationKind::MaterializedView(_) => Err(DataFusionError::Internal(format!(
            "materialized view \"{}\" is read through the catalog's epochs",
            entry.name
        ))),
        RelationKind::Stream(_) => Err(DataFusionError::Internal(format!(
            "streaming table \"{}\" is opened through the catalog's stream registry",
            entry.name
        ))),
        RelationKind::View {
            sql,
            default_schema,
        } => {
            let mut state = state.clone();
            if let Some(schema) = default_schema {
                state.config_mut().options_mut().catalog.default_schema = schema.clone();
            }
            let plan = state.create_logical_plan(sql).await?;
            Ok(Arc::new(ViewTable::new(plan, Some(sql.clone()))))
        }
    }
}

/// Opens a Delta table at its latest version: scans read its active Parquet files directly (so
/// the plan ships to executors), inserts commit through deltalake. `declared` are the columns
/// the catalog recorded: encoded columns get their declared types back (`delta_types`).
pub(crate) async fn open_delta(
    url: &Url,
    name: &str,
    declared: &[ColumnEntry],
) -> Result<Arc<dyn TableProvider>> {
    let table = deltalake::open_table(url.clone())
        .await
        .map_err(|e| Error::delta(name, e))?;
    let files = active_files(&table, url).map_err(|e| Error::delta(name, e))?;
    let writer = table
        .table_provider()
        .await
        .map_err(|e| Error::DataFusion(e.context(format!("open delta table \"{name}\""))))?;
    let schema = crate::delta_types::logical_schema(&writer.schema(), declared);
    let provider = DeltaFilesTable::new(url, schema, files, writer, table, name)?;
    Ok(Arc::new(provider))
}

/// The active data files of `table` (at `url`) in its loaded snapshot.
pub(crate) fn active_files(
    table: &deltalake::DeltaTable,
    url: &Url,
) -> Result<Vec<DataFile>, deltalake::DeltaTableError> {
    let base = object_store::path::Path::from_url_path(url.path())
        .map_err(|e| deltalake::DeltaTableError::Generic(format!("table URL {url}: {e}")))?;
    let state = table.snapshot()?;
    let schema: arrow::datatypes::SchemaRef = state.snapshot().arrow_schema();
    Ok(state
        .snapshot()
        .try_log_data()?
        .iter()
        .map(|file| {
            let relative = file.object_store_path();
            let size = u64::try_from(file.size()).unwrap_or(0);
            DataFile {
                path: base.parts().chain(relative.parts()).collect(),
                size,
                rows: file.num_records(),
                statistics: crate::delta_stats::file_statistics(
                    &schema,
                    file.stats().as_deref(),
                    size,
                ),
            }
        })
        .collect())
}

/// The file URL of a managed table from its path relative to the data directory.
pub(crate) fn managed_table_url(root: &Url, path: &str) -> Result<Url> {
    crate::data_url::url_under(root, path)
}

/// A DataFusion `CREATE EXTERNAL TABLE` command for a lake table: with `columns` it replays a
/// stored definition; without, DataFusion infers the schema from the files.
pub(crate) fn external_table_command(
    name: &str,
    location: &str,
    format: FileFormat,
    partition_columns: &[String],
    options: HashMap<String, String>,
    columns: Option<&[ColumnEntry]>,
) -> DfResult<CreateExternalTable> {
    let schema = match columns {
        Some(columns) => DFSchema::try_from(crate::model::schema_of(columns))?,
        None => DFSchema::empty(),
    };
    Ok(CreateExternalTable::builder(
        TableReference::bare(name),
        location.to_owned(),
        format.as_str().to_uppercase(),
        Arc::new(schema),
    )
    .with_partition_cols(partition_columns.to_vec())
    .with_options(
        options
            .into_iter()
            .filter(|(key, _)| !crate::object_stores::is_store_option(key))
            .collect(),
    )
    .build())
}

/// Columns of a provider, as the catalog stores them.
pub(crate) fn columns_of(provider: &dyn TableProvider) -> Vec<ColumnEntry> {
    crate::model::columns_of(&provider.schema())
}
