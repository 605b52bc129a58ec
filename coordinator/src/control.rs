//! The control-plane gRPC server executors register with (`basin.control.v1.ControlPlane`),
//! backed by [`Membership`]. The protocol contract is documented in
//! `proto/proto/basin/control/v1/control.proto`.

use std::sync::Arc;

use basin_proto::BUILD_VERSION;
use basin_proto::control::v1::control_plane_server::{ControlPlane, ControlPlaneServer};
use basin_proto::control::v1::{
    DeregisterRequest, DeregisterResponse, HeartbeatRequest, HeartbeatResponse,
    ObjectStoresRequest, ObjectStoresResponse, RegisterRequest, RegisterResponse,
};
use basin_proto::{CLUSTER_SECRET_METADATA, ClusterSecret, ExecutorId, PROTOCOL_VERSION};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, Uri};
use tonic::{Request, Response, Status};
use tracing::{info, instrument, warn};

use crate::membership::{HEARTBEAT_INTERVAL, Membership, Registration};

/// Serves the control plane on `listener` until `shutdown` is cancelled. Taking a bound
/// listener lets the caller report a port conflict before anything starts, and lets tests use
/// port 0.
pub(crate) async fn serve(
    listener: TcpListener,
    membership: Arc<Membership>,
    // With a catalog, the port also serves Arrow Flight ingest.
    catalog: Option<Arc<basin_catalog::Catalog>>,
    secret: Option<ClusterSecret>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "control plane listening");
    }
    Server::builder()
        .add_service(ControlPlaneServer::new(ControlPlaneService {
            membership,
            secret,
            object_stores: catalog.as_ref().map(|c| Arc::clone(c.object_stores())),
        }))
        .add_optional_service(catalog.map(crate::flight::service))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown.cancelled_owned(),
        )
        .await
}

struct ControlPlaneService {
    membership: Arc<Membership>,
    /// When set, every call must carry it.
    secret: Option<ClusterSecret>,
    /// Lake-scan settings executors fetch; none in control-plane-only tests.
    object_stores: Option<Arc<basin_catalog::object_stores::ObjectStores>>,
}

#[tonic::async_trait]
impl ControlPlane for ControlPlaneService {
    #[instrument(name = "control.register", skip_all, fields(executor_id = %request.get_ref().executor_id))]
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        self.authenticate(&request)?;
        let request = request.into_inner();
        if request.protocol_version != PROTOCOL_VERSION {
            let message = protocol_mismatch_message(request.protocol_version);
            warn!(
                executor_version = request.protocol_version,
                coordinator_version = PROTOCOL_VERSION,
                advertise_url = request.advertise_url,
                "refused executor: {message}"
            );
            return Ok(Response::new(RegisterResponse {
                accepted: false,
                message,
                heartbeat_interval_ms: 0,
                protocol_version: PROTOCOL_VERSION,
            }));
        }
        if request.build_version != BUILD_VERSION {
            // Plan fragments travel as DataFusion protobufs, which only identical builds agree on.
            let message = format!(
                "executor build {} differs from coordinator build {BUILD_VERSION}: run the same \
                 basin release on the coordinator and every executor",
                request.build_version
            );
            warn!(
                advertise_url = request.advertise_url,
                "refused executor: {message}"
            );
            return Ok(Response::new(RegisterResponse {
                accepted: false,
                message,
                heartbeat_interval_ms: 0,
                protocol_version: PROTOCOL_VERSION,
            }));
        }
        let id = executor_id(request.executor_id)?;
        validate_advertise_url(&request.advertise_url)?;
        self.membership.register(Registration {
            id,
            url: request.advertise_url,
            cores: request.cores,
            memory_bytes: request.memory_bytes,
            build_version: request.build_version,
            node_id: request.node_id,
        });
        Ok(Response::new(RegisterResponse {
            accepted: true,
            message: String::new(),
            heartbeat_interval_ms: u64::try_from(HEARTBEAT_INTERVAL.as_millis())
                .unwrap_or(u64::MAX),
            protocol_version: PROTOCOL_VERSION,
        }))
    }

    #[instrument(name = "control.heartbeat", skip_all, fields(executor_id = %request.get_ref().executor_id))]
    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        self.authenticate(&request)?;
        let request = request.into_inner();
        let id = executor_id(request.executor_id)?;
        let known = self
            .membership
            .heartbeat(&id, request.running_tasks, request.draining);
        Ok(Response::new(HeartbeatResponse { known }))
    }

    #[instrument(name = "control.deregister", skip_all, fields(executor_id = %request.get_ref().executor_id))]
    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        self.authenticate(&request)?;
        let id = executor_id(request.into_inner().executor_id)?;
        let known = self.membership.deregister(&id);
        Ok(Response::new(DeregisterResponse { known }))
    }

    #[instrument(name = "control.object_stores", skip_all, fields(executor_id = %request.get_ref().executor_id))]
    async fn object_stores(
        &self,
        request: Request<ObjectStoresRequest>,
    ) -> Result<Response<ObjectStoresResponse>, Status> {
        self.authenticate(&request)?;
        let id = executor_id(request.into_inner().executor_id)?;
        // Credentials go only to executors that registered (and so share the cluster's
        // protocol version); anyone else learns nothing.
        if !self.membership.is_live(&id) {
            return Ok(Response::new(ObjectStoresResponse::default()));
        }
        let configs = self
            .object_stores
            .as_ref()
            .map(|stores| stores.configs())
            .unwrap_or_default();
        Ok(Response::new(configs.to_proto()))
    }
}

impl ControlPlaneService {
    /// Refuses calls without the cluster secret, when one is configured.
    fn authenticate<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(secret) = &self.secret else {
            return Ok(());
        };
        let offered = request
            .metadata()
            .get(CLUSTER_SECRET_METADATA)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if secret.matches(offered) {
            Ok(())
        } else {
            warn!(remote = ?request.remote_addr(), "control-plane call without the cluster secret");
            Err(Status::unauthenticated(
                "wrong or missing cluster secret: set BASIN_CLUSTER_SECRET on this executor to \
                 the coordinator's",
            ))
        }
    }
}

fn protocol_mismatch_message(executor_version: u32) -> String {
    format!(
        "control protocol version mismatch: executor speaks version {executor_version}, \
         coordinator speaks version {PROTOCOL_VERSION}; run the same Basin release on both"
    )
}

fn executor_id(id: String) -> Result<ExecutorId, Status> {
    if id.trim().is_empty() {
        return Err(Status::invalid_argument("executor_id must not be empty"));
    }
    Ok(ExecutorId::new(id))
}

fn validate_advertise_url(url: &str) -> Result<(), Status> {
    let invalid = |why: &str| Status::invalid_argument(format!("advertise_url \"{url}\" {why}"));
    let uri: Uri = url.parse().map_err(|_| invalid("is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(invalid("must start with http://"));
    }
    if uri.host().is_none_or(str::is_empty) || uri.port_u16().is_none() {
        return Err(invalid("must name a host and a port"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use basin_proto::control::v1::control_plane_client::ControlPlaneClient;
    use tonic::Code;
    use tonic::transport::Channel;

    use super::*;
    use crate::membership::ExecutorState;

    async fn start() -> (
        ControlPlaneClient<Channel>,
        Arc<Membership>,
        CancellationToken,
    ) {
        start_with(None).await
    }

    async fn start_with(
        secret: Option<ClusterSecret>,
    ) -> (
        ControlPlaneClient<Channel>,
        Arc<Membership>,
        CancellationToken,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        let membership = Arc::new(Membership::new());
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(
            listener,
            Arc::clone(&membership),
            None,
            secret,
            shutdown.clone(),
        ));
        let client = ControlPlaneClient::connect(format!("http://{addr}"))
            .await
            .expect("connect to the control plane");
        (client, membership, shutdown)
    }

    fn register_request(version: u32) -> RegisterRequest {
        RegisterRequest {
            protocol_version: version,
            executor_id: "exec-1".to_owned(),
            advertise_url: "http://127.0.0.1:50051".to_owned(),
            cores: 8,
            memory_bytes: 1 << 30,
            build_version: BUILD_VERSION.to_owned(),
            node_id: String::new(),
        }
    }

    #[tokio::test]
    async fn a_cluster_secret_keeps_strangers_out() {
        let (mut client, membership, shutdown) =
            start_with(Some(ClusterSecret::new("right"))).await;
        let status = client
            .register(register_request(PROTOCOL_VERSION))
            .await
            .expect_err("no secret");
        assert_eq!(status.code(), Code::Unauthenticated);
        let mut wrong = Request::new(register_request(PROTOCOL_VERSION));
        wrong
            .metadata_mut()
            .insert(CLUSTER_SECRET_METADATA, "wrong".parse().expect("ascii"));
        let status = client.register(wrong).await.expect_err("wrong secret");
        assert_eq!(status.code(), Code::Unauthenticated);
        let status = client
            .object_stores(ObjectStoresRequest {
                executor_id: "exec-a".to_owned(),
            })
            .await
            .expect_err("no secret");
        assert_eq!(status.code(), Code::Unauthenticated);
        assert!(membership.snapshot().is_empty());
        let mut right = Request::new(register_request(PROTOCOL_VERSION));
        right
            .metadata_mut()
            .insert(CLUSTER_SECRET_METADATA, "right".parse().expect("ascii"));
        assert!(
            client
                .register(right)
                .await
                .expect("registered")
                .into_inner()
                .accepted
        );
        shutdown.cancel();
    }

    #[tokio::test]
    async fn executor_lifecycle() {
        let (mut client, membership, shutdown) = start().await;
        let response = client
            .register(register_request(PROTOCOL_VERSION))
            .await
            .expect("register")
            .into_inner();
        assert!(response.accepted, "{}", response.message);
        assert_eq!(response.heartbeat_interval_ms, 2_000);
        assert_eq!(response.protocol_version, PROTOCOL_VERSION);

        let executors = membership.snapshot();
        assert_eq!(executors.len(), 1);
        assert_eq!(executors[0].registration.url, "http://127.0.0.1:50051");
        assert_eq!(executors[0].registration.cores, 8);

        let heartbeat = |draining| HeartbeatRequest {
            executor_id: "exec-1".to_owned(),
            running_tasks: 2,
            draining,
        };
        let known = client
            .heartbeat(heartbeat(true))
            .await
            .expect("heartbeat")
            .into_inner()
            .known;
        assert!(known);
        assert_eq!(membership.snapshot()[0].state, ExecutorState::Draining);

        let left = client
            .deregister(DeregisterRequest {
                executor_id: "exec-1".to_owned(),
            })
            .await
            .expect("deregister")
            .into_inner();
        assert!(left.known);
        assert!(membership.snapshot().is_empty());

        let known = client
            .heartbeat(heartbeat(false))
            .await
            .expect("heartbeat")
            .into_inner()
            .known;
        assert!(!known, "a deregistered executor must register again");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn refuses_a_mismatched_protocol_version_naming_both() {
        let (mut client, membership, shutdown) = start().await;
        let response = client
            .register(register_request(PROTOCOL_VERSION + 1))
            .await
            .expect("register")
            .into_inner();
        assert!(!response.accepted);
        assert_eq!(response.protocol_version, PROTOCOL_VERSION);
        assert!(
            response
                .message
                .contains(&format!("executor speaks version {}", PROTOCOL_VERSION + 1))
                && response
                    .message
                    .contains(&format!("coordinator speaks version {PROTOCOL_VERSION}")),
            "{}",
            response.message
        );
        assert!(membership.snapshot().is_empty());
        shutdown.cancel();
    }

    #[tokio::test]
    async fn refuses_a_different_build() {
        let (mut client, membership, shutdown) = start().await;
        let response = client
            .register(RegisterRequest {
                build_version: "0.0.9".to_owned(),
                ..register_request(PROTOCOL_VERSION)
            })
            .await
            .expect("register")
            .into_inner();
        assert!(!response.accepted);
        assert!(
            response.message.contains("executor build 0.0.9")
                && response.message.contains(BUILD_VERSION),
            "{}",
            response.message
        );
        assert!(membership.snapshot().is_empty());
        shutdown.cancel();
    }

    #[tokio::test]
    async fn rejects_malformed_registrations() {
        let (mut client, _membership, shutdown) = start().await;
        let mut no_id = register_request(PROTOCOL_VERSION);
        no_id.executor_id = " ".to_owned();
        let mut bad_url = register_request(PROTOCOL_VERSION);
        bad_url.advertise_url = "127.0.0.1:50051".to_owned();
        for request in [no_id, bad_url] {
            let status = client
                .register(request)
                .await
                .expect_err("malformed registration");
            assert_eq!(status.code(), Code::InvalidArgument, "{status}");
        }
        shutdown.cancel();
    }
}
