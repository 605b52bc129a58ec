//! State shared by the executor's gRPC service and its control-plane loop: who it is, whether it
//! is draining, and how many tasks are running.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use basin_proto::ExecutorId;
use tokio::sync::Notify;

#[derive(Debug)]
pub(crate) struct ExecutorState {
    id: ExecutorId,
    draining: AtomicBool,
    running_tasks: AtomicU32,
    /// Woken whenever a task finishes, so draining can wait for the last one.
    task_finished: Notify,
}

impl ExecutorState {
    pub(crate) fn new(id: ExecutorId) -> Self {
        Self {
            id,
            draining: AtomicBool::new(false),
            running_tasks: AtomicU32::new(0),
            task_finished: Notify::new(),
        }
    }

    pub(crate) fn id(&self) -> &ExecutorId {
        &self.id
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub(crate) fn running_tasks(&self) -> u32 {
        self.running_tasks.load(Ordering::SeqCst)
    }

    /// Stops accepting new tasks; running ones continue.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Admits a new task unless the executor is draining. The task counts as running until the
    /// returned guard is dropped.
    pub(crate) fn try_start_task(self: &Arc<Self>) -> Option<TaskGuard> {
        self.running_tasks.fetch_add(1, Ordering::SeqCst);
        // Checked after counting, so a concurrent drain either sees this task or we see it.
        if self.is_draining() {
            self.finish_task();
            return None;
        }
        Some(TaskGuard {
            state: Arc::clone(self),
        })
    }

    /// Resolves once no task is running. Call after [`Self::start_draining`].
    pub(crate) async fn wait_idle(&self) {
        loop {
            let finished = self.task_finished.notified();
            if self.running_tasks() == 0 {
                return;
            }
            finished.await;
        }
    }

    fn finish_task(&self) {
        self.running_tasks.fetch_sub(1, Ordering::SeqCst);
        self.task_finished.notify_waiters();
    }
}

/// A running task; dropping it marks the task finished.
#[derive(Debug)]
pub(crate) struct TaskGuard {
    state: Arc<ExecutorState>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.state.finish_task();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn draining_refuses_new_tasks_and_waits_for_running_ones() {
        let state = Arc::new(ExecutorState::new(ExecutorId::new("exec-test")));
        let task = state.try_start_task().expect("not draining yet");
        assert_eq!(state.running_tasks(), 1);

        state.start_draining();
        assert!(
            state.try_start_task().is_none(),
            "draining takes no new work"
        );
        assert_eq!(state.running_tasks(), 1);

        let waiter = tokio::spawn({
            let state = Arc::clone(&state);
            async move { state.wait_idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "a task is still running");
        drop(task);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("wait_idle resolves once the task finishes")
            .expect("waiter task does not panic");
        assert_eq!(state.running_tasks(), 0);
    }
}
