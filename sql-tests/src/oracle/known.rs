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

fn nullability_mismatch(_: &str, a: &Outcome, _: &str, b: &Outcome) -> bool {
    internal_error_with(a, b, "field nullability")
}

fn field_name_mismatch(_: &str, a: &Outcome, _: &str, b: &Outcome) -> bool {
    internal_error_with(a, b, "field name at index")
}

/// One side failed the way a filter evaluated against the wrong table's column fails.
fn misplaced_filter_error(left: &str, a: &Outcome, right: &str, b: &Outcome) -> bool {
    let misplaced = |sql: &str, outcome: &Outcome| {
        sql.contains(" JOIN ")
            && matches!(outcome, Outcome::Error { message, .. }
                if message.contains("Error evaluating filter predicate")
                    || message.contains("Cannot infer common argument type"))
    };
    (misplaced(left, a) && matches!(b, Outcome::Rows(_)))
        || (misplaced(right, b) && matches!(a, Outcome::Rows(_)))
}

fn has_join(left: &str, _: &Outcome, right: &str, _: &Outcome) -> bool {
    left.contains(" JOIN ") || right.contains(" JOIN ")
}

/// An outer join whose WHERE names a column of the nullable side (`a0.cN` of a RIGHT JOIN,
/// `a1.cN` of a LEFT JOIN) that the other side's columns outside the ON clause also name
/// (`a1.cN` in the SELECT list or the WHERE): the shape whose filter DataFusion 55.2's physical
/// filter pushdown remaps by name into the other side. Both sides must answer with rows, or one
/// fail with the type error of an expression evaluated against the other table's column.
fn outer_join_filter_on_shared_name(left: &str, a: &Outcome, right: &str, b: &Outcome) -> bool {
    let type_error = |outcome: &Outcome| {
        matches!(outcome, Outcome::Error { message, .. }
            if message.contains("Invalid arithmetic operation")
                || message.contains("Invalid comparison operation"))
    };
    let answered = |outcome: &Outcome| matches!(outcome, Outcome::Rows(_));
    let outcomes_fit = (answered(a) && answered(b))
        || (type_error(a) && answered(b))
        || (answered(a) && type_error(b));
    outcomes_fit && (shared_name_shape(left) || shared_name_shape(right))
}

fn shared_name_shape(sql: &str) -> bool {
    let (nullable, other) = if sql.contains(" RIGHT JOIN ") {
        ("a0.", "a1.")
    } else if sql.contains(" LEFT JOIN ") {
        ("a1.", "a0.")
    } else {
        return false;
    };
    let outside_on = without_on_clauses(sql);
    outside_on.split(" WHERE ").skip(1).any(|clause| {
        clause.match_indices(nullable).any(|(at, _)| {
            let column = identifier_at(&clause[at + nullable.len()..]);
            !column.is_empty() && names_column(&outside_on, other, column)
        })
    })
}

/// `sql` without the text of its ON clauses (up to the next WHERE, GROUP BY, UNION or
/// closing parenthesis of a TLP part), where the equi-keys name both sides' columns.
fn without_on_clauses(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find(" ON ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 4..];
        let end = [" WHERE ", " GROUP BY ", " UNION ", ") AS parts"]
            .iter()
            .filter_map(|stop| after.find(stop))
            .min()
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The identifier at the start of `text` (ASCII letters, digits, `_`).
fn identifier_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// Whether `sql` names `prefix` + `column` as a whole identifier (`a1.c1`, not `a1.c10`).
fn names_column(sql: &str, prefix: &str, column: &str) -> bool {
    sql.match_indices(prefix)
        .any(|(at, _)| identifier_at(&sql[at + prefix.len()..]) == column)
}

pub const KNOWN: &[Known] = &[
    Known {
        name: "datafusion-21246-filter-pushdown-duplicate-names",
        reason: "DataFusion 55.2 physical FilterPushdown remaps a filter through the ProjectionExec \
                 that join selection puts over a swapped join by column name; with both sides \
                 having a column of that name (a0.c1 and a1.c1), a WHERE on the nullable side of \
                 an outer join lands in the other table's Parquet scan: wrong rows or a type error \
                 (58030 'Invalid comparison operation'). apache/datafusion#21246 (PR #21247). \
                 Recheck: the comparison agrees with join_reordering=false (no swap) and \
                 parquet.pushdown_filters=false (Basin's default since Dec 7, so in effect \
                 join_reordering=false; either alone was not enough: the misplaced predicate \
                 also prunes files by statistics, and projections over joins are not only made \
                 by swaps, see the -projection entry)",
        signature: has_join,
        recheck: Some(&[
            ("datafusion.optimizer.join_reordering", "false"),
            ("datafusion.execution.parquet.pushdown_filters", "false"),
        ]),
        panic: None,
    },
    Known {
        name: "datafusion-21246-filter-pushdown-duplicate-names-type-error",
        reason: "the same misplaced filter, recognised by its error when the recheck does not \
                 help: the scan evaluates it against the other table's column of the same name \
                 and type errors out (58030 'Error evaluating filter predicate: ... Invalid \
                 comparison operation'), or, in a debug build only, the physical expression \
                 simplifier's debug assertion panics on it ('Cannot infer common argument type \
                 for comparison operation Timestamp(µs) IS DISTINCT FROM Boolean')",
        signature: misplaced_filter_error,
        recheck: None,
        panic: Some("Cannot infer common argument type"),
    },
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
                 b.x > a.x`), and panics 'index out of bounds: the len is 1 but the index is 1' \
                 (XX000 'task N panicked'). See sql-tests/slt/oracle/smj_join_filter.slt. \
                 Upstream: apache/datafusion PR #25489 (SMJ filter column order), #18787. \
                 Recheck: the comparison agrees with prefer_hash_join=true",
        signature: join_with_filter,
        recheck: Some(&[("datafusion.optimizer.prefer_hash_join", "true")]),
        panic: Some("index out of bounds"),
    },
    // Last: attributed by shape alone, so every more specific bug is tried first.
    Known {
        name: "datafusion-21246-filter-pushdown-duplicate-names-projection",
        reason: "the same remap by name, through a projection the logical plan put over an \
                 outer join (`Projection: a0.c1, a1.c0, a1.c1` under the WHERE), so no setting \
                 avoids it: with join_reordering=false and either pushdown_filters value the \
                 whole WHERE (`a1.c0 >= a1.c0 OR CASE WHEN a0.c1 THEN a1.c1 ELSE false END`) \
                 lands in a FilterExec over the preserved side's scan, a0.c1 read as a1.c1. \
                 Found by seed 1 once Basin's default became pushdown_filters=false (Dec 7); \
                 with it true the same partitions were wrong but their TLP sums agreed. \
                 Attributed by shape only: an outer join whose WHERE names a nullable-side \
                 column that the other side also has. See \
                 sql-tests/slt/oracle/filter_pushdown_duplicate_names.slt",
        signature: outer_join_filter_on_shared_name,
        recheck: None,
        panic: None,
    },
];
