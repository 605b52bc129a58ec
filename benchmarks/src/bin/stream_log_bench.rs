//! Throughput and acknowledgement latency of the streaming-table append log
//! (`basin_catalog::stream_log`) on this machine's disk: P concurrent producers append batches
//! of B rows of about 100 bytes each, every append waits for its durable acknowledgement.
//!
//! ```sh
//! cargo run --release -p basin-benchmarks --bin stream_log_bench -- [producers] [rows per batch] [seconds] [dir]
//! ```
//!
//! Prints rows/s, MB/s, commit groups (syncs) per second and ack latency percentiles.

#![allow(
    clippy::print_stdout,
    reason = "the report on stdout is this program's output"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use basin_catalog::stream_log::{LogOptions, StreamLog};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("device_id", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            false,
        ),
        Field::new("seq", DataType::Int64, false),
        Field::new("temp", DataType::Float64, false),
        Field::new("note", DataType::Utf8, false),
    ]))
}

/// A batch of `rows` rows of about 100 bytes each.
fn batch(producer: usize, start: i64, rows: usize) -> anyhow::Result<RecordBatch> {
    let seqs: Vec<i64> = (start..start + rows as i64).collect();
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                seqs.iter()
                    .map(|s| format!("device-{producer:04}-{:04}", s % 1000)),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    seqs.iter().map(|s| 1_700_000_000_000_000 + s * 1000),
                )
                .with_timezone("+00:00"),
            ),
            Arc::new(Int64Array::from(seqs.clone())),
            Arc::new(Float64Array::from_iter_values(
                seqs.iter().map(|s| 20.0 + (*s % 100) as f64 / 10.0),
            )),
            Arc::new(StringArray::from_iter_values(seqs.iter().map(|s| {
                format!("reading {s:012} within range, sensor ok......")
            }))),
        ],
    )?)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let producers: usize = args
        .first()
        .map_or(Ok(4), |a| a.parse())
        .context("producers")?;
    let rows: usize = args
        .get(1)
        .map_or(Ok(1000), |a| a.parse())
        .context("rows per batch")?;
    let seconds: u64 = args
        .get(2)
        .map_or(Ok(5), |a| a.parse())
        .context("seconds")?;
    let scratch = tempfile::tempdir_in(args.get(3).map_or(".", String::as_str))?;
    let log = Arc::new(StreamLog::open(scratch.path(), schema(), LogOptions::default(), 0).await?);
    let bytes_per_batch = batch(0, 0, rows)?.get_array_memory_size();

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..producers)
        .map(|producer| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut next = 0i64;
                while Instant::now() < deadline {
                    let b = batch(producer, next, rows)?;
                    next += rows as i64;
                    let sent = Instant::now();
                    log.append(b).await?;
                    latencies.push(sent.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let total_rows = log.rows() as f64;
    println!(
        "producers={producers} rows/batch={rows} appends={} rows={} elapsed={elapsed:.1}s",
        latencies.len(),
        log.rows()
    );
    println!(
        "throughput: {:.0} rows/s, {:.1} MB/s (in-memory Arrow size), {:.0} commit groups/s",
        total_rows / elapsed,
        latencies.len() as f64 * bytes_per_batch as f64 / elapsed / 1e6,
        log.commit_groups() as f64 / elapsed
    );
    println!(
        "ack latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        percentile(&latencies, 1.0).as_secs_f64() * 1e3
    );
    Ok(())
}
