//! Result column names as Postgres gives them: `count` for `count(*)`, `?column?` for an
//! unnamed expression, the type name for a bare cast. DataFusion names columns after the
//! expression text (`count(*)`, `Int64(1)`), which tools display and some match on.

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Expr, Query, SelectItem, SetExpr, Statement as SqlStatement,
};

/// The Postgres names of a SELECT's output columns, when they can be told from the text
/// alone (no `*`); `None` otherwise, and the planner's names stand.
pub(crate) fn output_names(statement: &DfStatement) -> Option<Vec<String>> {
    let DfStatement::Statement(inner) = statement else {
        return None;
    };
    match inner.as_ref() {
        SqlStatement::Query(query) => query_names(query),
        _ => None,
    }
}

fn query_names(query: &Query) -> Option<Vec<String>> {
    set_names(&query.body)
}

fn set_names(body: &SetExpr) -> Option<Vec<String>> {
    match body {
        SetExpr::Select(select) => select
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(expr) => Some(expr_name(expr)),
                SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
                _ => None,
            })
            .collect(),
        SetExpr::Query(query) => query_names(query),
        SetExpr::SetOperation { left, .. } => set_names(left),
        _ => None,
    }
}

fn expr_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(ident) => ident.value.clone(),
        Expr::CompoundIdentifier(parts) => parts
            .last()
            .map(|p| p.value.clone())
            .unwrap_or_else(|| "?column?".to_owned()),
        Expr::Function(function) => function
            .name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map(|ident| ident.value.to_lowercase())
            .unwrap_or_else(|| "?column?".to_owned()),
        Expr::Nested(inner) => expr_name(inner),
        Expr::Cast {
            expr, data_type, ..
        } => match expr_name(expr).as_str() {
            "?column?" => cast_type_name(&data_type.to_string()),
            name => name.to_owned(),
        },
        Expr::Case { .. } => "case".to_owned(),
        Expr::Exists { .. } => "exists".to_owned(),
        Expr::Array(_) => "array".to_owned(),
        Expr::Extract { .. } => "extract".to_owned(),
        Expr::Substring { .. } => "substring".to_owned(),
        Expr::Trim { .. } => "btrim".to_owned(),
        Expr::Position { .. } => "position".to_owned(),
        Expr::Ceil { .. } => "ceil".to_owned(),
        Expr::Floor { .. } => "floor".to_owned(),
        _ => "?column?".to_owned(),
    }
}

/// Postgres names a bare cast's column after the type's internal name.
fn cast_type_name(sql_type: &str) -> String {
    let lower = sql_type.to_ascii_lowercase();
    let base = lower.split('(').next().unwrap_or(&lower).trim();
    match base {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "real" | "float4" => "float4",
        "double precision" | "float8" | "double" => "float8",
        "boolean" | "bool" => "bool",
        "text" => "text",
        "varchar" | "character varying" => "varchar",
        "numeric" | "decimal" => "numeric",
        "date" => "date",
        "timestamp" | "timestamp without time zone" => "timestamp",
        "timestamptz" | "timestamp with time zone" => "timestamptz",
        "interval" => "interval",
        "bytea" => "bytea",
        other => other,
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Option<Vec<String>> {
        let parsed = crate::statements::parse(sql).expect("parse");
        output_names(&parsed[0].statement)
    }

    #[test]
    fn postgres_column_names() {
        assert_eq!(
            names("select 1, count(*), a, t.b, 'x'::int, c as d, version()"),
            Some(
                vec!["?column?", "count", "a", "b", "int4", "d", "version"]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )
        );
        assert_eq!(names("select * from t"), None);
    }
}
