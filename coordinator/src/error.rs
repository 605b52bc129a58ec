//! The coordinator's error type. Every error knows its class; [`Error::sqlstate`] is the one
//! place that maps classes and DataFusion/catalog errors to Postgres SQLSTATEs.

use datafusion::error::DataFusionError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad SQL or a request Basin understands but rejects; carries its own SQLSTATE.
    #[error("{message}")]
    User {
        sqlstate: &'static str,
        message: String,
        hint: Option<String>,
    },
    /// The statement was cancelled by the client or `statement_timeout`.
    #[error("{0}")]
    Cancelled(String),
    #[error(transparent)]
    Catalog(#[from] basin_catalog::Error),
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// Start-up failed: a port in use, an unreadable data directory.
    #[error("{context}: {source}")]
    Startup {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A bug in Basin.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn user(sqlstate: &'static str, message: impl Into<String>) -> Self {
        Error::User {
            sqlstate,
            message: message.into(),
            hint: None,
        }
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::user("0A000", message)
    }

    pub fn syntax(message: impl Into<String>) -> Self {
        Self::user("42601", message)
    }

    /// The Postgres SQLSTATE for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Error::User { sqlstate, .. } => sqlstate,
            Error::Cancelled(_) => "57014",
            Error::Catalog(e) => catalog_sqlstate(e),
            Error::DataFusion(e) => datafusion_sqlstate(e),
            Error::Startup { .. } => "58000",
            Error::Internal(_) => "XX000",
        }
    }

    /// The primary message in Postgres style (lower-case, no trailing period).
    pub fn message(&self) -> String {
        match self {
            Error::DataFusion(e) => datafusion_message(e),
            Error::Catalog(basin_catalog::Error::DataFusion(e)) => datafusion_message(e),
            other => other.to_string(),
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::User { hint, .. } => hint.clone(),
            Error::DataFusion(e)
                if matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)) =>
            {
                Some("reduce the data the query touches or raise the memory limit".to_owned())
            }
            Error::DataFusion(e) if column_suggestion(&e.find_root().to_string()).is_some() => {
                column_suggestion(&e.find_root().to_string())
                    .map(|column| format!("perhaps you meant to reference the column \"{column}\""))
            }
            Error::DataFusion(e) if is_executor_lost(e) => Some(
                "an executor stopped while the query ran; run the query again (see basin.executors)"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// The column DataFusion suggests in "No field named x. Did you mean 't.y'?".
fn column_suggestion(message: &str) -> Option<String> {
    let first_line = message.lines().next()?;
    if !first_line.contains("No field named ") {
        return None;
    }
    let (_, suggestion) = first_line.split_once(". Did you mean '")?;
    let column = suggestion.split('\'').next()?;
    (!column.is_empty()).then(|| column.to_owned())
}

fn is_executor_lost(error: &DataFusionError) -> bool {
    matches!(error.find_root(), DataFusionError::External(inner)
        if inner.downcast_ref::<crate::dist::ExecutorLost>().is_some())
}

fn catalog_sqlstate(error: &basin_catalog::Error) -> &'static str {
    use basin_catalog::Error as E;
    match error {
        E::NotFound { kind: "schema", .. } => "3F000",
        E::NotFound {
            kind: "database", ..
        } => "3D000",
        E::NotFound { .. } => "42P01",
        E::AlreadyExists { kind: "schema", .. } => "42P06",
        E::AlreadyExists { .. } => "42P07",
        E::WrongObjectType(_) => "42809",
        E::DependentObjects(_) => "2BP01",
        E::DuplicateColumn(_) => "42701",
        E::NotReady(_) => "55000",
        E::Unsupported(_) => "0A000",
        E::InvalidOption(_) => "22023",
        E::Credentials(_) => "28000",
        E::Io { .. } => "58030",
        // Like a connection lost during COMMIT: the outcome is unknown.
        E::NotDurable { .. } => "08007",
        E::Corrupt { .. } => "XX001",
        E::Delta { .. } => "58030",
        E::DataFusion(e) => datafusion_sqlstate(e),
    }
}

/// Maps a DataFusion error to a SQLSTATE by its kind and, where DataFusion only has a message,
/// by the message's well-known shapes.
fn datafusion_sqlstate(error: &DataFusionError) -> &'static str {
    let root = error.find_root();
    match root {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::ResourcesExhausted(message)
            if message.starts_with(basin_catalog::bounded_functions::LIMIT_MESSAGE) =>
        {
            "54000"
        }
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ArrowError(arrow_error, _) => arrow_sqlstate(arrow_error),
        DataFusionError::External(inner) => {
            if inner.downcast_ref::<crate::dist::ExecutorLost>().is_some() {
                "40001"
            } else if let Some(catalog) = inner.downcast_ref::<basin_catalog::Error>() {
                catalog_sqlstate(catalog)
            } else if let Some(ingest) = inner.downcast_ref::<basin_catalog::streams::IngestError>()
            {
                ingest_sqlstate(ingest)
            } else if let Some(arrow_error) = inner.downcast_ref::<arrow::error::ArrowError>() {
                arrow_sqlstate(arrow_error)
            } else if let Some(store) = inner.downcast_ref::<object_store::Error>() {
                object_store_sqlstate(store)
            } else if inner.downcast_ref::<std::io::Error>().is_some() {
                "58030"
            } else {
                message_sqlstate(&root.to_string()).unwrap_or("XX000")
            }
        }
        DataFusionError::ObjectStore(store) => object_store_sqlstate(store),
        DataFusionError::IoError(_) => "58030",
        DataFusionError::Internal(_) | DataFusionError::ExecutionJoin(_) => "XX000",
        DataFusionError::Execution(message) if message.contains("canceled") => "57014",
        DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::Configuration(_)
        | DataFusionError::Execution(_)
        | DataFusionError::ParquetError(_)
        | DataFusionError::Context(..)
        | DataFusionError::Substrait(_)
        | DataFusionError::Diagnostic(..)
        | DataFusionError::Collection(_)
        | DataFusionError::Shared(_)
        | DataFusionError::Ffi(_) => message_sqlstate(&root.to_string()).unwrap_or(match root {
            DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => "42000",
            DataFusionError::ParquetError(_) => "58030",
            _ => "22000",
        }),
    }
}

/// Object-store failures (S3 and local files): a missing object or bucket is 58P01, refused
/// credentials 28000 / 42501, anything else (unreachable endpoint, throttling after retries) an
/// I/O error.
fn object_store_sqlstate(error: &object_store::Error) -> &'static str {
    use object_store::Error as O;
    match error {
        O::NotFound { .. } => "58P01",
        O::Generic { .. } if message_sqlstate(&error.to_string()) == Some("58P01") => "58P01",
        O::Unauthenticated { .. } => "28000",
        O::PermissionDenied { .. } => "42501",
        _ => message_sqlstate(&error.to_string()).unwrap_or("58030"),
    }
}

fn ingest_sqlstate(error: &basin_catalog::streams::IngestError) -> &'static str {
    use basin_catalog::streams::IngestError as I;
    match error {
        I::Rejected(row) => row.sqlstate,
        I::Dropped(_) => "42P01",
        I::Log(_) => "58030",
        I::Stalled(_) => "53000",
        // The shard's executor is not connected: try again once it is.
        I::Unavailable(_) => "57P03",
        // Like a connection lost during COMMIT: the outcome is unknown.
        I::Unknown(_) => "08007",
    }
}

fn arrow_sqlstate(error: &arrow::error::ArrowError) -> &'static str {
    use arrow::error::ArrowError as A;
    match error {
        A::DivideByZero => "22012",
        A::CastError(_) | A::ParseError(_) => "22P02",
        A::ArithmeticOverflow(_) | A::ComputeError(_) => {
            message_sqlstate(&error.to_string()).unwrap_or("22003")
        }
        A::MemoryError(_) => "53200",
        A::IoError(..) => "58030",
        _ => message_sqlstate(&error.to_string()).unwrap_or("22000"),
    }
}

/// DataFusion reports many user errors only as text; these shapes are stable across releases.
fn message_sqlstate(message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    let rules: &[(&str, &str)] = &[
        // Object-store failures that crossed the exchange as text (executors' scans).
        ("nosuchbucket", "58P01"),
        ("nosuchkey", "58P01"),
        ("invalidaccesskeyid", "28000"),
        ("signaturedoesnotmatch", "28000"),
        ("lacked the necessary privileges", "42501"),
        ("object store error", "58030"),
        ("divide by zero", "22012"),
        // parse_ident's "string is not a valid identifier" (invalid_parameter_value).
        ("is not a valid identifier", "22023"),
        ("division by zero", "22012"),
        ("table '", "42P01"),
        ("table \"", "42P01"),
        ("relation \"", "42P01"),
        ("unrecognized configuration parameter", "42704"),
        ("declared as non-nullable but contains null", "23502"),
        ("violates not-null constraint", "23502"),
        ("could not serialize access", "40001"),
        ("no field named", "42703"),
        ("schema error: no field", "42703"),
        ("invalid function", "42883"),
        ("function '", "42883"),
        ("no function matches", "42883"),
        ("cannot cast", "22P02"),
        ("cast error", "22P02"),
        ("can't parse", "22P02"),
        ("cannot parse", "22P02"),
        ("invalid input syntax", "22P02"),
        ("requested length too large", "54000"),
        ("overflow", "22003"),
        ("out of range", "22003"),
        ("resources exhausted", "53200"),
        ("ambiguous", "42702"),
        ("sql error", "42601"),
        ("parsererror", "42601"),
        ("expected", "42601"),
    ];
    for (needle, sqlstate) in rules {
        if m.contains(needle) {
            if matches!(*needle, "table '" | "table \"" | "relation \"") {
                if m.contains("not found") || m.contains("does not exist") {
                    return Some(sqlstate);
                }
                continue;
            }
            return Some(sqlstate);
        }
    }
    None
}

/// DataFusion messages carry prefixes like `Error during planning: `; Postgres clients show
/// the message itself.
fn datafusion_message(error: &DataFusionError) -> String {
    let root = error.find_root();
    let text = match root {
        DataFusionError::ArrowError(e, _) => e.to_string(),
        DataFusionError::External(e) => e.to_string(),
        DataFusionError::SQL(e, _) => e.to_string(),
        DataFusionError::Plan(m)
        | DataFusionError::Execution(m)
        | DataFusionError::NotImplemented(m)
        | DataFusionError::Configuration(m)
        | DataFusionError::ResourcesExhausted(m) => m.clone(),
        DataFusionError::Internal(m) => format!("internal error: {m}"),
        other => other.to_string(),
    };
    postgres_style(&rewrite_known(&text))
}

/// Rewrites DataFusion's phrasing of the most common errors into Postgres's.
fn rewrite_known(text: &str) -> String {
    // "table 'basin.public.x' not found" -> relation "x" does not exist
    if let Some(rest) = text.strip_prefix("table '")
        && let Some(name) = rest.strip_suffix("' not found")
    {
        let short = name.rsplit('.').next().unwrap_or(name);
        return format!("relation \"{short}\" does not exist");
    }
    if text.starts_with("Divide by zero") || text.contains("Divide by zero error") {
        return "division by zero".to_owned();
    }
    let first_line = text.lines().next().unwrap_or(text);
    if first_line.contains("declared as non-nullable but contains null values") {
        return "null value violates not-null constraint".to_owned();
    }
    // "Schema error: No field named nope." -> column "nope" does not exist
    if let Some(rest) = first_line
        .strip_prefix("Schema error: No field named ")
        .or_else(|| first_line.strip_prefix("No field named "))
    {
        // DataFusion appends its suggestion to the name: "x. Did you mean 't.y'?" (see hint()).
        let name = rest.split(". Did you mean").next().unwrap_or(rest);
        let name = name.trim_end_matches('.').trim_matches('"');
        return format!("column \"{name}\" does not exist");
    }
    // "Invalid function 'nofunc'." -> function nofunc does not exist
    if let Some(rest) = first_line.strip_prefix("Invalid function '") {
        let name = rest.split('\'').next().unwrap_or(rest);
        return format!("function {name} does not exist");
    }
    // "Cast error: Cannot cast string 'abc' to value of Int32 type"
    if let Some(rest) = first_line
        .strip_prefix("Cast error: Cannot cast string '")
        .or_else(|| first_line.strip_prefix("Cannot cast string '"))
        && let Some((value, target)) = rest.split_once("' to value of ")
    {
        let target = target.trim_end_matches(" type");
        let pg = target
            .parse::<arrow::datatypes::DataType>()
            .map(|t| crate::pgwire::types::pg_type(&t).name().to_owned())
            .unwrap_or_else(|_| target.to_lowercase());
        let pg = match pg.as_str() {
            "int2" => "smallint",
            "int4" => "integer",
            "int8" => "bigint",
            "float4" => "real",
            "float8" => "double precision",
            "bool" => "boolean",
            other => other,
        };
        return format!("invalid input syntax for type {pg}: \"{value}\"");
    }
    text.to_owned()
}

fn postgres_style(text: &str) -> String {
    let trimmed = text.trim().trim_end_matches('.');
    let mut chars = trimmed.chars();
    match chars.next() {
        Some(first) if first.is_uppercase() && chars.next().is_some_and(|c| c.is_lowercase()) => {
            first.to_lowercase().collect::<String>() + &trimmed[first.len_utf8()..]
        }
        _ => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_column_names_only_the_column_and_hints_the_suggestion() {
        let error = Error::DataFusion(DataFusionError::SchemaError(
            Box::new(datafusion::common::SchemaError::FieldNotFound {
                field: Box::new(datafusion::common::Column::new_unqualified("conkeys")),
                valid_fields: vec![datafusion::common::Column::new(Some("con"), "conkey")],
            }),
            Box::new(None),
        ));
        assert_eq!(error.message(), "column \"conkeys\" does not exist");
        assert_eq!(error.sqlstate(), "42703");
        assert_eq!(
            error.hint().as_deref(),
            Some("perhaps you meant to reference the column \"con.conkey\"")
        );
    }

    /// Issue 9 item 4 (fsync failure injection): a committed write whose fsync failed is
    /// neither acknowledged nor refused, as a refusal would be a lie once the rows show up.
    #[test]
    fn committed_write_that_failed_to_sync_has_an_unknown_outcome() {
        let error = Error::Catalog(basin_catalog::Error::NotDurable {
            context: "fsync /data/tables/t/_delta_log/00000000000000000003.json".to_owned(),
            source: std::io::Error::from_raw_os_error(5),
        });
        assert_eq!(error.sqlstate(), "08007");
        assert!(error.message().contains("may not survive a crash"));
    }
}
