//! The executor against a scripted coordinator: registration, waiting for a coordinator that is
//! not up yet, heartbeats, re-registration, drain and deregistration, version refusal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use basin_executor::{Error, ExecutorConfig};
use basin_proto::PROTOCOL_VERSION;
use basin_proto::control::v1::control_plane_server::{ControlPlane, ControlPlaneServer};
use basin_proto::control::v1::{
    DeregisterRequest, DeregisterResponse, HeartbeatRequest, HeartbeatResponse, RegisterRequest,
    RegisterResponse,
};
use basin_proto::executor::v1::PingRequest;
use basin_proto::executor::v1::executor_service_client::ExecutorServiceClient;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum Event {
    Register(RegisterRequest),
    Heartbeat(HeartbeatRequest),
    Deregister(DeregisterRequest),
}

struct FakeCoordinator {
    events: mpsc::UnboundedSender<Event>,
    protocol_version: u32,
    /// Answer the next heartbeat with `known = false`.
    forget_next: Arc<AtomicBool>,
}

#[tonic::async_trait]
impl ControlPlane for FakeCoordinator {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let request = request.into_inner();
        let accepted = request.protocol_version == self.protocol_version;
        let _ = self.events.send(Event::Register(request));
        Ok(Response::new(RegisterResponse {
            accepted,
            message: if accepted {
                String::new()
            } else {
                "protocol version mismatch".to_owned()
            },
            heartbeat_interval_ms: 50,
            protocol_version: self.protocol_version,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let _ = self.events.send(Event::Heartbeat(request.into_inner()));
        let known = !self.forget_next.swap(false, Ordering::SeqCst);
        Ok(Response::new(HeartbeatResponse { known }))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let _ = self.events.send(Event::Deregister(request.into_inner()));
        Ok(Response::new(DeregisterResponse { known: true }))
    }

    async fn object_stores(
        &self,
        _request: Request<basin_proto::control::v1::ObjectStoresRequest>,
    ) -> Result<Response<basin_proto::control::v1::ObjectStoresResponse>, Status> {
        Ok(Response::new(Default::default()))
    }
}

struct Fake {
    events: mpsc::UnboundedReceiver<Event>,
    forget_next: Arc<AtomicBool>,
    stop: CancellationToken,
}

impl Fake {
    async fn start(listener: TcpListener, protocol_version: u32) -> Self {
        let (sender, events) = mpsc::unbounded_channel();
        let forget_next = Arc::new(AtomicBool::new(false));
        let stop = CancellationToken::new();
        let service = FakeCoordinator {
            events: sender,
            protocol_version,
            forget_next: Arc::clone(&forget_next),
        };
        tokio::spawn(
            Server::builder()
                .add_service(ControlPlaneServer::new(service))
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(listener),
                    stop.clone().cancelled_owned(),
                ),
        );
        Self {
            events,
            forget_next,
            stop,
        }
    }

    async fn next(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("an event from the executor in time")
            .expect("fake coordinator still running")
    }

    async fn next_register(&mut self) -> RegisterRequest {
        loop {
            if let Event::Register(request) = self.next().await {
                return request;
            }
        }
    }

    async fn next_heartbeat(&mut self) -> HeartbeatRequest {
        loop {
            match self.next().await {
                Event::Heartbeat(request) => return request,
                Event::Register(_) => {}
                Event::Deregister(_) => panic!("unexpected deregister"),
            }
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn loopback_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port")
}

fn executor_config(coordinator: SocketAddr) -> ExecutorConfig {
    ExecutorConfig {
        coordinator_url: format!("http://{coordinator}"),
        memory_limit_bytes: 1 << 30,
        ..ExecutorConfig::local_default()
    }
}

#[tokio::test]
async fn registers_heartbeats_reregisters_drains_and_deregisters() {
    let listener = loopback_listener().await;
    let coordinator = listener.local_addr().expect("local address");
    let mut fake = Fake::start(listener, PROTOCOL_VERSION).await;
    let shutdown = CancellationToken::new();
    let executor = tokio::spawn(basin_executor::run(
        executor_config(coordinator),
        shutdown.clone(),
    ));

    let registration = fake.next_register().await;
    assert_eq!(registration.protocol_version, PROTOCOL_VERSION);
    assert_eq!(registration.memory_bytes, 1 << 30);
    assert!(registration.cores >= 1);
    assert!(registration.executor_id.starts_with("exec-"));

    // The advertised URL reaches the executor's own service.
    let mut client = ExecutorServiceClient::connect(registration.advertise_url.clone())
        .await
        .expect("connect to the advertised executor URL");
    let pong = client
        .ping(PingRequest {})
        .await
        .expect("ping the executor")
        .into_inner();
    assert_eq!(pong.executor_id, registration.executor_id);
    assert!(!pong.draining);

    let heartbeat = fake.next_heartbeat().await;
    assert_eq!(heartbeat.executor_id, registration.executor_id);
    assert!(!heartbeat.draining);

    // A coordinator that forgot the executor gets a fresh registration with the same identity.
    fake.forget_next.store(true, Ordering::SeqCst);
    let again = fake.next_register().await;
    assert_eq!(again.executor_id, registration.executor_id);
    assert_eq!(again.advertise_url, registration.advertise_url);

    shutdown.cancel();
    let mut saw_draining = false;
    loop {
        match fake.next().await {
            Event::Heartbeat(heartbeat) => saw_draining |= heartbeat.draining,
            Event::Deregister(request) => {
                assert_eq!(request.executor_id, registration.executor_id);
                break;
            }
            Event::Register(_) => {}
        }
    }
    assert!(
        saw_draining,
        "the coordinator hears about the drain before the deregistration"
    );
    tokio::time::timeout(WAIT, executor)
        .await
        .expect("executor stops after deregistering")
        .expect("executor task does not panic")
        .expect("clean shutdown");
}

#[tokio::test]
async fn waits_for_a_coordinator_that_is_not_up_yet() {
    let reserved = loopback_listener().await;
    let coordinator = reserved.local_addr().expect("local address");
    drop(reserved);
    let shutdown = CancellationToken::new();
    let executor = tokio::spawn(basin_executor::run(
        executor_config(coordinator),
        shutdown.clone(),
    ));

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!executor.is_finished(), "executor keeps retrying");
    let listener = TcpListener::bind(coordinator)
        .await
        .expect("re-bind the reserved port");
    let mut fake = Fake::start(listener, PROTOCOL_VERSION).await;
    fake.next_register().await;

    shutdown.cancel();
    tokio::time::timeout(WAIT, executor)
        .await
        .expect("executor stops")
        .expect("executor task does not panic")
        .expect("clean shutdown");
}

#[tokio::test]
async fn exits_when_the_coordinator_speaks_another_protocol_version() {
    let listener = loopback_listener().await;
    let coordinator = listener.local_addr().expect("local address");
    let _fake = Fake::start(listener, PROTOCOL_VERSION + 1).await;
    let result = tokio::time::timeout(
        WAIT,
        basin_executor::run(executor_config(coordinator), CancellationToken::new()),
    )
    .await
    .expect("executor gives up at once");
    let err = result.expect_err("a mismatched coordinator refuses the executor");
    assert!(
        matches!(
            err,
            Error::ProtocolMismatch { coordinator, executor }
                if coordinator == PROTOCOL_VERSION + 1 && executor == PROTOCOL_VERSION
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("version {}", PROTOCOL_VERSION + 1))
            && message.contains(&format!("version {PROTOCOL_VERSION}")),
        "{message}"
    );
}

#[tokio::test]
async fn shutdown_before_the_coordinator_is_reached_is_clean() {
    let reserved = loopback_listener().await;
    let coordinator = reserved.local_addr().expect("local address");
    drop(reserved);
    let shutdown = CancellationToken::new();
    let executor = tokio::spawn(basin_executor::run(
        executor_config(coordinator),
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    shutdown.cancel();
    tokio::time::timeout(WAIT, executor)
        .await
        .expect("executor stops")
        .expect("executor task does not panic")
        .expect("clean shutdown");
}
