//! The catalog's error type. Each variant knows whether the user or Basin is at fault; the
//! pgwire edge maps them to SQLSTATEs in one place.

use datafusion::error::DataFusionError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A relation, schema or database that does not exist (42P01 / 3F000).
    #[error("{kind} \"{name}\" does not exist")]
    NotFound { kind: &'static str, name: String },
    /// Creating something that already exists (42P07 / 42P06).
    #[error("{kind} \"{name}\" already exists")]
    AlreadyExists { kind: &'static str, name: String },
    /// The named object is of another kind, e.g. `DROP VIEW` on a table (42809).
    #[error("{0}")]
    WrongObjectType(String),
    /// Dropping something other objects still live in, without CASCADE (2BP01).
    #[error("{0}")]
    DependentObjects(String),
    /// The object exists but cannot be read yet, e.g. a materialized view still being built
    /// (55000).
    #[error("{0}")]
    NotReady(String),
    /// Two columns of a new relation share a name (42701).
    #[error("{0}")]
    DuplicateColumn(String),
    /// A request that is well-formed but not something the catalog can do (0A000 / 42809).
    #[error("{0}")]
    Unsupported(String),
    /// A table or server option with a bad name or value (22023).
    #[error("{0}")]
    InvalidOption(String),
    /// An object store needs credentials nobody configured (28000).
    #[error("{0}")]
    Credentials(String),
    /// The catalog file on disk could not be read or written.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A write was committed (other sessions may see it) but making it durable failed, e.g. a
    /// failed fsync: it may or may not survive a crash, so the client must take it as neither
    /// acknowledged nor refused (08007). The failed sync is not retried: after a failed fsync
    /// the kernel may have dropped the dirty pages, and a second fsync would report success.
    #[error("{context}: {source}; the write was committed but may not survive a crash")]
    NotDurable {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The catalog file exists but cannot be understood: a bug or corruption.
    #[error("catalog file {path} is corrupt: {message}")]
    Corrupt { path: String, message: String },
    /// Delta Lake failed reading or writing a managed table.
    #[error("delta table {table}: {source}")]
    Delta {
        table: String,
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// Planning or execution failed inside DataFusion.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn delta(table: impl Into<String>, source: deltalake::DeltaTableError) -> Self {
        Error::Delta {
            table: table.into(),
            source: Box::new(source),
        }
    }
}

impl From<Error> for DataFusionError {
    fn from(error: Error) -> Self {
        match error {
            Error::DataFusion(e) => e,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}
