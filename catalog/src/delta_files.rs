//! Reads a Basin-managed Delta table as the plain Parquet files its log lists.
//!
//! deltalake 1.1 plans scans as its own `DeltaScanExec`, which has no physical codec, so such a
//! plan cannot be shipped to executors. Basin writes its managed tables itself (no deletion
//! vectors, no column mapping), so the active files of a snapshot are exactly the table: this
//! provider turns them into DataFusion's own `DataSourceExec` over Parquet, which every executor
//! decodes and which the distributed planner splits across tasks. Writes still go through
//! deltalake's provider, so commits keep Delta's protocol.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::{DFSchema, Statistics};
use datafusion::config::TableParquetOptions;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use object_store::ObjectMeta;
use object_store::path::Path as StorePath;
use url::Url;

use crate::delta_dml::Change;

/// One active data file of a snapshot.
#[derive(Debug, Clone)]
pub(crate) struct DataFile {
    /// Path inside the object store named by [`DeltaFilesTable::store_url`].
    pub(crate) path: StorePath,
    pub(crate) size: u64,
    pub(crate) rows: Option<usize>,
    /// Per-column bounds from the Delta log, for skipping the file without opening it.
    pub(crate) statistics: Option<Arc<Statistics>>,
}

/// A managed table at one Delta version: scans read its files directly, inserts go to Delta.
#[derive(Debug)]
pub(crate) struct DeltaFilesTable {
    /// The columns as SQL sees them; encoded columns (`delta_types`) differ from the files'.
    schema: SchemaRef,
    store_url: ObjectStoreUrl,
    files: Vec<DataFile>,
    /// deltalake's own provider, kept for `INSERT`.
    writer: Arc<dyn TableProvider>,
    /// The table at this version, for `DELETE`, `UPDATE` and `TRUNCATE` (`delta_dml`).
    table: deltalake::DeltaTable,
    /// The table's SQL name, for errors.
    name: String,
}

impl DeltaFilesTable {
    /// `files` carry bounds in the stored types; an encoded column's are turned into the
    /// declared type's (or dropped) here, as the scan casts its values.
    pub(crate) fn new(
        table_url: &Url,
        schema: SchemaRef,
        mut files: Vec<DataFile>,
        writer: Arc<dyn TableProvider>,
        table: deltalake::DeltaTable,
        name: &str,
    ) -> DfResult<Self> {
        let encoded = crate::delta_types::encoded_columns(&schema, &writer.schema());
        if !encoded.is_empty() {
            for stats in files.iter_mut().filter_map(|f| f.statistics.as_mut()) {
                crate::delta_types::declared_bounds(Arc::make_mut(stats), &schema, &encoded);
            }
        }
        Ok(Self {
            schema,
            store_url: store_url_of(table_url)?,
            files,
            writer,
            table,
            name: name.to_owned(),
        })
    }

    fn statistics(&self) -> Statistics {
        files_statistics(&self.schema, &self.files)
    }
}

/// The object store a table URL lives in: `file:///` for local tables, `s3://bucket` for S3.
pub(crate) fn store_url_of(table_url: &Url) -> DfResult<ObjectStoreUrl> {
    let authority = &table_url[url::Position::BeforeHost..url::Position::AfterPort];
    ObjectStoreUrl::parse(format!("{}://{authority}", table_url.scheme()))
}

#[async_trait]
impl TableProvider for DeltaFilesTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Parquet prunes row groups and pages with them; the filter stays above the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    fn statistics(&self) -> Option<Statistics> {
        Some(DeltaFilesTable::statistics(self))
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        scan_files(
            state,
            &self.schema,
            &self.store_url,
            &self.files,
            projection,
            filters,
            limit,
        )
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let input = crate::delta_types::to_storage(input, &self.writer.schema())?;
        self.writer.insert_into(state, input, insert_op).await
    }

    async fn delete_from(
        &self,
        _state: &dyn Session,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.change(Change::Delete { filters })
    }

    async fn update(
        &self,
        _state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.change(Change::Update {
            assignments,
            filters,
        })
    }

    async fn truncate(&self, _state: &dyn Session) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.change(Change::Delete {
            filters: Vec::new(),
        })
    }
}

impl DeltaFilesTable {
    fn change(&self, change: Change) -> DfResult<Arc<dyn ExecutionPlan>> {
        crate::delta_dml::plan(
            &self.name,
            self.table.clone(),
            &self.schema,
            &self.writer.schema(),
            change,
        )
    }
}

/// A scan's pushed-down `filters` over a table of schema `schema`, as one physical predicate
/// (`None` without filters): what Parquet row groups and log batches are pruned with.
pub(crate) fn scan_predicate(
    state: &dyn Session,
    schema: &SchemaRef,
    filters: &[Expr],
) -> DfResult<Option<Arc<dyn PhysicalExpr>>> {
    let Some(filter) = conjunction(filters.iter().cloned()) else {
        return Ok(None);
    };
    let df_schema = DFSchema::try_from(Arc::clone(schema))?;
    Ok(Some(state.create_physical_expr(filter, &df_schema)?))
}

/// A Parquet scan of `files` (all of schema `schema`) as DataFusion's own `DataSourceExec`,
/// with `filters` pushed down for row-group and page pruning.
pub(crate) fn scan_files(
    state: &dyn Session,
    schema: &SchemaRef,
    store_url: &ObjectStoreUrl,
    files: &[DataFile],
    projection: Option<&Vec<usize>>,
    filters: &[Expr],
    limit: Option<usize>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    if files.is_empty() {
        let schema = match projection {
            Some(indices) => Arc::new(schema.project(indices)?),
            None => Arc::clone(schema),
        };
        return Ok(Arc::new(EmptyExec::new(schema)));
    }
    let mut source =
        ParquetSource::new(Arc::clone(schema)).with_table_parquet_options(TableParquetOptions {
            global: state.config_options().execution.parquet.clone(),
            ..TableParquetOptions::default()
        });
    if let Some(predicate) = scan_predicate(state, schema, filters)? {
        source = source.with_predicate(predicate);
    }
    let partitioned: Vec<PartitionedFile> = files
        .iter()
        .map(|f| {
            // From the store path itself: re-parsing its string would encode it twice.
            let file = PartitionedFile::new_from_meta(ObjectMeta {
                location: f.path.clone(),
                last_modified: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                size: f.size,
                e_tag: None,
                version: None,
            });
            match &f.statistics {
                Some(stats) => file.with_statistics(Arc::clone(stats)),
                None => file,
            }
        })
        .collect();
    // One group per core at most; the physical optimizer splits large files further.
    let groups = split_round_robin(
        partitioned,
        state.config_options().execution.target_partitions,
    );
    let config = FileScanConfigBuilder::new(store_url.clone(), Arc::new(source))
        .with_file_groups(groups)
        .with_projection_indices(projection.cloned())?
        .with_limit(limit)
        .with_statistics(files_statistics(schema, files))
        .build();
    crate::parquet_cache::cache_parquet_metadata(
        DataSourceExec::from_data_source(config),
        state.runtime_env(),
    )
}

/// Row count and size of `files`, as the planner's statistics.
pub(crate) fn files_statistics(schema: &SchemaRef, files: &[DataFile]) -> Statistics {
    let mut stats = Statistics::new_unknown(schema);
    let rows: Option<usize> = files.iter().map(|f| f.rows).sum();
    stats.num_rows = rows.map_or(Precision::Absent, Precision::Exact);
    stats.total_byte_size = Precision::Inexact(files.iter().map(|f| f.size as usize).sum());
    stats
}

fn split_round_robin(files: Vec<PartitionedFile>, groups: usize) -> Vec<FileGroup> {
    let groups = groups.clamp(1, files.len().max(1));
    let mut out: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups];
    for (i, file) in files.into_iter().enumerate() {
        out[i % groups].push(file);
    }
    out.into_iter()
        .filter(|g| !g.is_empty())
        .map(FileGroup::new)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        let local = Url::parse("file:///data/tables/t_1/").expect("url");
        assert_eq!(store_url_of(&local).expect("store").as_str(), "file:///");
        let s3 = Url::parse("s3://bucket/lake/t/").expect("url");
        assert_eq!(store_url_of(&s3).expect("store").as_str(), "s3://bucket/");
    }

    #[test]
    fn splits_files_evenly() {
        let files: Vec<_> = (0..5)
            .map(|i| PartitionedFile::new(format!("f{i}"), 10))
            .collect();
        let groups = split_round_robin(files, 2);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].len(), 3);
        assert_eq!(split_round_robin(Vec::new(), 4).len(), 0);
    }
}
