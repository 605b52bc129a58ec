//! The executor's validated configuration.

use std::net::SocketAddr;

use tonic::transport::Endpoint;

/// Everything the executor role needs to start.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Control-plane URL of the coordinator, e.g. `http://127.0.0.1:50050`.
    pub coordinator_url: String,
    /// Address the executor's own gRPC service listens on. Port 0 picks a free port; the
    /// executor registers the port it actually got.
    pub listen: SocketAddr,
    /// URL the coordinator uses to reach this executor. `None` means `http://<bound address>`,
    /// which only works when `listen` names a concrete IP.
    pub advertise_url: Option<String>,
    /// Memory pool size in bytes (0 = a share of physical memory).
    pub memory_limit_bytes: u64,
    /// Where sorts, aggregates and joins spill when the pool is full (`None` = the OS temp dir).
    pub spill_dir: Option<std::path::PathBuf>,
    /// The executor's node directory: streaming-table shards live here. `None` = this executor
    /// hosts no shards.
    pub data_dir: Option<std::path::PathBuf>,
    /// Sent with every control-plane call; must match the coordinator's.
    pub cluster_secret: Option<basin_proto::ClusterSecret>,
}

impl ExecutorConfig {
    /// Defaults for an executor on the same machine as a default coordinator.
    pub fn local_default() -> Self {
        Self {
            coordinator_url: "http://127.0.0.1:50050".to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise_url: None,
            memory_limit_bytes: 0,
            spill_dir: None,
            data_dir: None,
            cluster_secret: None,
        }
    }

    /// Checks rules that span fields. Called by the binary after merging all sources, and again
    /// by [`crate::run`].
    pub fn validate(&self) -> Result<(), String> {
        validate_grpc_url("coordinator URL", &self.coordinator_url)?;
        match &self.advertise_url {
            Some(url) => validate_grpc_url("advertise URL", url)?,
            None if self.listen.ip().is_unspecified() => {
                return Err(format!(
                    "listen address {} is not reachable by the coordinator: set an advertise URL \
                     (--advertise-url) naming this machine",
                    self.listen
                ));
            }
            None => {}
        }
        Ok(())
    }
}

fn validate_grpc_url(what: &str, url: &str) -> Result<(), String> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|err| format!("invalid {what} \"{url}\": {err}"))?;
    match endpoint.uri().scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "invalid {what} \"{url}\": TLS (https) is not supported yet"
            ));
        }
        _ => {
            return Err(format!(
                "invalid {what} \"{url}\": expected http://host:port"
            ));
        }
    }
    if endpoint.uri().host().is_none_or(str::is_empty) {
        return Err(format!("invalid {what} \"{url}\": no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_default_is_valid() {
        ExecutorConfig::local_default()
            .validate()
            .expect("the local default config must validate");
    }

    #[test]
    fn rejects_bad_coordinator_urls() {
        for url in [
            "",
            "127.0.0.1:50050",
            "https://coordinator:50050",
            "ftp://x:1",
            "http://",
        ] {
            let config = ExecutorConfig {
                coordinator_url: url.to_owned(),
                ..ExecutorConfig::local_default()
            };
            assert!(config.validate().is_err(), "{url:?} should be rejected");
        }
    }

    #[test]
    fn unspecified_listen_needs_advertise_url() {
        let mut config = ExecutorConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 50051)),
            ..ExecutorConfig::local_default()
        };
        let err = config
            .validate()
            .expect_err("0.0.0.0 without advertise URL");
        assert!(err.contains("--advertise-url"), "{err}");
        config.advertise_url = Some("http://worker-1:50051".to_owned());
        config.validate().expect("advertise URL makes it valid");
    }
}
