//! Turns Ctrl-C and SIGTERM into cancelling the shutdown token, and a second signal into an
//! immediate exit for when a graceful shutdown hangs.

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Exit status after a second signal, as a shell reports death by SIGINT.
const FORCED_EXIT_CODE: i32 = 130;

/// Spawns the signal watcher. Must be called inside the Tokio runtime.
pub(crate) fn install(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let first = next_signal().await;
        info!(
            signal = first,
            "shutting down; send the signal again to exit immediately"
        );
        shutdown.cancel();
        let second = next_signal().await;
        warn!(
            signal = second,
            "second signal: exiting without waiting for a clean shutdown"
        );
        std::process::exit(FORCED_EXIT_CODE);
    });
}

/// Waits for Ctrl-C or SIGTERM and names it.
async fn next_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => "SIGINT",
                    _ = terminate.recv() => "SIGTERM",
                }
            }
            Err(err) => {
                error!(error = %err, "cannot listen for SIGTERM; only Ctrl-C shuts down cleanly");
                ctrl_c().await
            }
        }
    }
    #[cfg(not(unix))]
    {
        ctrl_c().await
    }
}

async fn ctrl_c() -> &'static str {
    if let Err(err) = tokio::signal::ctrl_c().await {
        error!(error = %err, "cannot listen for Ctrl-C");
        // Never resolve: without a signal source, shutdown comes from elsewhere or not at all.
        std::future::pending::<()>().await;
    }
    "SIGINT"
}

/// Cancels `shutdown` when standard input reaches end of file: the parent that started this
/// process (with a pipe as stdin) has closed it or died. A plain thread, because Tokio's stdin
/// is blocking underneath anyway.
pub(crate) fn exit_with_parent(shutdown: CancellationToken) {
    let spawned = std::thread::Builder::new()
        .name("parent-watch".to_owned())
        .spawn(move || {
            use std::io::Read;
            let mut stdin = std::io::stdin().lock();
            let mut buffer = [0u8; 256];
            loop {
                match stdin.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            info!("standard input closed: the parent process is stopping");
            shutdown.cancel();
        });
    if let Err(err) = spawned {
        error!(error = %err, "cannot watch standard input; this executor may outlive its parent");
    }
}
