//! Parquet footers and page indexes read once per file, not once per task.
//!
//! DataFusion's listing tables read Parquet through a reader that keeps each file's metadata in
//! the runtime's metadata cache, but scans decoded on executors (and Basin's own Delta scans)
//! come without one and fetch the footer again in every task, which on object storage is a
//! round trip per file per task. [`cache_parquet_metadata`] gives every Parquet scan of a plan
//! the caching reader over the runtime's cache, and [`cache_config`] sizes the runtime caches.

use std::sync::Arc;
use std::time::Duration;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileScanConfig, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_plan::ExecutionPlan;

/// How long a directory listing of a lake table is reused. New files show up within this
/// long; DataFusion's default keeps listings forever, which hides files added to a lake.
pub const LIST_FILES_TTL: Duration = Duration::from_secs(5);

/// Footer and page-index cache per process.
pub const METADATA_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// The cache settings every runtime uses.
pub fn cache_config() -> CacheManagerConfig {
    CacheManagerConfig::default()
        .with_list_files_cache_ttl(Some(LIST_FILES_TTL))
        .with_metadata_cache_limit(METADATA_CACHE_BYTES)
}

/// `plan` with every Parquet scan that has no reader of its own reading through the metadata
/// cache of `runtime`.
pub fn cache_parquet_metadata(
    plan: Arc<dyn ExecutionPlan>,
    runtime: &RuntimeEnv,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(config) = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|scan| scan.data_source().downcast_ref::<FileScanConfig>())
        else {
            return Ok(Transformed::no(node));
        };
        let Some(source) = config.file_source().downcast_ref::<ParquetSource>() else {
            return Ok(Transformed::no(node));
        };
        if source.parquet_file_reader_factory().is_some() {
            return Ok(Transformed::no(node));
        }
        let store = runtime.object_store(&config.object_store_url)?;
        let factory = Arc::new(CachedParquetFileReaderFactory::new(
            store,
            runtime.cache_manager.get_file_metadata_cache(),
        ));
        let source = source.clone().with_parquet_file_reader_factory(factory);
        let mut config = config.clone();
        config.file_source = Arc::new(source);
        Ok(Transformed::yes(
            DataSourceExec::from_data_source(config) as Arc<dyn ExecutionPlan>
        ))
    })
    .map(|t| t.data)
}
