//! A subscriber's view of a change feed: the view's rows at the epoch it subscribed (unless it
//! asked for changes only), then every later epoch's deletes and inserts, in epoch order,
//! until the subscriber goes away, falls too far behind, or the view is dropped.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::RecordBatch;
use basin_catalog::model::Oid;
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::{Changes, Manager};

/// Rows of one epoch with one operation.
#[derive(Debug, Clone)]
pub(crate) struct FeedBatch {
    pub(crate) epoch: u64,
    /// `insert` or `delete`.
    pub(crate) op: &'static str,
    pub(crate) rows: RecordBatch,
}

struct State {
    pending: VecDeque<FeedBatch>,
    receiver: tokio::sync::broadcast::Receiver<Arc<Changes>>,
    after: u64,
    done: bool,
}

/// Opens the feed of view `oid` (named `name` in messages).
pub(crate) async fn open(
    manager: &Manager,
    oid: Oid,
    name: &str,
    snapshot: bool,
) -> Result<impl Stream<Item = Result<FeedBatch, String>> + Send + 'static, String> {
    let (receiver, committed) = manager.subscribe(oid).await;
    let Some(contents) = committed.views.get(&oid) else {
        return Err(format!(
            "materialized view \"{name}\" is not ready yet: it is still being built or recovered"
        ));
    };
    let mut pending = VecDeque::new();
    if snapshot {
        pending.extend(contents.batches.iter().map(|rows| FeedBatch {
            epoch: committed.epoch,
            op: "insert",
            rows: rows.clone(),
        }));
    }
    let name = name.to_owned();
    let state = State {
        pending,
        receiver,
        after: committed.epoch,
        done: false,
    };
    Ok(futures::stream::unfold(state, move |mut state| {
        let name = name.clone();
        async move {
            loop {
                if let Some(batch) = state.pending.pop_front() {
                    return Some((Ok(batch), state));
                }
                if state.done {
                    return None;
                }
                match state.receiver.recv().await {
                    Ok(changes) if changes.epoch > state.after => {
                        let epoch = changes.epoch;
                        let deletes = changes.deletes.iter().map(|rows| FeedBatch {
                            epoch,
                            op: "delete",
                            rows: rows.clone(),
                        });
                        let inserts = changes.inserts.iter().map(|rows| FeedBatch {
                            epoch,
                            op: "insert",
                            rows: rows.clone(),
                        });
                        state.pending.extend(deletes.chain(inserts));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        state.done = true;
                        return Some((
                            Err(format!(
                                "subscriber of \"{name}\" fell behind by {missed} change batches; \
                                 subscribe again"
                            )),
                            state,
                        ));
                    }
                    Err(RecvError::Closed) => {
                        state.done = true;
                        return Some((
                            Err(format!("materialized view \"{name}\" was dropped")),
                            state,
                        ));
                    }
                }
            }
        }
    }))
}
