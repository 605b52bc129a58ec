//! Materialized-view statements: `CREATE MATERIALIZED VIEW [IF NOT EXISTS] v [WITH (...)] AS
//! SELECT ...`, `DROP MATERIALIZED VIEW`, `SHOW MATERIALIZED VIEWS` and `EXPLAIN MATERIALIZED
//! VIEW v` (how the view is maintained and which part of its query decided that). sqlparser
//! has no `EXPLAIN MATERIALIZED VIEW`: [`extract`] recognises it before parsing.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use basin_catalog::DropKind;
use basin_catalog::model::{MaterializedViewSpec, RelationKind};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::planner::object_name_to_table_reference;
use datafusion::sql::sqlparser::ast::{
    CreateTableOptions, DescribeAlias, ObjectName, ObjectType, SqlOption, Statement as SqlStatement,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::Output;
use super::ddl::resolve;
use crate::error::{Error, Result};
use crate::session::Session;

/// Longest `CREATE MATERIALIZED VIEW` waits for the view's first build.
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// Statements about a view that sqlparser does not know.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ViewCommand {
    /// `EXPLAIN MATERIALIZED VIEW name`.
    Explain(ObjectName),
    /// `SUBSCRIBE [TO] name [WITH (snapshot = false)]`.
    Subscribe { name: ObjectName, snapshot: bool },
}

/// The view command `sql` is, if it is one; with the statement it stands in the log as.
pub(super) fn extract(sql: &str) -> Result<Option<(ViewCommand, DfStatement)>> {
    let trimmed = sql.trim().trim_end_matches(';').trim();
    let words: Vec<&str> = trimmed.split_whitespace().take(3).collect();
    let is = |i: usize, word: &str| words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(word));
    let (rest, explain) = if is(0, "explain") && is(1, "materialized") && is(2, "view") {
        (after_words(trimmed, 3), true)
    } else if is(0, "subscribe") {
        let skip = if is(1, "to") { 2 } else { 1 };
        (after_words(trimmed, skip), false)
    } else {
        return Ok(None);
    };
    let dialect = PostgreSqlDialect {};
    let syntax = |e: datafusion::sql::sqlparser::parser::ParserError| Error::syntax(e.to_string());
    let mut parser = Parser::new(&dialect).try_with_sql(rest).map_err(syntax)?;
    let name = parser.parse_object_name(false).map_err(syntax)?;
    let mut snapshot = true;
    if !explain && parser.parse_keyword(datafusion::sql::sqlparser::keywords::Keyword::WITH) {
        parser
            .expect_token(&datafusion::sql::sqlparser::tokenizer::Token::LParen)
            .map_err(syntax)?;
        let option = parser.parse_identifier().map_err(syntax)?;
        parser
            .expect_token(&datafusion::sql::sqlparser::tokenizer::Token::Eq)
            .map_err(syntax)?;
        let value = parser.parse_expr().map_err(syntax)?.to_string();
        parser
            .expect_token(&datafusion::sql::sqlparser::tokenizer::Token::RParen)
            .map_err(syntax)?;
        if !option.value.eq_ignore_ascii_case("snapshot") {
            return Err(Error::user(
                "22023",
                format!(
                    "unknown SUBSCRIBE option \"{}\" (known: snapshot)",
                    option.value
                ),
            ));
        }
        snapshot = match value.trim_matches('\'').to_ascii_lowercase().as_str() {
            "true" | "on" => true,
            "false" | "off" => false,
            other => {
                return Err(Error::user(
                    "22023",
                    format!("invalid value for SUBSCRIBE option \"snapshot\": \"{other}\""),
                ));
            }
        };
    }
    let rest = parser.peek_token();
    if rest.token != datafusion::sql::sqlparser::tokenizer::Token::EOF {
        return Err(Error::syntax(format!("syntax error at or near \"{rest}\"")));
    }
    let statement = DfStatement::Statement(Box::new(SqlStatement::ExplainTable {
        describe_alias: DescribeAlias::Explain,
        hive_format: None,
        has_table_keyword: false,
        table_name: name.clone(),
    }));
    let command = if explain {
        ViewCommand::Explain(name)
    } else {
        ViewCommand::Subscribe { name, snapshot }
    };
    Ok(Some((command, statement)))
}

/// `text` after its first `count` whitespace-separated words.
fn after_words(text: &str, count: usize) -> &str {
    let mut rest = text.trim_start();
    for _ in 0..count {
        rest = rest
            .find(char::is_whitespace)
            .map_or("", |at| rest[at..].trim_start());
    }
    rest
}

/// Whether Basin answers `statement` here.
pub(super) fn handles(statement: &DfStatement) -> bool {
    let DfStatement::Statement(inner) = statement else {
        return false;
    };
    matches!(
        inner.as_ref(),
        SqlStatement::CreateView(view) if view.materialized
    ) || matches!(
        inner.as_ref(),
        SqlStatement::Drop {
            object_type: ObjectType::MaterializedView,
            ..
        } | SqlStatement::ShowViews {
            materialized: true,
            ..
        } | SqlStatement::ExplainTable {
            describe_alias: DescribeAlias::Explain,
            ..
        }
    )
}

/// The rows these statements return, for Describe.
pub(super) async fn result_schema(
    session: &Session,
    statement: &DfStatement,
    command: Option<&ViewCommand>,
) -> Result<Option<SchemaRef>> {
    match command {
        Some(ViewCommand::Explain(_)) => return Ok(Some(explain_schema())),
        Some(ViewCommand::Subscribe { name, .. }) => {
            let (_, schema) = subscribed_view(session, name)?;
            return Ok(Some(subscribe_schema(&schema)));
        }
        None => {}
    }
    let DfStatement::Statement(inner) = statement else {
        return Ok(None);
    };
    Ok(match inner.as_ref() {
        SqlStatement::ShowViews { .. } => Some(show_schema()),
        _ => None,
    })
}

/// A `SUBSCRIBE`'s columns: the epoch, the operation, then the view's columns.
fn subscribe_schema(view: &Schema) -> SchemaRef {
    let mut fields = vec![
        Field::new("epoch", DataType::Int64, false),
        Field::new("op", DataType::Utf8, false),
    ];
    fields.extend(view.fields().iter().map(|f| f.as_ref().clone()));
    Arc::new(Schema::new(fields))
}

/// The view `name` names, with its columns.
fn subscribed_view(
    session: &Session,
    name: &ObjectName,
) -> Result<(basin_catalog::model::Oid, SchemaRef)> {
    let (entry, _) = materialized_view(session, name)?;
    Ok((entry.oid, entry.arrow_schema()))
}

/// The materialized view `name` names.
fn materialized_view(
    session: &Session,
    name: &ObjectName,
) -> Result<(
    basin_catalog::model::RelationEntry,
    basin_catalog::model::MaterializedViewSpec,
)> {
    let target = resolve(session, &table_reference(name)?);
    let snapshot = session.server.catalog.snapshot();
    let Some(entry) = snapshot.relation(&target.database, &target.schema, &target.name) else {
        return Err(Error::user(
            "42P01",
            format!("materialized view \"{}\" does not exist", target.name),
        ));
    };
    let RelationKind::MaterializedView(spec) = &entry.kind else {
        return Err(Error::user(
            "42809",
            format!("\"{}\" is not a materialized view", target.name),
        ));
    };
    Ok((entry.clone(), spec.clone()))
}

/// `SUBSCRIBE`: the view's rows, then its changes, epoch by epoch, until the client cancels.
async fn subscribe(session: &Arc<Session>, name: &ObjectName, snapshot: bool) -> Result<Output> {
    use futures::StreamExt;
    let (oid, view_schema) = subscribed_view(session, name)?;
    let schema = subscribe_schema(&view_schema);
    let feed =
        crate::continuous::feed::open(&session.server.views, oid, &name.to_string(), snapshot)
            .await
            .map_err(|message| Error::user("55000", message))?;
    let out_schema = Arc::clone(&schema);
    let batches = feed.map(move |item| {
        let batch = item.map_err(|message| {
            datafusion::error::DataFusionError::External(Box::new(Error::user("55000", message)))
        })?;
        let rows = batch.rows.num_rows();
        let mut columns: Vec<arrow::array::ArrayRef> = vec![
            Arc::new(arrow::array::Int64Array::from(vec![
                i64::try_from(
                    batch.epoch
                )
                .unwrap_or(i64::MAX);
                rows
            ])),
            Arc::new(StringArray::from(vec![batch.op; rows])),
        ];
        columns.extend(batch.rows.columns().iter().cloned());
        Ok(RecordBatch::try_new(Arc::clone(&out_schema), columns)?)
    });
    Ok(Output::Rows {
        schema: Arc::clone(&schema),
        stream: Box::pin(RecordBatchStreamAdapter::new(schema, batches)),
    })
}

fn show_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("schema_name", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("mode", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("definition", DataType::Utf8, false),
    ]))
}

fn explain_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("property", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
    ]))
}

pub(super) async fn execute(
    session: &Arc<Session>,
    statement: &DfStatement,
    command: Option<&ViewCommand>,
) -> Result<Output> {
    match command {
        Some(ViewCommand::Explain(name)) => return explain(session, name).await,
        Some(ViewCommand::Subscribe { name, snapshot }) => {
            return subscribe(session, name, *snapshot).await;
        }
        None => {}
    }
    let DfStatement::Statement(inner) = statement else {
        return Err(Error::Internal(
            "not a materialized-view statement".to_owned(),
        ));
    };
    match inner.as_ref() {
        SqlStatement::CreateView(view) => create(session, view).await,
        SqlStatement::Drop {
            names,
            if_exists,
            cascade,
            ..
        } => {
            if *cascade {
                return Err(Error::unsupported("DROP ... CASCADE is not supported"));
            }
            for name in names {
                let target = resolve(session, &table_reference(name)?);
                session
                    .server
                    .catalog
                    .drop_relation(&target, DropKind::MaterializedView, *if_exists)
                    .await?;
            }
            Ok(Output::Command("DROP MATERIALIZED VIEW".to_owned()))
        }
        SqlStatement::ShowViews { .. } => show(session),
        _ => Err(Error::Internal(
            "not a materialized-view statement".to_owned(),
        )),
    }
}

fn table_reference(name: &ObjectName) -> Result<datafusion::common::TableReference> {
    object_name_to_table_reference(name.clone(), true).map_err(Error::from)
}

fn options(
    view: &datafusion::sql::sqlparser::ast::CreateView,
) -> Result<std::collections::BTreeMap<String, String>> {
    let listed = match &view.options {
        CreateTableOptions::None => return Ok(Default::default()),
        CreateTableOptions::With(options) | CreateTableOptions::Options(options) => options,
        other => {
            return Err(Error::syntax(format!("unexpected view options {other}")));
        }
    };
    let mut out = std::collections::BTreeMap::new();
    for option in listed {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(Error::syntax(format!("unexpected view option {option}")));
        };
        let key = key.value.to_ascii_lowercase();
        if !crate::continuous::OPTIONS.contains(&key.as_str()) {
            return Err(Error::user(
                "22023",
                format!(
                    "unknown materialized view option \"{key}\" (known: {})",
                    crate::continuous::OPTIONS.join(", ")
                ),
            ));
        }
        let text = value.to_string();
        let text = text.trim_matches('\'').to_owned();
        let valid = match key.as_str() {
            "refresh" => ["auto", "full"].contains(&text.to_ascii_lowercase().as_str()),
            "emit" => {
                ["on_update", "on_window_close"].contains(&text.to_ascii_lowercase().as_str())
            }
            _ => text.parse::<u64>().is_ok(),
        };
        if !valid {
            return Err(Error::user(
                "22023",
                format!("invalid value for materialized view option \"{key}\": \"{text}\""),
            ));
        }
        out.insert(key, text);
    }
    Ok(out)
}

async fn create(
    session: &Arc<Session>,
    view: &datafusion::sql::sqlparser::ast::CreateView,
) -> Result<Output> {
    if view.or_replace {
        return Err(Error::unsupported(
            "CREATE OR REPLACE MATERIALIZED VIEW is not supported; drop the view and create it again",
        ));
    }
    let target = resolve(session, &table_reference(&view.name)?);
    let sql = super::ddl::with_column_names(view.query.to_string(), &view.columns);
    let default_schema = super::ddl::default_schema(session);
    let manager = &session.server.views;
    let (compiled, schema) = manager
        .compile(&target.database, Some(&default_schema), &sql)
        .await?;
    let options = options(view)?;
    if options
        .get("emit")
        .is_some_and(|e| e.eq_ignore_ascii_case("on_window_close"))
    {
        manager
            .check_window_close(&compiled, &target.database, Some(&default_schema))
            .map_err(|message| Error::user("0A000", message))?;
    }
    let spec = MaterializedViewSpec {
        sql,
        default_schema: Some(default_schema),
        options,
    };
    let catalog = &session.server.catalog;
    let Some(oid) = catalog
        .create_materialized_view(&target, spec, &schema, view.if_not_exists)
        .await?
    else {
        return Ok(Output::Command("CREATE MATERIALIZED VIEW".to_owned()));
    };
    if let Err(why) = manager.wait_built(oid, BUILD_TIMEOUT).await {
        // Leave nothing behind: the view never had rows.
        if let Err(error) = catalog
            .drop_relation(&target, DropKind::MaterializedView, true)
            .await
        {
            tracing::warn!(%error, "could not drop a materialized view that failed to build");
        }
        return Err(Error::user(
            "XX000",
            format!(
                "materialized view \"{}\" could not be built: {why}",
                target.name
            ),
        ));
    }
    Ok(Output::Command("CREATE MATERIALIZED VIEW".to_owned()))
}

fn rows(schema: SchemaRef, columns: Vec<Vec<String>>) -> Result<Output> {
    let arrays = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as arrow::array::ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let stream = futures::stream::iter(vec![Ok(batch)]);
    Ok(Output::Rows {
        schema: Arc::clone(&schema),
        stream: Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
    })
}

fn show(session: &Arc<Session>) -> Result<Output> {
    let snapshot = session.server.catalog.snapshot();
    let status = session.server.views.status();
    let mut columns = vec![Vec::new(); 5];
    let mut views: Vec<_> = snapshot
        .relations
        .iter()
        .filter(|r| r.database == session.vars.database)
        .filter_map(|r| match &r.kind {
            RelationKind::MaterializedView(spec) => Some((r, spec)),
            _ => None,
        })
        .collect();
    views.sort_by(|a, b| (&a.0.schema, &a.0.name).cmp(&(&b.0.schema, &b.0.name)));
    for (entry, spec) in views {
        let state = status.get(&entry.oid);
        columns[0].push(entry.schema.clone());
        columns[1].push(entry.name.clone());
        columns[2].push(state.map_or("", |s| s.mode.name()).to_owned());
        columns[3].push(state.map_or("building", |s| s.state).to_owned());
        columns[4].push(spec.sql.clone());
    }
    rows(show_schema(), columns)
}

async fn explain(session: &Arc<Session>, name: &ObjectName) -> Result<Output> {
    let (entry, spec) = materialized_view(session, name)?;
    let snapshot = session.server.catalog.snapshot();
    let status = session.server.views.status().get(&entry.oid).cloned();
    let (compiled, _) = session
        .server
        .views
        .compile(&entry.database, spec.default_schema.as_deref(), &spec.sql)
        .await?;
    let mode = status
        .as_ref()
        .map_or(compiled.mode.clone(), |s| s.mode.clone());
    let mut properties = vec![
        ("mode", mode.name().to_owned()),
        ("why", mode.describe()),
        (
            "inputs",
            compiled
                .inputs
                .values()
                .map(|i| match i {
                    crate::continuous::Input::Stream(t) => format!("streaming table {}", t.name()),
                    crate::continuous::Input::View(oid) => snapshot
                        .relations
                        .iter()
                        .find(|r| r.oid == *oid)
                        .map_or_else(
                            || format!("view {oid}"),
                            |r| format!("materialized view {}.{}", r.schema, r.name),
                        ),
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "state",
            status.as_ref().map_or("building", |s| s.state).to_owned(),
        ),
        (
            "epoch_ms",
            session.server.views.epoch_length().as_millis().to_string(),
        ),
        (
            "emit",
            spec.options
                .get("emit")
                .cloned()
                .unwrap_or_else(|| "on_update".to_owned()),
        ),
        ("definition", spec.sql.clone()),
        ("plan", compiled.plan.display_indent().to_string()),
    ];
    if let Some(panes) = &compiled.panes {
        properties.insert(2, ("windows", panes.describe()));
    }
    if let Some(error) = status.as_ref().and_then(|s| s.error.clone()) {
        properties.push(("error", error));
    }
    let (names, values) = properties
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .unzip();
    rows(explain_schema(), vec![names, values])
}
