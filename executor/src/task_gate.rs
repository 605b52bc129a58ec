//! Counts the plan-fragment tasks an executor runs and refuses new ones while it drains.
//!
//! datafusion-distributed opens one `CoordinatorChannel` stream per task and keeps it open until
//! the task ends, so a task runs exactly as long as that response body lives. The gate admits a
//! task through [`ExecutorState::try_start_task`] and ties the returned guard to the body.
//!
//! That holds because Basin runs with metrics collection on (datafusion-distributed's default):
//! the worker keeps the channel open to send the task's metrics when the coordinator ends the
//! query. With collection off the channel would close early and drain could stop too soon.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;

use crate::state::{ExecutorState, TaskGuard};

/// The gRPC method that starts a task.
const TASK_METHOD: &str = "/CoordinatorChannel";

#[derive(Clone)]
pub(crate) struct TaskGate<S> {
    inner: S,
    state: Arc<ExecutorState>,
}

impl<S> TaskGate<S> {
    pub(crate) fn new(inner: S, state: Arc<ExecutorState>) -> Self {
        Self { inner, state }
    }
}

impl<S: NamedService> NamedService for TaskGate<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for TaskGate<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if !request.uri().path().ends_with(TASK_METHOD) {
            return Box::pin(self.inner.call(request));
        }
        let Some(guard) = self.state.try_start_task() else {
            let refused = Status::unavailable("executor is draining: it takes no new tasks");
            return Box::pin(async move { Ok(refused.into_http()) });
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| {
                Body::new(GuardedBody {
                    inner: body,
                    _guard: guard,
                })
            }))
        })
    }
}

/// A response body that keeps its task counted as running until it is dropped.
struct GuardedBody {
    inner: Body,
    _guard: TaskGuard,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
