//! The executor's validated configuration.

use std::net::SocketAddr;

/// Everything the executor role needs to start.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Control-plane URL of the coordinator, e.g. `http://127.0.0.1:50050`.
    pub coordinator_url: String,
    /// Address the executor's own gRPC service listens on.
    pub listen: SocketAddr,
    /// Memory pool size in bytes (0 = a share of physical memory).
    pub memory_limit_bytes: u64,
}
