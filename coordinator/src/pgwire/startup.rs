//! Connection start-up: trust or SCRAM-SHA-256 authentication, the parameters clients check
//! (`server_version`, `DateStyle`, ...), BackendKeyData for cancel requests, and creating the
//! connection's [`Session`].

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{
    AuthSource, LoginInfo, Password, ServerParameterProvider, StartupHandler, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, METADATA_APPLICATION_NAME, METADATA_DATABASE, METADATA_USER, PgWireConnectionState,
    PidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::startup::{Authentication, BackendKeyData, ParameterStatus, SecretKey};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::errors::fatal;
use crate::server::ServerState;
use crate::session::Session;
use crate::session::vars::SERVER_VERSION;

const SCRAM_ITERATIONS: usize = 4096;

/// The ParameterStatus set sent after authentication.
#[derive(Debug)]
pub(crate) struct BasinParameters;

impl ServerParameterProvider for BasinParameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let metadata = client.metadata();
        let user = metadata.get(METADATA_USER).cloned().unwrap_or_default();
        let application = metadata
            .get(METADATA_APPLICATION_NAME)
            .cloned()
            .unwrap_or_default();
        let pairs = [
            (
                "server_version",
                format!("{SERVER_VERSION} (Basin {})", env!("CARGO_PKG_VERSION")),
            ),
            ("server_encoding", "UTF8".to_owned()),
            ("client_encoding", "UTF8".to_owned()),
            ("DateStyle", "ISO, MDY".to_owned()),
            ("IntervalStyle", "postgres".to_owned()),
            ("TimeZone", "UTC".to_owned()),
            ("integer_datetimes", "on".to_owned()),
            ("standard_conforming_strings", "on".to_owned()),
            ("is_superuser", "on".to_owned()),
            ("default_transaction_read_only", "off".to_owned()),
            ("in_hot_standby", "off".to_owned()),
            ("application_name", application),
            ("session_authorization", user),
        ];
        Some(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

/// Configured users' SCRAM secrets, derived once at start.
#[derive(Debug)]
struct ConfiguredUsers {
    salt: Vec<u8>,
    salted: HashMap<String, Vec<u8>>,
}

#[async_trait]
impl AuthSource for ConfiguredUsers {
    #[expect(
        elided_lifetimes_in_paths,
        reason = "must match pgwire's trait signature"
    )]
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        let salted = self.salted.get(user).cloned().ok_or_else(|| {
            // Postgres reports a failed password for unknown users too, to not leak names.
            PgWireError::InvalidPassword(user.to_owned())
        })?;
        Ok(Password::new(Some(self.salt.clone()), salted))
    }
}

#[derive(Debug)]
struct PidGenerator(Arc<ServerState>);

impl PidSecretKeyGenerator for PidGenerator {
    fn generate(&self, _client: &dyn ClientInfo) -> (i32, SecretKey) {
        (self.0.allocate_pid(), SecretKey::I32(rand_secret()))
    }
}

fn rand_secret() -> i32 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Start-up handler for every connection of one coordinator.
pub(crate) struct BasinStartup {
    server: Arc<ServerState>,
    scram: Option<SASLAuthStartupHandler<BasinParameters>>,
}

impl BasinStartup {
    pub(crate) fn new(server: Arc<ServerState>) -> Self {
        let scram = (!server.config.users.is_empty()).then(|| {
            let salt = uuid::Uuid::new_v4().as_bytes().to_vec();
            let salted = server
                .config
                .users
                .iter()
                .map(|u| {
                    (
                        u.name.clone(),
                        gen_salted_password(&u.password, &salt, SCRAM_ITERATIONS),
                    )
                })
                .collect();
            let mut auth = ScramAuth::new(Arc::new(ConfiguredUsers { salt, salted }));
            auth.set_iterations(SCRAM_ITERATIONS);
            SASLAuthStartupHandler::new(Arc::new(BasinParameters))
                .with_scram(auth)
                .with_pid_secret_key_generator(Arc::new(PidGenerator(Arc::clone(&server))))
        });
        Self { server, scram }
    }

    /// The database a connection asked for. libpq defaults the database to the user name; with
    /// one database per cluster, a defaulted name means "the" database.
    fn resolve_database(&self, user: &str, requested: &str) -> PgWireResult<String> {
        let snapshot = self.server.catalog.snapshot();
        if snapshot.databases.iter().any(|d| d.name == requested) {
            Ok(requested.to_owned())
        } else if requested == user {
            Ok(basin_catalog::model::DEFAULT_DATABASE.to_owned())
        } else {
            Err(fatal(
                "3D000",
                format!("database \"{requested}\" does not exist"),
            ))
        }
    }

    fn create_session<C: ClientInfo>(&self, client: &C) -> PgWireResult<Arc<Session>> {
        let metadata = client.metadata();
        let user = metadata.get(METADATA_USER).cloned().unwrap_or_default();
        let requested = metadata
            .get(METADATA_DATABASE)
            .cloned()
            .unwrap_or_else(|| user.clone());
        let database = self.resolve_database(&user, &requested)?;
        let (pid, secret) = client.pid_and_secret_key();
        let session = Session::try_new(
            Arc::clone(&self.server),
            user,
            database,
            pid,
            secret.to_bytes().to_vec(),
        )
        .map_err(|e| fatal(e.sqlstate(), e.message()))?;
        // Settings a client sends in its startup packet (application_name, DateStyle, options
        // like `-c search_path=x`) become this session's defaults.
        for (name, value) in metadata {
            if !matches!(
                name.as_str(),
                METADATA_USER | METADATA_DATABASE | "options" | "replication"
            ) {
                session.vars.set_session_default(name, value.clone());
            }
        }
        if let Some(options) = metadata.get("options") {
            for (name, value) in parse_startup_options(options) {
                session.vars.set_session_default(&name, value);
            }
        }
        session.sync_engine_settings();
        Ok(session)
    }
}

#[async_trait]
impl StartupHandler for BasinStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(scram) = &self.scram {
            if let PgWireFrontendMessage::Startup(startup) = &message {
                // Refuse an unknown database before authenticating, so the client never sees
                // ReadyForQuery for a connection that then fails.
                let user = startup
                    .parameters
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                let requested = startup
                    .parameters
                    .get(METADATA_DATABASE)
                    .cloned()
                    .unwrap_or_else(|| user.clone());
                self.resolve_database(&user, &requested)?;
            }
            scram.on_startup(client, message).await?;
            if matches!(client.state(), PgWireConnectionState::ReadyForQuery)
                && client.session_extensions().get::<SessionHandle>().is_none()
            {
                let session = self.create_session(client)?;
                client.session_extensions().insert(SessionHandle(session));
            }
            return Ok(());
        }
        let PgWireFrontendMessage::Startup(startup) = message else {
            return Ok(());
        };
        protocol_negotiation(client, &startup).await?;
        save_startup_parameters_to_metadata(client, &startup);
        let pid = self.server.allocate_pid();
        client.set_pid_and_secret_key(pid, SecretKey::I32(rand_secret()));
        let session = self.create_session(client)?;
        client.session_extensions().insert(SessionHandle(session));

        client
            .feed(PgWireBackendMessage::Authentication(Authentication::Ok))
            .await?;
        if let Some(parameters) = BasinParameters.server_parameters(client) {
            for (name, value) in parameters {
                client
                    .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                        name, value,
                    )))
                    .await?;
            }
        }
        let (pid, secret) = client.pid_and_secret_key();
        client
            .feed(PgWireBackendMessage::BackendKeyData(BackendKeyData::new(
                pid, secret,
            )))
            .await?;
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                TransactionStatus::Idle,
            )))
            .await?;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        Ok(())
    }
}

/// `-c name=value` pairs of the startup `options` parameter (`PGOPTIONS`).
fn parse_startup_options(options: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        let assignment = match word {
            "-c" => words.next(),
            other => other
                .strip_prefix("-c")
                .or_else(|| other.strip_prefix("--")),
        };
        if let Some((name, value)) = assignment.and_then(|a| a.split_once('=')) {
            pairs.push((name.replace('-', "_"), value.to_owned()));
        }
    }
    pairs
}

/// The connection's session, stored in pgwire's per-connection extensions.
#[derive(Debug)]
pub(crate) struct SessionHandle(pub(crate) Arc<Session>);

/// The session of an authenticated connection.
pub(crate) fn session_of<C: ClientInfo>(client: &C) -> PgWireResult<Arc<Session>> {
    client
        .session_extensions()
        .get::<SessionHandle>()
        .map(|handle| Arc::clone(&handle.0))
        .ok_or_else(|| {
            fatal(
                "08P01",
                "no session: the connection has not completed start-up",
            )
        })
}
