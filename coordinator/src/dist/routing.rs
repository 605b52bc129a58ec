//! Which executors a distributed query runs on: the worker list comes from the membership
//! registry (live executors only, read synchronously as the planner requires), and each stage's
//! tasks are placed by a deterministic rotation so `EXPLAIN` can name the executor of each task
//! and a query's assignments can be recorded for retries and `basin.queries`.

use std::sync::{Arc, Mutex};

use basin_proto::ExecutorId;
use datafusion::common::{DataFusionError, exec_err};
use datafusion_distributed::{
    RouteTasksEvent, RouteTasksEventResponse, RouteTasksHandler, WorkerResolver,
};
use url::Url;

use crate::membership::Membership;

/// The live executors as (id, url), ordered by id. URLs that do not parse are skipped (they were
/// validated at registration, so this does not happen in practice).
pub(crate) fn live_workers(membership: &Membership) -> Vec<(ExecutorId, Url)> {
    membership
        .live_urls()
        .into_iter()
        .filter_map(|(id, url)| Url::parse(&url).ok().map(|url| (id, url)))
        .collect()
}

/// Gives the distributed planner the live executors.
#[derive(Clone)]
pub(crate) struct MembershipResolver(pub(crate) Arc<Membership>);

impl WorkerResolver for MembershipResolver {
    fn get_urls(&self) -> Result<Vec<Url>, DataFusionError> {
        Ok(live_workers(&self.0)
            .into_iter()
            .map(|(_, url)| url)
            .collect())
    }
}

/// Task `i` of every stage goes to worker `(offset + i) mod n`. One query keeps one offset, so
/// its stages line up on the same executors; different queries start at different executors.
pub(crate) fn place(offset: usize, task: usize, workers: usize) -> usize {
    (offset + task) % workers.max(1)
}

/// Per-query routing state, carried in the query's task context: the rotation offset and the
/// executors tasks were actually sent to.
#[derive(Debug, Default)]
pub(crate) struct QueryRouting {
    pub(crate) offset: usize,
    used: Mutex<Vec<(ExecutorId, Url)>>,
}

impl QueryRouting {
    pub(crate) fn new(offset: usize) -> Self {
        Self {
            offset,
            used: Mutex::new(Vec::new()),
        }
    }

    /// Executors at least one task of this query was sent to.
    pub(crate) fn used(&self) -> Vec<(ExecutorId, Url)> {
        self.used.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn record(&self, worker: &(ExecutorId, Url)) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if !used.iter().any(|(id, _)| id == &worker.0) {
            used.push(worker.clone());
        }
    }
}

/// The route handler: places each stage's tasks over the executors live at execution time.
pub(crate) struct Router(pub(crate) Arc<Membership>);

impl RouteTasksHandler for Router {
    fn handle(
        &self,
        ev: RouteTasksEvent<'_>,
    ) -> Option<datafusion::common::Result<RouteTasksEventResponse>> {
        let workers = live_workers(&self.0);
        if workers.is_empty() {
            return Some(exec_err!(
                "{}; see basin.executors",
                super::failure::NO_EXECUTORS
            ));
        }
        let routing = ev.task_ctx.session_config().get_extension::<QueryRouting>();
        let offset = routing.as_ref().map_or(0, |r| r.offset);
        let urls = (0..ev.task_count)
            .map(|task| {
                let worker = &workers[place(offset, task, workers.len())];
                if let Some(routing) = &routing {
                    routing.record(worker);
                }
                worker.1.clone()
            })
            .collect();
        Some(Ok(RouteTasksEventResponse::new(urls)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_spreads_tasks() {
        assert_eq!(
            (0..4).map(|t| place(1, t, 3)).collect::<Vec<_>>(),
            vec![1, 2, 0, 1]
        );
        assert_eq!(place(5, 0, 0), 0);
    }
}
