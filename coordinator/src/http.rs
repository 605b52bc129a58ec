//! The coordinator's HTTP API: `GET /health` for load balancers and orchestrators,
//! `GET /v1/cluster` describing the coordinator and its executors, and the table API of
//! [`crate::http_tables`] (streaming ingest). Further endpoints hang off [`router`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::membership::{ExecutorState, Membership};

/// Facts about this coordinator process reported by `/v1/cluster`.
#[derive(Debug, Clone)]
pub(crate) struct CoordinatorInfo {
    pub(crate) pg_listen: SocketAddr,
    pub(crate) http_listen: SocketAddr,
    pub(crate) control_listen: SocketAddr,
    pub(crate) version: &'static str,
    pub(crate) started_at: DateTime<Utc>,
}

impl CoordinatorInfo {
    /// Info for a coordinator starting now. Pass the addresses actually bound (they differ from
    /// the configured ones when a port is 0).
    pub(crate) fn new(
        pg_listen: SocketAddr,
        http_listen: SocketAddr,
        control_listen: SocketAddr,
    ) -> Self {
        Self {
            pg_listen,
            http_listen,
            control_listen,
            version: env!("CARGO_PKG_VERSION"),
            started_at: Utc::now(),
        }
    }
}

/// What the HTTP handlers read. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct HttpState {
    membership: Arc<Membership>,
    coordinator: Arc<CoordinatorInfo>,
    tables: Option<crate::http_tables::TablesState>,
    views: Option<crate::http_views::ViewsState>,
}

impl HttpState {
    pub(crate) fn new(membership: Arc<Membership>, coordinator: CoordinatorInfo) -> Self {
        Self {
            membership,
            coordinator: Arc::new(coordinator),
            tables: None,
            views: None,
        }
    }

    /// Adds the materialized-view change feeds (`/v1/views/{name}/changes`).
    pub(crate) fn with_views(
        mut self,
        catalog: Arc<basin_catalog::Catalog>,
        manager: Arc<crate::continuous::Manager>,
    ) -> Self {
        self.views = Some(crate::http_views::ViewsState::new(catalog, manager));
        self
    }

    /// Adds the table API (`/v1/tables...`) over `catalog`.
    pub(crate) fn with_tables(mut self, catalog: Arc<basin_catalog::Catalog>) -> Self {
        self.tables = Some(crate::http_tables::TablesState::new(catalog));
        self
    }
}

/// The API's routes, for [`serve`] and for tests that call handlers without a socket.
pub(crate) fn router(state: HttpState) -> Router {
    let tables = state.tables.clone();
    let views = state.views.clone();
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/v1/cluster", get(cluster))
        .with_state(state);
    if let Some(tables) = tables {
        router = router.merge(crate::http_tables::routes(tables));
    }
    if let Some(views) = views {
        router = router.merge(crate::http_views::routes(views));
    }
    router
}

/// Serves the API on `listener` until `shutdown` is cancelled, then lets in-flight requests
/// finish.
pub(crate) async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "http api listening");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize)]
struct Cluster {
    coordinator: CoordinatorView,
    executors: Vec<ExecutorView>,
}

#[derive(Serialize)]
struct CoordinatorView {
    pg_listen: String,
    http_listen: String,
    control_listen: String,
    version: &'static str,
    /// RFC 3339, UTC.
    started_at: String,
}

#[derive(Serialize)]
struct ExecutorView {
    id: String,
    url: String,
    cores: u32,
    memory_bytes: u64,
    state: ExecutorState,
    running_tasks: u32,
    build_version: String,
    /// The node (data directory) holding its streaming-table shards; null if it holds none.
    node_id: Option<String>,
    last_heartbeat_ms_ago: u64,
}

async fn cluster(State(state): State<HttpState>) -> Json<Cluster> {
    let now = Instant::now();
    let info = &state.coordinator;
    let executors = state
        .membership
        .snapshot()
        .into_iter()
        .map(|executor| ExecutorView {
            id: executor.registration.id.into_string(),
            url: executor.registration.url,
            cores: executor.registration.cores,
            memory_bytes: executor.registration.memory_bytes,
            state: executor.state,
            running_tasks: executor.running_tasks,
            build_version: executor.registration.build_version,
            node_id: Some(executor.registration.node_id).filter(|n| !n.is_empty()),
            last_heartbeat_ms_ago: u64::try_from(
                now.saturating_duration_since(executor.last_heartbeat)
                    .as_millis(),
            )
            .unwrap_or(u64::MAX),
        })
        .collect();
    Json(Cluster {
        coordinator: CoordinatorView {
            pg_listen: info.pg_listen.to_string(),
            http_listen: info.http_listen.to_string(),
            control_listen: info.control_listen.to_string(),
            version: info.version,
            started_at: info.started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        },
        executors,
    })
}

#[cfg(test)]
mod tests {
    use basin_proto::ExecutorId;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::membership::Registration;

    /// Sends a bare HTTP/1.1 GET and returns (status code, body).
    async fn get(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
        let mut stream = TcpStream::connect(addr).await.expect("connect to http api");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("read response");
        let (head, body) = response
            .split_once("\r\n\r\n")
            .expect("response has a head and a body");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("status line has a code");
        let body = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    async fn start(membership: Arc<Membership>) -> (SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let info = CoordinatorInfo::new(
            SocketAddr::from(([127, 0, 0, 1], 5433)),
            addr,
            SocketAddr::from(([127, 0, 0, 1], 50050)),
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(
            listener,
            HttpState::new(membership, info),
            shutdown.clone(),
        ));
        (addr, shutdown)
    }

    #[tokio::test]
    async fn health_is_ok() {
        let (addr, shutdown) = start(Arc::new(Membership::new())).await;
        let (status, body) = get(addr, "/health").await;
        assert_eq!(status, 200);
        assert_eq!(body, serde_json::json!({"status": "ok"}));
        let (status, _) = get(addr, "/nope").await;
        assert_eq!(status, 404);
        shutdown.cancel();
    }

    #[tokio::test]
    async fn cluster_lists_coordinator_and_executors() {
        let membership = Arc::new(Membership::new());
        membership.register(Registration {
            id: ExecutorId::new("exec-1"),
            url: "http://127.0.0.1:50051".to_owned(),
            cores: 4,
            memory_bytes: 1 << 30,
            build_version: "0.1.0".to_owned(),
            node_id: "node-1".to_owned(),
        });
        let (addr, shutdown) = start(Arc::clone(&membership)).await;
        let (status, body) = get(addr, "/v1/cluster").await;
        assert_eq!(status, 200);

        let coordinator = &body["coordinator"];
        assert_eq!(coordinator["pg_listen"], "127.0.0.1:5433");
        assert_eq!(coordinator["http_listen"], addr.to_string());
        assert_eq!(coordinator["version"], env!("CARGO_PKG_VERSION"));
        let started_at = coordinator["started_at"]
            .as_str()
            .expect("started_at string");
        DateTime::parse_from_rfc3339(started_at).expect("started_at is RFC 3339");

        let executors = body["executors"].as_array().expect("executors array");
        assert_eq!(executors.len(), 1);
        let executor = &executors[0];
        assert_eq!(executor["id"], "exec-1");
        assert_eq!(executor["url"], "http://127.0.0.1:50051");
        assert_eq!(executor["cores"], 4);
        assert_eq!(executor["memory_bytes"], 1u64 << 30);
        assert_eq!(executor["state"], "live");
        assert!(executor["last_heartbeat_ms_ago"].as_u64().is_some());
        shutdown.cancel();
    }
}
