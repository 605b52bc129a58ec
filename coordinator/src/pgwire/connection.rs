//! One client connection. The message loop is ours rather than pgwire's `process_socket` so
//! that frames are validated before decoding ([`GuardedStream`]), malformed input gets SQLSTATE
//! 08P01 before the connection closes ([`message_loop`]), and a panic in one connection's task is
//! contained and logged while every other connection carries on.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use pgwire::api::DefaultClient;
use pgwire::tokio::server::PgWireMessageServerCodec;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::CancelRequests;
use super::copy::CopyIn;
use super::cork::Corked;
use super::frame_guard::GuardedStream;
use super::handler::QueryHandler;
use super::message_loop::{self, LoopHandlers};
use super::startup::BasinStartup;

pub(crate) struct Handlers {
    pub(crate) startup: Arc<BasinStartup>,
    pub(crate) queries: Arc<QueryHandler>,
    pub(crate) cancel: Arc<CancelRequests>,
    pub(crate) copy: Arc<CopyIn>,
    pub(crate) max_message_bytes: usize,
}

/// Runs one connection to completion; never panics outward.
pub(crate) async fn serve_connection(stream: TcpStream, peer: SocketAddr, handlers: Arc<Handlers>) {
    let outcome = AssertUnwindSafe(run(stream, peer, &handlers))
        .catch_unwind()
        .await;
    match outcome {
        Ok(Ok(())) => tracing::debug!(%peer, "connection closed"),
        Ok(Err(error)) => tracing::debug!(%peer, %error, "connection ended with an i/o error"),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            tracing::error!(%peer, panic = %message, "connection task panicked; closed that connection only");
        }
    }
}

async fn run(stream: TcpStream, peer: SocketAddr, handlers: &Handlers) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let io = Corked::new(GuardedStream::new(stream, handlers.max_message_bytes));
    let socket = Framed::new(
        io,
        PgWireMessageServerCodec::new(DefaultClient::new(peer, false)),
    );
    let handlers = LoopHandlers {
        startup: Arc::clone(&handlers.startup),
        simple: Arc::clone(&handlers.queries),
        extended: Arc::clone(&handlers.queries),
        copy: Arc::clone(&handlers.copy),
        cancel: Arc::clone(&handlers.cancel),
    };
    message_loop::serve(socket, peer, &handlers).await
}
