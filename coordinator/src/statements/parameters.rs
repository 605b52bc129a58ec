//! Parameter types a client declares in Parse. Postgres takes a declared type as the
//! parameter's type (`SELECT $1` with `$1` declared `numeric` returns a numeric column); Basin
//! plans from SQL text, where a bare `$1` has no type, so each declared placeholder is
//! spelled `CAST($n AS type)` before planning. That is also what Postgres does when the SQL
//! casts it again (`$1::int` with `$1` declared numeric casts the numeric).

use std::ops::ControlFlow;

use arrow::datatypes::DataType;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    CastKind, DataType as SqlType, ExactNumberInfo, Expr, TimezoneInfo, Value, VisitMut, VisitorMut,
};

use super::ParsedStatement;

impl ParsedStatement {
    /// Gives `$n` the type `declared[n - 1]` where that is `Some`; the others stay open.
    pub(crate) fn declare_parameters(&mut self, declared: &[Option<DataType>]) {
        let types: Vec<Option<SqlType>> = declared
            .iter()
            .map(|t| t.as_ref().and_then(sql_type))
            .collect();
        if types.iter().all(Option::is_none) {
            return;
        }
        if let DfStatement::Statement(statement) = &mut self.statement {
            let _ = statement.visit(&mut Declare { types: &types });
        }
    }
}

struct Declare<'a> {
    types: &'a [Option<SqlType>],
}

impl VisitorMut for Declare<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(name) = &value.value
            && let Some(index) = name.strip_prefix('$').and_then(|n| n.parse::<usize>().ok())
            && let Some(Some(data_type)) = index.checked_sub(1).and_then(|i| self.types.get(i))
        {
            let placeholder = expr.clone();
            *expr = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(placeholder),
                data_type: data_type.clone(),
                array: false,
                format: None,
            };
        }
        ControlFlow::Continue(())
    }
}

/// The SQL spelling of a declarable parameter type; `None` for types left to inference (text,
/// which is what an open parameter becomes anyway, and types without an exact spelling).
fn sql_type(data_type: &DataType) -> Option<SqlType> {
    Some(match data_type {
        DataType::Boolean => SqlType::Boolean,
        DataType::Int16 => SqlType::SmallInt(None),
        DataType::Int32 => SqlType::Integer(None),
        DataType::Int64 => SqlType::BigInt(None),
        DataType::Float32 => SqlType::Real,
        DataType::Float64 => SqlType::DoublePrecision,
        DataType::Decimal128(..) => SqlType::Numeric(ExactNumberInfo::None),
        DataType::Binary => SqlType::Bytea,
        DataType::Date32 => SqlType::Date,
        DataType::Time64(_) => SqlType::Time(None, TimezoneInfo::None),
        DataType::Timestamp(_, None) => SqlType::Timestamp(None, TimezoneInfo::None),
        DataType::Timestamp(_, Some(_)) => SqlType::Timestamp(None, TimezoneInfo::Tz),
        DataType::Interval(_) => SqlType::Interval {
            fields: None,
            precision: None,
        },
        _ => return None,
    })
}
