//! Output column names as Postgres gives them (`FigureColname` in its parser): `version()` is
//! `version`, `x::text` is `x`, `'a'::text` is `text`, a CASE is `case`, a constant is
//! `?column?`. DataFusion would call them `version()`, `CAST(x AS Utf8)` and so on, and clients
//! read columns by name. Only the statement's own output is renamed; a name already taken gets
//! a suffix, since DataFusion rejects two output columns of one name.

use std::collections::HashSet;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, DataType, Expr, Ident, ObjectNamePart, Query, SelectItem, SetExpr, Value,
};

use super::is_keyword_function;
use crate::pg_catalog::types::builtin_type_by_name;

/// How sure a name is: a column or function name beats a type name beats `?column?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strength {
    Fallback,
    TypeName,
    Name,
}

fn ident_name(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    }
}

fn type_name(data_type: &DataType) -> String {
    let written = match data_type {
        DataType::Custom(name, _) => match name.0.last() {
            Some(ObjectNamePart::Identifier(ident)) => ident_name(ident),
            _ => data_type.to_string().to_ascii_lowercase(),
        },
        DataType::Array(_) => return "array".to_owned(),
        other => other.to_string().to_ascii_lowercase(),
    };
    builtin_type_by_name(&written).map_or(written, |t| t.name.to_owned())
}

fn figure(expr: &Expr) -> (String, Strength) {
    match expr {
        Expr::Identifier(ident) => (ident_name(ident), Strength::Name),
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(ident) => (ident_name(ident), Strength::Name),
            None => fallback(),
        },
        Expr::Function(function) => match function.name.0.last() {
            Some(ObjectNamePart::Identifier(ident)) => (ident_name(ident), Strength::Name),
            _ => fallback(),
        },
        Expr::Cast {
            expr, data_type, ..
        } => {
            let inner = figure(expr);
            if inner.1 == Strength::Name {
                inner
            } else {
                (type_name(data_type), Strength::TypeName)
            }
        }
        Expr::Nested(inner) | Expr::Collate { expr: inner, .. } => figure(inner),
        Expr::CompoundFieldAccess { root, access_chain } => match access_chain.last() {
            Some(AccessExpr::Dot(Expr::Identifier(field))) => (ident_name(field), Strength::Name),
            _ => figure(root),
        },
        Expr::Case { .. } => ("case".to_owned(), Strength::TypeName),
        Expr::Array(_) => ("array".to_owned(), Strength::TypeName),
        Expr::Exists { .. } => ("exists".to_owned(), Strength::TypeName),
        Expr::TypedString(typed) => (type_name(&typed.data_type), Strength::TypeName),
        Expr::Interval(_) => ("interval".to_owned(), Strength::TypeName),
        Expr::Extract { .. } => ("extract".to_owned(), Strength::Name),
        Expr::Substring { .. } => ("substring".to_owned(), Strength::Name),
        Expr::Position { .. } => ("position".to_owned(), Strength::Name),
        Expr::Value(value) if matches!(value.value, Value::Boolean(_)) => {
            ("bool".to_owned(), Strength::TypeName)
        }
        Expr::Subquery(query) => match first_item(query) {
            Some(SelectItem::ExprWithAlias { alias, .. }) => (ident_name(alias), Strength::Name),
            Some(SelectItem::UnnamedExpr(inner)) => figure(inner),
            _ => fallback(),
        },
        _ => fallback(),
    }
}

fn fallback() -> (String, Strength) {
    ("?column?".to_owned(), Strength::Fallback)
}

fn first_item(query: &Query) -> Option<&SelectItem> {
    let mut body = query.body.as_ref();
    loop {
        match body {
            SetExpr::Select(select) => return select.projection.first(),
            SetExpr::Query(query) => body = query.body.as_ref(),
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            _ => return None,
        }
    }
}

fn first_select_projection(body: &mut SetExpr) -> Option<&mut Vec<SelectItem>> {
    match body {
        SetExpr::Select(select) => Some(&mut select.projection),
        SetExpr::Query(query) => first_select_projection(&mut query.body),
        SetExpr::SetOperation { left, .. } => first_select_projection(left),
        _ => None,
    }
}

/// A column reference, which DataFusion already names as Postgres does.
fn is_plain_column(expr: &Expr) -> bool {
    match expr {
        Expr::Identifier(ident) => !is_keyword_function(ident),
        Expr::CompoundIdentifier(_) => true,
        _ => false,
    }
}

/// The Postgres names of a query's output columns, duplicates included, or `None` when they
/// cannot be told from the text (a `*` in the projection). Figure them before rewriting: the
/// rewriter replaces casts and functions Postgres names columns after.
pub(crate) fn output_names(query: &Query) -> Option<Vec<String>> {
    let mut body = query.body.as_ref();
    let projection = loop {
        match body {
            SetExpr::Select(select) => break &select.projection,
            SetExpr::Query(query) => body = query.body.as_ref(),
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            _ => return None,
        }
    };
    projection
        .iter()
        .map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(ident_name(alias)),
            SelectItem::UnnamedExpr(expr) => Some(figure(expr).0),
            _ => None,
        })
        .collect()
}

/// Prefix of the alias a column gets when a `*` in the same select list shows it again
/// (DBeaver's `SELECT db.oid, db.* FROM pg_database db`): DataFusion refuses two output
/// columns of one expression, Postgres shows both. [`duplicate_column_name`] gives the column
/// its name back in the result.
const DUPLICATE_PREFIX: &str = "__basin_dup_";

/// The Postgres name of a result column aliased by [`name_output_columns`] because a `*`
/// repeats it, or `None` for other columns.
pub(crate) fn duplicate_column_name(field: &str) -> Option<&str> {
    let rest = field.strip_prefix(DUPLICATE_PREFIX)?;
    let (number, name) = rest.split_once('_')?;
    number.chars().all(|c| c.is_ascii_digit()).then_some(name)
}

/// Aliases the statement's unnamed output expressions with their Postgres names.
pub(super) fn name_output_columns(query: &mut Query) {
    let Some(projection) = first_select_projection(&mut query.body) else {
        return;
    };
    if projection.iter().any(|item| {
        matches!(
            item,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    }) {
        for (number, item) in projection.iter_mut().enumerate() {
            if let SelectItem::UnnamedExpr(expr) = item
                && is_plain_column(expr)
            {
                let name = format!("{DUPLICATE_PREFIX}{number}_{}", figure(expr).0);
                let expr = std::mem::replace(expr, Expr::value(Value::Null));
                *item = SelectItem::ExprWithAlias {
                    expr,
                    alias: Ident::with_quote('"', name),
                };
            }
        }
    }
    let mut used: HashSet<String> = projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(ident_name(alias)),
            SelectItem::UnnamedExpr(expr) if is_plain_column(expr) => Some(figure(expr).0),
            _ => None,
        })
        .collect();
    for item in projection.iter_mut() {
        let SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        if is_plain_column(expr) {
            continue;
        }
        let (mut name, _) = figure(expr);
        // Postgres allows two columns of one name; DataFusion does not, so later ones get a
        // suffix (`?column?`, `?column?_2`).
        let base = name.clone();
        let mut suffix = 1;
        while !used.insert(name.clone()) {
            suffix += 1;
            name = format!("{base}_{suffix}");
        }
        let expr = std::mem::replace(expr, Expr::value(Value::Null));
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', name),
        };
    }
}
