//! The plan-fragment worker: datafusion-distributed's `Worker` behind one facade, so its types
//! stay in this file. Fragments run in sessions built by `basin_catalog::session` over this
//! executor's runtime: a fair spilling memory pool of the configured size and a spill directory.

use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;

use basin_catalog::parquet_cache::cache_parquet_metadata;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion_distributed::{
    DistributedExt, Worker, WorkerPlanRewriteEvent, WorkerPlanRewriteEventResponse,
    WorkerQueryContext,
};

use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;

use crate::object_stores::StoreSync;
use crate::state::ExecutorState;
use crate::task_gate::TaskGate;
use crate::{Error, Result};

/// The executor's DataFusion runtime: `memory_limit_bytes` shared fairly among spilling
/// operators (sorts, aggregates, joins), spill files under `spill_dir` (or the OS temp dir).
pub(crate) fn runtime(
    memory_limit_bytes: u64,
    spill_dir: Option<PathBuf>,
    object_stores: Arc<basin_catalog::object_stores::ObjectStores>,
) -> Result<Arc<RuntimeEnv>> {
    let limit = usize::try_from(memory_limit_bytes).unwrap_or(usize::MAX);
    // Naming the largest consumers makes "resources exhausted" errors actionable.
    let top = NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN);
    let pool = TrackConsumersPool::new(FairSpillPool::new(limit), top);
    let mode = match spill_dir {
        Some(dir) => DiskManagerMode::Directories(vec![dir]),
        None => DiskManagerMode::OsTmpDirectory,
    };
    RuntimeEnvBuilder::new()
        .with_object_store_registry(object_stores)
        .with_cache_manager(basin_catalog::parquet_cache::cache_config())
        .with_memory_pool(Arc::new(pool))
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode))
        .build_arc()
        .map_err(|err| Error::Config(format!("cannot set up the executor runtime: {err}")))
}

/// The gRPC service that receives and runs plan fragments, wrapped so each task counts as
/// running and a draining executor refuses new ones.
pub(crate) fn server(
    runtime: Arc<RuntimeEnv>,
    store_sync: Arc<StoreSync>,
    state: Arc<ExecutorState>,
) -> TaskGate<
    impl Service<
        http::Request<Body>,
        Response = http::Response<Body>,
        Error = Infallible,
        Future: Send + 'static,
    > + NamedService
    + Clone
    + Send
    + Sync
    + 'static,
> {
    let worker = Worker::from_session_builder(move |ctx: WorkerQueryContext| {
        let store_sync = Arc::clone(&store_sync);
        async move { build_fragment_session(ctx, &store_sync).await }
    })
    .with_runtime_env(runtime)
    .with_version(basin_proto::BUILD_VERSION);
    TaskGate::new(worker.into_worker_server(), state)
}

/// The session a fragment runs in; first brings the object-store settings up to the version
/// the fragment's scans need.
async fn build_fragment_session(
    ctx: WorkerQueryContext,
    store_sync: &StoreSync,
) -> std::result::Result<SessionState, DataFusionError> {
    store_sync.ensure(&ctx.headers).await?;
    let mut builder = ctx.builder;
    // Scans decoded here come without a caching Parquet reader: give them the runtime's.
    if let Some(runtime) = builder.runtime_env().clone() {
        builder = builder.with_distributed_worker_plan_rewrite_handler(
            move |event: WorkerPlanRewriteEvent<'_>| {
                cache_parquet_metadata(event.plan, &runtime)
                    .map(WorkerPlanRewriteEventResponse::new)
            },
        );
    }
    Ok(basin_catalog::session::fragment_session_state(builder))
}
