//! `cargo run -p basin-benchmarks --release -- tpch --scale 1`: the benchmark runner without the
//! `basin` binary's other subcommands. Same options as `basin bench`.

use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "basin-benchmarks", version)]
struct Cli {
    #[command(flatten)]
    args: basin_benchmarks::cli::BenchArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match basin_benchmarks::runner::run(cli.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("basin-benchmarks: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
