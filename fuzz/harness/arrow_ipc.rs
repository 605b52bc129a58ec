//! Fuzz entry for the Arrow IPC streams Basin decodes from the network: `decode_schema` and
//! `decode_batch` (`catalog/src/ipc.rs`), which the executors run on a shard's schema from the
//! coordinator (`executor/src/shards.rs`) and on every appended batch (`StreamLog::append_ipc`),
//! and the coordinator on batches from shard hosts (`coordinator/src/shard_hosts.rs`).
//!
//! Used by `fuzz/fuzz_targets/arrow_ipc.rs` and by `catalog/tests/fuzz_regressions.rs`; the
//! including crate declares `ipc` (the Basin file) next to this module.

use super::ipc;

pub(crate) fn run(input: &[u8]) {
    let _ = ipc::decode_schema(input);
    if let Ok(batch) = ipc::decode_batch(input) {
        // What the receiver does next: compare with the table, size it.
        let _ = batch.get_array_memory_size();
    }
}
