//! The executor's gRPC server: our `Ping`, the plan-fragment worker and the shard service, on
//! one port.

use std::sync::Arc;

use basin_proto::PROTOCOL_VERSION;
use basin_proto::executor::v1::executor_service_server::{ExecutorService, ExecutorServiceServer};
use basin_proto::executor::v1::{PingRequest, PingResponse};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::state::ExecutorState;
use crate::worker;
use crate::{Error, Result};
use datafusion::execution::runtime_env::RuntimeEnv;

struct ExecutorGrpc {
    state: Arc<ExecutorState>,
}

#[tonic::async_trait]
impl ExecutorService for ExecutorGrpc {
    async fn ping(&self, _request: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        Ok(Response::new(PingResponse {
            executor_id: self.state.id().to_string(),
            protocol_version: PROTOCOL_VERSION,
            draining: self.state.is_draining(),
            running_tasks: self.state.running_tasks(),
        }))
    }
}

/// Serves the executor's gRPC API on `listener` until `shutdown` is cancelled.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<ExecutorState>,
    runtime: Arc<RuntimeEnv>,
    store_sync: Arc<crate::object_stores::StoreSync>,
    shards: Option<Arc<crate::shards::ShardStore>>,
    shutdown: CancellationToken,
) -> Result<()> {
    Server::builder()
        // Shard appends and exchanged batches are megabytes: HTTP/2's 64 KiB default windows
        // would make each wait for many window updates.
        .initial_stream_window_size(Some(16 << 20))
        .initial_connection_window_size(Some(64 << 20))
        .add_service(ExecutorServiceServer::new(ExecutorGrpc {
            state: Arc::clone(&state),
        }))
        .add_service(worker::server(runtime, store_sync, state))
        .add_optional_service(shards.map(crate::shards::server))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown.cancelled_owned(),
        )
        .await
        .map_err(Error::Serve)
}
