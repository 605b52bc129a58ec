//! Checkpoints under the `--data-url` bucket prefix: every state object is put first (a PUT
//! that returned is durable), then the manifest object is overwritten in one PUT, which S3
//! makes visible atomically, so a reader sees either the old checkpoint or the whole new one.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::MANIFEST;
use crate::error::{Error, Result};

pub(super) fn epoch_dir(root: &Path, epoch: u64) -> Path {
    root.clone().join("checkpoints").join(epoch.to_string())
}

fn failed(url: &str, what: &str, error: object_store::Error) -> Error {
    tracing::warn!(%url, %error, "{what} failed");
    Error::DataFusion(datafusion::error::DataFusionError::ObjectStore(Box::new(
        error,
    )))
}

/// The bytes of `location`, or `None` if there is no such object.
pub(super) async fn read(
    store: &Arc<dyn ObjectStore>,
    location: &Path,
    url: &str,
) -> Result<Option<Vec<u8>>> {
    match store.get(location).await {
        Ok(result) => match result.bytes().await {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(error) => Err(failed(url, "reading a checkpoint", error)),
        },
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(failed(url, "reading a checkpoint", error)),
    }
}

pub(super) async fn write(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    url: &str,
    epoch: u64,
    files: Vec<(String, Vec<u8>)>,
    manifest: Vec<u8>,
) -> Result<()> {
    let dir = epoch_dir(root, epoch);
    let puts = files.into_iter().map(|(name, bytes)| {
        let location = dir.clone().join(name);
        async move { store.put(&location, PutPayload::from(bytes)).await }
    });
    futures::stream::iter(puts)
        .buffer_unordered(4)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| failed(url, "writing a checkpoint", e))?;
    store
        .put(&root.clone().join(MANIFEST), PutPayload::from(manifest))
        .await
        .map_err(|e| failed(url, "writing a checkpoint manifest", e))?;
    remove_older(store, root, url, epoch).await;
    Ok(())
}

/// Removes the objects of checkpoints older than `epoch` (best effort: leftovers are
/// harmless and go with the next checkpoint).
async fn remove_older(store: &Arc<dyn ObjectStore>, root: &Path, url: &str, epoch: u64) {
    let parent = root.clone().join("checkpoints");
    let listed = parent.clone();
    let older = store
        .list(Some(&parent))
        .try_filter(move |meta| {
            let epoch_of = meta
                .location
                .prefix_match(&listed)
                .and_then(|mut parts| parts.next())
                .and_then(|part| part.as_ref().parse::<u64>().ok());
            futures::future::ready(epoch_of.is_some_and(|e| e < epoch))
        })
        .map_ok(|meta| meta.location)
        .boxed();
    if let Err(error) = store.delete_stream(older).try_collect::<Vec<_>>().await {
        tracing::warn!(%url, %error, "could not remove an old checkpoint");
    }
}
