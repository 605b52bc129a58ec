//! Transaction-control statements. Basin reads are snapshot reads and writes commit per
//! statement, so a transaction block is bookkeeping for clients: `BEGIN`/`COMMIT`/`ROLLBACK`
//! move the connection's transaction status (which pgwire reports in ReadyForQuery), and
//! savepoints, `DISCARD` and `DEALLOCATE` are accepted with the right tags (`DEALLOCATE` and
//! `DISCARD ALL` drop SQL prepared statements). The end of a block
//! closes its cursors.

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{DiscardObject, Statement};

use super::Output;
use crate::error::{Error, Result};
use crate::session::Session;

pub(super) fn execute(session: &Arc<Session>, statement: &Statement) -> Result<Output> {
    Ok(match statement {
        Statement::StartTransaction { .. } => {
            session.cursors.begin_block();
            Output::TransactionStart("BEGIN".to_owned())
        }
        Statement::Commit { .. } => {
            session.cursors.end_block();
            Output::TransactionEnd("COMMIT".to_owned())
        }
        // Rolling back to a savepoint leaves the block usable again, even after an error.
        Statement::Rollback {
            savepoint: Some(_), ..
        } => Output::TransactionStart("ROLLBACK".to_owned()),
        Statement::Rollback { .. } => {
            session.cursors.end_block();
            Output::TransactionEnd("ROLLBACK".to_owned())
        }
        Statement::Savepoint { .. } => Output::Command("SAVEPOINT".to_owned()),
        Statement::ReleaseSavepoint { .. } => Output::Command("RELEASE".to_owned()),
        Statement::Discard { object_type } => {
            if matches!(object_type, DiscardObject::ALL) {
                session.cursors.close_all();
                session.prepared.clear();
                session.vars.reset_all();
                super::settings::sync_engine(session);
            }
            Output::Command(format!("DISCARD {object_type}"))
        }
        Statement::Deallocate { name, .. } => {
            session.prepared.deallocate(name);
            Output::Command("DEALLOCATE".to_owned())
        }
        other => {
            return Err(Error::Internal(format!(
                "not a transaction statement: {other}"
            )));
        }
    })
}
