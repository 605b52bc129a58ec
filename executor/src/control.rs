//! The executor's side of the control plane: register with the coordinator (waiting for it to
//! come up), heartbeat, register again when the coordinator forgets us, and on shutdown drain
//! and deregister. The contract is documented in `proto/basin/control/v1/control.proto`.

use std::sync::Arc;
use std::time::Duration;

use basin_proto::PROTOCOL_VERSION;
use basin_proto::control::v1::control_plane_client::ControlPlaneClient;
use basin_proto::control::v1::{DeregisterRequest, HeartbeatRequest, RegisterRequest};
use tokio::time::{self, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing::{debug, info, warn};

use crate::state::ExecutorState;
use crate::{Error, Result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// Used when the coordinator does not say how often to heartbeat.
const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(60);
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long shutdown waits for the coordinator to acknowledge the drain and the deregistration;
/// a coordinator that is gone must not keep the executor from exiting.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);

/// A control-plane client whose every call carries the cluster secret (when one is set).
pub(crate) type Control = ControlPlaneClient<InterceptedService<Channel, SecretInterceptor>>;

/// Adds the cluster secret to each call's metadata.
#[derive(Clone)]
pub(crate) struct SecretInterceptor(Option<MetadataValue<Ascii>>);

impl Interceptor for SecretInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(secret) = &self.0 {
            request
                .metadata_mut()
                .insert(basin_proto::CLUSTER_SECRET_METADATA, secret.clone());
        }
        Ok(request)
    }
}

pub(crate) struct ControlClient {
    client: Control,
    registration: RegisterRequest,
    state: Arc<ExecutorState>,
}

impl ControlClient {
    /// Prepares a client for `coordinator_url`. Does not connect: the coordinator may not be up
    /// yet, and [`Self::run`] waits for it.
    pub(crate) fn new(
        coordinator_url: &str,
        secret: Option<&basin_proto::ClusterSecret>,
        registration: RegisterRequest,
        state: Arc<ExecutorState>,
    ) -> Result<Self> {
        let secret = secret
            .map(|s| MetadataValue::try_from(s.expose()))
            .transpose()
            .map_err(|_| {
                Error::Config(
                    "the cluster secret must be printable ASCII (it travels as gRPC metadata)"
                        .to_owned(),
                )
            })?;
        let endpoint = Endpoint::from_shared(coordinator_url.to_owned())
            .map_err(|err| {
                Error::Config(format!(
                    "invalid coordinator URL \"{coordinator_url}\": {err}"
                ))
            })?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(RPC_TIMEOUT)
            .tcp_nodelay(true);
        Ok(Self {
            client: ControlPlaneClient::with_interceptor(
                endpoint.connect_lazy(),
                SecretInterceptor(secret),
            ),
            registration,
            state,
        })
    }

    /// A handle on the same control-plane connection, for other calls (object-store settings).
    pub(crate) fn client(&self) -> Control {
        self.client.clone()
    }

    /// Registers, heartbeats until `shutdown` is cancelled, then drains and deregisters.
    /// Returns `Ok` on a clean shutdown, including one that comes before the coordinator was
    /// ever reached; an error when the coordinator refuses the executor.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
        let Some(interval) = self.register(&shutdown).await? else {
            info!("shutdown requested before the coordinator was reached");
            return Ok(());
        };
        let mut ticker = heartbeat_ticker(interval);
        let mut failures: u32 = 0;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            match self.heartbeat(false).await {
                Ok(true) => {
                    if failures > 0 {
                        info!(failures, "coordinator reachable again");
                    }
                    failures = 0;
                }
                Ok(false) => {
                    info!("coordinator does not know this executor; registering again");
                    match self.register(&shutdown).await? {
                        Some(interval) => ticker = heartbeat_ticker(interval),
                        None => break,
                    }
                    failures = 0;
                }
                Err(status) => {
                    failures += 1;
                    // The first miss and then every fifth, so a long outage does not flood logs.
                    if failures % 5 == 1 {
                        warn!(failures, error = %status.message(), code = ?status.code(), "heartbeat failed");
                    }
                }
            }
        }
        self.drain_and_deregister().await;
        Ok(())
    }

    /// Registers, retrying with backoff while the coordinator is unreachable. Returns the
    /// heartbeat interval, or `None` if `shutdown` was cancelled first.
    async fn register(&mut self, shutdown: &CancellationToken) -> Result<Option<Duration>> {
        let started = Instant::now();
        let mut backoff = INITIAL_BACKOFF;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let result = tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                result = self.client.register(self.registration.clone()) => result,
            };
            match result {
                Ok(response) => {
                    let response = response.into_inner();
                    if !response.accepted {
                        if response.protocol_version != PROTOCOL_VERSION {
                            return Err(Error::ProtocolMismatch {
                                coordinator: response.protocol_version,
                                executor: PROTOCOL_VERSION,
                            });
                        }
                        return Err(Error::Refused(response.message));
                    }
                    let interval = heartbeat_interval(response.heartbeat_interval_ms);
                    info!(
                        attempts = attempt,
                        heartbeat_interval_ms = interval.as_millis(),
                        "registered with coordinator"
                    );
                    return Ok(Some(interval));
                }
                Err(status) if !is_retryable(&status) => {
                    return Err(Error::ControlPlane {
                        call: "Register",
                        status: Box::new(status),
                    });
                }
                Err(status) => {
                    if attempt == 1 {
                        info!(error = %status.message(), "coordinator not reachable yet; retrying");
                    } else if attempt.is_multiple_of(10) {
                        warn!(
                            attempts = attempt,
                            waited_ms = started.elapsed().as_millis(),
                            error = %status.message(),
                            "still waiting for the coordinator"
                        );
                    } else {
                        debug!(attempts = attempt, error = %status.message(), "register failed");
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                () = time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Sends one heartbeat; `Ok(false)` means the coordinator does not know us.
    async fn heartbeat(&mut self, draining: bool) -> Result<bool, Status> {
        let request = HeartbeatRequest {
            executor_id: self.state.id().to_string(),
            running_tasks: self.state.running_tasks(),
            draining,
        };
        Ok(self.client.heartbeat(request).await?.into_inner().known)
    }

    /// Takes no new work, tells the coordinator, waits for running tasks (heartbeating so the
    /// coordinator does not think we died), then deregisters. Failures are logged, not returned:
    /// the executor is leaving either way.
    async fn drain_and_deregister(&mut self) {
        self.state.start_draining();
        info!(
            running_tasks = self.state.running_tasks(),
            "draining: taking no new work"
        );
        self.goodbye_heartbeat().await;
        let mut ticker = heartbeat_ticker(DEFAULT_HEARTBEAT_INTERVAL);
        let state = Arc::clone(&self.state);
        let idle = state.wait_idle();
        tokio::pin!(idle);
        loop {
            tokio::select! {
                () = &mut idle => break,
                _ = ticker.tick() => self.goodbye_heartbeat().await,
            }
        }
        let request = DeregisterRequest {
            executor_id: self.state.id().to_string(),
        };
        match time::timeout(GOODBYE_TIMEOUT, self.client.deregister(request)).await {
            Ok(Ok(_)) => info!("deregistered from coordinator"),
            Ok(Err(status)) => {
                warn!(error = %status.message(), "deregister failed; the coordinator will notice the missing heartbeats");
            }
            Err(_) => {
                warn!("deregister timed out; the coordinator will notice the missing heartbeats");
            }
        }
    }

    async fn goodbye_heartbeat(&mut self) {
        match time::timeout(GOODBYE_TIMEOUT, self.heartbeat(true)).await {
            Ok(Ok(_)) => {}
            Ok(Err(status)) => debug!(error = %status.message(), "draining heartbeat failed"),
            Err(_) => debug!("draining heartbeat timed out"),
        }
    }
}

fn heartbeat_interval(millis: u64) -> Duration {
    if millis == 0 {
        return DEFAULT_HEARTBEAT_INTERVAL;
    }
    Duration::from_millis(millis).clamp(MIN_HEARTBEAT_INTERVAL, MAX_HEARTBEAT_INTERVAL)
}

fn heartbeat_ticker(interval: Duration) -> time::Interval {
    // The first heartbeat goes one interval after registration, which itself proved liveness.
    let mut ticker = time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// Whether a failed call may succeed later: the coordinator is down, restarting or overloaded.
/// Anything else (the server does not implement the call, rejects its arguments) needs a human.
fn is_retryable(status: &Status) -> bool {
    !matches!(
        status.code(),
        Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::Unimplemented
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::NotFound
            | Code::AlreadyExists
            | Code::OutOfRange
            | Code::DataLoss
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_interval_is_clamped() {
        assert_eq!(heartbeat_interval(0), DEFAULT_HEARTBEAT_INTERVAL);
        assert_eq!(heartbeat_interval(1), MIN_HEARTBEAT_INTERVAL);
        assert_eq!(heartbeat_interval(2_000), Duration::from_secs(2));
        assert_eq!(heartbeat_interval(u64::MAX), MAX_HEARTBEAT_INTERVAL);
    }

    #[test]
    fn transport_failures_are_retried_refusals_are_not() {
        assert!(is_retryable(&Status::unavailable("connection refused")));
        assert!(is_retryable(&Status::deadline_exceeded("timeout")));
        assert!(is_retryable(&Status::unknown("h2 protocol error")));
        assert!(!is_retryable(&Status::unimplemented("no such service")));
        assert!(!is_retryable(&Status::invalid_argument(
            "empty executor id"
        )));
    }
}
