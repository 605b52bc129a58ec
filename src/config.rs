//! Turns the command line, `BASIN_*` environment and the TOML file into the validated configs the
//! roles take. Flags and environment arrive already merged by clap (flags win); this module lays
//! them over the file, and the file over the roles' defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use basin_coordinator::{ClusterSecret, CoordinatorConfig, S3Options, UserConfig};
use basin_executor::ExecutorConfig;
use serde::Deserialize;

use crate::byte_size::ByteSize;
use crate::cli::{CoordinatorArgs, ExecutorArgs, StandaloneArgs};

/// Share of the machine's memory the coordinator's pool takes by default.
const COORDINATOR_MEMORY_FRACTION: f64 = 0.25;
/// Share of the machine's memory `standalone`'s executors split between them by default (with
/// the coordinator's share, 70% in all).
pub(crate) const STANDALONE_EXECUTORS_MEMORY_FRACTION: f64 = 0.45;

/// The coordinator's default pool; no limit when the machine's memory cannot be read.
fn default_coordinator_memory() -> u64 {
    basin_executor::memory::available_memory_bytes().map_or(0, |bytes| {
        (bytes as f64 * COORDINATOR_MEMORY_FRACTION) as u64
    })
}

/// Executors `standalone` starts when not told otherwise.
pub(crate) const DEFAULT_STANDALONE_EXECUTORS: usize = 2;

/// The least `distribute_min_bytes` of `standalone` when not set. Its executors share the
/// coordinator's cores, so distributing a query adds exchange work and no CPU: measured on 2
/// cores (docs/benchmarks.md, "Where the executors run"), TPC-H SF1's geomean was 196 ms
/// distributed and 166 ms single-node, TPC-DS's 147 ms and 104 ms; at SF10 (lineitem 1.6 GB of
/// Parquet), 1.18x DataFusion's time distributed against 1.02x single-node. So `standalone`
/// distributes only queries reading more than the coordinator's memory pool
/// ([`standalone_distribute_min_bytes`]); a smaller one that runs out of the coordinator's
/// memory before its first row is run again over the executors. This is the floor when the
/// pool is unlimited or unknown.
pub(crate) const STANDALONE_DISTRIBUTE_MIN_BYTES: u64 = 1 << 30;

/// Most executors `standalone` will start on one machine.
const MAX_STANDALONE_EXECUTORS: usize = 64;

/// The TOML file. Every key is optional; unknown keys are errors so typos do not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    #[serde(default)]
    coordinator: CoordinatorFile,
    #[serde(default)]
    standalone: StandaloneFile,
    #[serde(default)]
    executor: ExecutorFile,
    users: Option<Vec<UserFile>>,
    #[serde(default)]
    object_store: ObjectStoreFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectStoreFile {
    #[serde(default)]
    s3: S3File,
}

/// `[object_store.s3]`: S3 settings for every bucket, over the `AWS_*` environment.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct S3File {
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    allow_http: Option<bool>,
    virtual_hosted_style_request: Option<bool>,
    skip_signature: Option<bool>,
}

impl std::fmt::Debug for S3File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secrets stay out of logs: shown through S3Options' redacting Debug.
        write!(f, "{:?}", self.options())
    }
}

impl S3File {
    fn options(&self) -> S3Options {
        S3Options {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: self.session_token.clone(),
            allow_http: self.allow_http,
            virtual_hosted_style: self.virtual_hosted_style_request,
            skip_signature: self.skip_signature,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CoordinatorFile {
    pg_listen: Option<SocketAddr>,
    http_listen: Option<SocketAddr>,
    control_listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    data_url: Option<String>,
    insecure_no_auth: Option<bool>,
    cluster_secret: Option<String>,
    max_message_bytes: Option<ByteSize>,
    target_partitions: Option<usize>,
    memory_limit: Option<ByteSize>,
    distribute_min_bytes: Option<ByteSize>,
    scan_bytes_per_partition: Option<ByteSize>,
    max_concurrent_queries: Option<usize>,
    query_retries: Option<u32>,
    epoch_ms: Option<u64>,
    checkpoint_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StandaloneFile {
    executors: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecutorFile {
    coordinator: Option<String>,
    listen: Option<SocketAddr>,
    advertise_url: Option<String>,
    memory_limit: Option<ByteSize>,
    spill_dir: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    cluster_secret: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    name: String,
    password: String,
}

impl FileConfig {
    /// Reads `path`, or returns the empty config when no file was given.
    pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parse config file {}", path.display()))
    }

    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }
}

/// What `standalone` runs: a coordinator and this many executor processes.
#[derive(Debug, Clone)]
pub(crate) struct StandaloneConfig {
    pub(crate) coordinator: CoordinatorConfig,
    pub(crate) executors: usize,
    /// Memory pool of each executor in bytes; 0 = split the default share between them.
    pub(crate) executor_memory_limit_bytes: u64,
}

/// The coordinator's config. `env_users` is `BASIN_USERS` (`user:password,...`), which replaces
/// the file's `[[users]]` when set.
pub(crate) fn coordinator_config(
    args: &CoordinatorArgs,
    file: &FileConfig,
    env_users: Option<&str>,
) -> anyhow::Result<CoordinatorConfig> {
    let defaults = CoordinatorConfig::local_default();
    let from_file = &file.coordinator;
    let users = match env_users {
        Some(text) => parse_users(text).context("parse BASIN_USERS")?,
        None => file
            .users
            .iter()
            .flatten()
            .map(|user| UserConfig {
                name: user.name.clone(),
                password: user.password.clone(),
            })
            .collect(),
    };
    let max_message_bytes = args
        .max_message_bytes
        .or(from_file.max_message_bytes)
        .map(|size| usize::try_from(size.bytes()))
        .transpose()
        .context("max_message_bytes does not fit in memory on this machine")?
        .unwrap_or(defaults.max_message_bytes);
    let config = CoordinatorConfig {
        pg_listen: args
            .pg_listen
            .or(from_file.pg_listen)
            .unwrap_or(defaults.pg_listen),
        http_listen: args
            .http_listen
            .or(from_file.http_listen)
            .unwrap_or(defaults.http_listen),
        control_listen: args
            .control_listen
            .or(from_file.control_listen)
            .unwrap_or(defaults.control_listen),
        data_dir: args
            .data_dir
            .clone()
            .or_else(|| from_file.data_dir.clone())
            .unwrap_or(defaults.data_dir),
        data_url: args.data_url.clone().or_else(|| from_file.data_url.clone()),
        cluster_secret: args
            .cluster_secret
            .clone()
            .or_else(|| from_file.cluster_secret.clone())
            .filter(|s| !s.is_empty())
            .map(ClusterSecret::new),
        users,
        insecure_no_auth: args
            .insecure_no_auth
            .or(from_file.insecure_no_auth)
            .unwrap_or(defaults.insecure_no_auth),
        max_message_bytes,
        target_partitions: args
            .target_partitions
            .or(from_file.target_partitions)
            .unwrap_or(defaults.target_partitions),
        memory_limit_bytes: match args.coordinator_memory_limit.or(from_file.memory_limit) {
            Some(size) => size.bytes(),
            None => default_coordinator_memory(),
        },
        distribute_min_bytes: args
            .distribute_min_bytes
            .or(from_file.distribute_min_bytes)
            .map_or(defaults.distribute_min_bytes, ByteSize::bytes),
        scan_bytes_per_partition: args
            .scan_bytes_per_partition
            .or(from_file.scan_bytes_per_partition)
            .map(|size| usize::try_from(size.bytes()))
            .transpose()
            .context("scan_bytes_per_partition does not fit in memory on this machine")?
            .unwrap_or(defaults.scan_bytes_per_partition),
        max_concurrent_queries: args
            .max_concurrent_queries
            .or(from_file.max_concurrent_queries)
            .unwrap_or(defaults.max_concurrent_queries),
        query_retries: args
            .query_retries
            .or(from_file.query_retries)
            .unwrap_or(defaults.query_retries),
        epoch_ms: args
            .epoch_ms
            .or(from_file.epoch_ms)
            .unwrap_or(defaults.epoch_ms),
        checkpoint_interval_ms: args
            .checkpoint_interval_ms
            .or(from_file.checkpoint_interval_ms)
            .unwrap_or(defaults.checkpoint_interval_ms),
        s3: file.object_store.s3.options(),
    };
    config
        .validate()
        .map_err(|message| anyhow::anyhow!("invalid coordinator configuration: {message}"))?;
    Ok(config)
}

/// `standalone`'s default `distribute_min_bytes`: the coordinator's memory pool, at least
/// [`STANDALONE_DISTRIBUTE_MIN_BYTES`].
pub(crate) fn standalone_distribute_min_bytes(coordinator_memory_bytes: u64) -> u64 {
    coordinator_memory_bytes.max(STANDALONE_DISTRIBUTE_MIN_BYTES)
}

pub(crate) fn standalone_config(
    args: &StandaloneArgs,
    file: &FileConfig,
    env_users: Option<&str>,
) -> anyhow::Result<StandaloneConfig> {
    let mut coordinator = coordinator_config(&args.coordinator, file, env_users)?;
    if args.coordinator.distribute_min_bytes.is_none()
        && file.coordinator.distribute_min_bytes.is_none()
    {
        coordinator.distribute_min_bytes =
            standalone_distribute_min_bytes(coordinator.memory_limit_bytes);
    }
    let executors = args
        .executors
        .or(file.standalone.executors)
        .unwrap_or(DEFAULT_STANDALONE_EXECUTORS);
    if executors > MAX_STANDALONE_EXECUTORS {
        bail!("executors must be at most {MAX_STANDALONE_EXECUTORS}, got {executors}");
    }
    if executors > 0 && coordinator.control_listen.port() == 0 {
        bail!(
            "standalone executors need a fixed control-plane port: set control_listen to a port \
             other than 0"
        );
    }
    let executor_memory_limit_bytes = args
        .memory_limit
        .or(file.executor.memory_limit)
        .map_or(0, ByteSize::bytes);
    Ok(StandaloneConfig {
        coordinator,
        executors,
        executor_memory_limit_bytes,
    })
}

pub(crate) fn executor_config(
    args: &ExecutorArgs,
    file: &FileConfig,
) -> anyhow::Result<ExecutorConfig> {
    let defaults = ExecutorConfig::local_default();
    let from_file = &file.executor;
    let config = ExecutorConfig {
        coordinator_url: args
            .coordinator_url
            .clone()
            .or_else(|| from_file.coordinator.clone())
            .unwrap_or(defaults.coordinator_url),
        listen: args.listen.or(from_file.listen).unwrap_or(defaults.listen),
        advertise_url: args
            .advertise_url
            .clone()
            .or_else(|| from_file.advertise_url.clone())
            .or(defaults.advertise_url),
        memory_limit_bytes: args
            .memory_limit
            .or(from_file.memory_limit)
            .map_or(defaults.memory_limit_bytes, ByteSize::bytes),
        spill_dir: args
            .spill_dir
            .clone()
            .or_else(|| from_file.spill_dir.clone()),
        data_dir: args.data_dir.clone().or_else(|| from_file.data_dir.clone()),
        cluster_secret: args
            .cluster_secret
            .clone()
            .or_else(|| from_file.cluster_secret.clone())
            .filter(|s| !s.is_empty())
            .map(ClusterSecret::new),
    };
    config
        .validate()
        .map_err(|message| anyhow::anyhow!("invalid executor configuration: {message}"))?;
    Ok(config)
}

/// `user:password,user2:password2`. Passwords may contain `:` (only the first one splits) but
/// not `,`.
fn parse_users(text: &str) -> anyhow::Result<Vec<UserConfig>> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| match entry.split_once(':') {
            Some((name, password)) if !name.is_empty() && !password.is_empty() => Ok(UserConfig {
                name: name.to_owned(),
                password: password.to_owned(),
            }),
            _ => {
                let name = entry.split(':').next().unwrap_or_default();
                bail!("expected user:password, got an entry for user \"{name}\" without a password")
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
