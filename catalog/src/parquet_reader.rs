//! The Parquet reader every Basin scan uses, over DataFusion's caching reader.
//!
//! Two round trips it saves on object storage, where each costs a request's latency (tens of
//! milliseconds on S3) rather than a page-cache hit:
//!
//! * **Page indexes.** DataFusion 55's scan asks for the footer without the page index and
//!   loads the index afterwards through the reader, bypassing the metadata cache, so a scan
//!   with a page-pruning predicate fetches each file's index again in every task of every
//!   query. This reader asks for the index with the footer, so the cache keeps both.
//! * **Byte ranges of remote files.** Column chunks read from an object store are kept in a
//!   bounded per-process cache ([`REMOTE_RANGE_CACHE_BYTES`], least recently used out), keyed
//!   by the object's path, size, modification time and ETag as the scan listed them plus the
//!   exact range, so a rewritten object never mixes with cached bytes of its old version.
//!   Local files are left to the operating system's page cache.

use std::ops::Range;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetFileReaderFactory;
use datafusion::error::Result;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};

/// Bytes of remote column chunks kept per process.
pub const REMOTE_RANGE_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// One cached range: the object's identity as listed, and the byte range.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RangeKey {
    location: String,
    size: u64,
    modified_ms: i64,
    e_tag: Option<String>,
    range: Range<u64>,
}

static RANGES: LazyLock<moka::sync::Cache<RangeKey, Bytes>> = LazyLock::new(|| {
    moka::sync::Cache::builder()
        .max_capacity(REMOTE_RANGE_CACHE_BYTES)
        .weigher(|_, bytes: &Bytes| u32::try_from(bytes.len()).unwrap_or(u32::MAX))
        .build()
});

/// Wraps another factory (DataFusion's caching one) for one scan.
#[derive(Debug)]
pub struct BasinParquetReaderFactory {
    inner: Arc<dyn ParquetFileReaderFactory>,
    /// Whether the scan's files live in an object store (not on local disk).
    remote: bool,
}

impl BasinParquetReaderFactory {
    pub fn new(inner: Arc<dyn ParquetFileReaderFactory>, remote: bool) -> Self {
        Self { inner, remote }
    }
}

impl ParquetFileReaderFactory for BasinParquetReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        partitioned_file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let meta = &partitioned_file.object_meta;
        let identity = self.remote.then(|| RangeKey {
            location: meta.location.to_string(),
            size: meta.size,
            modified_ms: meta.last_modified.timestamp_millis(),
            e_tag: meta.e_tag.clone(),
            range: 0..0,
        });
        let inner = self.inner.create_reader(
            partition_index,
            partitioned_file,
            metadata_size_hint,
            metrics,
        )?;
        Ok(Box::new(BasinParquetReader { inner, identity }))
    }
}

struct BasinParquetReader {
    inner: Box<dyn AsyncFileReader + Send>,
    /// The object's identity (with an empty range) when its ranges are cached.
    identity: Option<RangeKey>,
}

impl BasinParquetReader {
    fn key(&self, range: &Range<u64>) -> Option<RangeKey> {
        self.identity.as_ref().map(|identity| RangeKey {
            range: range.clone(),
            ..identity.clone()
        })
    }
}

impl AsyncFileReader for BasinParquetReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        let key = self.key(&range);
        if let Some(bytes) = key.as_ref().and_then(|k| RANGES.get(k)) {
            return futures::future::ready(Ok(bytes)).boxed();
        }
        async move {
            let bytes = self.inner.get_bytes(range).await?;
            if let Some(key) = key {
                RANGES.insert(key, bytes.clone());
            }
            Ok(bytes)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        if self.identity.is_none() {
            return self.inner.get_byte_ranges(ranges);
        }
        async move {
            let keys: Vec<Option<RangeKey>> = ranges.iter().map(|r| self.key(r)).collect();
            let mut found: Vec<Option<Bytes>> = keys
                .iter()
                .map(|k| k.as_ref().and_then(|k| RANGES.get(k)))
                .collect();
            let missing: Vec<Range<u64>> = ranges
                .iter()
                .zip(&found)
                .filter(|(_, hit)| hit.is_none())
                .map(|(r, _)| r.clone())
                .collect();
            if !missing.is_empty() {
                // One call for every miss, so the store still coalesces neighbouring ranges.
                let mut fetched = self.inner.get_byte_ranges(missing).await?.into_iter();
                for (slot, key) in found.iter_mut().zip(&keys) {
                    if slot.is_none() {
                        let bytes = fetched.next().ok_or_else(|| {
                            parquet::errors::ParquetError::General(
                                "object store returned fewer ranges than asked".to_owned(),
                            )
                        })?;
                        if let Some(key) = key {
                            RANGES.insert(key.clone(), bytes.clone());
                        }
                        *slot = Some(bytes);
                    }
                }
            }
            Ok(found.into_iter().flatten().collect())
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let options = options
                .cloned()
                .unwrap_or_default()
                .with_page_index_policy(PageIndexPolicy::Optional);
            let metadata = self.inner.get_metadata(Some(&options)).await?;
            crate::parquet_footer_check::check_footer(&metadata)?;
            Ok(metadata)
        }
        .boxed()
    }
}
