//! Turns a finished suite into `<suite>-sf<scale>.json` (every timing), `.md` (per query: the
//! three engines, ratios, the answer check; geometric means; peak memory; the machine) and
//! `.svg` (see [`crate::chart`]) under the output directory.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use crate::runner::{ENGINES, QueryResult, RunContext, SuiteResult, scale_name};

/// Geometric means over the queries every engine ran.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub queries: usize,
    pub common_queries: usize,
    pub geomean_ms: [Option<f64>; 3],
    pub basin_checked: usize,
    pub basin_correct: usize,
    pub mismatched: Vec<String>,
    pub failed: [Vec<String>; 3],
    /// Queries DataFusion runs and Basin does not.
    pub basin_failed_where_datafusion_ran: Vec<String>,
}

pub fn summarise(result: &SuiteResult) -> Summary {
    let common: Vec<&QueryResult> = result
        .queries
        .iter()
        .filter(|q| ENGINES.iter().all(|e| q.engine(e).median_ms.is_some()))
        .collect();
    let geomean = |engine: &str| {
        (!common.is_empty()).then(|| {
            let sum: f64 = common
                .iter()
                .filter_map(|q| q.engine(engine).median_ms)
                .map(|ms| ms.max(0.001).ln())
                .sum();
            (sum / common.len() as f64).exp()
        })
    };
    let failed = |engine: &str| {
        result
            .queries
            .iter()
            .filter(|q| q.engine(engine).error.is_some())
            .map(|q| q.name.clone())
            .collect::<Vec<_>>()
    };
    Summary {
        queries: result.queries.len(),
        common_queries: common.len(),
        geomean_ms: [geomean("basin"), geomean("duckdb"), geomean("datafusion")],
        basin_checked: result
            .queries
            .iter()
            .filter(|q| q.check.basin_checked())
            .count(),
        basin_correct: result
            .queries
            .iter()
            .filter(|q| q.check.basin_correct())
            .count(),
        mismatched: result
            .queries
            .iter()
            .filter(|q| q.check.basin_checked() && !q.check.basin_correct())
            .map(|q| q.name.clone())
            .collect(),
        failed: [failed("basin"), failed("duckdb"), failed("datafusion")],
        basin_failed_where_datafusion_ran: result
            .queries
            .iter()
            .filter(|q| q.basin.error.is_some() && q.datafusion.error.is_none())
            .map(|q| q.name.clone())
            .collect(),
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    result: &'a SuiteResult,
    summary: &'a Summary,
}

/// Writes the JSON, Markdown and SVG of `result`; returns their paths.
pub fn write_suite(context: &RunContext, result: &SuiteResult) -> anyhow::Result<()> {
    let summary = summarise(result);
    let stem = format!("{}-{}", result.suite, scale_name(result.scale));
    let path = |ext: &str| -> PathBuf { context.output.join(format!("{stem}.{ext}")) };
    let json = serde_json::to_string_pretty(&JsonReport {
        result,
        summary: &summary,
    })
    .context("serialise the report")?;
    let files = [
        (path("json"), json),
        (path("md"), markdown(result, &summary, &stem)),
        (path("svg"), crate::chart::svg(result)),
    ];
    for (path, text) in files {
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        eprintln!("[bench] wrote {}", path.display());
    }
    Ok(())
}

fn ms(value: Option<f64>) -> String {
    match value {
        Some(ms) if ms >= 100.0 => format!("{ms:.0}"),
        Some(ms) => format!("{ms:.1}"),
        None => "–".into(),
    }
}

fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> String {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 => format!("{:.2}×", n / d),
        _ => "–".into(),
    }
}

pub fn title(suite: &str) -> &'static str {
    match suite {
        "tpch" => "TPC-H",
        "tpcds" => "TPC-DS",
        _ => "benchmark",
    }
}

fn markdown(result: &SuiteResult, summary: &Summary, stem: &str) -> String {
    let mut md = String::new();
    let name = title(&result.suite);
    let [basin, duckdb, datafusion] = summary.geomean_ms;
    let _ = writeln!(
        md,
        "# {name} {}: Basin, DuckDB and DataFusion\n",
        scale_name(result.scale).to_uppercase()
    );
    let _ = writeln!(
        md,
        "Run {} on {}. {} threads for DuckDB and DataFusion; Basin as `basin standalone` with {} \
         executor processes{}, queried over the Postgres wire (simple query protocol, every row \
         fetched by the client). One warm-up, then {} timed runs per query and engine, \
         interleaved (Basin, DuckDB, DataFusion, Basin, ...); times are medians in ms. Versions: \
         {}; DuckDB {}; DataFusion {}. Data generation took {:.0} s (0 when reused), the whole \
         suite {:.0} s. Chart: [{stem}.svg]({stem}.svg), raw numbers: [{stem}.json]({stem}.json).\n",
        result.started_at,
        result.machine.summary(),
        result.threads,
        result
            .executors
            .map_or_else(|| "(connected: unknown)".into(), |n| n.to_string()),
        distribution_note(result.executors.is_some()),
        result.runs,
        result.versions.basin,
        result.versions.duckdb,
        result.versions.datafusion,
        result.datagen_secs,
        result.total_secs,
    );
    let _ = writeln!(md, "## Summary\n");
    let _ = writeln!(
        md,
        "| | Basin | DuckDB | DataFusion |\n|---|---:|---:|---:|"
    );
    let _ = writeln!(
        md,
        "| geometric mean, ms ({} queries all three ran) | {} | {} | {} |",
        summary.common_queries,
        ms(basin),
        ms(duckdb),
        ms(datafusion)
    );
    let _ = writeln!(
        md,
        "| Basin ÷ engine | 1.00× | {} | {} |",
        ratio(basin, duckdb),
        ratio(basin, datafusion)
    );
    let _ = writeln!(
        md,
        "| queries failed | {} | {} | {} |\n",
        summary.failed[0].len(),
        summary.failed[1].len(),
        summary.failed[2].len()
    );
    let _ = writeln!(
        md,
        "Answers: {} of {} Basin answers checked against DuckDB and/or DataFusion, {} agree{}.",
        summary.basin_checked,
        summary.queries,
        summary.basin_correct,
        if summary.mismatched.is_empty() {
            String::new()
        } else {
            format!("; differ: {}", summary.mismatched.join(", "))
        }
    );
    if !summary.basin_failed_where_datafusion_ran.is_empty() {
        let _ = writeln!(
            md,
            "\nQueries single-node DataFusion runs but Basin does not: {}.",
            summary.basin_failed_where_datafusion_ran.join(", ")
        );
    }
    let _ = writeln!(md, "\n## Per query\n");
    let _ = writeln!(
        md,
        "| query | Basin | DuckDB | DataFusion | Basin ÷ DuckDB | Basin ÷ DataFusion | rows | answer |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---|");
    for query in &result.queries {
        let cell = |engine: &str| {
            let e = query.engine(engine);
            if e.error.is_some() {
                "error".into()
            } else {
                ms(e.median_ms)
            }
        };
        let answer = if query.check.basin_correct() {
            match (
                &query.check.basin_vs_duckdb,
                &query.check.basin_vs_datafusion,
            ) {
                (Some(a), Some(b)) if a == "match" && b == "match" => "✓ both".to_owned(),
                (Some(a), _) if a == "match" => "✓ DuckDB".to_owned(),
                (_, Some(b)) if b == "match" && query.check.basin_vs_duckdb.is_some() => {
                    "✓ DataFusion (DuckDB differs from both)".to_owned()
                }
                _ => "✓ DataFusion".to_owned(),
            }
        } else if query.check.basin_checked() {
            "✗ differs".to_owned()
        } else {
            "not checked".to_owned()
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            query.name,
            cell("basin"),
            cell("duckdb"),
            cell("datafusion"),
            ratio(query.basin.median_ms, query.duckdb.median_ms),
            ratio(query.basin.median_ms, query.datafusion.median_ms),
            query
                .basin
                .rows
                .map_or_else(|| "–".into(), |n| n.to_string()),
            answer
        );
    }
    let notes: Vec<String> = result
        .queries
        .iter()
        .flat_map(|q| {
            let mut lines = Vec::new();
            for engine in ENGINES {
                if let Some(err) = &q.engine(engine).error {
                    lines.push(format!(
                        "- {} {engine}: {}",
                        q.name,
                        err.replace('|', "\\|")
                    ));
                }
            }
            for (label, verdict) in [
                ("Basin vs DuckDB", &q.check.basin_vs_duckdb),
                ("Basin vs DataFusion", &q.check.basin_vs_datafusion),
                ("DuckDB vs DataFusion", &q.check.duckdb_vs_datafusion),
            ] {
                if let Some(v) = verdict.as_deref().filter(|v| *v != "match") {
                    lines.push(format!("- {} {label}: {v}", q.name));
                }
            }
            lines
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(md, "\n## Errors and differences\n\n{}", notes.join("\n"));
    }
    let _ = writeln!(
        md,
        "\n## Peak memory (VmHWM)\n\n| process | pid | peak RSS |\n|---|---:|---:|"
    );
    for process in &result.memory {
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} MiB |",
            process.role,
            process.pid,
            process.peak_rss_kib as f64 / 1024.0
        );
    }
    if let Some(build) = &result.build {
        let _ = writeln!(
            md,
            "\n## Build cost\n\nCold `cargo build --release` as recorded in `{}`: {:.0} s \
             ({:.1} min), exit code {}. The machine was shared with other builds and test runs \
             at the time, so this is an upper bound.",
            build.log,
            build.secs,
            build.secs / 60.0,
            build.exit_code,
        );
    }
    md
}

/// Which queries the started cluster spreads over its executors: the benchmarks inherit
/// `BASIN_DISTRIBUTE_MIN_BYTES`, else `standalone`'s default applies.
fn distribution_note(started: bool) -> String {
    if !started {
        return String::new();
    }
    match std::env::var("BASIN_DISTRIBUTE_MIN_BYTES") {
        Ok(bytes) => format!(" (queries reading at least {bytes} of files distributed over them)"),
        Err(_) => " (queries reading more files than the coordinator's memory pool, at least \
                   1 GiB, or running out of its memory, distributed over them, standalone's \
                   default; the rest run on the coordinator)"
            .to_owned(),
    }
}
