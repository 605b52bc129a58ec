//! The `basin` binary: parses the command line, merges it with the environment and the config
//! file into a validated config, installs logging and signal handling, and hands over to a
//! role's `run`. No logic of its own beyond that.
//!
//! Subcommands: `standalone` (the default), `coordinator`, `executor`, `datagen tpch`, `bench`.

mod byte_size;
mod cli;
mod config;
mod shutdown;
mod standalone;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::info;
use tracing_subscriber::EnvFilter;

/// mimalloc rather than the system allocator, for every role this binary runs (and for the
/// in-process DataFusion peer of `basin bench`, which datafusion-cli also runs on mimalloc):
/// query execution allocates and frees many short-lived buffers of every size, and glibc's
/// malloc maps, faults in and unmaps the large ones each time. docs/benchmarks.md has the
/// before/after numbers.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Basin at info; Delta Lake's kernel logs every snapshot at info, so only its warnings.
const DEFAULT_LOG_FILTER: &str = "info,buoyant_kernel=warn,delta_kernel=warn,deltalake_core=warn";

use crate::cli::{Cli, Command, Datagen};
use crate::config::FileConfig;

fn main() -> ExitCode {
    let cli = Cli::parse_or_exit();
    init_tracing();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Not through tracing: RUST_LOG=off must not hide why the process failed.
            eprintln!("basin: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for people, not for log files and test harnesses.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let file = FileConfig::load(cli.config.as_deref())?;
    let env_users = std::env::var("BASIN_USERS").ok();
    match cli.command {
        Some(Command::Datagen(Datagen::Tpch(args))) => datagen_tpch(args.scale, &args.output),
        Some(Command::Bench(args)) => basin_benchmarks::runner::run(args),
        Some(Command::Coordinator(args)) => {
            let config = config::coordinator_config(&args, &file, env_users.as_deref())?;
            with_runtime(|shutdown| async move {
                basin_coordinator::run(config, shutdown)
                    .await
                    .context("coordinator failed")
            })
        }
        Some(Command::Executor(args)) => {
            let config = config::executor_config(&args, &file)?;
            let exit_with_parent = args.exit_with_parent;
            with_runtime(move |shutdown| async move {
                if exit_with_parent {
                    shutdown::exit_with_parent(shutdown.clone());
                }
                basin_executor::run(config, shutdown)
                    .await
                    .context("executor failed")
            })
        }
        Some(Command::Standalone(args)) => {
            let config = config::standalone_config(&args, &file, env_users.as_deref())?;
            with_runtime(|shutdown| standalone::run(config, shutdown))
        }
        None => {
            let config = config::standalone_config(&cli.standalone, &file, env_users.as_deref())?;
            with_runtime(|shutdown| standalone::run(config, shutdown))
        }
    }
}

/// Stack of each runtime thread.
const STACK_BYTES: usize = 256 << 20;

/// Runs `role` on a multi-threaded runtime with Ctrl-C/SIGTERM wired to its shutdown token.
fn with_runtime<F, Fut>(role: F) -> anyhow::Result<()>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Planning walks SQL trees recursively (sqlparser, DataFusion, Drop of deep
        // expressions); 2 MiB stacks overflowed on a 50,000-term `1 + 1 + ...`. Reserved
        // address space only: pages are touched as a stack grows.
        .thread_stack_size(STACK_BYTES)
        .build()
        .context("start the Tokio runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        shutdown::install(shutdown.clone());
        let result = Box::pin(role(shutdown)).await;
        if result.is_ok() {
            info!("shut down cleanly");
        }
        result
    })
}

fn datagen_tpch(scale: f64, output: &std::path::Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let summaries = basin_benchmarks::tpch::generate(scale, output)?;
    for summary in &summaries {
        info!(
            table = summary.table,
            rows = summary.rows,
            bytes = summary.bytes,
            path = %summary.path.display(),
            "wrote table"
        );
    }
    let rows: u64 = summaries.iter().map(|s| s.rows).sum();
    info!(
        scale,
        tables = summaries.len(),
        rows,
        elapsed_ms = started.elapsed().as_millis(),
        output = %output.display(),
        "generated TPC-H data"
    );
    Ok(())
}
