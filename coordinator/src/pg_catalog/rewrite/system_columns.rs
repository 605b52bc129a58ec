//! `tableoid`, the system column every Postgres table has: the OID of the table a row comes
//! from. psql joins `pg_description` on it (`d.classoid = l.tableoid`). DataFusion tables have
//! no hidden columns, so `x.tableoid` for a catalog table `x` becomes that table's OID.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    DataType, Expr, ObjectName, Select, TableFactor, Value, VisitMut, VisitorMut,
};

use crate::pg_catalog::snapshot::system_specs;

/// The OID of the catalog table `name` (`pg_language`, `pg_catalog.pg_language`).
fn catalog_table_oid(name: &ObjectName) -> Option<u32> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(|i| i.value.to_ascii_lowercase())
        .collect();
    let (schema, table) = match parts.as_slice() {
        [table] => ("pg_catalog", table.as_str()),
        [.., schema, table] => (schema.as_str(), table.as_str()),
        [] => return None,
    };
    system_specs()
        .find(|(s, spec)| *s == schema && spec.name == table)
        .map(|(_, spec)| spec.oid)
}

/// Replaces `alias.tableoid` in `select` for the catalog tables its FROM names.
pub(super) fn rewrite_tableoid(select: &mut Select) {
    let mut tables = HashMap::new();
    for factor in select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
    {
        if let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = factor
            && let Some(oid) = catalog_table_oid(name)
        {
            let reference = match alias {
                Some(alias) => alias.name.value.to_ascii_lowercase(),
                None => name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(|i| i.value.to_ascii_lowercase())
                    .unwrap_or_default(),
            };
            tables.insert(reference, oid);
        }
    }
    if tables.is_empty() {
        return;
    }
    struct Replacer(HashMap<String, u32>);
    impl VisitorMut for Replacer {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::CompoundIdentifier(parts) = expr
                && let [table, column] = parts.as_slice()
                && column.value.eq_ignore_ascii_case("tableoid")
                && let Some(oid) = self.0.get(&table.value.to_ascii_lowercase())
            {
                *expr = Expr::Cast {
                    kind: datafusion::sql::sqlparser::ast::CastKind::DoubleColon,
                    expr: Box::new(Expr::value(Value::Number(oid.to_string(), false))),
                    data_type: DataType::IntUnsigned(None),
                    array: false,
                    format: None,
                };
            }
            ControlFlow::Continue(())
        }
    }
    let _ = select.visit(&mut Replacer(tables));
}
