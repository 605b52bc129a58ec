//! Fuzz entry for FlightData on the receiving side: a stream of `FlightData` messages, each
//! decoded from protobuf as tonic does, into arrow-flight's `FlightRecordBatchStream` (over
//! `FlightDataDecoder`), each message first checked by `ipc::MessageCheck::check_flight_data`
//! (`catalog/src/ipc.rs`) as the coordinator's `DoPut` ingest does (`coordinator/src/flight.rs`).
//! Executors reading shuffle streams from their peers (`datafusion-distributed`'s worker
//! client) decode without that check: the peers are the cluster's own executors.
//!
//! Input: a sequence of `u16 LE length | protobuf FlightData` records.
//!
//! Used by `fuzz/fuzz_targets/flight_data.rs` and by `executor/tests/fuzz_regressions.rs`.

use arrow_flight::FlightData;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use futures::StreamExt;
use prost::Message;

use super::ipc;

pub(crate) fn run(input: &[u8]) {
    let mut messages: Vec<Result<FlightData, FlightError>> = Vec::new();
    let mut rest = input;
    let mut check = ipc::MessageCheck::default();
    while let [a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
        let (record, tail) = tail.split_at(len);
        rest = tail;
        match FlightData::decode(record) {
            Ok(message) => {
                if let Err(error) =
                    check.check_flight_data(&message.data_header, &message.data_body)
                {
                    // DoPut fails the stream there.
                    messages.push(Err(FlightError::Arrow(error)));
                    break;
                }
                messages.push(Ok(message));
            }
            // tonic ends the stream with a status on a message that does not decode.
            Err(error) => {
                messages.push(Err(FlightError::DecodeError(error.to_string())));
                break;
            }
        }
    }
    let mut stream = FlightRecordBatchStream::new_from_flight_data(futures::stream::iter(messages));
    futures::executor::block_on(async {
        while let Some(item) = stream.next().await {
            if item.is_err() {
                break;
            }
        }
    });
}
