//! `basin-executor`: the worker role of a Basin cluster.
//!
//! An executor registers with the coordinator's control plane, heartbeats, and serves its own
//! gRPC API: `Ping`, the plan fragments the coordinator's distributed planner sends it, run
//! under a spilling memory pool, and, with a data directory, streaming-table shards. On shutdown it drains: takes no new tasks, finishes what runs,
//! deregisters.
//!
//! Entry point: [`run`] with an [`ExecutorConfig`] built by the `basin` binary.
//!
//! Depends on `basin-proto` and `basin-catalog`; never on `basin-coordinator`
//! (`scripts/check-deps.sh` enforces it).

mod config;
mod control;
mod error;
pub mod memory;
mod object_stores;
mod service;
mod shards;
mod state;
mod task_gate;
mod worker;

use std::sync::Arc;

use basin_proto::control::v1::RegisterRequest;
use basin_proto::{BUILD_VERSION, ExecutorId, PROTOCOL_VERSION};
use tokio::net::TcpListener;
use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span};

pub use crate::config::ExecutorConfig;
pub use crate::error::{Error, ErrorClass, Result};

use crate::control::ControlClient;
use crate::state::ExecutorState;

/// Runs an executor until `shutdown` is cancelled, then drains and deregisters.
///
/// Waits (retrying with backoff) for the coordinator to come up. Fails fast on configuration
/// errors, when the listen address cannot be bound, and when the coordinator refuses the
/// executor, e.g. because their protocol versions differ.
pub async fn run(config: ExecutorConfig, shutdown: CancellationToken) -> Result<()> {
    let id = new_executor_id();
    // Every log line of this executor names it, which matters when several share one terminal.
    let span = info_span!("executor", executor_id = %id);
    run_as(id, config, shutdown).instrument(span).await
}

async fn run_as(id: ExecutorId, config: ExecutorConfig, shutdown: CancellationToken) -> Result<()> {
    config.validate().map_err(Error::Config)?;
    let memory_limit_bytes = match config.memory_limit_bytes {
        0 => memory::default_memory_limit_bytes()?,
        bytes => bytes,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    let advertise_url = config
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("http://{local_addr}"));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    info!(
        listen = %local_addr,
        advertise_url,
        coordinator = config.coordinator_url,
        cores,
        memory_limit_bytes,
        data_dir = ?config.data_dir,
        "executor starting"
    );

    let shards = match &config.data_dir {
        Some(dir) => Some(Arc::new(shards::ShardStore::open(dir)?)),
        None => None,
    };
    let node_id = shards
        .as_ref()
        .map(|s| s.node_id().to_owned())
        .unwrap_or_default();
    let state = Arc::new(ExecutorState::new(id.clone()));
    let registration = RegisterRequest {
        protocol_version: PROTOCOL_VERSION,
        executor_id: id.clone().into_string(),
        advertise_url,
        cores: u32::try_from(cores).unwrap_or(u32::MAX),
        memory_bytes: memory_limit_bytes,
        build_version: BUILD_VERSION.to_owned(),
        node_id,
    };
    let control = ControlClient::new(
        &config.coordinator_url,
        config.cluster_secret.as_ref(),
        registration,
        Arc::clone(&state),
    )?;
    let store_sync = Arc::new(object_stores::StoreSync::new(
        control.client(),
        id.into_string(),
    ));
    let runtime = worker::runtime(
        memory_limit_bytes,
        config.spill_dir.clone(),
        Arc::clone(store_sync.stores()),
    )?;
    let server_stop = CancellationToken::new();
    let mut server = tokio::spawn(service::serve(
        listener,
        Arc::clone(&state),
        runtime,
        store_sync,
        shards,
        server_stop.clone(),
    ));

    // The control loop gets its own token so a failed server can make it deregister.
    let control_stop = shutdown.child_token();
    let control = control.run(control_stop.clone());
    tokio::pin!(control);

    let result = tokio::select! {
        result = &mut control => result,
        joined = &mut server => {
            // The server only stops when told to, so reaching here is a failure.
            let server_result = flatten(joined).and(Err(Error::Internal(
                "executor gRPC server stopped unexpectedly".to_owned(),
            )));
            control_stop.cancel();
            let _ = control.await;
            if let Err(err) = &server_result {
                error!(error = %err, "executor stopping");
            }
            return server_result;
        }
    };
    server_stop.cancel();
    let server_result = flatten(server.await);
    info!("executor stopped");
    result.and(server_result)
}

fn new_executor_id() -> ExecutorId {
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    ExecutorId::new(format!("exec-{}", &uuid[..12]))
}

fn flatten(joined: std::result::Result<Result<()>, JoinError>) -> Result<()> {
    joined.map_err(|err| Error::Internal(format!("executor gRPC server task failed: {err}")))?
}
