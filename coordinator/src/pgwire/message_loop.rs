//! The per-connection message loop, generic over the byte stream and the handlers: the server
//! runs it over a [`GuardedStream`](super::frame_guard::GuardedStream) of a TCP socket with
//! Basin's handlers (`connection.rs`); the fuzz target `pgwire_frontend` (`fuzz/`) compiles this
//! very file with `#[path]` and runs it over in-memory input with stand-in handlers, so what is
//! fuzzed is the decoding and state handling of the real loop, without building DataFusion.
//! Needs only `pgwire`, `tokio`, `tokio-util`, `futures` and `tracing`.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, SinkExt, StreamExt};
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::ErrorInfo;
use pgwire::messages::response::{GssEncResponse, SslResponse};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage, SslNegotiationMetaMessage};
use pgwire::tokio::server::{PgWireMessageServerCodec, process_error, process_message};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use super::cork::Corked;

/// How long a client may take to finish start-up, as PostgreSQL's `authentication_timeout`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// What the loop hands each decoded message to.
pub(crate) struct LoopHandlers<A, Q, EQ, C, CR> {
    pub(crate) startup: Arc<A>,
    pub(crate) simple: Arc<Q>,
    pub(crate) extended: Arc<EQ>,
    pub(crate) copy: Arc<C>,
    pub(crate) cancel: Arc<CR>,
}

/// Reads, decodes and dispatches messages until the client leaves, sends a malformed message
/// or fails start-up. Errors are i/o errors writing to the client.
pub(crate) async fn serve<S, A, Q, EQ, C, CR>(
    mut socket: Framed<Corked<S>, PgWireMessageServerCodec<EQ::Statement>>,
    peer: SocketAddr,
    handlers: &LoopHandlers<A, Q, EQ, C, CR>,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
    A: StartupHandler,
    Q: SimpleQueryHandler,
    EQ: ExtendedQueryHandler,
    C: CopyHandler,
    CR: CancelHandler,
{
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
        // such a panic is a malformed message like any other. (The frame guard rejects every
        // one the fuzzers found; this stays as defence in depth.)
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
                socket.get_mut().set_cork(false);
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
                // The replies to these wait for the next Sync or Flush (see `cork`).
                let cork = matches!(
                    message,
                    PgWireFrontendMessage::Parse(_)
                        | PgWireFrontendMessage::Bind(_)
                        | PgWireFrontendMessage::Describe(_)
                        | PgWireFrontendMessage::Close(_)
                );
                socket.get_mut().set_cork(cork);
                let is_extended = match socket.state() {
                    PgWireConnectionState::CopyInProgress(extended) => extended,
                    _ => message.is_extended_query(),
                };
                let is_cancel = matches!(message, PgWireFrontendMessage::CancelRequest(_));
                let result = process_message(
                    message,
                    &mut socket,
                    Arc::clone(&handlers.startup),
                    Arc::clone(&handlers.simple),
                    Arc::clone(&handlers.extended),
                    Arc::clone(&handlers.copy),
                    Arc::clone(&handlers.cancel),
                )
                .await;
                if let Err(error) = result {
                    let fatal = error.is_fatal() || in_startup;
                    // An error goes out at once with whatever was corked before it, as
                    // PostgreSQL flushes every error report: a client that sent Flush (or
                    // nothing) after a failing Parse waits for it.
                    socket.get_mut().set_cork(false);
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
