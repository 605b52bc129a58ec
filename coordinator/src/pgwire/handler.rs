//! Query handlers: the simple protocol (several statements per message, each streamed in turn)
//! and the extended protocol (Parse/Bind/Describe/Execute with portal suspension), both on top
//! of [`super::execution`]; `COPY ... FROM STDIN` is handed to [`super::copy`].

use std::fmt::Debug;
use std::ops::DerefMut;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{
    ExtendedQueryHandler, SimpleQueryHandler, send_describe_response, send_ready_for_query,
};
use pgwire::api::results::{DescribePortalResponse, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireConnectionState, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::NoData;
use pgwire::messages::extendedquery::{
    Describe, Execute, PortalSuspended, TARGET_TYPE_BYTE_PORTAL,
};
use pgwire::messages::response::ErrorResponse;
use pgwire::messages::response::{CommandComplete, EmptyQueryResponse, TransactionStatus};
use pgwire::messages::simplequery::Query;

use super::copy;
use super::copy_out;
use super::errors::error_info;
use super::execution::{Reply, StatementGuard, fields_for, parse_bounded, run};
use super::params;
use super::startup::session_of;
use super::types::{arrow_type, pg_type};
use crate::error::Error;
use crate::statements::ParsedStatement;

/// A prepared statement: the parsed SQL plus what Describe reports.
#[derive(Debug, Clone)]
pub(crate) struct BasinStatement {
    parsed: ParsedStatement,
    parameters: Vec<Option<DataType>>,
    result: Option<SchemaRef>,
}

#[derive(Debug, Default)]
pub(crate) struct BasinQueryParser;

#[async_trait]
impl QueryParser for BasinQueryParser {
    type Statement = BasinStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<BasinStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = session_of(client)?;
        let mut statements = parse_bounded(&session, sql).await?;
        if statements.len() > 1 {
            return Err(
                Error::syntax("cannot insert multiple commands into a prepared statement").into(),
            );
        }
        let Some(mut parsed) = statements.pop() else {
            return Ok(None);
        };
        parsed.declare_parameters(&declared_types(types));
        let description = session.describe(&parsed).await?;
        Ok(Some(BasinStatement {
            parsed,
            parameters: description.parameters,
            result: description.result,
        }))
    }

    fn get_parameter_types(&self, statement: &BasinStatement) -> PgWireResult<Vec<Type>> {
        Ok(statement
            .parameters
            .iter()
            .map(|t| t.as_ref().map(pg_type).unwrap_or(Type::TEXT))
            .collect())
    }

    fn get_result_schema(
        &self,
        statement: &BasinStatement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(match &statement.result {
            Some(schema) => fields_for(schema, column_format.unwrap_or(&Format::UnifiedText))
                .as_ref()
                .clone(),
            None => Vec::new(),
        })
    }
}

/// The Arrow types of the parameter types a client declared in Parse, for the types whose
/// declaration changes what a statement means (numbers, dates and times, booleans, bytea);
/// `None` for undeclared (OID 0), text-like and other types, which are left to inference.
fn declared_types(types: &[Option<Type>]) -> Vec<Option<DataType>> {
    types
        .iter()
        .map(|declared| {
            let declared = declared.as_ref()?;
            let known = [
                Type::BOOL,
                Type::INT2,
                Type::INT4,
                Type::INT8,
                Type::FLOAT4,
                Type::FLOAT8,
                Type::NUMERIC,
                Type::BYTEA,
                Type::DATE,
                Type::TIME,
                Type::TIMESTAMP,
                Type::TIMESTAMPTZ,
                Type::INTERVAL,
            ];
            if known.contains(declared) {
                arrow_type(declared)
            } else {
                None
            }
        })
        .collect()
}

pub(crate) struct QueryHandler {
    parser: Arc<BasinQueryParser>,
}

impl QueryHandler {
    pub(crate) fn new() -> Self {
        Self {
            parser: Arc::new(BasinQueryParser),
        }
    }
}

fn is_transaction_exit(parsed: &ParsedStatement) -> bool {
    use datafusion::sql::parser::Statement as DfStatement;
    use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
    matches!(&parsed.statement, DfStatement::Statement(s) if matches!(s.as_ref(), SqlStatement::Commit { .. } | SqlStatement::Rollback { .. }))
}

/// Values of the settings clients track through ParameterStatus, for statements that may
/// change them (`SET`, `RESET`, `DISCARD ALL`).
fn reported_settings(
    session: &crate::session::Session,
    parsed: &ParsedStatement,
) -> Option<Vec<(String, String)>> {
    use datafusion::sql::parser::Statement as DfStatement;
    use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
    let changes_settings = matches!(&parsed.statement, DfStatement::Statement(s) if matches!(s.as_ref(), SqlStatement::Set(_) | SqlStatement::Reset(_) | SqlStatement::Discard { .. }));
    changes_settings.then(|| {
        crate::session::vars::REPORTED_SETTINGS
            .iter()
            .map(|name| {
                (
                    (*name).to_owned(),
                    session.vars.get(name).unwrap_or_default(),
                )
            })
            .collect()
    })
}

/// Sends ParameterStatus for every reported setting whose value changed.
async fn report_changes<C>(
    client: &mut C,
    session: &crate::session::Session,
    parsed: &ParsedStatement,
    before: Option<Vec<(String, String)>>,
) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let (Some(before), Some(after)) = (before, reported_settings(session, parsed)) else {
        return Ok(());
    };
    for ((name, old), (_, new)) in before.into_iter().zip(after) {
        if old != new {
            client
                .feed(PgWireBackendMessage::ParameterStatus(
                    pgwire::messages::startup::ParameterStatus::new(name, new),
                ))
                .await?;
        }
    }
    Ok(())
}

/// `DEALLOCATE name` drops the protocol-level prepared statement of that name (psycopg evicts
/// its cache this way); `DISCARD ALL` drops open portals.
fn forget_prepared<C>(client: &C, parsed: &ParsedStatement)
where
    C: ClientPortalStore,
    C::PortalStore: PortalStore,
{
    use datafusion::sql::parser::Statement as DfStatement;
    use datafusion::sql::sqlparser::ast::{DiscardObject, Statement as SqlStatement};
    let DfStatement::Statement(statement) = &parsed.statement else {
        return;
    };
    match statement.as_ref() {
        SqlStatement::Deallocate { name, .. } => client.portal_store().rm_statement(&name.value),
        SqlStatement::Discard {
            object_type: DiscardObject::ALL,
        } => client.portal_store().clear_portals(),
        _ => {}
    }
}

/// Statement guards of this connection's portals that are suspended between Executes.
#[derive(Default)]
struct SuspendedPortals(std::sync::Mutex<std::collections::HashMap<String, StatementGuard>>);

impl SuspendedPortals {
    fn of<C: ClientInfo>(client: &C) -> Arc<Self> {
        client
            .session_extensions()
            .get_or_insert_with(Self::default)
    }

    fn park(&self, portal: &str, guard: StatementGuard) {
        guard.disarm();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(portal.to_owned(), guard);
    }

    fn take(&self, portal: &str) -> Option<StatementGuard> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(portal)
    }
}

/// `COMMIT` of a failed transaction block rolls it back, and says so.
fn end_tag(tag: String, status: TransactionStatus) -> String {
    if status == TransactionStatus::Error && tag == "COMMIT" {
        "ROLLBACK".to_owned()
    } else {
        tag
    }
}

fn aborted_transaction_error() -> Error {
    Error::user(
        "25P02",
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

async fn feed_error<C>(client: &mut C, error: &Error) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    client
        .feed(PgWireBackendMessage::ErrorResponse(ErrorResponse::from(
            error_info(error),
        )))
        .await?;
    Ok(())
}

/// How long rows already sent may wait for the next ones before they are flushed.
const FLUSH_GRACE: std::time::Duration = std::time::Duration::from_millis(2);

/// Streams rows to the client. Returns `Ok(Err(e))` when the query failed mid-stream (already
/// reported by the caller), `Err` when the socket failed.
async fn stream_rows<C>(
    client: &mut C,
    rows: &mut pgwire::api::results::SendableRowStream,
    limit: usize,
) -> PgWireResult<Result<(usize, bool), PgWireError>>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let mut sent = 0usize;
    while limit == 0 || sent < limit {
        // Rows that are ready go out together; when more rows take a while (a slow query, a
        // SUBSCRIBE between epochs) the rows sent so far are flushed to the client. Before the
        // first row there is nothing the client could act on, and the end of a quick result
        // (its producer closing the channel) comes within the grace period, so a quick query's
        // reply leaves in one piece at Sync.
        let next = match futures::FutureExt::now_or_never(rows.next()) {
            Some(next) => next,
            None if sent == 0 => rows.next().await,
            None => match tokio::time::timeout(FLUSH_GRACE, rows.next()).await {
                Ok(next) => next,
                Err(_elapsed) => {
                    client.flush().await?;
                    rows.next().await
                }
            },
        };
        match next {
            Some(Ok(row)) => {
                client.feed(PgWireBackendMessage::DataRow(row)).await?;
                sent += 1;
            }
            Some(Err(e)) => return Ok(Err(e)),
            None => return Ok(Ok((sent, false))),
        }
    }
    Ok(Ok((sent, true)))
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let session = session_of(client)?;
        let mut status = client.transaction_status();
        client.set_state(PgWireConnectionState::QueryInProgress);
        match parse_bounded(&session, &query.query).await {
            Err(error) => {
                feed_error(client, &error).await?;
                status = status.to_error_state();
            }
            Ok(statements) if statements.is_empty() => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
            }
            Ok(statements) => {
                for (position, parsed) in statements.iter().enumerate() {
                    if status == TransactionStatus::Error && !is_transaction_exit(parsed) {
                        feed_error(client, &aborted_transaction_error()).await?;
                        break;
                    }
                    if let Some(copy) = copy_out::to_stdout(parsed) {
                        if let Err(error) = copy_out::run(client, &session, copy).await? {
                            feed_error(client, &error).await?;
                            status = status.to_error_state();
                            break;
                        }
                        continue;
                    }
                    if let Some((copy, file)) = copy_out::to_file(parsed) {
                        let guard = StatementGuard::begin(&session);
                        let written = copy_out::run_to_file(&session, copy, file, &guard).await;
                        guard.finish();
                        match written {
                            Ok(rows) => {
                                client
                                    .feed(PgWireBackendMessage::CommandComplete(
                                        CommandComplete::new(format!("COPY {rows}")),
                                    ))
                                    .await?;
                            }
                            Err(error) => {
                                feed_error(client, &error).await?;
                                status = status.to_error_state();
                                break;
                            }
                        }
                        continue;
                    }
                    if let Some(copy) = copy::from_stdin(parsed) {
                        // pgwire sends ReadyForQuery after CopyDone, so nothing may follow.
                        let prepared = if position + 1 < statements.len() {
                            Err(Error::unsupported(
                                "COPY ... FROM STDIN must be the last statement of a query string",
                            ))
                        } else {
                            copy::prepare(&session, copy, &parsed.sql).await
                        };
                        match prepared {
                            Ok(copy) => {
                                client.set_transaction_status(status);
                                return copy::begin(client, copy, false).await;
                            }
                            Err(error) => {
                                feed_error(client, &error).await?;
                                status = status.to_error_state();
                                break;
                            }
                        }
                    }
                    let guard = StatementGuard::begin(&session);
                    let settings_before = reported_settings(&session, parsed);
                    let reply = run(&session, parsed, None, &Format::UnifiedText, &guard).await;
                    let failed = match reply {
                        Err(error) => Some(error_info(&error)),
                        Ok(Reply::Rows { fields, mut rows }) => {
                            client
                                .feed(PgWireBackendMessage::RowDescription(row_description(
                                    &fields,
                                )))
                                .await?;
                            match stream_rows(client, &mut rows, 0).await? {
                                Ok((count, _)) => {
                                    let tag = Tag::new(parsed.rows_tag()).with_rows(count);
                                    client
                                        .feed(PgWireBackendMessage::CommandComplete(tag.into()))
                                        .await?;
                                    None
                                }
                                Err(e) => Some(e.into()),
                            }
                        }
                        Ok(Reply::Command(tag)) => {
                            report_changes(client, &session, parsed, settings_before).await?;
                            forget_prepared(client, parsed);
                            client
                                .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                                    tag,
                                )))
                                .await?;
                            None
                        }
                        Ok(Reply::TransactionStart(tag)) => {
                            status = TransactionStatus::Transaction;
                            client
                                .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                                    tag,
                                )))
                                .await?;
                            None
                        }
                        Ok(Reply::TransactionEnd(tag)) => {
                            let tag = end_tag(tag, status);
                            status = TransactionStatus::Idle;
                            client
                                .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                                    tag,
                                )))
                                .await?;
                            None
                        }
                    };
                    guard.finish();
                    if let Some(info) = failed {
                        client
                            .feed(PgWireBackendMessage::ErrorResponse(info.into()))
                            .await?;
                        status = status.to_error_state();
                        break;
                    }
                }
            }
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        send_ready_for_query(client, status).await
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Err(Error::Internal("simple queries are handled by on_query".to_owned()).into())
    }
}

fn row_description(fields: &[FieldInfo]) -> pgwire::messages::data::RowDescription {
    pgwire::messages::data::RowDescription::new(fields.iter().map(Into::into).collect())
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = BasinStatement;
    type QueryParser = BasinQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    /// A cursor made by `DECLARE` is a portal too: psycopg 3's server-side cursors describe it
    /// by name to learn its columns. Other describes go to pgwire.
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_PORTAL
            && let Some(name) = message.name.as_deref()
            && client.portal_store().get_portal(name).is_none()
        {
            let session = session_of(client)?;
            if let Some(schema) = session.cursors.schema_of(name) {
                let fields = fields_for(&schema, &Format::UnifiedText);
                let response = DescribePortalResponse::new(fields.as_ref().clone());
                return send_describe_response(client, &response).await;
            }
        }
        self._on_describe(client, message).await
    }

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let session = session_of(client)?;
        let portal_name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let max_rows = usize::try_from(message.max_rows).unwrap_or(0);
        let portal = match client.portal_store().get_portal(portal_name) {
            Some(Entry::Value(portal)) => portal,
            Some(Entry::Empty) => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
                return Ok(());
            }
            None => return Err(PgWireError::PortalNotFound(portal_name.to_owned())),
        };
        let mut status = client.transaction_status();
        if status == TransactionStatus::Error
            && !is_transaction_exit(&portal.statement.statement.parsed)
        {
            return Err(aborted_transaction_error().into());
        }
        let parsed = &portal.statement.statement.parsed;
        if let Some(copy) = copy_out::to_stdout(parsed) {
            return match copy_out::run(client, &session, copy).await? {
                Ok(_) => Ok(()),
                Err(error) => Err(error.into()),
            };
        }
        if let Some((copy, file)) = copy_out::to_file(parsed) {
            let guard = StatementGuard::begin(&session);
            let written = copy_out::run_to_file(&session, copy, file, &guard).await;
            guard.finish();
            client
                .send(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                    format!("COPY {}", written?),
                )))
                .await?;
            return Ok(());
        }
        if let Some(copy) = copy::from_stdin(parsed) {
            let copy = copy::prepare(&session, copy, &parsed.sql).await?;
            return copy::begin(client, copy, true).await;
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let outcome = self
            .execute_portal(client, &session, &portal, max_rows, &mut status)
            .await;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        outcome
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        _portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Err(Error::Internal("portals are executed by on_execute".to_owned()).into())
    }
}

impl QueryHandler {
    async fn execute_portal<C>(
        &self,
        client: &mut C,
        session: &Arc<crate::session::Session>,
        portal: &Arc<Portal<BasinStatement>>,
        max_rows: usize,
        status: &mut TransactionStatus,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let state = portal.state();
        let mut state = state.lock().await;
        let suspended_portals = SuspendedPortals::of(client);
        // The guard of a portal resumed from suspension: its timeout runs again for this Execute.
        let mut running_guard = suspended_portals.take(&portal.name);
        if let Some(guard) = &running_guard {
            guard.arm();
        }
        if matches!(state.deref_mut(), PortalExecutionState::Initial) {
            let statement = &portal.statement;
            let values = params::decode(
                &portal.parameters,
                &portal.parameter_format,
                &statement.parameter_types,
                &statement.statement.parameters,
            )?;
            let params = (!statement.statement.parameters.is_empty()).then_some(values);
            let guard = StatementGuard::begin(session);
            let settings_before = reported_settings(session, &statement.statement.parsed);
            let reply = run(
                session,
                &statement.statement.parsed,
                params,
                &portal.result_column_format,
                &guard,
            )
            .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(error) => {
                    guard.finish();
                    return Err(error.into());
                }
            };
            match reply {
                Reply::Rows { fields, rows } => {
                    *state = PortalExecutionState::Suspended(QueryResponse::new(fields, rows));
                    running_guard = Some(guard);
                }
                Reply::Command(tag) => {
                    guard.finish();
                    report_changes(
                        client,
                        session,
                        &statement.statement.parsed,
                        settings_before,
                    )
                    .await?;
                    *state = PortalExecutionState::Finished;
                    client
                        .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                            tag,
                        )))
                        .await?;
                    return Ok(());
                }
                Reply::TransactionStart(tag) => {
                    guard.finish();
                    *status = TransactionStatus::Transaction;
                    *state = PortalExecutionState::Finished;
                    client
                        .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                            tag,
                        )))
                        .await?;
                    return Ok(());
                }
                Reply::TransactionEnd(tag) => {
                    guard.finish();
                    let tag = end_tag(tag, *status);
                    *status = TransactionStatus::Idle;
                    *state = PortalExecutionState::Finished;
                    client
                        .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                            tag,
                        )))
                        .await?;
                    return Ok(());
                }
            }
        }
        match state.deref_mut() {
            PortalExecutionState::Suspended(response) => {
                let rows = response.data_rows();
                match stream_rows(client, rows, max_rows).await? {
                    Ok((_, true)) => {
                        if let Some(guard) = running_guard {
                            suspended_portals.park(&portal.name, guard);
                        }
                        client
                            .feed(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()))
                            .await?;
                    }
                    Ok((count, false)) => {
                        if let Some(guard) = running_guard {
                            guard.finish();
                        }
                        *state = PortalExecutionState::Finished;
                        let tag =
                            Tag::new(portal.statement.statement.parsed.rows_tag()).with_rows(count);
                        client
                            .feed(PgWireBackendMessage::CommandComplete(tag.into()))
                            .await?;
                    }
                    Err(error) => {
                        if let Some(guard) = running_guard {
                            guard.finish();
                        }
                        *state = PortalExecutionState::Finished;
                        return Err(error);
                    }
                }
            }
            PortalExecutionState::Finished => {
                let tag = Tag::new("SELECT").with_rows(0);
                client
                    .feed(PgWireBackendMessage::CommandComplete(tag.into()))
                    .await?;
            }
            PortalExecutionState::Initial => {
                client
                    .feed(PgWireBackendMessage::NoData(NoData::new()))
                    .await?;
            }
        }
        Ok(())
    }
}
