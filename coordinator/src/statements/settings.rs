//! `SET`, `SHOW` and `RESET`: Postgres settings live in the session's [`SessionVars`]; names
//! under `datafusion.` also reach the session's DataFusion configuration, so
//! `SET datafusion.execution.batch_size = 1024` tunes this connection only.
//!
//! [`SessionVars`]: crate::session::vars::SessionVars

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::execution::FunctionRegistry;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::sql::sqlparser::ast::{Expr, Reset, Set, Statement, Value};

use super::Output;
use crate::error::{Error, Result};
use crate::session::Session;

const DATAFUSION_PREFIX: &str = "datafusion.";

pub(super) fn execute(session: &Arc<Session>, statement: &Statement) -> Result<Output> {
    match statement {
        Statement::Set(set) => {
            apply_set(session, set)?;
            Ok(Output::Command("SET".to_owned()))
        }
        Statement::Reset(reset) => {
            match &reset.reset {
                Reset::ALL => {
                    session.vars.reset_all();
                    let state_ref = session.ctx.state_ref();
                    let mut state = state_ref.write();
                    *state.config_mut().options_mut() = session.initial_options.clone();
                }
                Reset::ConfigurationParameter(name) => {
                    let name = name.to_string().to_ascii_lowercase();
                    session.vars.reset(&name);
                    reset_datafusion_option(session, &name)?;
                }
            }
            sync_engine(session);
            Ok(Output::Command("RESET".to_owned()))
        }
        Statement::ShowVariable { variable } => {
            let name = setting_name(variable);
            show(session, &name)
        }
        Statement::ShowVariables { .. } => show(session, "all"),
        other => Err(Error::Internal(format!(
            "not a settings statement: {other}"
        ))),
    }
}

/// The columns a `SHOW` returns, for Describe; `None` for `SET`/`RESET`.
pub(super) fn result_schema(statement: &Statement) -> Option<SchemaRef> {
    match statement {
        Statement::ShowVariable { variable } => Some(show_schema(&setting_name(variable))),
        Statement::ShowVariables { .. } => Some(show_schema("all")),
        Statement::ShowTables { .. } => Some(super::show_tables::schema()),
        _ => None,
    }
}

fn setting_name(variable: &[datafusion::sql::sqlparser::ast::Ident]) -> String {
    let words: Vec<String> = variable
        .iter()
        .map(|i| i.value.to_ascii_lowercase())
        .collect();
    match words.join(" ").as_str() {
        "transaction isolation level" => "transaction_isolation".to_owned(),
        "time zone" => "timezone".to_owned(),
        _ => words.join("."),
    }
}

fn show_schema(name: &str) -> SchemaRef {
    if name == "all" {
        Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("setting", DataType::Utf8, false),
            Field::new("description", DataType::Utf8, false),
        ]))
    } else {
        Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]))
    }
}

fn show(session: &Session, name: &str) -> Result<Output> {
    let schema = show_schema(name);
    let columns: Vec<ArrayRef> = if name == "all" {
        let all = session.vars.all();
        vec![
            Arc::new(StringArray::from_iter_values(all.keys())),
            Arc::new(StringArray::from_iter_values(all.values())),
            Arc::new(StringArray::from_iter_values(all.keys().map(|_| ""))),
        ]
    } else {
        let value = lookup(session, name)?;
        vec![Arc::new(StringArray::from(vec![value]))]
    };
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
        .map_err(|e| Error::Internal(format!("build SHOW result: {e}")))?;
    let stream = MemoryStream::try_new(vec![batch], Arc::clone(&schema), None)?;
    Ok(Output::Rows {
        schema,
        stream: Box::pin(stream),
    })
}

fn lookup(session: &Session, name: &str) -> Result<String> {
    if name.starts_with(DATAFUSION_PREFIX) {
        let state = session.ctx.state();
        return state
            .config_options()
            .entries()
            .into_iter()
            .find(|entry| entry.key == name)
            .map(|entry| entry.value.unwrap_or_else(|| "NULL".to_owned()))
            .ok_or_else(|| unrecognized(name));
    }
    session.vars.get(name).ok_or_else(|| unrecognized(name))
}

fn unrecognized(name: &str) -> Error {
    Error::user(
        "42704",
        format!("unrecognized configuration parameter \"{name}\""),
    )
}

fn apply_set(session: &Session, set: &Set) -> Result<()> {
    match set {
        Set::SingleAssignment {
            variable, values, ..
        } => {
            let name = variable.to_string().to_ascii_lowercase();
            let name = name.trim_matches('"');
            let value = values.iter().map(value_text).collect::<Vec<_>>().join(", ");
            if value.eq_ignore_ascii_case("default") {
                session.vars.reset(name);
                return reset_datafusion_option(session, name);
            }
            set_one(session, name, value)
        }
        Set::SetTimeZone { value, .. } => set_one(session, "timezone", value_text(value)),
        Set::MultipleAssignments { assignments } => {
            for assignment in assignments {
                let name = assignment.name.to_string().to_ascii_lowercase();
                set_one(session, &name, value_text(&assignment.value))?;
            }
            Ok(())
        }
        // SET TRANSACTION / SESSION CHARACTERISTICS / ROLE / NAMES: accepted; Basin has one
        // isolation level (snapshot reads) and no roles yet.
        _ => Ok(()),
    }
}

/// `RESET datafusion.x` / `SET datafusion.x = DEFAULT`: the option's value when the session
/// started (nothing for other names).
fn reset_datafusion_option(session: &Session, name: &str) -> Result<()> {
    if !name.starts_with(DATAFUSION_PREFIX) {
        return Ok(());
    }
    let Some(entry) = session
        .initial_options
        .entries()
        .into_iter()
        .find(|entry| entry.key == name)
    else {
        return Err(Error::user(
            "42704",
            format!("unrecognized configuration parameter \"{name}\""),
        ));
    };
    let state_ref = session.ctx.state_ref();
    let mut state = state_ref.write();
    let options = state.config_mut().options_mut();
    match entry.value {
        Some(value) => options.set(name, &value),
        // Unset at the start (an empty `Option`), which no text can set back: start from the
        // initial options and re-apply the session's values of every other option.
        None => {
            let mut restored = session.initial_options.clone();
            for other in options.entries() {
                if other.key != name
                    && let Some(value) = other.value
                {
                    restored.set(&other.key, &value)?;
                }
            }
            *options = restored;
            Ok(())
        }
    }
    .map_err(|e| Error::user("22023", format!("cannot reset \"{name}\": {e}")))?;
    refresh_config_functions(&mut state);
    Ok(())
}

fn set_one(session: &Session, name: &str, value: String) -> Result<()> {
    if let Some(key) = name.strip_prefix(DATAFUSION_PREFIX).map(|_| name) {
        let state_ref = session.ctx.state_ref();
        let mut state = state_ref.write();
        let options = state.config_mut().options_mut();
        // An unquoted `true`/`false` reaches here as Postgres spells booleans (`on`/`off`),
        // which DataFusion's options do not parse.
        let retry = match value.to_ascii_lowercase().as_str() {
            "on" | "yes" => Some("true"),
            "off" | "no" => Some("false"),
            _ => None,
        };
        options
            .set(key, &value)
            .or_else(|e| retry.map_or(Err(e), |boolean| options.set(key, boolean)))
            .map_err(|e| Error::user("22023", format!("invalid value for \"{name}\": {e}")))?;
        refresh_config_functions(&mut state);
        // Recorded constant results may depend on it (see `session::constants`).
        session.vars.changed();
        return Ok(());
    }
    if name == "basin.read_consistency"
        && !["default", "strict"].contains(&value.trim_matches('\'').to_ascii_lowercase().as_str())
    {
        return Err(Error::user(
            "22023",
            format!(
                "invalid value for parameter \"basin.read_consistency\": \"{value}\" \
                 (expected 'default' or 'strict')"
            ),
        ));
    }
    if name == crate::dist::row_filters::SETTING
        && crate::dist::row_filters::RowFilterMode::parse(&value).is_none()
    {
        return Err(Error::user(
            "22023",
            format!(
                "invalid value for parameter \"{name}\": \"{value}\" (expected 'auto', 'on' \
                 or 'off')"
            ),
        ));
    }
    if name == crate::query_memory::SETTING
        && basin_catalog::streams::parse_bytes(value.trim().trim_matches('\'')).is_none()
    {
        return Err(Error::user(
            "22023",
            format!(
                "invalid value for parameter \"{name}\": \"{value}\" (a size such as '256MB', \
                 or 0 for half of the coordinator's memory pool)"
            ),
        ));
    }
    if name == "statement_timeout" && crate::session::parse_duration_setting(&value).is_none() {
        return Err(Error::user(
            "22023",
            format!("invalid value for parameter \"statement_timeout\": \"{value}\""),
        ));
    }
    session.vars.set(name, value);
    if name == "search_path" || name == "timezone" {
        sync_engine(session);
    }
    Ok(())
}

/// The DataFusion side of the Postgres settings: unqualified names resolve in the first schema
/// of `search_path` that exists (for queries as for DDL), and `now()`/timestamptz use the
/// session time zone. Called whenever those settings may have changed.
pub(super) fn sync_engine(session: &Session) {
    // Read before the settings: a change racing with this one is applied by the next call.
    let generation = session.vars.generation();
    let applied = engine_inputs(session);
    let schema = super::ddl::default_schema(session);
    let zone = session.vars.get("timezone").unwrap_or_default();
    let zone = if zone.is_empty()
        || zone.eq_ignore_ascii_case("utc")
        || zone.eq_ignore_ascii_case("local")
        || zone.eq_ignore_ascii_case("etc/utc")
    {
        "+00:00".to_owned()
    } else {
        zone
    };
    let state_ref = session.ctx.state_ref();
    let mut state = state_ref.write();
    let options = state.config_mut().options_mut();
    options.catalog.default_schema = schema;
    options.execution.time_zone = Some(zone);
    refresh_config_functions(&mut state);
    drop(state);
    *session
        .engine_applied
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(applied);
    session
        .engine_generation
        .store(generation, std::sync::atomic::Ordering::Release);
}

/// Re-creates the functions whose behaviour depends on the options, as DataFusion's own `SET`
/// does: `now()` carries the session time zone in its return type, so without this it kept the
/// zone of the session's start (`SELECT current_date() = cast(now() AS date)` was false near
/// midnight under `SET TimeZone`; found by DataFusion's `current_date_timezone.slt`).
fn refresh_config_functions(state: &mut datafusion::execution::SessionState) {
    let options = Arc::clone(state.config().options());
    let updated: Vec<_> = state
        .scalar_functions()
        .values()
        .filter_map(|function| function.inner().with_updated_config(&options))
        .collect();
    for function in updated {
        // Replaces the function of the same name; registering cannot fail for a scalar one.
        let _ = state.register_udf(Arc::new(function));
    }
}

/// The settings [`sync_engine`] applies.
fn engine_inputs(session: &Session) -> (String, String) {
    (
        session.vars.get("timezone").unwrap_or_default(),
        session.vars.get("search_path").unwrap_or_default(),
    )
}

/// [`sync_engine`] when `TimeZone` or `search_path` differ from what it last applied (checked
/// only when some setting changed). Other changes leave the DataFusion session alone, so an
/// earlier `SET datafusion.execution.time_zone` survives a pool's `SET application_name`.
pub(super) fn sync_engine_if_changed(session: &Session) {
    let generation = session.vars.generation();
    if session
        .engine_generation
        .load(std::sync::atomic::Ordering::Acquire)
        == generation
    {
        return;
    }
    let current = engine_inputs(session);
    let stale = session
        .engine_applied
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        != Some(&current);
    if stale {
        sync_engine(session);
    } else {
        session
            .engine_generation
            .store(generation, std::sync::atomic::Ordering::Release);
    }
}

fn value_text(expr: &Expr) -> String {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            Value::Number(n, _) => n.to_string(),
            Value::Boolean(b) => if *b { "on" } else { "off" }.to_owned(),
            other => other.to_string(),
        },
        Expr::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}
