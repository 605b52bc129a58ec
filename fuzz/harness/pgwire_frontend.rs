//! Fuzz entry for the Postgres front end: the bytes a client sends, through the server's own
//! stack: [`GuardedStream`] (frame checks, `coordinator/src/pgwire/frame_guard.rs`) under
//! [`Corked`] (`cork.rs`), pgwire's
//! `PgWireMessageServerCodec` in `Framed`, and the message loop
//! (`coordinator/src/pgwire/message_loop.rs`) with pgwire's `process_message`. Every connection
//! state is reached: SSL/GSS negotiation, startup (and CancelRequest), SCRAM-SHA-256
//! authentication (SASLInitialResponse / SASLResponse through pgwire's SCRAM handler, configured
//! as Basin configures it), normal simple and extended query messages, and COPY FROM STDIN.
//! Basin's query and COPY handlers need DataFusion; stand-ins take their place and only decide
//! the state transitions (a query starting with `COPY` enters COPY-in, as Basin's does).
//!
//! Used by `fuzz/fuzz_targets/pgwire_frontend.rs` and, for crash regressions, by
//! `coordinator/tests/fuzz_regressions.rs`; the including crate declares `cork`, `frame_guard`
//! and `message_loop` (the Basin files) next to this module.
//!
//! Input: byte 0 picks the opening (bit 0-1: raw bytes from connect; a trust login; a SCRAM
//! login; bit 2: whether the input is read in small slices), byte 1 seeds the read sizes, the
//! rest is what the client sends after the opening.

use std::fmt::Debug;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{AuthSource, DefaultServerParameterProvider, LoginInfo, Password};
use pgwire::api::portal::Portal;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    CopyResponse, DescribePortalResponse, DescribeResponse, DescribeStatementResponse, Response,
    Tag,
};
use pgwire::api::stmt::{NoopQueryParser, StoredStatement};
use pgwire::api::{ClientInfo, DefaultClient, NoopHandler};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::tokio::server::PgWireMessageServerCodec;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::codec::Framed;

use super::cork::Corked;
use super::frame_guard::GuardedStream;
use super::message_loop::{self, LoopHandlers};

/// The coordinator's default `max_message_bytes` is 64 MiB; a smaller cap lets the fuzzer reach
/// the limit's edge.
const MAX_MESSAGE: usize = 1 << 20;
/// As in `coordinator/src/pgwire/startup.rs`.
const SCRAM_ITERATIONS: usize = 4096;
const USER: &str = "fuzz";

/// Runs one client's bytes through a fresh connection. Panics only if the server code does.
pub(crate) fn run(input: &[u8]) {
    let [mode, seed, rest @ ..] = input else {
        return;
    };
    let mut sent = Vec::with_capacity(rest.len() + 64);
    let scram = match mode & 3 {
        1 => {
            sent.extend_from_slice(&startup_packet());
            false
        }
        2 => {
            sent.extend_from_slice(&startup_packet());
            true
        }
        _ => mode & 3 == 3,
    };
    sent.extend_from_slice(rest);
    let client = FuzzClient {
        data: sent,
        at: 0,
        seed: *seed,
        slices: mode & 4 != 0,
    };
    let socket = Framed::new(
        Corked::new(GuardedStream::new(client, MAX_MESSAGE)),
        PgWireMessageServerCodec::new(DefaultClient::new(peer(), false)),
    );
    let queries = Arc::new(StandInQueries);
    let handlers = LoopHandlers {
        startup: Arc::new(Startup(scram.then(scram_handler))),
        simple: Arc::clone(&queries),
        extended: queries,
        copy: Arc::new(NoopHandler),
        cancel: Arc::new(NoopHandler),
    };
    runtime().block_on(async {
        // Writes go nowhere and reads never block, so the only errors are the loop's own.
        let _ = message_loop::serve(socket, peer(), &handlers).await;
    });
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    })
}

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5432))
}

/// A protocol 3.0 StartupMessage for `user=fuzz`.
fn startup_packet() -> Vec<u8> {
    let body = b"\0\x03\0\0user\0fuzz\0database\0basin\0\0";
    let length = u32::try_from(body.len() + 4).expect("a short packet");
    let mut packet = length.to_be_bytes().to_vec();
    packet.extend_from_slice(body);
    packet
}

/// The client: its bytes arrive in reads of varying size; what the server writes is dropped.
struct FuzzClient {
    data: Vec<u8>,
    at: usize,
    seed: u8,
    slices: bool,
}

impl AsyncRead for FuzzClient {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let left = this.data.len() - this.at;
        let mut take = left.min(buf.remaining());
        if this.slices {
            // 1..=16 bytes per read, so frames split at every position across reads.
            this.seed = this.seed.wrapping_mul(37).wrapping_add(11);
            take = take.min(usize::from(this.seed % 16) + 1);
        }
        buf.put_slice(&this.data[this.at..this.at + take]);
        this.at += take;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for FuzzClient {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Basin's start-up: SCRAM-SHA-256 through pgwire's SASL handler when users are configured,
/// otherwise trust (`BasinStartup::on_startup`). Session creation (which needs the catalog) is
/// left out.
struct Startup(Option<SASLAuthStartupHandler<DefaultServerParameterProvider>>);

#[async_trait]
impl pgwire::api::auth::StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match &self.0 {
            Some(scram) => scram.on_startup(client, message).await,
            None => NoopHandler.on_startup(client, message).await,
        }
    }
}

/// One configured user, its SCRAM secret derived once per process (4096 PBKDF2 rounds).
#[derive(Debug)]
struct OneUser {
    salt: Vec<u8>,
    salted: Vec<u8>,
}

#[async_trait]
impl AuthSource for OneUser {
    #[allow(
        elided_lifetimes_in_paths,
        reason = "must match pgwire's trait signature"
    )]
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        if user != USER {
            return Err(PgWireError::InvalidPassword(user.to_owned()));
        }
        Ok(Password::new(Some(self.salt.clone()), self.salted.clone()))
    }
}

fn scram_handler() -> SASLAuthStartupHandler<DefaultServerParameterProvider> {
    static SOURCE: OnceLock<Arc<OneUser>> = OnceLock::new();
    let source = SOURCE.get_or_init(|| {
        let salt = b"basin-fuzz-salt!".to_vec();
        let salted = gen_salted_password("secret", &salt, SCRAM_ITERATIONS);
        Arc::new(OneUser { salt, salted })
    });
    let source: Arc<dyn AuthSource> = Arc::clone(source) as Arc<dyn AuthSource>;
    let mut auth = ScramAuth::new(source);
    auth.set_iterations(SCRAM_ITERATIONS);
    SASLAuthStartupHandler::new(Arc::new(DefaultServerParameterProvider::default()))
        .with_scram(auth)
}

/// Stands in for Basin's query handler: no engine, but the same protocol states. `COPY ...`
/// enters COPY-in (simple or extended), anything else completes with no rows.
struct StandInQueries;

fn respond(query: &str) -> Response {
    let is_copy = query
        .trim_start()
        .get(..4)
        .is_some_and(|word| word.eq_ignore_ascii_case("copy"));
    if is_copy {
        Response::CopyIn(CopyResponse::new(0, 1, futures::stream::empty()))
    } else {
        Response::Execution(Tag::new("SELECT").with_rows(0))
    }
}

#[async_trait]
impl SimpleQueryHandler for StandInQueries {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Ok(vec![respond(query)])
    }
}

#[async_trait]
impl ExtendedQueryHandler for StandInQueries {
    type Statement = String;
    type QueryParser = NoopQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::new(NoopQueryParser)
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Ok(respond(&portal.statement.statement))
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        _statement: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        Ok(DescribeStatementResponse::no_data())
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        _portal: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        Ok(DescribePortalResponse::no_data())
    }
}
