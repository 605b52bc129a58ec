//! The Postgres front end on pgwire 0.42: our own connection loop and framing checks, start-up
//! and authentication, simple and extended query handlers, `COPY ... FROM STDIN`, Arrow-to-wire
//! encoding and parameter decoding. pgwire's types stay inside this module.

mod connection;
mod copy;
mod copy_out;
mod cork;
mod encode;
mod errors;
mod execution;
mod frame_guard;
mod handler;
mod message_loop;
mod params;
mod startup;
pub(crate) mod types;

use std::sync::Arc;

use async_trait::async_trait;
use pgwire::api::cancel::CancelHandler;
use pgwire::messages::cancel::CancelRequest;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::ServerState;

/// Matches CancelRequests against live sessions.
pub(crate) struct CancelRequests(Arc<ServerState>);

#[async_trait]
impl CancelHandler for CancelRequests {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let cancelled = self.0.cancel(request.pid, &request.secret_key.to_bytes());
        tracing::info!(pid = request.pid, cancelled, "cancel request");
    }
}

/// Accepts Postgres connections until `shutdown` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    server: Arc<ServerState>,
    shutdown: CancellationToken,
) {
    let handlers = Arc::new(connection::Handlers {
        startup: Arc::new(startup::BasinStartup::new(Arc::clone(&server))),
        queries: Arc::new(handler::QueryHandler::new()),
        cancel: Arc::new(CancelRequests(Arc::clone(&server))),
        copy: Arc::new(copy::CopyIn),
        max_message_bytes: server.config.max_message_bytes,
    });
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(connection::serve_connection(stream, peer, Arc::clone(&handlers)));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}
