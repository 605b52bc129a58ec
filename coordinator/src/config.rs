//! The coordinator's validated configuration. Built once by the `basin` binary from the TOML
//! file, `BASIN_*` environment and flags; passed explicitly, never read from globals.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A user allowed to log in with SCRAM-SHA-256 when authentication is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserConfig {
    pub name: String,
    pub password: String,
}

/// Everything the coordinator role needs to start.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Postgres wire protocol listen address (default 127.0.0.1:5433).
    pub pg_listen: SocketAddr,
    /// HTTP API listen address (default 127.0.0.1:8080).
    pub http_listen: SocketAddr,
    /// Control-plane gRPC listen address that executors register with (default 127.0.0.1:50050).
    pub control_listen: SocketAddr,
    /// Where the catalog and Basin-managed tables live (default ./basin-data).
    pub data_dir: PathBuf,
    /// Basin-managed table files in object storage (`s3://bucket/prefix`) instead of
    /// `data_dir`; recorded in the catalog at first start.
    pub data_url: Option<String>,
    /// Users for password (SCRAM-SHA-256) authentication. Empty means trust authentication.
    pub users: Vec<UserConfig>,
    /// Allow trust authentication on a non-loopback address (Postgres clients, and executors
    /// joining without a cluster secret).
    pub insecure_no_auth: bool,
    /// Executors must present it on every control-plane call (`BASIN_CLUSTER_SECRET`).
    pub cluster_secret: Option<basin_proto::ClusterSecret>,
    /// Largest frontend message accepted after startup, in bytes.
    pub max_message_bytes: usize,
    /// Default DataFusion target partitions (0 = number of cores).
    pub target_partitions: usize,
    /// Memory pool for the work the coordinator does itself: single-node queries and the head
    /// stage of distributed ones. Sorts and aggregates spill beyond it. 0 = no limit.
    pub memory_limit_bytes: u64,
    /// Queries reading fewer bytes than this from files run on the coordinator alone (the
    /// single-node fast path); larger ones are spread over the executors.
    pub distribute_min_bytes: u64,
    /// Bytes of file scan per partition when a scan is split over executors; smaller values
    /// give more tasks.
    pub scan_bytes_per_partition: usize,
    /// Distributed queries running at once; more wait in line.
    pub max_concurrent_queries: usize,
    /// Times a distributed query is re-planned and re-run after losing an executor before its
    /// first row.
    pub query_retries: u32,
    /// Epoch length: materialized views are brought up to date and committed together this
    /// often (milliseconds).
    pub epoch_ms: u64,
    /// How often materialized-view state is checkpointed (milliseconds).
    pub checkpoint_interval_ms: u64,
    /// `[object_store.s3]`: S3 settings layered over the `AWS_*` environment for every bucket
    /// (tables' `aws.*` options layer over these).
    pub s3: basin_catalog::object_stores::S3Options,
}

impl CoordinatorConfig {
    /// Defaults for a standalone cluster on this machine.
    pub fn local_default() -> Self {
        Self {
            pg_listen: SocketAddr::from(([127, 0, 0, 1], 5433)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            control_listen: SocketAddr::from(([127, 0, 0, 1], 50050)),
            data_dir: PathBuf::from("./basin-data"),
            data_url: None,
            users: Vec::new(),
            insecure_no_auth: false,
            cluster_secret: None,
            max_message_bytes: 64 * 1024 * 1024,
            target_partitions: 0,
            memory_limit_bytes: 0,
            distribute_min_bytes: 64 * 1024 * 1024,
            scan_bytes_per_partition: 16 * 1024 * 1024,
            max_concurrent_queries: 8,
            query_retries: 2,
            epoch_ms: 100,
            checkpoint_interval_ms: 10_000,
            s3: Default::default(),
        }
    }

    /// Checks rules that span fields. Called once by the binary after merging all sources.
    pub fn validate(&self) -> Result<(), String> {
        if self.users.is_empty() && !self.pg_listen.ip().is_loopback() && !self.insecure_no_auth {
            return Err(format!(
                "refusing to listen on non-loopback address {} without authentication: configure users or pass --insecure-no-auth",
                self.pg_listen
            ));
        }
        if self.cluster_secret.is_none()
            && !self.control_listen.ip().is_loopback()
            && !self.insecure_no_auth
        {
            return Err(format!(
                "refusing to serve the control plane on non-loopback address {} without a \
                 cluster secret: executors receive object-store credentials there; set \
                 BASIN_CLUSTER_SECRET (or cluster_secret in the config) on the coordinator and \
                 every executor, or pass --insecure-no-auth",
                self.control_listen
            ));
        }
        if self.max_concurrent_queries == 0 {
            return Err("max_concurrent_queries must be at least 1".to_owned());
        }
        if self.scan_bytes_per_partition == 0 {
            return Err("scan_bytes_per_partition must be at least 1".to_owned());
        }
        if self.epoch_ms == 0 || self.epoch_ms > 60_000 {
            return Err("epoch_ms must be between 1 and 60000".to_owned());
        }
        if self.checkpoint_interval_ms < self.epoch_ms {
            return Err("checkpoint_interval_ms must be at least epoch_ms".to_owned());
        }
        if self.max_message_bytes < 1024 {
            return Err("max_message_bytes must be at least 1024".to_owned());
        }
        for user in &self.users {
            if user.name.is_empty() || user.password.is_empty() {
                return Err("every configured user needs a non-empty name and password".to_owned());
            }
        }
        Ok(())
    }
}
