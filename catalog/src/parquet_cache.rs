//! Parquet footers and page indexes read once per file, not once per task.
//!
//! DataFusion's listing tables read Parquet through a reader that keeps each file's metadata in
//! the runtime's metadata cache, but scans decoded on executors (and Basin's own Delta scans)
//! come without one and fetch the footer again in every task, which on object storage is a
//! round trip per file per task. [`cache_parquet_metadata`] gives every Parquet scan of a plan
//! the caching reader over the runtime's cache (wrapped in Basin's, which also keeps page
//! indexes and remote byte ranges), and [`cache_config`] sizes the runtime caches.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::physical_plan::parquet::{
    CachedParquetFileReaderFactory, ParquetFileReaderFactory,
};
use datafusion::datasource::physical_plan::{FileScanConfig, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::cache::cache_manager::{CacheManager, CacheManagerConfig};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_plan::ExecutionPlan;

use crate::parquet_reader::BasinParquetReaderFactory;

/// How long a directory listing of a lake table is reused. New files show up within this
/// long; DataFusion's default keeps listings forever, which hides files added to a lake.
pub const LIST_FILES_TTL: Duration = Duration::from_secs(5);

/// Footer and page-index cache per process.
pub const METADATA_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// The cache settings every runtime uses: one set of caches per process, shared by every
/// runtime in it. Planning opens a table provider per statement over a short-lived runtime, so
/// caches owned by that runtime would start empty each time and every query would list the
/// table and read each file's footer again (a HEAD and a ranged GET per file on S3) just to
/// collect statistics.
pub fn cache_config() -> CacheManagerConfig {
    static SHARED: OnceLock<Option<Arc<CacheManager>>> = OnceLock::new();
    let config = CacheManagerConfig::default()
        .with_list_files_cache_ttl(Some(LIST_FILES_TTL))
        .with_metadata_cache_limit(METADATA_CACHE_BYTES);
    match SHARED.get_or_init(|| CacheManager::try_new(&config).ok()) {
        Some(shared) => config
            .with_file_statistics_cache(shared.get_file_statistic_cache())
            .with_list_files_cache(shared.get_list_files_cache())
            .with_file_metadata_cache(Some(shared.get_file_metadata_cache())),
        None => config,
    }
}

/// `plan` with every Parquet scan reading through Basin's reader (see
/// [`crate::parquet_reader`]) over the metadata cache of `runtime` (or over the caching reader
/// the scan already has).
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
        let inner: Arc<dyn ParquetFileReaderFactory> = match source.parquet_file_reader_factory() {
            // The trait has no `as_any`; the derived Debug names the type.
            Some(factory) if format!("{factory:?}").starts_with("BasinParquetReaderFactory") => {
                return Ok(Transformed::no(node));
            }
            Some(factory) => Arc::clone(factory),
            None => Arc::new(CachedParquetFileReaderFactory::new(
                runtime.object_store(&config.object_store_url)?,
                runtime.cache_manager.get_file_metadata_cache(),
            )),
        };
        let remote = !config.object_store_url.as_str().starts_with("file://");
        let factory = Arc::new(BasinParquetReaderFactory::new(inner, remote));
        let source = source.clone().with_parquet_file_reader_factory(factory);
        let mut config = config.clone();
        config.file_source = Arc::new(source);
        Ok(Transformed::yes(
            DataSourceExec::from_data_source(config) as Arc<dyn ExecutionPlan>
        ))
    })
    .map(|t| t.data)
}
