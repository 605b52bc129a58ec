//! `DELETE`, `UPDATE` and `TRUNCATE`: Basin-managed tables change through their provider
//! (`basin_catalog`'s Delta copy-on-write, one commit per statement); streaming tables,
//! materialized views, views and lake tables are refused with Postgres-style errors.
//!
//! DataFusion hands a provider only the `WHERE` conjuncts that name the target table, so a
//! statement whose condition needs another relation (`UPDATE ... FROM`, a subquery) would
//! change rows it should not: those are refused before planning (0A000).

use std::sync::Arc;

use basin_catalog::model::RelationKind;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{DmlStatement, Expr, LogicalPlan, WriteOp};

use super::Output;
use crate::error::{Error, Result};
use crate::query_log::QueryHandle;
use crate::session::Session;

pub(super) async fn execute(
    session: &Arc<Session>,
    state: SessionState,
    plan: &LogicalPlan,
    log: &QueryHandle,
) -> Result<Output> {
    let LogicalPlan::Dml(DmlStatement {
        table_name,
        op,
        input,
        ..
    }) = plan
    else {
        return Err(Error::Internal("a change without a DML plan".to_owned()));
    };
    let verb = match op {
        WriteOp::Delete => "DELETE",
        WriteOp::Update => "UPDATE",
        WriteOp::Truncate => "TRUNCATE",
        other => {
            return Err(Error::Internal(format!("not a change: {}", other.name())));
        }
    };
    let target = super::ddl::resolve(session, table_name);
    let snapshot = session.server.catalog.snapshot();
    let Some(entry) = snapshot.relation(&target.database, &target.schema, &target.name) else {
        return Err(Error::user(
            "42P01",
            format!("relation \"{}\" does not exist", target.name),
        ));
    };
    refuse_kind(verb, &target.name, &entry.kind)?;
    if !matches!(op, WriteOp::Truncate) {
        refuse_other_relations(verb, input)?;
    }
    let state = without_common_subexpressions(state);
    // DataFusion's optimizer turns a condition it proves false or NULL (`WHERE false`,
    // `WHERE id = NULL`, a NULL parameter) into an empty input, and then hands the provider
    // no condition at all, which means every row: such a statement changes nothing.
    if let LogicalPlan::Dml(DmlStatement { input, .. }) = &state.optimize(plan)?
        && !matches!(op, WriteOp::Truncate)
        && !reads_a_table(input)
    {
        return Ok(Output::Command(format!("{verb} 0")));
    }
    let _serialised = session.server.catalog.lock_table_writes(&target).await;
    let started = std::time::SystemTime::now();
    let rows = super::query::run_write(session, &state, plan, None, log).await?;
    // Acknowledge only what would survive a power loss.
    session.server.catalog.sync_writes(&target, started).await?;
    session.note_write();
    Ok(Output::Command(match op {
        WriteOp::Truncate => "TRUNCATE TABLE".to_owned(),
        _ => format!("{verb} {rows}"),
    }))
}

fn reads_a_table(input: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut found = false;
    let _ = input.apply(|node| {
        found |= matches!(node, LogicalPlan::TableScan(_));
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// `state` without common-subexpression elimination: DataFusion reads an `UPDATE`'s
/// assignments from the projection over the scan, and the rule would move shared parts
/// (`SET a = id * 2 + 1, b = id * 2 + 2`) into a projection below it, out of reach.
fn without_common_subexpressions(state: SessionState) -> SessionState {
    let rules: Vec<_> = state
        .optimizers()
        .iter()
        .filter(|rule| rule.name() != "common_sub_expression_eliminate")
        .cloned()
        .collect();
    datafusion::execution::session_state::SessionStateBuilder::new_from_existing(state)
        .with_optimizer_rules(rules)
        .build()
}

fn refuse_kind(verb: &str, name: &str, kind: &RelationKind) -> Result<()> {
    match kind {
        RelationKind::Stream(_) => Err(Error::unsupported(format!(
            "cannot {verb} streaming table \"{name}\": streaming tables are append-only (their \
             log is the record of what arrived)"
        ))),
        other => not_writable(verb, name, other).map_or(Ok(()), Err),
    }
}

/// The error for writing (`verb`: `DELETE`, `copy to`, ...) into a relation Basin computes or
/// only reads: views, materialized views and lake tables. `None` for managed and streaming
/// tables, which each write path handles itself.
pub(crate) fn not_writable(verb: &str, name: &str, kind: &RelationKind) -> Option<Error> {
    let message = match kind {
        RelationKind::Managed { .. } | RelationKind::Stream(_) => return None,
        RelationKind::External { .. } => format!(
            "cannot {verb} external table \"{name}\": Basin reads its files but does not write them"
        ),
        RelationKind::MaterializedView(_) => {
            format!("cannot {verb} materialized view \"{name}\": it is computed from its query")
        }
        RelationKind::View { .. } => format!("cannot {verb} view \"{name}\""),
    };
    Some(Error::user("42809", message))
}

/// The statement's input may read the target table only: one scan, filters and projections,
/// no join and no subquery.
fn refuse_other_relations(verb: &str, input: &LogicalPlan) -> Result<()> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut scans = 0usize;
    let mut other = false;
    input
        .apply_with_subqueries(|node| {
            match node {
                LogicalPlan::TableScan(_) => scans += 1,
                LogicalPlan::Projection(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::SubqueryAlias(_) => {}
                _ => other = true,
            }
            for expr in node.expressions() {
                other |= expr.exists(|e| {
                    Ok(matches!(
                        e,
                        Expr::Exists(_)
                            | Expr::InSubquery(_)
                            | Expr::ScalarSubquery(_)
                            | Expr::OuterReferenceColumn(..)
                    ))
                })?;
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .map_err(Error::from)?;
    if other || scans > 1 {
        return Err(Error::unsupported(format!(
            "{verb} with a subquery, a join or FROM is not supported yet: the condition may name \
             the target table's columns only"
        )));
    }
    Ok(())
}
