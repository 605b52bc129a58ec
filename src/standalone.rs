//! `basin standalone`: a coordinator in this process and N executors as child processes of the
//! same binary, so the single-machine setup exercises the same control plane and wire paths as a
//! real cluster.
//!
//! Executors get a pipe as standard input and `--exit-with-parent`: closing it asks them to drain
//! and deregister, and if this process dies without closing it the OS does, so executors never
//! outlive the coordinator.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{STANDALONE_EXECUTORS_MEMORY_FRACTION, StandaloneConfig};

/// How long executors get to drain and deregister before they are killed.
const EXECUTOR_STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_EVERY: Duration = Duration::from_millis(50);
/// Environment variables an executor child must not inherit: they would override, or be read
/// instead of, what this process passes on the command line.
const SCRUBBED_ENV: &[&str] = &[
    "BASIN_CONFIG",
    "BASIN_COORDINATOR_URL",
    "BASIN_EXECUTOR_LISTEN",
    "BASIN_ADVERTISE_URL",
    "BASIN_MEMORY_LIMIT",
    "BASIN_EXIT_WITH_PARENT",
    "BASIN_EXECUTOR_DATA_DIR",
];

/// How this process starts (and restarts) its executors.
struct Launch {
    control_url: String,
    /// Given to executors in their environment, never on their command line.
    cluster_secret: String,
    memory_bytes: u64,
    /// Executor `i` keeps its node (streaming-table shards) in `<data_root>/<i>`, so a
    /// restarted executor finds its shards again.
    data_root: std::path::PathBuf,
}

/// Runs the coordinator and the executors until `shutdown` is cancelled. Executors are stopped
/// first, while the coordinator can still hear them deregister.
pub(crate) async fn run(
    mut config: StandaloneConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // The executors this process starts learn the secret from it; a fresh random one unless
    // the operator set one (other executors may then join with it).
    let cluster_secret = config
        .coordinator
        .cluster_secret
        .get_or_insert_with(|| {
            basin_coordinator::ClusterSecret::new(format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ))
        })
        .clone();
    let memory_per_executor = match (config.executors, config.executor_memory_limit_bytes) {
        (0, _) => 0,
        (n, 0) => {
            let available = basin_executor::memory::available_memory_bytes().context(
                "cannot determine the machine's memory: set --memory-limit for the executors",
            )?;
            (available as f64 * STANDALONE_EXECUTORS_MEMORY_FRACTION) as u64 / n as u64
        }
        (_, bytes) => bytes,
    };
    let launch = Launch {
        control_url: format!("http://{}", connectable(config.coordinator.control_listen)),
        cluster_secret: cluster_secret.expose().to_owned(),
        memory_bytes: memory_per_executor,
        data_root: config.coordinator.data_dir.join("executors"),
    };

    let coordinator_stop = CancellationToken::new();
    let mut coordinator = tokio::spawn(basin_coordinator::run(
        config.coordinator,
        coordinator_stop.clone(),
    ));
    let mut executors = Vec::with_capacity(config.executors);
    for index in 0..config.executors {
        match spawn_executor(index, &launch) {
            Ok(child) => executors.push(child),
            Err(err) => {
                stop_executors(&mut executors).await;
                coordinator_stop.cancel();
                let _ = coordinator.await;
                return Err(err);
            }
        }
    }
    if !executors.is_empty() {
        info!(
            executors = executors.len(),
            memory_per_executor,
            coordinator = launch.control_url,
            "started executor processes"
        );
    }

    let early_exit = tokio::select! {
        () = shutdown.cancelled() => None,
        joined = &mut coordinator => Some(joined),
        () = supervise_executors(&mut executors, &launch) => None,
    };
    stop_executors(&mut executors).await;
    let joined = match early_exit {
        Some(joined) => joined,
        None => {
            coordinator_stop.cancel();
            coordinator.await
        }
    };
    joined
        .context("coordinator task failed")?
        .context("coordinator failed")?;
    Ok(())
}

/// The address to dial for a listen address: a wildcard listen is reached over loopback.
fn connectable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

struct ExecutorProcess {
    index: usize,
    child: Child,
    exited: bool,
    started: Instant,
    /// Restarts in a row that each died soon after starting; grows the backoff.
    quick_deaths: u32,
    restart_at: Option<Instant>,
}

/// An executor that ran at least this long before dying is restarted without backoff.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// Longest wait before restarting an executor that keeps dying.
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(30);

fn restart_backoff(quick_deaths: u32) -> Duration {
    Duration::from_millis(500)
        .saturating_mul(1 << quick_deaths.min(6))
        .min(MAX_RESTART_BACKOFF)
}

fn spawn_executor(index: usize, launch: &Launch) -> anyhow::Result<ExecutorProcess> {
    let binary = std::env::current_exe().context("find the basin binary to start executors")?;
    let mut command = Command::new(&binary);
    command
        .arg("executor")
        .arg("--coordinator")
        .arg(&launch.control_url)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--memory-limit")
        .arg(launch.memory_bytes.to_string())
        .arg("--data-dir")
        .arg(launch.data_root.join(index.to_string()))
        .arg("--exit-with-parent")
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    for name in SCRUBBED_ENV {
        command.env_remove(name);
    }
    command.env("BASIN_CLUSTER_SECRET", &launch.cluster_secret);
    let child = command
        .spawn()
        .with_context(|| format!("start executor {index} ({})", binary.display()))?;
    info!(
        executor = index,
        pid = child.id(),
        "started executor process"
    );
    Ok(ExecutorProcess {
        index,
        child,
        exited: false,
        started: Instant::now(),
        quick_deaths: 0,
        restart_at: None,
    })
}

/// Restarts executors that exit on their own, after a backoff that grows while they keep dying
/// quickly. Never resolves: a dead executor is not a reason to stop the coordinator, which
/// notices the missing heartbeats and re-plans around it; the restarted process registers anew
/// and gets work on the next query.
async fn supervise_executors(executors: &mut [ExecutorProcess], launch: &Launch) {
    loop {
        let now = Instant::now();
        for executor in executors.iter_mut() {
            if executor.exited {
                if executor.restart_at.is_some_and(|at| now >= at) {
                    restart(executor, launch);
                }
                continue;
            }
            match executor.child.try_wait() {
                Ok(Some(status)) => {
                    executor.exited = true;
                    if now.saturating_duration_since(executor.started) >= STABLE_AFTER {
                        executor.quick_deaths = 0;
                    }
                    let backoff = restart_backoff(executor.quick_deaths);
                    executor.restart_at = Some(now + backoff);
                    error!(
                        executor = executor.index,
                        %status,
                        restart_in_ms = backoff.as_millis(),
                        "executor process exited unexpectedly; restarting it"
                    );
                }
                Ok(None) => {}
                Err(err) => {
                    warn!(executor = executor.index, error = %err, "cannot poll executor process")
                }
            }
        }
        sleep(Duration::from_millis(250)).await;
    }
}

fn restart(executor: &mut ExecutorProcess, launch: &Launch) {
    match spawn_executor(executor.index, launch) {
        Ok(fresh) => {
            let quick_deaths = executor.quick_deaths + 1;
            *executor = ExecutorProcess {
                quick_deaths,
                ..fresh
            };
        }
        Err(err) => {
            executor.quick_deaths += 1;
            let backoff = restart_backoff(executor.quick_deaths);
            executor.restart_at = Some(Instant::now() + backoff);
            error!(executor = executor.index, error = %err, "cannot restart executor");
        }
    }
}

/// Closes every executor's stdin (asking it to drain), waits up to [`EXECUTOR_STOP_TIMEOUT`],
/// then kills what is left.
async fn stop_executors(executors: &mut [ExecutorProcess]) {
    if executors.is_empty() {
        return;
    }
    for executor in executors.iter_mut() {
        drop(executor.child.stdin.take());
    }
    let deadline = Instant::now() + EXECUTOR_STOP_TIMEOUT;
    loop {
        let mut running = 0;
        for executor in executors.iter_mut().filter(|e| !e.exited) {
            match executor.child.try_wait() {
                Ok(Some(_)) => executor.exited = true,
                Ok(None) => running += 1,
                Err(err) => {
                    warn!(executor = executor.index, error = %err, "cannot poll executor process");
                    executor.exited = true;
                }
            }
        }
        if running == 0 {
            info!("executor processes stopped");
            return;
        }
        if Instant::now() >= deadline {
            break;
        }
        sleep(POLL_EVERY).await;
    }
    for executor in executors.iter_mut().filter(|e| !e.exited) {
        warn!(
            executor = executor.index,
            timeout_s = EXECUTOR_STOP_TIMEOUT.as_secs(),
            "executor did not stop in time; killing it"
        );
        if let Err(err) = executor.child.kill() {
            warn!(executor = executor.index, error = %err, "cannot kill executor process");
        }
        // Reaps the zombie; after SIGKILL this returns promptly.
        let _ = executor.child.wait();
        executor.exited = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_are_dialled_over_loopback() {
        let dial = |text: &str| connectable(text.parse().expect("address")).to_string();
        assert_eq!(dial("0.0.0.0:50050"), "127.0.0.1:50050");
        assert_eq!(dial("[::]:50050"), "[::1]:50050");
        assert_eq!(dial("10.1.2.3:50050"), "10.1.2.3:50050");
    }
}
