//! The fuzz targets of the catalog's decoders, replayed from their committed crash regressions
//! and seeds (`fuzz/`, docs/reliability.md "Fuzzing"): stream log segments, Arrow IPC streams,
//! Parquet lake files, SQL text to a plan in Basin's session.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "Basin and harness files shared with the fuzz crate, which use all of them"
)]

#[path = "../../fuzz/harness/arrow_ipc.rs"]
mod arrow_ipc;
#[path = "../src/stream_log_frames.rs"]
mod frames;
#[path = "../src/ipc.rs"]
mod ipc;
#[path = "../../fuzz/harness/parquet_footer.rs"]
mod parquet_footer;
#[path = "../src/parquet_footer_check.rs"]
mod parquet_footer_check;
#[path = "../../fuzz/harness/replay.rs"]
mod replay;
#[path = "../../fuzz/harness/sql_to_plan.rs"]
mod sql_to_plan;
#[path = "../../fuzz/harness/stream_log.rs"]
mod stream_log;

#[test]
fn stream_log_regressions() {
    replay::replay("stream_log", stream_log::run);
}

#[test]
fn arrow_ipc_regressions() {
    replay::replay("arrow_ipc", arrow_ipc::run);
}

#[test]
fn parquet_footer_regressions() {
    replay::replay("parquet_footer", parquet_footer::run);
}

#[test]
fn sql_to_plan_regressions() {
    replay::replay("sql_to_plan", sql_to_plan::run);
}

/// Writes the seed corpora of the catalog's targets from real encoders:
/// `cargo test -p basin-catalog --test fuzz_regressions -- --ignored write_seeds`.
#[test]
#[ignore = "writes fuzz/seeds; run by hand when the formats change"]
fn write_seeds() {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let schema = Arc::clone(stream_log::schema());
    let batch = |rows: i64| {
        RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows)),
                Arc::new(StringArray::from_iter(
                    (0..rows).map(|i| (i % 3 != 0).then(|| format!("n{i}"))),
                )),
                Arc::new(
                    TimestampMicrosecondArray::from_iter((0..rows).map(|i| Some(i * 1000)))
                        .with_timezone("UTC"),
                ),
            ],
        )
        .expect("a batch")
    };
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = seeds.join(target);
        std::fs::create_dir_all(&dir).expect("seed dir");
        std::fs::write(dir.join(name), bytes).expect("write seed");
    };
    let payload = ipc::encode_batch(&batch(3)).expect("encode");
    write("arrow_ipc", "seed-batch", &payload);
    write(
        "arrow_ipc",
        "seed-schema",
        &ipc::encode_schema(&schema).expect("schema"),
    );
    let mut segment = vec![3u8];
    for rows in [2, 3] {
        let payload = ipc::encode_batch(&batch(rows)).expect("encode");
        let rows = usize::try_from(rows).expect("rows");
        segment.extend(frames::encode_frame(&payload, rows).expect("frame"));
    }
    write("stream_log", "seed-two-frames", &segment);
    let mut file = Vec::new();
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(4))
        .build();
    let mut writer =
        ArrowWriter::try_new(&mut file, Arc::clone(&schema), Some(properties)).expect("writer");
    writer.write(&batch(10)).expect("write");
    writer.close().expect("close");
    write("parquet_footer", "seed-lake-file", &file);
}
