//! The per-connection message loop. It is ours rather than pgwire's `process_socket` so that
//! frames are validated before decoding ([`GuardedStream`]), malformed input gets SQLSTATE
//! 08P01 before the connection closes, and a panic in one connection's task is contained and
//! logged while every other connection carries on.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, SinkExt, StreamExt};
use pgwire::api::{ClientInfo, DefaultClient, PgWireConnectionState};
use pgwire::error::ErrorInfo;
use pgwire::messages::response::{GssEncResponse, SslResponse};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage, SslNegotiationMetaMessage};
use pgwire::tokio::server::{PgWireMessageServerCodec, process_error, process_message};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::CancelRequests;
use super::copy::CopyIn;
use super::frame_guard::GuardedStream;
use super::handler::QueryHandler;
use super::startup::BasinStartup;

/// How long a client may take to finish start-up, as PostgreSQL's `authentication_timeout`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

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
    let io = GuardedStream::new(stream, handlers.max_message_bytes);
    let mut socket = Framed::new(
        io,
        PgWireMessageServerCodec::new(DefaultClient::new(peer, false)),
    );
    let deadline = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(deadline);
    loop {
        let in_startup = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingSslRequest
                | PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        // pgwire's body decoders panic on some malformed bodies whose length is in bounds;
        // such a panic is a malformed message like any other.
        let decoded = AssertUnwindSafe(socket.next()).catch_unwind();
        let next = if in_startup {
            tokio::select! {
                () = &mut deadline => {
                    tracing::debug!(%peer, "start-up timed out");
                    return Ok(());
                }
                next = decoded => next,
            }
        } else {
            decoded.await
        };
        let next = match next {
            Ok(next) => next,
            Err(_) => Some(Err(pgwire::error::PgWireError::IoError(
                std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed message body"),
            ))),
        };
        let message = match next {
            None => return Ok(()),
            Some(Err(error)) => {
                // A malformed frame: say why, as PostgreSQL does, and close this connection.
                let info = ErrorInfo::new(
                    "FATAL".to_owned(),
                    "08P01".to_owned(),
                    format!("invalid frontend message: {error}"),
                );
                let _ = socket
                    .send(PgWireBackendMessage::ErrorResponse(info.into()))
                    .await;
                tracing::info!(%peer, %error, "closed connection after a malformed message");
                return Ok(());
            }
            Some(Ok(message)) => message,
        };
        match message {
            PgWireFrontendMessage::SslNegotiation(request) => match request {
                SslNegotiationMetaMessage::PostgresSsl(_) => {
                    socket
                        .send(PgWireBackendMessage::SslResponse(SslResponse::Refuse))
                        .await?;
                }
                SslNegotiationMetaMessage::PostgresGss(_) => {
                    socket
                        .send(PgWireBackendMessage::GssEncResponse(GssEncResponse::Refuse))
                        .await?;
                }
                SslNegotiationMetaMessage::None => {
                    socket.set_state(PgWireConnectionState::AwaitingStartup);
                }
            },
            PgWireFrontendMessage::Terminate(_) => return Ok(()),
            message => {
                let is_extended = match socket.state() {
                    PgWireConnectionState::CopyInProgress(extended) => extended,
                    _ => message.is_extended_query(),
                };
                let is_cancel = matches!(message, PgWireFrontendMessage::CancelRequest(_));
                let result = process_message(
                    message,
                    &mut socket,
                    Arc::clone(&handlers.startup),
                    Arc::clone(&handlers.queries),
                    Arc::clone(&handlers.queries),
                    Arc::clone(&handlers.copy),
                    Arc::clone(&handlers.cancel),
                )
                .await;
                if let Err(error) = result {
                    let fatal = error.is_fatal() || in_startup;
                    process_error(&mut socket, error, is_extended).await?;
                    if fatal {
                        return Ok(());
                    }
                }
                if is_cancel {
                    return Ok(());
                }
            }
        }
    }
}
