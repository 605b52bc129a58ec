//! Object metadata of lake data files kept for a few seconds, so a query does not send a HEAD
//! per file per planning step.
//!
//! DataFusion lists a directory-backed table through its listing cache, but a table whose
//! location names one object is checked with a HEAD on every step that lists it (creating the
//! provider, collecting statistics, planning the scan): three round trips per table per query,
//! each 10–30 ms on S3. [`HeadCachingStore`] answers repeated HEADs of data files (`.parquet`,
//! `.csv`, `.json`, ...) from memory for [`HEAD_TTL`], the same staleness DataFusion's listing
//! cache allows for directories. Anything else, in particular Delta's `_delta_log/` whose
//! commits depend on seeing the latest objects, always goes to the store, and every write,
//! copy, rename or delete through this client forgets the paths it touches.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    Attributes, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    Result,
};

/// How long a HEAD answer of a data file is reused (matches the listing cache's TTL).
pub(crate) const HEAD_TTL: Duration = crate::parquet_cache::LIST_FILES_TTL;

/// Most object metadata entries kept per store.
const HEAD_CACHE_ENTRIES: u64 = 100_000;

/// File name endings of lake data files, which are written once and replaced, not edited.
const DATA_FILE_SUFFIXES: &[&str] = &[
    ".parquet", ".csv", ".json", ".ndjson", ".jsonl", ".avro", ".arrow", ".gz", ".zst",
];

/// Whether HEADs of `location` may be answered from the cache.
fn cacheable(location: &Path) -> bool {
    let path = location.as_ref();
    !path.contains("_delta_log") && DATA_FILE_SUFFIXES.iter().any(|s| path.ends_with(s))
}

/// Whether a HEAD request asks for nothing but the current metadata.
fn plain_head(options: &GetOptions) -> bool {
    options.head
        && options.range.is_none()
        && options.version.is_none()
        && options.if_match.is_none()
        && options.if_none_match.is_none()
        && options.if_modified_since.is_none()
        && options.if_unmodified_since.is_none()
}

/// An object store whose HEADs of data files are cached; see the module docs.
pub(crate) struct HeadCachingStore {
    inner: Arc<dyn ObjectStore>,
    heads: moka::sync::Cache<Path, (ObjectMeta, Attributes)>,
}

impl HeadCachingStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            heads: moka::sync::Cache::builder()
                .max_capacity(HEAD_CACHE_ENTRIES)
                .time_to_live(HEAD_TTL)
                .build(),
        }
    }

    fn forget(&self, location: &Path) {
        self.heads.invalidate(location);
    }
}

impl fmt::Display for HeadCachingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeadCaching({})", self.inner)
    }
}

impl fmt::Debug for HeadCachingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeadCachingStore({:?})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for HeadCachingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.forget(location);
        let result = self.inner.put_opts(location, payload, opts).await;
        self.forget(location);
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        // The upload completes later; entries live at most HEAD_TTL.
        self.forget(location);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if !(plain_head(&options) && cacheable(location)) {
            return self.inner.get_opts(location, options).await;
        }
        if let Some((meta, attributes)) = self.heads.get(location) {
            return Ok(GetResult {
                payload: GetResultPayload::Stream(futures::stream::empty().boxed()),
                range: 0..meta.size,
                meta,
                attributes,
            });
        }
        let result = self.inner.get_opts(location, options).await?;
        self.heads.insert(
            location.clone(),
            (result.meta.clone(), result.attributes.clone()),
        );
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let heads = self.heads.clone();
        let locations = locations
            .map(move |location| {
                if let Ok(path) = &location {
                    heads.invalidate(path);
                }
                location
            })
            .boxed();
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.forget(to);
        let result = self.inner.copy_opts(from, to, options).await;
        self.forget(to);
        result
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.forget(from);
        self.forget(to);
        let result = self.inner.rename_opts(from, to, options).await;
        self.forget(from);
        self.forget(to);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn data_file_heads_are_reused_until_written() {
        let inner = Arc::new(InMemory::new());
        let store = HeadCachingStore::new(Arc::clone(&inner) as Arc<dyn ObjectStore>);
        let file = Path::from("lake/part-0.parquet");
        store
            .put(&file, PutPayload::from_static(b"abc"))
            .await
            .expect("put");
        assert_eq!(store.head(&file).await.expect("head").size, 3);
        // Changed behind the cache's back: the cached answer stands for the TTL ...
        inner
            .put(&file, PutPayload::from_static(b"abcdef"))
            .await
            .expect("put");
        assert_eq!(store.head(&file).await.expect("head").size, 3);
        // ... but a write through the store is seen at once.
        store
            .put(&file, PutPayload::from_static(b"abcdefgh"))
            .await
            .expect("put");
        assert_eq!(store.head(&file).await.expect("head").size, 8);
        store.delete(&file).await.expect("delete");
        assert!(store.head(&file).await.is_err());
    }

    #[tokio::test]
    async fn delta_log_and_other_objects_always_reach_the_store() {
        let inner = Arc::new(InMemory::new());
        let store = HeadCachingStore::new(Arc::clone(&inner) as Arc<dyn ObjectStore>);
        for name in ["t/_delta_log/00000000000000000000.json", "t/checkpoint"] {
            let path = Path::from(name);
            inner
                .put(&path, PutPayload::from_static(b"a"))
                .await
                .expect("put");
            assert_eq!(store.head(&path).await.expect("head").size, 1);
            inner
                .put(&path, PutPayload::from_static(b"ab"))
                .await
                .expect("put");
            assert_eq!(store.head(&path).await.expect("head").size, 2, "{name}");
        }
    }
}
