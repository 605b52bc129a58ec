//! Known engine bugs the oracles find, each named with its reason. A mismatch is attributed to
//! one when it has the bug's signature and, for bugs with a recheck, when the same comparison
//! agrees once the recheck's settings are added to both sides. With `--skip-known` such
//! mismatches are counted as known instead of failing the run; without it they stay mismatches
//! (their reports name the suspected bug), so the bugs stay findable.

use super::compare::Outcome;

/// A known bug.
pub struct Known {
    pub name: &'static str,
    pub reason: &'static str,
    /// Whether a mismatch between these two queries and outcomes looks like this bug.
    pub(super) signature: fn(&str, &Outcome, &str, &Outcome) -> bool,
    /// Settings under which the comparison must agree for the mismatch to be this bug.
    pub(super) recheck: Option<&'static [(&'static str, &'static str)]>,
    /// For a bug that panics: what the panic message contains. Under `--skip-known` such a
    /// panic is counted as this bug instead of failing the run.
    pub(super) panic: Option<&'static str>,
}

/// The known bug a panic message belongs to.
pub(super) fn known_panic(message: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .find(|known| known.panic.is_some_and(|needle| message.contains(needle)))
        .map(|known| known.name)
}

/// A join whose ON clause has more than one conjunct (equi-keys plus a filter, or two keys).
fn join_with_filter(left: &str, _: &Outcome, right: &str, _: &Outcome) -> bool {
    let filtered = |sql: &str| {
        sql.split(" ON ").skip(1).any(|on| {
            let end = [" WHERE ", " GROUP BY ", " UNION ", ") AS parts"]
                .iter()
                .filter_map(|stop| on.find(stop))
                .min()
                .unwrap_or(on.len());
            on[..end].contains(" AND ")
        })
    };
    filtered(left) || filtered(right)
}

fn missing_column_after_union(left: &str, a: &Outcome, right: &str, b: &Outcome) -> bool {
    let missing = |sql: &str, outcome: &Outcome| {
        matches!(outcome, Outcome::Error { sqlstate, message }
            if sqlstate == "42703" && message.contains("does not exist"))
            && sql.contains(" UNION ")
    };
    (missing(left, a) && matches!(b, Outcome::Rows(_)))
        || (missing(right, b) && matches!(a, Outcome::Rows(_)))
}

/// One side failed with XX000 and a message containing `needle`, the other answered.
fn internal_error_with(a: &Outcome, b: &Outcome, needle: &str) -> bool {
    let internal = |outcome: &Outcome| {
        matches!(outcome, Outcome::Error { sqlstate, message }
            if sqlstate == "XX000" && message.contains(needle))
    };
    (internal(a) && matches!(b, Outcome::Rows(_))) || (internal(b) && matches!(a, Outcome::Rows(_)))
}

/// A sort-merge join's filter panic, whichever clause the filter came from (the optimizer
/// moves a WHERE conjunct over both sides into the join's filter too).
fn smj_filter(left: &str, a: &Outcome, right: &str, b: &Outcome) -> bool {
    let panicked = |outcome: &Outcome| {
        matches!(outcome, Outcome::Error { message, .. }
            if message.contains("panicked") && message.contains("index out of bounds"))
    };
    let joins = left.contains(" JOIN ") || right.contains(" JOIN ");
    join_with_filter(left, a, right, b)
        || joins
            && ((panicked(a) && matches!(b, Outcome::Rows(_)))
                || (panicked(b) && matches!(a, Outcome::Rows(_))))
}

/// One side failed because two aggregates got one name, the other answered.
fn aggregate_cast_name(left: &str, a: &Outcome, right: &str, b: &Outcome) -> bool {
    let collided = |sql: &str, outcome: &Outcome| {
        matches!(outcome, Outcome::Error { message, .. }
            if message.contains("duplicate unqualified field name")
                || message.contains("require unique expression names"))
            && sql.contains("CAST(")
    };
    (collided(left, a) && matches!(b, Outcome::Rows(_)))
        || (collided(right, b) && matches!(a, Outcome::Rows(_)))
}

fn projection_mapping_mismatch(_: &str, a: &Outcome, _: &str, b: &Outcome) -> bool {
    internal_error_with(a, b, "does not match with the projection expression")
}

fn nullability_mismatch(_: &str, a: &Outcome, _: &str, b: &Outcome) -> bool {
    internal_error_with(a, b, "field nullability")
}

fn field_name_mismatch(_: &str, a: &Outcome, _: &str, b: &Outcome) -> bool {
    internal_error_with(a, b, "field name at index")
}

pub const KNOWN: &[Known] = &[
    Known {
        name: "datafusion-union-empty-branch-alias",
        reason: "a UNION [ALL] whose first branch has an aliased column and a WHERE that folds to \
                 false fails to plan with 42703 'column \"x\" does not exist' (DataFusion's empty \
                 relation propagation drops the branch that named the columns). Basin aliases \
                 every unnamed output expression of the first SELECT ('?column?', 'upper', ...), \
                 so `SELECT DISTINCT c0 < c0 FROM t WHERE false UNION SELECT DISTINCT c0 < c0 \
                 FROM t` hits it",
        signature: missing_column_after_union,
        recheck: None,
        panic: None,
    },
    Known {
        name: "datafusion-24096-is-true-nullability",
        reason: "`x IS TRUE` (and IS FALSE, IS [NOT] DISTINCT FROM) over a nullable column is \
                 non-nullable logically but nullable physically, so grouping by it fails with \
                 XX000 'Physical input schema should be the same as the one converted from \
                 logical input schema ... field nullability': `SELECT DISTINCT c IS TRUE FROM t`. \
                 apache/datafusion#24096, fixed upstream by PR #24244, not in 55.2",
        signature: nullability_mismatch,
        recheck: None,
        panic: None,
    },
    Known {
        name: "datafusion-union-distinct-duplicate-names",
        reason: "a UNION of two SELECT DISTINCTs whose output has two columns of one name \
                 (a.c0, b.c0) fails with XX000 'Physical input schema should be the same ... \
                 field name at index 1: (physical) c0 vs (logical) c0_1'; PostgreSQL answers",
        signature: field_name_mismatch,
        recheck: None,
        panic: None,
    },
    Known {
        name: "datafusion-smj-join-filter",
        reason: "sort-merge joins (prefer_hash_join=false, more than one partition) with a join \
                 filter beyond the equi-keys, FULL or RIGHT: wrong answers (an ungrouped count(*) \
                 returning no row), 'column types must match schema types, expected Int32 but \
                 found Boolean' when the filter names the right side first (`ON a.k = b.k AND \
                 b.x > a.x`), and panics 'index out of bounds' in its filter's column lookup \
                 (XX000 'task N panicked'), also when the filter is a WHERE conjunct over both \
                 sides that the optimizer moved into the join (DataFusion's Python package 55.0 (built on DataFusion 55.2.0) \
                 panics the same way). See sql-tests/slt/oracle/smj_join_filter.slt. \
                 Upstream: apache/datafusion PR #25489 (SMJ filter column order), #18787. \
                 Recheck: the comparison agrees with prefer_hash_join=true",
        signature: smj_filter,
        recheck: Some(&[("datafusion.optimizer.prefer_hash_join", "true")]),
        panic: Some("index out of bounds"),
    },
    Known {
        name: "datafusion-aggregate-cast-schema-name",
        reason: "an expression's schema name leaves out casts, so two aggregates that differ \
                 only by a cast of their argument get one name and the query fails to plan: \
                 `SELECT count(c), count(CAST(c AS BIGINT)) FROM t` gives 42000 'Schema contains \
                 duplicate unqualified field name \"count(t.c)\"' (also in HAVING). DataFusion \
                 55.0's Python package fails the same way; PostgreSQL answers. \
                 apache/datafusion#18975 (closed as a duplicate)",
        signature: aggregate_cast_name,
        recheck: None,
        panic: None,
    },
    Known {
        name: "datafusion-projection-pushdown-full-join-is-null",
        reason: "a FULL JOIN under a WHERE on the nullable side that the optimizer turns into a \
                 one-sided outer join, with columns of one name on both sides, fails in the \
                 physical optimizer with XX000 'ProjectionPushdown ... Input field name c2 does \
                 not match with the projection expression c3': `SELECT a0.c1 + a1.c3, a0.c2 \
                 FROM t0 a0 FULL JOIN t3 a1 ON a0.c0 = a1.c0 WHERE (a1.c2 > 'AB') IS NULL` \
                 (t0 and t3 both with columns c0..c3). DataFusion's Python package 55.0 (built on DataFusion 55.2.0) fails \
                 the same way on in-memory and Parquet tables; PostgreSQL answers",
        signature: projection_mapping_mismatch,
        recheck: None,
        panic: None,
    },
];
