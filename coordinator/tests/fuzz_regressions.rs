//! The fuzz targets of the coordinator's inputs, replayed from their committed crash
//! regressions and seeds (`fuzz/`, docs/reliability.md "Fuzzing"): the Postgres front end in
//! every connection state, and FlightData as `DoPut` ingest decodes it.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "Basin and harness files shared with the fuzz crate, which use all of them"
)]

#[path = "../src/pgwire/cork.rs"]
mod cork;
#[path = "../../fuzz/harness/flight_data.rs"]
mod flight_data;
#[path = "../src/pgwire/frame_guard.rs"]
mod frame_guard;
#[path = "../src/pgwire/message_loop.rs"]
mod message_loop;
#[path = "../../fuzz/harness/pgwire_frontend.rs"]
mod pgwire_frontend;
#[path = "../../fuzz/harness/replay.rs"]
mod replay;

use basin_catalog::ipc;

#[test]
fn pgwire_frontend_regressions() {
    replay::replay("pgwire_frontend", pgwire_frontend::run);
}

#[test]
fn flight_data_regressions() {
    replay::replay("flight_data", flight_data::run);
}

/// Writes the FlightData seed corpus from arrow-flight's own encoder:
/// `cargo test -p basin-coordinator --test fuzz_regressions -- --ignored write_seeds`.
#[test]
#[ignore = "writes fuzz/seeds; run by hand when the format changes"]
fn write_seeds() {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow_flight::encode::FlightDataEncoderBuilder;
    use futures::StreamExt;
    use prost::Message;

    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
        ],
    )
    .expect("a batch");
    let batches = futures::stream::iter([Ok(batch.clone()), Ok(batch)]);
    let messages: Vec<_> = futures::executor::block_on(
        FlightDataEncoderBuilder::new()
            .build(batches)
            .collect::<Vec<_>>(),
    );
    let mut seed = Vec::new();
    for message in messages {
        let bytes = message.expect("encode").encode_to_vec();
        seed.extend_from_slice(&u16::try_from(bytes.len()).expect("small").to_le_bytes());
        seed.extend_from_slice(&bytes);
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/flight_data");
    std::fs::create_dir_all(&dir).expect("seed dir");
    std::fs::write(dir.join("seed-schema-two-batches"), seed).expect("write seed");
}
