//! The benchmark runner end to end at a tiny scale, as `basin bench all` runs it: TPC-H SF 0.01
//! (all 22 queries), five TPC-DS queries, and pgbench `SELECT 1` for 2 s at one client in both
//! modes, against a real `basin standalone` with two executors and a local PostgreSQL. Asserts
//! every Basin answer was checked and agreed, and that every report file was written.
//!
//! Needs the `basin` binary (`$BASIN_BIN`, else `basin` in this test's target directory),
//! PostgreSQL (`scripts/setup.sh` installs it), root for `runuser`, and PyPI for the runner's
//! virtualenv when `.venv` lacks DuckDB or tpcgen-cli.

use std::path::PathBuf;

use basin_benchmarks::cli::BenchArgs;
use clap::Parser;
use serde_json::Value;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn basin_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BASIN_BIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_absolute() {
            path
        } else {
            basin_benchmarks::runner::repo_root().join(path)
        };
    }
    // target/debug/deps/smoke-<hash> -> target/debug/basin
    let exe = std::env::current_exe().expect("the test knows its own path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(|debug| debug.join("basin"))
        .expect("the test binary lives in target/<profile>/deps")
}

fn read_json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{} should have been written: {err}", path.display()));
    serde_json::from_str(&text).expect("the report is valid JSON")
}

#[test]
fn bench_all_at_tiny_scale_checks_every_answer() {
    let basin = basin_binary();
    assert!(
        basin.is_file(),
        "build basin first: {} is missing",
        basin.display()
    );
    let work = tempfile::tempdir().expect("temporary directory");
    let data = work.path().join("data");
    let output = work.path().join("results");
    let args = [
        "basin-benchmarks",
        "all",
        "--scale",
        "0.01",
        "--runs",
        "1",
        "--tpcds-queries",
        "3,7,42,52,96",
        "--pgbench-secs",
        "2",
        "--pgbench-clients",
        "1",
        "--pgbench-scripts",
        "select1",
        "--port",
        "48633",
        "--postgres-port",
        "48732",
    ]
    .map(str::to_owned)
    .into_iter()
    .chain([
        "--basin-bin".into(),
        basin.display().to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--output".into(),
        output.display().to_string(),
    ]);
    let cli = Cli::try_parse_from(args).expect("the options parse");
    basin_benchmarks::runner::run(cli.args).expect("the benchmark run succeeds");

    for (stem, expected) in [("tpch-sf0.01", 22), ("tpcds-sf0.01", 5)] {
        let report = read_json(output.join(format!("{stem}.json")));
        let queries = report["queries"].as_array().expect("queries");
        assert_eq!(queries.len(), expected, "{stem}");
        for query in queries {
            let name = &query["name"];
            for engine in ["basin", "duckdb", "datafusion"] {
                assert!(
                    query[engine]["error"].is_null(),
                    "{stem} {name} {engine}: {}",
                    query[engine]["error"]
                );
                assert_eq!(query[engine]["runs_ms"].as_array().map(Vec::len), Some(1));
            }
            assert_eq!(query["check"]["basin_vs_duckdb"], "match", "{stem} {name}");
            assert_eq!(
                query["check"]["basin_vs_datafusion"], "match",
                "{stem} {name}"
            );
        }
        let summary = &report["summary"];
        assert_eq!(summary["basin_correct"], expected, "{stem}");
        assert!(summary["geomean_ms"][0].as_f64().is_some_and(|ms| ms > 0.0));
        let roles: Vec<&str> = report["memory"]
            .as_array()
            .expect("memory")
            .iter()
            .filter_map(|p| p["role"].as_str())
            .collect();
        assert!(
            roles.contains(&"coordinator") && roles.contains(&"executor 2"),
            "{roles:?}"
        );
        for ext in ["md", "svg"] {
            let text = std::fs::read_to_string(output.join(format!("{stem}.{ext}")))
                .expect("report written");
            assert!(text.contains("Basin"), "{stem}.{ext}");
        }
    }

    let pgbench = read_json(output.join("pgbench.json"));
    let measurements = pgbench["measurements"].as_array().expect("measurements");
    assert_eq!(
        measurements.len(),
        4,
        "select1 x simple/prepared x basin/postgres"
    );
    for m in measurements {
        assert!(
            m["tps"].as_f64().is_some_and(|tps| tps > 0.0),
            "{} {} on {}: {}",
            m["script"],
            m["mode"],
            m["server"],
            m["error"]
        );
    }
    assert!(output.join("pgbench.md").is_file());
}
