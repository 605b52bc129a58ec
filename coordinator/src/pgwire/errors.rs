//! Coordinator errors as Postgres ErrorResponses.

use pgwire::error::{ErrorInfo, PgWireError};

use crate::error::Error;

impl From<Error> for PgWireError {
    fn from(error: Error) -> Self {
        PgWireError::UserError(Box::new(error_info(&error)))
    }
}

pub(crate) fn error_info(error: &Error) -> ErrorInfo {
    let sqlstate = error.sqlstate();
    if sqlstate.starts_with("XX") {
        tracing::error!(error = %error, "internal error");
    } else {
        tracing::debug!(sqlstate, error = %error, "statement failed");
    }
    let mut info = ErrorInfo::new("ERROR".to_owned(), sqlstate.to_owned(), error.message());
    info.hint = error.hint();
    info
}

pub(crate) fn fatal(sqlstate: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_owned(),
        sqlstate.to_owned(),
        message.into(),
    )))
}
