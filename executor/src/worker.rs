//! The plan-fragment worker: datafusion-distributed's `Worker` behind one facade, so its types
//! stay in this file. Fragments run in sessions built by `basin_catalog::session` over this
//! executor's runtime: a fair spilling memory pool of the configured size and a spill directory.

use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion_distributed::{Worker, WorkerQueryContext};

use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;

use crate::state::ExecutorState;
use crate::task_gate::TaskGate;
use crate::{Error, Result};

/// The executor's DataFusion runtime: `memory_limit_bytes` shared fairly among spilling
/// operators (sorts, aggregates, joins), spill files under `spill_dir` (or the OS temp dir).
pub(crate) fn runtime(
    memory_limit_bytes: u64,
    spill_dir: Option<PathBuf>,
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
        .with_memory_pool(Arc::new(pool))
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode))
        .build_arc()
        .map_err(|err| Error::Config(format!("cannot set up the executor runtime: {err}")))
}

/// The gRPC service that receives and runs plan fragments, wrapped so each task counts as
/// running and a draining executor refuses new ones.
pub(crate) fn server(
    runtime: Arc<RuntimeEnv>,
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
    let worker = Worker::from_session_builder(build_fragment_session)
        .with_runtime_env(runtime)
        .with_version(basin_proto::BUILD_VERSION);
    TaskGate::new(worker.into_worker_server(), state)
}

async fn build_fragment_session(
    ctx: WorkerQueryContext,
) -> std::result::Result<SessionState, DataFusionError> {
    Ok(basin_catalog::session::fragment_session_state(ctx.builder))
}
