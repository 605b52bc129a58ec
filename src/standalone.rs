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

use crate::config::StandaloneConfig;

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
];

/// Runs the coordinator and the executors until `shutdown` is cancelled. Executors are stopped
/// first, while the coordinator can still hear them deregister.
pub(crate) async fn run(
    config: StandaloneConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let memory_per_executor = match (config.executors, config.executor_memory_limit_bytes) {
        (0, _) => 0,
        (n, 0) => basin_executor::memory::default_memory_limit_bytes()? / n as u64,
        (_, bytes) => bytes,
    };
    let control_url = format!("http://{}", connectable(config.coordinator.control_listen));

    let coordinator_stop = CancellationToken::new();
    let mut coordinator = tokio::spawn(basin_coordinator::run(
        config.coordinator,
        coordinator_stop.clone(),
    ));
    let mut executors = Vec::with_capacity(config.executors);
    for index in 0..config.executors {
        match spawn_executor(index, &control_url, memory_per_executor) {
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
            coordinator = control_url,
            "started executor processes"
        );
    }

    let early_exit = tokio::select! {
        () = shutdown.cancelled() => None,
        joined = &mut coordinator => Some(joined),
        () = watch_executors(&mut executors) => None,
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
}

fn spawn_executor(
    index: usize,
    control_url: &str,
    memory_bytes: u64,
) -> anyhow::Result<ExecutorProcess> {
    let binary = std::env::current_exe().context("find the basin binary to start executors")?;
    let mut command = Command::new(&binary);
    command
        .arg("executor")
        .arg("--coordinator")
        .arg(control_url)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--memory-limit")
        .arg(memory_bytes.to_string())
        .arg("--exit-with-parent")
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    for name in SCRUBBED_ENV {
        command.env_remove(name);
    }
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
    })
}

/// Logs executors that exit on their own. Never resolves: a dead executor is not a reason to
/// stop the coordinator; the control plane notices the missing heartbeats.
async fn watch_executors(executors: &mut [ExecutorProcess]) {
    loop {
        for executor in executors.iter_mut().filter(|e| !e.exited) {
            match executor.child.try_wait() {
                Ok(Some(status)) => {
                    executor.exited = true;
                    error!(executor = executor.index, %status, "executor process exited unexpectedly");
                }
                Ok(None) => {}
                Err(err) => {
                    warn!(executor = executor.index, error = %err, "cannot poll executor process")
                }
            }
        }
        sleep(Duration::from_millis(500)).await;
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
