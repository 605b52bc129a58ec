//! Ranking window functions return `bigint` in Postgres; DataFusion's `row_number`, `rank`,
//! `dense_rank` and `ntile` return UInt64, which goes over the wire as `numeric` (pgjdbc's
//! `getColumns` numbers columns with `row_number() OVER (...)` and reads the result with
//! `getInt`). The call is cast: `CAST(row_number() OVER (...) AS BIGINT)`, which keeps the
//! column's name.

use datafusion::sql::sqlparser::ast::{CastKind, DataType, Expr, ObjectNamePart};

const RANKING_FUNCTIONS: &[&str] = &["row_number", "rank", "dense_rank", "ntile"];

/// Casts `expr` to `bigint` if it is a ranking window function call.
pub(super) fn cast_ranking_to_bigint(expr: &mut Expr) {
    let Expr::Function(function) = expr else {
        return;
    };
    let is_ranking = function.over.is_some()
        && matches!(function.name.0.as_slice(), [ObjectNamePart::Identifier(name)]
            if name.quote_style.is_none()
                && RANKING_FUNCTIONS.contains(&name.value.to_ascii_lowercase().as_str()));
    if !is_ranking {
        return;
    }
    let call = std::mem::replace(expr, super::null());
    *expr = Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(call),
        data_type: DataType::BigInt(None),
        array: false,
        format: None,
    };
}
