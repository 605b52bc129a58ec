//! Query execution on its own threads.
//!
//! DataFusion's operators run inside `poll`, and some of them (a cross join producing a huge
//! batch, a sort merge, a scalar function building a gigabyte string) hold a thread for seconds
//! before they yield. On the runtime that also serves the Postgres wire, the control plane and
//! timers, that froze every session, the executors' heartbeats and even the timer that fires
//! `statement_timeout`. Query streams are therefore driven on a separate multi-threaded
//! runtime (DataFusion's advice for mixing CPU-bound and I/O work): the operating system shares
//! the cores between its threads and the network's, a timed-out statement is answered on time,
//! and dropping the result stream aborts the work at its next yield.
//!
//! A dropped stream stops its tasks only when they next yield, and an operator that emits many
//! batches from data it already holds (a cross join, an unnest, a join that explodes) never
//! returned `Pending`: a query cancelled by `statement_timeout` ran on for minutes. Every
//! operator of a single-node plan is therefore wrapped in DataFusion's `CooperativeExec`, which
//! spends Tokio's task budget per batch and so yields, and lets the abort land, every few
//! batches.
//!
//! There are two such runtimes, one per CPU priority class (`query_priority.rs`): small,
//! bounded plans run on the interactive one, everything else on the batch one, whose threads
//! yield the cores to interactive work.
//!
//! Planning is CPU work too, and DataFusion's analyzer and optimizer do not yield: a statement
//! that takes seconds to plan (huge constant folding, a regex compiled from a 1 MB pattern)
//! runs through [`off_server`], on a blocking thread of the query runtime, so the server's
//! threads keep answering and `statement_timeout` fires on time.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use tokio::runtime::{Builder, Runtime};

use crate::query_priority::Priority;

/// Batches a query may run ahead of its reader.
const AHEAD: usize = 2;
/// Interactive runtime workers per core.
const INTERACTIVE_WORKERS_PER_CORE: usize = 4;
/// Batch runtime workers per core. One: a large query's partitions then stay on as many
/// threads as there are cores, as in DataFusion's own runtime, instead of being spread (and
/// woken) across four times as many. Measured on Dec 7 (release, 2 cores, TPC-H SF1, `basin
/// bench tpch --runs 3` against servers differing only in this): geomean 1.05x and 1.06x
/// single-node DataFusion's with 4 per core, 0.98x and 1.01x with 1, 1.08x with 2. Batch work
/// does not need spare workers for responsiveness: interactive queries have their own runtime,
/// and every operator yields (`cooperative`).
const BATCH_WORKERS_PER_CORE: usize = 1;

/// Nice value of the batch runtime's threads (see `query_priority`).
const BATCH_NICE: i32 = 19;

fn runtime(priority: Priority) -> Option<&'static Runtime> {
    static INTERACTIVE: OnceLock<Option<Runtime>> = OnceLock::new();
    static BATCH: OnceLock<Option<Runtime>> = OnceLock::new();
    let (cell, name, per_core) = match priority {
        Priority::Interactive => (&INTERACTIVE, "basin-query", INTERACTIVE_WORKERS_PER_CORE),
        Priority::Batch => (&BATCH, "basin-batch", BATCH_WORKERS_PER_CORE),
    };
    cell.get_or_init(|| {
        // More interactive workers than cores: an operator that holds its worker for a while
        // (a sort merge, a cross join's batch, a cancelled query running on to its next
        // yield) must not leave a small query queued behind it; the OS shares the cores
        // instead.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut builder = Builder::new_multi_thread();
        builder
            .worker_threads(cores * per_core)
            .thread_name(name)
            // Operators over deep expressions recurse too (see the server runtime's).
            .thread_stack_size(256 << 20)
            .enable_all();
        if priority == Priority::Batch {
            builder.on_thread_start(lower_this_threads_priority);
        }
        builder
            .build()
            .inspect_err(
                |err| tracing::warn!(error = %err, "no query runtime; queries share the server's"),
            )
            .ok()
    })
    .as_ref()
}

/// Gives the calling thread the batch class's CPU priority (Linux nice values are per thread).
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    if let Err(error) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), BATCH_NICE)
    {
        tracing::debug!(%error, "could not lower a batch thread's priority");
    }
}

/// `plan` executed on the query runtime: its tasks are spawned there and its output stream is
/// polled there, the batches handed over through a small channel.
pub(crate) fn execute_stream(
    plan: Arc<dyn ExecutionPlan>,
    ctx: Arc<TaskContext>,
) -> Result<SendableRecordBatchStream> {
    let Some(runtime) = runtime(Priority::of_plan(&plan)) else {
        return datafusion::physical_plan::execute_stream(plan, ctx);
    };
    let plan = cooperative(plan)?;
    let schema = plan.schema();
    let mut stream = {
        let _on_query_runtime = runtime.enter();
        datafusion::physical_plan::execute_stream(plan, ctx)?
    };
    let (sender, receiver) = tokio::sync::mpsc::channel(AHEAD);
    let task = runtime.spawn(async move {
        while let Some(item) = stream.next().await {
            let failed = item.is_err();
            if sender.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    let abort = AbortOnDrop(task.abort_handle());
    let batches = futures::stream::unfold((receiver, abort), |(mut receiver, abort)| async move {
        let item = receiver.recv().await?;
        Some((item, (receiver, abort)))
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
}

/// `plan` with every operator's output passing through a [`CooperativeExec`] (leaves already
/// are: DataFusion's `EnsureCooperative` rule). Distributed plans are left as they are: their
/// stages are encoded for the executors.
fn cooperative(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let mut distributed = false;
    plan.apply(|node| {
        if node.is::<datafusion_distributed::DistributedExec>() {
            distributed = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if distributed {
        return Ok(plan);
    }
    plan.transform_up(|node| {
        if node.children().is_empty() || node.is::<CooperativeExec>() {
            return Ok(Transformed::no(node));
        }
        let wrapped: Arc<dyn ExecutionPlan> = Arc::new(CooperativeExec::new(node));
        Ok(Transformed::yes(wrapped))
    })
    .map(|transformed| transformed.data)
}

/// Aborts the driving task when the reader goes away (a cancel, a timeout, a closed portal).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `work` (planning a statement and starting it) on a blocking thread of the query runtime
/// and waits for it; dropping the returned future aborts `work` at its next yield. A panic in
/// `work` comes back as the panic's message.
pub(crate) async fn off_server<F, T>(priority: Priority, work: F) -> std::result::Result<T, String>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let Some(runtime) = runtime(priority) else {
        return Ok(work.await);
    };
    let handle = runtime.handle().clone();
    let (work, abort) = futures::future::abortable(work);
    let cancelled = Arc::new(AtomicBool::new(false));
    let _abort = AbortWorkOnDrop(abort, Arc::clone(&cancelled));
    let span = tracing::Span::current();
    let joined = runtime
        .spawn_blocking(move || {
            let _span = span.enter();
            basin_catalog::cancellation::run_cancellable(cancelled, || handle.block_on(work))
        })
        .await;
    match joined {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(futures::future::Aborted)) => Err("the statement was aborted".to_owned()),
        Err(err) if err.is_panic() => {
            let payload = err.into_panic();
            Err(payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned()))
        }
        Err(err) => Err(err.to_string()),
    }
}

/// Aborts the work at its next yield and marks its thread cancelled, which stops the synchronous
/// work that never yields at Basin's next check (see [`basin_catalog::cancellation`]).
struct AbortWorkOnDrop(futures::future::AbortHandle, Arc<AtomicBool>);

impl Drop for AbortWorkOnDrop {
    fn drop(&mut self) {
        self.1.store(true, Ordering::Relaxed);
        self.0.abort();
    }
}
