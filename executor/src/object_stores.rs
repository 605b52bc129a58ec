//! Keeps the executor's object-store registry (S3 endpoints and credentials for lake scans) in
//! step with the coordinator's. Fragments name the config version they need in a passthrough
//! header; before running one that needs a newer version than this executor holds, the
//! configs are fetched over the control plane, so credentials never appear on command lines or
//! in the executor's environment.

use std::sync::Arc;

use basin_catalog::object_stores::{ObjectStoreConfigs, ObjectStores};
use basin_proto::control::v1::ObjectStoresRequest;
use datafusion::error::DataFusionError;
use http::HeaderMap;

/// The executor's registry and the way to refresh it.
pub(crate) struct StoreSync {
    stores: Arc<ObjectStores>,
    client: crate::control::Control,
    executor_id: String,
    fetching: tokio::sync::Mutex<()>,
}

impl StoreSync {
    pub(crate) fn new(client: crate::control::Control, executor_id: String) -> Self {
        Self {
            stores: Arc::new(ObjectStores::unsynced()),
            client,
            executor_id,
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The registry the executor's runtime resolves `s3://` URLs with.
    pub(crate) fn stores(&self) -> &Arc<ObjectStores> {
        &self.stores
    }

    /// Makes sure the registry is at least as new as the version `headers` ask for.
    pub(crate) async fn ensure(&self, headers: &HeaderMap) -> Result<(), DataFusionError> {
        let Some(needed) = headers
            .get(basin_proto::OBJECT_STORES_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        else {
            return Ok(());
        };
        if self.stores.version() >= needed {
            return Ok(());
        }
        // One fetch at a time; tasks that queued behind it usually find it done.
        let _fetching = self.fetching.lock().await;
        if self.stores.version() >= needed {
            return Ok(());
        }
        let response = self
            .client
            .clone()
            .object_stores(ObjectStoresRequest {
                executor_id: self.executor_id.clone(),
            })
            .await
            .map_err(|status| {
                DataFusionError::Execution(format!(
                    "cannot fetch object-store settings from the coordinator: {}",
                    status.message()
                ))
            })?
            .into_inner();
        if !response.known {
            return Err(DataFusionError::Execution(
                "the coordinator does not know this executor (yet); object-store settings \
                 are only given to registered executors"
                    .to_owned(),
            ));
        }
        let configs = ObjectStoreConfigs::from_proto(response);
        let got = configs.version;
        self.stores.install(configs);
        if got < needed {
            return Err(DataFusionError::Execution(format!(
                "object-store settings version {needed} was asked for but the coordinator \
                 gave version {got}"
            )));
        }
        tracing::debug!(version = got, "object-store settings updated");
        Ok(())
    }
}
