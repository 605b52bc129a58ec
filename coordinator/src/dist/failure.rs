//! Telling a lost executor from a failing query. datafusion-distributed has no retries: when a
//! worker dies the query fails with a transport error. The coordinator then probes the executors
//! the query used; those that do not answer are marked dead at once (not after the heartbeat
//! timeout), so the re-planned query avoids them.

use std::time::Duration;

use basin_proto::ExecutorId;
use basin_proto::executor::v1::PingRequest;
use basin_proto::executor::v1::executor_service_client::ExecutorServiceClient;
use datafusion::error::DataFusionError;
use tonic::transport::Endpoint;
use url::Url;

use crate::membership::Membership;

/// How long connecting to an executor may take during a probe. A killed executor refuses at
/// once; this bounds a host that went away without a word.
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);

/// How long a connected executor gets to answer the probe. Longer than the connect timeout: an
/// executor still busy with the failed attempt's tasks (their cancellation reaches it as the
/// query's streams close) may answer late on a loaded machine, and marking a live executor
/// dead would run the retry on fewer executors than there are. A stopped process (SIGSTOP, a
/// frozen VM) accepts the connection and never answers: it is marked dead after this.
const PROBE_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Message fragments of errors that mean "the network or the peer went away", as tonic, hyper
/// and h2 word them. Query errors (bad casts, division by zero, memory) never contain them.
const TRANSPORT_MARKERS: &[&str] = &[
    "transport error",
    "connection refused",
    "connection reset",
    "broken pipe",
    "tcp connect error",
    "error trying to connect",
    "connection error",
    "stream closed",
    "h2 protocol error",
    "status: unavailable",
    "code: unavailable",
    "unavailable:",
    "operation was canceled",
    "channel closed",
    "unexpected end of file",
    "error reading a body from connection",
];

/// Whether `error` looks like a lost connection to an executor rather than a query error.
pub(crate) fn looks_like_transport(error: &DataFusionError) -> bool {
    let text = format!("{error:?} {error}").to_lowercase();
    TRANSPORT_MARKERS.iter().any(|marker| text.contains(marker))
}

/// Whether a distributed run failed for a reason of its own rather than the query's: an internal
/// error (a plan fragment that did not survive the trip to the executors), no executor left to
/// place tasks on, or a network error with every executor still answering.
pub(crate) fn is_distribution_failure(error: &DataFusionError) -> bool {
    match error.find_root() {
        DataFusionError::Internal(_) => true,
        DataFusionError::Execution(message) if message.contains(NO_EXECUTORS) => true,
        _ => looks_like_transport(error),
    }
}

/// The router's error when no executor is live.
pub(crate) const NO_EXECUTORS: &str = "no live executors to run the query on";

/// What a probe learned about an executor.
enum Probe {
    Live,
    /// Answering but draining: it refuses new tasks.
    Draining,
    Unreachable,
}

/// Pings each executor in `used`. Marks the ones that do not answer dead and the ones that
/// drain as draining (both get no more tasks); returns the ids of both.
pub(crate) async fn probe_and_mark(
    membership: &Membership,
    used: &[(ExecutorId, Url)],
) -> Vec<ExecutorId> {
    let probes = used
        .iter()
        .map(|(id, url)| async move { (id.clone(), ping(url).await) });
    let mut lost = Vec::new();
    for (id, probe) in futures::future::join_all(probes).await {
        match probe {
            Probe::Live => {}
            Probe::Draining => {
                membership.mark_draining(&id);
                lost.push(id);
            }
            Probe::Unreachable => {
                membership.mark_dead(&id, "unreachable after a query failed");
                lost.push(id);
            }
        }
    }
    lost
}

async fn ping(url: &Url) -> Probe {
    let Ok(endpoint) = Endpoint::from_shared(url.to_string()) else {
        return Probe::Unreachable;
    };
    let endpoint = endpoint
        .connect_timeout(PROBE_CONNECT_TIMEOUT)
        .timeout(PROBE_ANSWER_TIMEOUT);
    let Ok(channel) = endpoint.connect().await else {
        return Probe::Unreachable;
    };
    match ExecutorServiceClient::new(channel)
        .ping(PingRequest {})
        .await
    {
        Ok(response) if response.get_ref().draining => Probe::Draining,
        Ok(_) => Probe::Live,
        Err(_) => Probe::Unreachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_are_recognised() {
        let lost = DataFusionError::External(
            "status: Unavailable, message: \"error trying to connect: tcp connect error\"".into(),
        );
        assert!(looks_like_transport(&lost));
        let query = DataFusionError::Execution("Divide by zero error".to_owned());
        assert!(!looks_like_transport(&query));
    }
}
