//! Where `s3://` URLs lead: the object-store registry every role's DataFusion runtime uses.
//!
//! S3 settings come in three layers, later ones winning key by key: the standard `AWS_*`
//! environment variables, the server's `[object_store.s3]` config, and the `aws.*` options of
//! the external tables that name a bucket (`CREATE EXTERNAL TABLE ... OPTIONS
//! ('aws.access_key_id' '...')`). Options are per bucket: DataFusion finds a store by scheme and
//! host, so two tables on one bucket must agree on them.
//!
//! One `AmazonS3` client is built per bucket and shared by every query (connection pool, bounded
//! retries with backoff, connect and request timeouts). The coordinator's registry is the
//! source of truth; executors install a copy of its [`ObjectStoreConfigs`] over the control
//! plane and compare versions before running a fragment, so credentials never travel on
//! command lines. Secrets are never printed: `Debug` and error messages redact them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use serde::{Deserialize, Serialize};
use url::Url;

use basin_proto::control::v1 as proto;

use crate::error::{Error, Result};

/// Prefix of the table options that configure the bucket rather than the file format.
pub const TABLE_OPTION_PREFIX: &str = "aws.";

/// S3 connection settings; `None` means "not set at this layer".
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Plain `http://` endpoints (local MinIO / s3s); refused unless set.
    pub allow_http: Option<bool>,
    /// `bucket.endpoint/key` instead of `endpoint/bucket/key`.
    pub virtual_hosted_style: Option<bool>,
    /// Anonymous requests, for public buckets.
    pub skip_signature: Option<bool>,
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &secret(&self.secret_access_key))
            .field("session_token", &secret(&self.session_token))
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("skip_signature", &self.skip_signature)
            .finish()
    }
}

impl S3Options {
    /// The standard AWS variables: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`), `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`, `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`,
    /// `AWS_SKIP_SIGNATURE`.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let flag = |name: &str| get(name).and_then(|v| parse_bool(&v));
        Self {
            endpoint: get("AWS_ENDPOINT_URL").or_else(|| get("AWS_ENDPOINT")),
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            access_key_id: get("AWS_ACCESS_KEY_ID"),
            secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
            session_token: get("AWS_SESSION_TOKEN"),
            allow_http: flag("AWS_ALLOW_HTTP"),
            virtual_hosted_style: flag("AWS_VIRTUAL_HOSTED_STYLE_REQUEST"),
            skip_signature: flag("AWS_SKIP_SIGNATURE"),
        }
    }

    /// `self` with every setting `over` has replacing this one's.
    pub fn overlay(&self, over: &S3Options) -> S3Options {
        fn pick<T: Clone>(base: &Option<T>, over: &Option<T>) -> Option<T> {
            over.clone().or_else(|| base.clone())
        }
        S3Options {
            endpoint: pick(&self.endpoint, &over.endpoint),
            region: pick(&self.region, &over.region),
            access_key_id: pick(&self.access_key_id, &over.access_key_id),
            secret_access_key: pick(&self.secret_access_key, &over.secret_access_key),
            session_token: pick(&self.session_token, &over.session_token),
            allow_http: pick(&self.allow_http, &over.allow_http),
            virtual_hosted_style: pick(&self.virtual_hosted_style, &over.virtual_hosted_style),
            skip_signature: pick(&self.skip_signature, &over.skip_signature),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == S3Options::default()
    }

    /// The `aws.*` entries of a table's options; unknown `aws.` keys are errors so a typo
    /// cannot silently fall back to other credentials.
    pub fn from_table_options<'a>(
        options: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<Self> {
        let mut parsed = S3Options::default();
        for (key, value) in options {
            let Some(name) = key
                .to_ascii_lowercase()
                .strip_prefix(TABLE_OPTION_PREFIX)
                .map(str::to_owned)
            else {
                continue;
            };
            let flag = |value: &str| {
                parse_bool(value).ok_or_else(|| {
                    Error::InvalidOption(format!(
                        "option \"{key}\" must be true or false, not \"{value}\""
                    ))
                })
            };
            match name.as_str() {
                "endpoint" | "endpoint_url" => parsed.endpoint = Some(value.clone()),
                "region" => parsed.region = Some(value.clone()),
                "access_key_id" => parsed.access_key_id = Some(value.clone()),
                "secret_access_key" => parsed.secret_access_key = Some(value.clone()),
                "session_token" | "token" => parsed.session_token = Some(value.clone()),
                "allow_http" => parsed.allow_http = Some(flag(value)?),
                "virtual_hosted_style_request" => parsed.virtual_hosted_style = Some(flag(value)?),
                "skip_signature" => parsed.skip_signature = Some(flag(value)?),
                _ => {
                    return Err(Error::InvalidOption(format!(
                        "unknown option \"{key}\"; S3 options are aws.endpoint, aws.region, \
                         aws.access_key_id, aws.secret_access_key, aws.session_token, \
                         aws.allow_http, aws.virtual_hosted_style_request, aws.skip_signature"
                    )));
                }
            }
        }
        Ok(parsed)
    }
}

/// Whether a table option configures the object store (and so is not DataFusion's).
pub fn is_store_option(key: &str) -> bool {
    key.to_ascii_lowercase().starts_with(TABLE_OPTION_PREFIX)
}

/// Whether a table option holds a secret that must never be shown.
pub fn is_secret_option(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("secret") || key.contains("token") || key.contains("password")
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Everything an executor needs to reach the same stores as the coordinator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectStoreConfigs {
    /// Grows with every change; executors compare it with the one a fragment names.
    pub version: u64,
    /// Environment and server config, already layered.
    pub defaults: S3Options,
    /// Per-bucket options from table definitions.
    pub buckets: BTreeMap<String, S3Options>,
}

impl ObjectStoreConfigs {
    /// The control-plane answer carrying these configs.
    pub fn to_proto(&self) -> proto::ObjectStoresResponse {
        proto::ObjectStoresResponse {
            known: true,
            version: self.version,
            defaults: Some(self.defaults.to_proto()),
            buckets: self
                .buckets
                .iter()
                .map(|(bucket, options)| proto::BucketOptions {
                    bucket: bucket.clone(),
                    options: Some(options.to_proto()),
                })
                .collect(),
        }
    }

    /// Configs from a control-plane answer.
    pub fn from_proto(response: proto::ObjectStoresResponse) -> Self {
        Self {
            version: response.version,
            defaults: response
                .defaults
                .map(S3Options::from_proto)
                .unwrap_or_default(),
            buckets: response
                .buckets
                .into_iter()
                .map(|b| {
                    (
                        b.bucket,
                        b.options.map(S3Options::from_proto).unwrap_or_default(),
                    )
                })
                .collect(),
        }
    }
}

impl S3Options {
    fn to_proto(&self) -> proto::S3Options {
        proto::S3Options {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: self.session_token.clone(),
            allow_http: self.allow_http,
            virtual_hosted_style: self.virtual_hosted_style,
            skip_signature: self.skip_signature,
        }
    }

    fn from_proto(options: proto::S3Options) -> Self {
        Self {
            endpoint: options.endpoint,
            region: options.region,
            access_key_id: options.access_key_id,
            secret_access_key: options.secret_access_key,
            session_token: options.session_token,
            allow_http: options.allow_http,
            virtual_hosted_style: options.virtual_hosted_style,
            skip_signature: options.skip_signature,
        }
    }
}

/// Timeouts and retries of every S3 client; bounded so a dead endpoint fails a query within
/// seconds rather than hanging (statement_timeout still cancels earlier).
#[derive(Clone, Debug)]
pub struct S3Limits {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_retries: usize,
    pub retry_timeout: Duration,
}

impl Default for S3Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            max_retries: 4,
            retry_timeout: Duration::from_secs(20),
        }
    }
}

/// A bucket's client and the options it was built with.
type BuiltStore = (S3Options, Arc<dyn ObjectStore>);

/// The registry: `s3://bucket` URLs resolve to a shared client built from the layered options;
/// anything else (`file://`, stores registered explicitly) goes to DataFusion's default
/// registry.
pub struct ObjectStores {
    configs: RwLock<ObjectStoreConfigs>,
    built: RwLock<HashMap<String, BuiltStore>>,
    others: DefaultObjectStoreRegistry,
    limits: S3Limits,
    version: AtomicU64,
    /// The runtime S3 requests run on: the one the registry was made on (the server's). A
    /// pooled HTTP connection's task lives on the runtime that opened it, and queries run on
    /// other runtimes, one of them at the lowest CPU priority: without this, an interactive
    /// query (or a DROP's clean-up) reusing a connection a background query opened waited on a
    /// nice-19 thread for its I/O.
    io_runtime: Option<tokio::runtime::Handle>,
}

impl fmt::Debug for ObjectStores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStores")
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

impl Default for ObjectStores {
    fn default() -> Self {
        Self::new(S3Options::from_env())
    }
}

impl ObjectStores {
    /// A registry whose default S3 options are `defaults`.
    pub fn new(defaults: S3Options) -> Self {
        Self {
            configs: RwLock::new(ObjectStoreConfigs {
                version: 1,
                defaults,
                buckets: BTreeMap::new(),
            }),
            built: RwLock::new(HashMap::new()),
            others: DefaultObjectStoreRegistry::new(),
            limits: S3Limits::default(),
            version: AtomicU64::new(1),
            io_runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// An executor's registry before it has heard from the coordinator: no options at all
    /// (executors use the coordinator's, never their own environment) and version 0, so the
    /// first fragment that names a version makes it fetch them.
    pub fn unsynced() -> Self {
        let stores = Self::new(S3Options::default());
        stores.version.store(0, Ordering::Release);
        stores
            .configs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .version = 0;
        stores
    }

    /// Replaces the retry and timeout limits (tests and config).
    pub fn with_limits(mut self, limits: S3Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The version of the current configs.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// A copy of the current configs, for executors.
    pub fn configs(&self) -> ObjectStoreConfigs {
        self.configs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Layers `server` (the `[object_store.s3]` config) over the current defaults.
    pub fn set_server_options(&self, server: &S3Options) {
        self.change(|configs| {
            configs.defaults = configs.defaults.overlay(server);
            true
        });
    }

    /// Installs configs received from the coordinator, unless they are older than the ones
    /// held.
    pub fn install(&self, configs: ObjectStoreConfigs) {
        let version = configs.version;
        let mut current = self.configs.write().unwrap_or_else(|e| e.into_inner());
        if version < current.version || *current == configs {
            return;
        }
        *current = configs;
        self.built
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.version.store(version, Ordering::Release);
    }

    /// Records the options a table gives `bucket`; true when they are new for it. Fails when
    /// another table already gave the bucket different ones (a bucket has one client); a
    /// table without options changes nothing.
    pub fn set_bucket_options(&self, bucket: &str, options: &S3Options) -> Result<bool> {
        if options.is_empty() {
            return Ok(false);
        }
        let current = self.configs();
        if let Some(existing) = current.buckets.get(bucket) {
            if existing == options {
                return Ok(false);
            }
            return Err(Error::InvalidOption(format!(
                "bucket \"{bucket}\" is already configured with other aws.* options by another \
                 table; tables on one bucket must use the same options (or none, to share them)"
            )));
        }
        self.change(|configs| {
            configs.buckets.insert(bucket.to_owned(), options.clone());
            true
        });
        Ok(true)
    }

    /// Forgets `bucket`'s table options (its last table was dropped).
    pub fn remove_bucket_options(&self, bucket: &str) {
        self.change(|configs| configs.buckets.remove(bucket).is_some());
    }

    fn change(&self, apply: impl FnOnce(&mut ObjectStoreConfigs) -> bool) {
        let mut configs = self.configs.write().unwrap_or_else(|e| e.into_inner());
        if apply(&mut configs) {
            configs.version += 1;
            self.version.store(configs.version, Ordering::Release);
            self.built
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
    }

    /// The effective options for `bucket`.
    pub fn options_for(&self, bucket: &str) -> S3Options {
        let configs = self.configs.read().unwrap_or_else(|e| e.into_inner());
        match configs.buckets.get(bucket) {
            Some(table) => configs.defaults.overlay(table),
            None => configs.defaults.clone(),
        }
    }

    /// The shared client for `bucket`, built on first use.
    pub fn s3_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        let options = self.options_for(bucket);
        if let Some((built_with, store)) = self
            .built
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(bucket)
            && *built_with == options
        {
            return Ok(Arc::clone(store));
        }
        let store = build_s3(bucket, &options, &self.limits, self.io_runtime.as_ref())?;
        self.built
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(bucket.to_owned(), (options, Arc::clone(&store)));
        Ok(store)
    }
}

impl ObjectStoreRegistry for ObjectStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.others.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        self.others.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        if url.scheme() != "s3" {
            return self.others.get_store(url);
        }
        let bucket = url.host_str().unwrap_or_default();
        if bucket.is_empty() {
            return Err(DataFusionError::Configuration(format!(
                "\"{url}\" names no bucket; use s3://bucket/path"
            )));
        }
        self.s3_store(bucket)
            .map_err(|e| DataFusionError::External(Box::new(e)))
    }
}

/// An S3 client for `bucket`. Refuses to run without credentials (unless anonymous access is
/// asked for): the SDK fallback would probe the EC2 metadata endpoint and hang off-cloud.
fn build_s3(
    bucket: &str,
    options: &S3Options,
    limits: &S3Limits,
    io_runtime: Option<&tokio::runtime::Handle>,
) -> Result<Arc<dyn ObjectStore>> {
    let anonymous = options.skip_signature.unwrap_or(false);
    if !anonymous && (options.access_key_id.is_none() || options.secret_access_key.is_none()) {
        return Err(Error::Credentials(format!(
            "no credentials for s3://{bucket}: set aws.access_key_id and aws.secret_access_key \
             in the table's OPTIONS, [object_store.s3] in the server config, or \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (aws.skip_signature 'true' for a \
             public bucket)"
        )));
    }
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(options.region.as_deref().unwrap_or("us-east-1"))
        .with_allow_http(options.allow_http.unwrap_or(false))
        .with_virtual_hosted_style_request(options.virtual_hosted_style.unwrap_or(false))
        .with_skip_signature(anonymous)
        // Delta commits rely on put-if-absent; S3 and MinIO support it natively.
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(3),
                base: 2.0,
            },
            max_retries: limits.max_retries,
            retry_timeout: limits.retry_timeout,
        })
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(limits.connect_timeout)
                .with_timeout(limits.request_timeout)
                .with_allow_http(options.allow_http.unwrap_or(false)),
        );
    if let Some(runtime) = io_runtime {
        builder = builder.with_http_connector(object_store::client::SpawnedReqwestConnector::new(
            runtime.clone(),
        ));
    }
    if let Some(endpoint) = &options.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(key) = &options.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &options.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    if let Some(token) = &options.session_token {
        builder = builder.with_token(token);
    }
    let store = builder
        .build()
        .map_err(|e| Error::InvalidOption(format!("cannot configure s3://{bucket}: {e}")))?;
    Ok(Arc::new(crate::head_cache::HeadCachingStore::new(
        Arc::new(store),
    )))
}

/// Lets Delta Lake (Basin-managed tables with `--data-url s3://...`) reach buckets through
/// `stores`: the same clients, options and retries as scans. Delta's default log store commits
/// with put-if-absent, which S3 and MinIO honour (the clients enable conditional puts), so two
/// writers racing for one version cannot both win. Process-wide: the last catalog opened wins.
pub fn register_with_delta(stores: &Arc<ObjectStores>) {
    let scheme = match Url::parse("s3://") {
        Ok(url) => url,
        Err(_) => return,
    };
    let factory = Arc::new(DeltaS3Factory(Arc::clone(stores)));
    deltalake::logstore::object_store_factories().insert(scheme.clone(), factory);
    deltalake::logstore::logstore_factories().insert(scheme, Arc::new(DeltaS3LogStores));
}

struct DeltaS3Factory(Arc<ObjectStores>);

impl deltalake::logstore::ObjectStoreFactory for DeltaS3Factory {
    fn parse_url_opts(
        &self,
        url: &Url,
        _config: &deltalake::logstore::StorageConfig,
    ) -> deltalake::DeltaResult<(
        deltalake::logstore::ObjectStoreRef,
        object_store::path::Path,
    )> {
        let bucket = url.host_str().unwrap_or_default();
        let store = self
            .0
            .s3_store(bucket)
            .map_err(|e| deltalake::DeltaTableError::Generic(e.to_string()))?;
        let prefix = object_store::path::Path::from_url_path(url.path())
            .map_err(|e| deltalake::DeltaTableError::Generic(format!("{url}: {e}")))?;
        Ok((store, prefix))
    }
}

struct DeltaS3LogStores;

impl deltalake::logstore::LogStoreFactory for DeltaS3LogStores {
    fn with_options(
        &self,
        prefixed_store: deltalake::logstore::ObjectStoreRef,
        root_store: deltalake::logstore::ObjectStoreRef,
        location: &Url,
        options: &deltalake::logstore::StorageConfig,
    ) -> deltalake::DeltaResult<Arc<dyn deltalake::logstore::LogStore>> {
        Ok(deltalake::logstore::default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// The bucket an `s3://` location names, if it is one.
pub fn s3_bucket(location: &str) -> Option<String> {
    let url = Url::parse(location).ok()?;
    (url.scheme() == "s3")
        .then(|| url.host_str().map(str::to_owned))
        .flatten()
}

/// `sql` with the values of secret options (`'aws.secret_access_key' 'x'`) replaced, for logs
/// and `basin.queries`.
pub fn redact_sql(sql: &str) -> String {
    let lower = sql.to_ascii_lowercase();
    if !["secret", "token", "password"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return sql.to_owned();
    }
    // Walk quoted strings; after a quoted key that names a secret, replace the next quoted
    // value.
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.char_indices().peekable();
    let mut redact_next = false;
    while let Some((_, c)) = chars.next() {
        if c != '\'' {
            out.push(c);
            continue;
        }
        let mut literal = String::new();
        loop {
            match chars.next() {
                Some((_, '\'')) if chars.peek().map(|(_, n)| *n) == Some('\'') => {
                    chars.next();
                    literal.push_str("''");
                }
                Some((_, '\'')) | None => break,
                Some((_, other)) => literal.push(other),
            }
        }
        if redact_next {
            out.push_str("'<redacted>'");
            redact_next = false;
        } else {
            out.push('\'');
            out.push_str(&literal);
            out.push('\'');
            redact_next = is_secret_option(&literal) && literal.contains('.');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_win_key_by_key() {
        let env = S3Options::from_lookup(|name| match name {
            "AWS_REGION" => Some("eu-west-1".into()),
            "AWS_ACCESS_KEY_ID" => Some("env-key".into()),
            "AWS_ALLOW_HTTP" => Some("true".into()),
            _ => None,
        });
        let table = BTreeMap::from([
            ("aws.access_key_id".to_owned(), "table-key".to_owned()),
            ("format.has_header".to_owned(), "true".to_owned()),
        ]);
        let table = S3Options::from_table_options(&table).expect("valid options");
        let merged = env.overlay(&table);
        assert_eq!(merged.region.as_deref(), Some("eu-west-1"));
        assert_eq!(merged.access_key_id.as_deref(), Some("table-key"));
        assert_eq!(merged.allow_http, Some(true));
    }

    #[test]
    fn unknown_and_malformed_options_are_errors() {
        let typo = BTreeMap::from([("aws.acces_key_id".to_owned(), "k".to_owned())]);
        assert!(S3Options::from_table_options(&typo).is_err());
        let flag = BTreeMap::from([("aws.allow_http".to_owned(), "maybe".to_owned())]);
        assert!(S3Options::from_table_options(&flag).is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let options = S3Options {
            secret_access_key: Some("hunter2".into()),
            session_token: Some("tok".into()),
            ..Default::default()
        };
        let shown = format!("{options:?} {:?}", ObjectStores::new(options.clone()));
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok\""),
            "{shown}"
        );
    }

    #[test]
    fn redacts_secret_values_in_sql() {
        let sql = "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://b/x/' OPTIONS \
                   ('aws.access_key_id' 'AKIA', 'AWS.SECRET_ACCESS_KEY' 'it''s secret', \
                   'aws.session_token' 'tok')";
        let redacted = redact_sql(sql);
        assert!(!redacted.contains("it''s secret") && !redacted.contains("'tok'"));
        assert!(redacted.contains("'AKIA'") && redacted.contains("'s3://b/x/'"));
        assert_eq!(redact_sql("SELECT 'a', 'b'"), "SELECT 'a', 'b'");
    }

    #[test]
    fn buckets_keep_one_set_of_options() {
        let stores = ObjectStores::new(S3Options::default());
        let a = S3Options {
            access_key_id: Some("a".into()),
            ..Default::default()
        };
        let b = S3Options {
            access_key_id: Some("b".into()),
            ..Default::default()
        };
        let before = stores.version();
        stores
            .set_bucket_options("lake", &a)
            .expect("first options");
        assert!(stores.version() > before);
        stores.set_bucket_options("lake", &a).expect("same options");
        assert!(stores.set_bucket_options("lake", &b).is_err());
        stores
            .set_bucket_options("lake", &S3Options::default())
            .expect("no options");
        assert_eq!(
            stores.options_for("lake").access_key_id.as_deref(),
            Some("a")
        );
    }

    #[test]
    fn missing_credentials_are_refused_before_any_request() {
        let stores = ObjectStores::new(S3Options::default());
        let error = stores.s3_store("lake").err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("no credentials for s3://lake")));
    }

    #[test]
    fn executors_install_only_newer_configs() {
        let stores = ObjectStores::new(S3Options::default());
        let mut configs = ObjectStoreConfigs {
            version: 7,
            ..Default::default()
        };
        configs.defaults.region = Some("r7".into());
        stores.install(configs.clone());
        assert_eq!(stores.version(), 7);
        configs.version = 3;
        configs.defaults.region = Some("r3".into());
        stores.install(configs);
        assert_eq!(stores.options_for("x").region.as_deref(), Some("r7"));
    }
}
