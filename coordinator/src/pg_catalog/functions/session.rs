//! Functions about the session: who and where it is, its settings, and the server it talks to.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::logical_expr::Volatility;

use super::{PgFunction, arg, arg_bool, arg_text, text};
use crate::pg_catalog::snapshot::CatalogSource;
use crate::session::vars::SERVER_VERSION;

/// `version()`: clients (SQLAlchemy, pgjdbc, Metabase) parse `PostgreSQL N.N` from the front.
pub(super) fn version_string() -> String {
    let platform = match std::env::consts::OS {
        "linux" => format!("{}-pc-linux-gnu", std::env::consts::ARCH),
        os => format!("{}-{os}", std::env::consts::ARCH),
    };
    format!(
        "PostgreSQL {SERVER_VERSION} (Basin {}) on {platform}, compiled by rustc, {}-bit",
        env!("CARGO_PKG_VERSION"),
        usize::BITS
    )
}

pub(super) fn functions(source: &Arc<CatalogSource>) -> Vec<PgFunction> {
    let mut functions = vec![PgFunction::new(
        "version",
        &[0],
        DataType::Utf8,
        Volatility::Immutable,
        |_| Ok(text(Some(version_string()))),
    )];

    let s = Arc::clone(source);
    functions.push(
        PgFunction::new(
            "current_database",
            &[0],
            DataType::Utf8,
            Volatility::Stable,
            move |_| Ok(text(Some(s.vars().database.clone()))),
        )
        .with_aliases(&["current_catalog"]),
    );

    let s = Arc::clone(source);
    functions.push(
        PgFunction::new(
            "current_user",
            &[0],
            DataType::Utf8,
            Volatility::Stable,
            move |_| Ok(text(Some(s.vars().user.clone()))),
        )
        .with_aliases(&["user", "current_role"]),
    );

    // No SET ROLE / SET SESSION AUTHORIZATION yet, so the session user is the current user.
    let s = Arc::clone(source);
    functions.push(PgFunction::new(
        "session_user",
        &[0],
        DataType::Utf8,
        Volatility::Stable,
        move |_| Ok(text(Some(s.vars().user.clone()))),
    ));

    let s = Arc::clone(source);
    functions.push(PgFunction::new(
        "current_schema",
        &[0],
        DataType::Utf8,
        Volatility::Volatile,
        move |_| Ok(text(s.snapshot().search_path(false).into_iter().next())),
    ));

    let s = Arc::clone(source);
    functions.push(PgFunction::new(
        "current_schemas",
        &[1],
        DataType::new_list(DataType::Utf8, true),
        Volatility::Volatile,
        move |args| {
            let Some(include_implicit) = arg_bool(arg(args, 0)) else {
                return ScalarValue::try_new_null(&DataType::new_list(DataType::Utf8, true));
            };
            let schemas: Vec<ScalarValue> = s
                .snapshot()
                .search_path(include_implicit)
                .into_iter()
                .map(|name| ScalarValue::Utf8(Some(name)))
                .collect();
            Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                &schemas,
                &DataType::Utf8,
            )))
        },
    ));

    let s = Arc::clone(source);
    functions.push(PgFunction::new(
        "current_setting",
        &[1, 2],
        DataType::Utf8,
        Volatility::Volatile,
        move |args| {
            let Some(name) = arg_text(arg(args, 0)) else {
                return Ok(text(None::<String>));
            };
            let missing_ok = arg_bool(arg(args, 1)).unwrap_or(false);
            match s.setting(&name) {
                Some(value) => Ok(text(Some(value))),
                None if missing_ok => Ok(text(None::<String>)),
                None => exec_err!("unrecognized configuration parameter \"{name}\""),
            }
        },
    ));

    let s = Arc::clone(source);
    functions.push(PgFunction::new(
        "set_config",
        &[3],
        DataType::Utf8,
        Volatility::Volatile,
        move |args| {
            let Some(name) = arg_text(arg(args, 0)) else {
                return exec_err!("SET requires parameter name");
            };
            let value = arg_text(arg(args, 1)).unwrap_or_default();
            s.vars().set(&name, value.clone());
            Ok(text(Some(value)))
        },
    ));

    let s = Arc::clone(source);
    functions.push(PgFunction::new(
        "pg_backend_pid",
        &[0],
        DataType::Int32,
        Volatility::Stable,
        move |_| Ok(ScalarValue::Int32(Some(s.vars().backend_pid))),
    ));

    functions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_reads_as_postgres_16_and_names_basin() {
        let version = version_string();
        assert!(version.starts_with("PostgreSQL 16.6 (Basin "), "{version}");
        assert!(version.ends_with("-bit"), "{version}");
    }
}
