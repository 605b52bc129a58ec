//! The Basin coordinator: the Postgres wire front end (`pgwire`), sessions and `SET`
//! (`session`), statement handling (`statements`), Postgres catalog emulation (`pg_catalog`),
//! cluster membership and the control plane executors register with, distributed planning and
//! execution over the executors (`dist`, the only user of datafusion-distributed), the `basin`
//! system tables, and the HTTP API.
//!
//! Entry point: [`run`]. Depends on `proto` and `catalog`; never on `executor`.

mod config;
mod continuous;
mod control;
mod dist;
mod error;
mod flight;
mod http;
mod http_tables;
mod http_views;
mod ingest;
mod membership;
mod pg_catalog;
mod pgwire;
mod query_log;
mod query_memory;
mod query_priority;
mod query_runtime;
mod server;
mod session;
mod shard_hosts;
mod statements;
mod system_tables;

use std::sync::Arc;

use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use basin_catalog::object_stores::S3Options;
pub use basin_proto::ClusterSecret;
pub use config::{CoordinatorConfig, UserConfig};
pub use error::{Error, Result};

use server::ServerState;

async fn bind(address: std::net::SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|source| Error::Startup {
            context: format!("listen for {what} on {address}"),
            source,
        })
}

/// The coordinator's DataFusion runtime: a fair spilling memory pool when a limit is set, spill
/// files in the OS temp directory.
fn runtime(
    config: &CoordinatorConfig,
    catalog: &basin_catalog::Catalog,
) -> Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
    use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
    use datafusion::execution::object_store::ObjectStoreRegistry;
    let registry: Arc<dyn ObjectStoreRegistry> = Arc::clone(catalog.object_stores()) as _;
    let mut builder = RuntimeEnvBuilder::new()
        .with_object_store_registry(registry)
        .with_cache_manager(basin_catalog::parquet_cache::cache_config());
    if config.memory_limit_bytes > 0 {
        let limit = usize::try_from(config.memory_limit_bytes).unwrap_or(usize::MAX);
        let top = std::num::NonZeroUsize::new(3).unwrap_or(std::num::NonZeroUsize::MIN);
        builder = builder.with_memory_pool(Arc::new(TrackConsumersPool::new(
            FairSpillPool::new(limit),
            top,
        )));
    }
    Ok(builder.build_arc()?)
}

/// With `--data-url`, fails start-up unless the bucket answers (credentials, endpoint and
/// bucket checked once, with the usual retries), rather than at the first CREATE TABLE.
async fn check_lake_root(catalog: &basin_catalog::Catalog) -> Result<()> {
    let root = catalog.lake_root();
    if root.scheme() == "file" {
        return Ok(());
    }
    let startup = |message: String| Error::Startup {
        context: format!("reach the data URL {root}"),
        source: std::io::Error::other(message),
    };
    let bucket = root.host_str().unwrap_or_default();
    let store = catalog
        .object_stores()
        .s3_store(bucket)
        .map_err(|e| startup(e.to_string()))?;
    let prefix =
        object_store::path::Path::from_url_path(root.path()).map_err(|e| startup(e.to_string()))?;
    store
        .list_with_delimiter(Some(&prefix))
        .await
        .map_err(|e| startup(e.to_string()))?;
    tracing::info!(data_url = %root, "Basin-managed tables live in object storage");
    Ok(())
}

/// Runs the coordinator until `shutdown` is cancelled: binds every listener first (so a port
/// conflict fails start-up with a clear error), then serves Postgres, HTTP and the control
/// plane, and stops them all together.
pub async fn run(config: CoordinatorConfig, shutdown: CancellationToken) -> Result<()> {
    let pg_listener = bind(config.pg_listen, "postgres connections").await?;
    let http_listener = bind(config.http_listen, "the http api").await?;
    let control_listener = bind(config.control_listen, "the executor control plane").await?;
    let local = |listener: &TcpListener, fallback| listener.local_addr().unwrap_or(fallback);
    let info = http::CoordinatorInfo::new(
        local(&pg_listener, config.pg_listen),
        local(&http_listener, config.http_listen),
        local(&control_listener, config.control_listen),
    );

    let stores =
        basin_catalog::object_stores::ObjectStores::new(S3Options::from_env().overlay(&config.s3));
    let catalog =
        basin_catalog::Catalog::open_with(&config.data_dir, config.data_url.as_deref(), stores)?;
    check_lake_root(&catalog).await?;
    catalog
        .resume_view_checkpoint()
        .await
        .map_err(|e| Error::Startup {
            context: "read the materialized-view checkpoint".to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?;
    let membership = Arc::new(membership::Membership::new());
    // Streaming-table shards live on executors that have a data directory.
    catalog.set_shard_hosts(Arc::new(shard_hosts::GrpcShardHosts::new(Arc::clone(
        &membership,
    ))));
    // Streaming tables recover their logs before the first connection is accepted (shards on
    // executors as those register).
    catalog.open_streams().await;
    let runtime = runtime(&config, &catalog)?;
    let server = Arc::new(ServerState::new(
        catalog,
        config,
        runtime,
        Arc::clone(&membership),
    ));

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(Arc::clone(&membership).run_reaper(shutdown.clone()));
    tasks.spawn(Arc::clone(&server.views).run(shutdown.clone()));
    {
        let (membership, shutdown) = (Arc::clone(&membership), shutdown.clone());
        let catalog = Arc::clone(&server.catalog);
        let secret = server.config.cluster_secret.clone();
        tasks.spawn(async move {
            if let Err(error) = control::serve(
                control_listener,
                membership,
                Some(catalog),
                secret,
                shutdown,
            )
            .await
            {
                tracing::error!(%error, "control plane stopped");
            }
        });
    }
    {
        let state = http::HttpState::new(Arc::clone(&membership), info.clone())
            .with_tables(Arc::clone(&server.catalog))
            .with_views(Arc::clone(&server.catalog), Arc::clone(&server.views));
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            if let Err(error) = http::serve(http_listener, state, shutdown).await {
                tracing::error!(%error, "http api stopped");
            }
        });
    }
    tracing::info!(
        pg = %info.pg_listen,
        http = %info.http_listen,
        control = %info.control_listen,
        data_dir = %server.catalog.data_dir().display(),
        "basin coordinator ready"
    );
    pgwire::serve(pg_listener, Arc::clone(&server), shutdown.clone()).await;
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    tracing::info!(
        sessions = server.session_count(),
        "basin coordinator stopped"
    );
    Ok(())
}
