//! The metamorphic oracles: each [`Check`] is a pair of queries that must return the same
//! multiset of rows.
//!
//! - **TLP** (ternary logic partitioning, Rigger & Su, OOPSLA 2020): for any predicate `p`, every
//!   row satisfies exactly one of `p`, `NOT p`, `p IS NULL`, so a query equals the recombination of
//!   its three partitions: for WHERE (`UNION ALL`), DISTINCT and GROUP BY (`UNION`), HAVING
//!   (`UNION ALL` of the three HAVING clauses), and aggregates (`SUM` of partial SUMs and COUNTs,
//!   `MIN` of MINs, `MAX` of MAXes, ungrouped and grouped).
//! - **NoREC** (Rigger & Su, ESEC/FSE 2020): `SELECT count(*) FROM f WHERE p` (which the optimizer
//!   may push down, index, prune) equals `SELECT sum(CASE WHEN p THEN 1 ELSE 0 END) FROM f` (which
//!   it has to evaluate row by row).

use super::expr::{ExprGen, Scope, ScopeColumn};
use super::rng::Rng;
use super::schema::{Class, Schema, Table};

/// One query and the classes of its output columns (for float tolerance and `.slt` types).
#[derive(Clone, Debug)]
pub(super) struct Query {
    pub(super) sql: String,
    pub(super) classes: Vec<Class>,
}

/// Two queries that must agree.
#[derive(Clone, Debug)]
pub(super) struct Check {
    pub(super) oracle: &'static str,
    pub(super) left: Query,
    pub(super) right: Query,
}

pub(super) const ORACLES: [&str; 7] = [
    "tlp_where",
    "tlp_distinct",
    "tlp_group_by",
    "tlp_having",
    "tlp_aggregate",
    "tlp_grouped_aggregate",
    "norec",
];

/// A FROM clause and the columns it brings into scope.
struct From {
    sql: String,
    scope: Scope,
}

fn scope_of(table: &Table, alias: &str, scope: &mut Scope) {
    for column in &table.columns {
        scope.columns.push(ScopeColumn {
            reference: format!("{alias}.{}", column.name),
            class: column.class,
        });
    }
}

fn from_clause(rng: &mut Rng, schema: &Schema) -> From {
    let first = rng.pick(&schema.tables);
    let mut scope = Scope::default();
    scope_of(first, "a0", &mut scope);
    if rng.chance(50) {
        return From {
            sql: format!("{} AS a0", first.name),
            scope,
        };
    }
    let second = rng.pick(&schema.tables);
    let mut right = Scope::default();
    scope_of(second, "a1", &mut right);
    let kind = *rng.pick(&[
        "JOIN",
        "JOIN",
        "LEFT JOIN",
        "LEFT JOIN",
        "RIGHT JOIN",
        "FULL JOIN",
        "CROSS JOIN",
    ]);
    let mut both = scope.clone();
    both.columns.extend(right.columns.iter().cloned());
    let sql = if kind == "CROSS JOIN" {
        format!("{} AS a0 CROSS JOIN {} AS a1", first.name, second.name)
    } else {
        // An equi-join key of a class both sides have (the INT first column at least), so hash
        // and sort-merge joins are both possible; sometimes an extra non-equi conjunct.
        let mut keys = Vec::new();
        let pairs: Vec<_> = scope
            .columns
            .iter()
            .flat_map(|l| {
                right
                    .columns
                    .iter()
                    .filter(move |r| r.class == l.class && l.class != Class::Double)
                    .map(move |r| (l.reference.clone(), r.reference.clone()))
            })
            .collect();
        let key_count = if rng.chance(25) { 2 } else { 1 };
        for _ in 0..key_count {
            if !pairs.is_empty() {
                let (l, r) = rng.pick(&pairs);
                keys.push(format!("{l} = {r}"));
            }
        }
        if rng.chance(20) || keys.is_empty() {
            let mut generator = ExprGen {
                rng,
                scope: &both,
                max_depth: 2,
            };
            keys.push(generator.predicate());
        }
        format!(
            "{} AS a0 {kind} {} AS a1 ON {}",
            first.name,
            second.name,
            keys.join(" AND ")
        )
    };
    From { sql, scope: both }
}

/// Generates one check of a random oracle over `schema`.
pub(super) fn generate(rng: &mut Rng, schema: &Schema) -> Check {
    let from = from_clause(rng, schema);
    let oracle = *rng.pick(&ORACLES);
    // Mostly shallow predicates: a debug build spends as long planning a deep one as running it.
    let max_depth = *rng.pick(&[1, 2, 2, 3]);
    let predicate = ExprGen {
        rng,
        scope: &from.scope,
        max_depth,
    }
    .predicate();
    match oracle {
        "tlp_where" => tlp_where(rng, &from, &predicate),
        "tlp_distinct" => tlp_distinct(rng, &from, &predicate),
        "tlp_group_by" => tlp_group_by(rng, &from, &predicate),
        "tlp_having" => tlp_having(rng, &from),
        "tlp_aggregate" => tlp_aggregate(rng, &from, &predicate, false),
        "tlp_grouped_aggregate" => tlp_aggregate(rng, &from, &predicate, true),
        _ => norec(&from, &predicate),
    }
}

/// 1..=3 typed expressions for a select list.
fn select_list(rng: &mut Rng, scope: &Scope, max: usize) -> (Vec<String>, Vec<Class>) {
    let count = rng.range(1, max as i64) as usize;
    let mut exprs = Vec::new();
    let mut classes = Vec::new();
    for _ in 0..count {
        let class = scope.class(rng);
        let max_depth = *rng.pick(&[1, 2]);
        let expr = ExprGen {
            rng,
            scope,
            max_depth,
        }
        .expr(class);
        // A bare integer in GROUP BY names an output column by position; keep it a value.
        let positional = expr
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim_start_matches(['-', ' '])
            .chars()
            .all(|c| c.is_ascii_digit());
        exprs.push(if positional {
            format!("CAST({expr} AS BIGINT)")
        } else {
            expr
        });
        classes.push(class);
    }
    (exprs, classes)
}

fn partitions(predicate: &str) -> [String; 3] {
    [
        format!("WHERE {predicate}"),
        format!("WHERE NOT ({predicate})"),
        format!("WHERE ({predicate}) IS NULL"),
    ]
}

fn tlp_where(rng: &mut Rng, from: &From, predicate: &str) -> Check {
    let (exprs, classes) = select_list(rng, &from.scope, 2);
    let list = exprs.join(", ");
    let left = format!("SELECT {list} FROM {}", from.sql);
    let right = partitions(predicate)
        .iter()
        .map(|clause| format!("SELECT {list} FROM {} {clause}", from.sql))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    Check {
        oracle: "tlp_where",
        left: Query {
            sql: left,
            classes: classes.clone(),
        },
        right: Query {
            sql: right,
            classes,
        },
    }
}

fn tlp_distinct(rng: &mut Rng, from: &From, predicate: &str) -> Check {
    let (exprs, classes) = select_list(rng, &from.scope, 2);
    let list = exprs.join(", ");
    let left = format!("SELECT DISTINCT {list} FROM {}", from.sql);
    let right = partitions(predicate)
        .iter()
        .map(|clause| format!("SELECT DISTINCT {list} FROM {} {clause}", from.sql))
        .collect::<Vec<_>>()
        .join(" UNION ");
    Check {
        oracle: "tlp_distinct",
        left: Query {
            sql: left,
            classes: classes.clone(),
        },
        right: Query {
            sql: right,
            classes,
        },
    }
}

fn tlp_group_by(rng: &mut Rng, from: &From, predicate: &str) -> Check {
    let (exprs, classes) = select_list(rng, &from.scope, 2);
    let list = exprs.join(", ");
    let left = format!("SELECT {list} FROM {} GROUP BY {list}", from.sql);
    let right = partitions(predicate)
        .iter()
        .map(|clause| format!("SELECT {list} FROM {} {clause} GROUP BY {list}", from.sql))
        .collect::<Vec<_>>()
        .join(" UNION ");
    Check {
        oracle: "tlp_group_by",
        left: Query {
            sql: left,
            classes: classes.clone(),
        },
        right: Query {
            sql: right,
            classes,
        },
    }
}

/// An aggregate that TLP can recombine: (the aggregate, how partial results combine, its class).
fn aggregate(rng: &mut Rng, scope: &Scope) -> (String, &'static str, Class) {
    let kind = rng.below(5);
    if kind == 0 {
        return ("count(*)".to_string(), "sum", Class::Int);
    }
    let class = match kind {
        1 => {
            let class = scope.class(rng);
            if matches!(class, Class::Int | Class::Double | Class::Decimal) {
                class
            } else {
                *rng.pick(&[Class::Int, Class::Double, Class::Decimal])
            }
        }
        _ => scope.class(rng),
    };
    let argument = ExprGen {
        rng,
        scope,
        max_depth: 2,
    }
    .expr(class);
    match kind {
        1 => (format!("sum({argument})"), "sum", class),
        2 => (format!("count({argument})"), "sum", Class::Int),
        3 => (format!("min({argument})"), "min", class),
        _ => (format!("max({argument})"), "max", class),
    }
}

fn tlp_aggregate(rng: &mut Rng, from: &From, predicate: &str, grouped: bool) -> Check {
    let (aggregate, combine, class) = aggregate(rng, &from.scope);
    let (keys, mut classes) = if grouped {
        select_list(rng, &from.scope, 2)
    } else {
        (Vec::new(), Vec::new())
    };
    classes.push(class);
    let aliased: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| format!("{key} AS k{i}"))
        .collect();
    let key_names: Vec<String> = (0..keys.len()).map(|i| format!("k{i}")).collect();
    let (select_keys, group_by, outer_keys, outer_group_by) = if grouped {
        (
            format!("{}, ", aliased.join(", ")),
            format!(" GROUP BY {}", keys.join(", ")),
            format!("{}, ", key_names.join(", ")),
            format!(" GROUP BY {}", key_names.join(", ")),
        )
    } else {
        Default::default()
    };
    let left = format!(
        "SELECT {select_keys}{aggregate} FROM {}{group_by}",
        from.sql
    );
    let inner = partitions(predicate)
        .iter()
        .map(|clause| {
            format!(
                "SELECT {select_keys}{aggregate} AS agg FROM {} {clause}{group_by}",
                from.sql
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let right =
        format!("SELECT {outer_keys}{combine}(agg) FROM ({inner}) AS parts{outer_group_by}");
    Check {
        oracle: if grouped {
            "tlp_grouped_aggregate"
        } else {
            "tlp_aggregate"
        },
        left: Query {
            sql: left,
            classes: classes.clone(),
        },
        right: Query {
            sql: right,
            classes,
        },
    }
}

/// A HAVING predicate over aggregates and literals.
fn having_predicate(rng: &mut Rng, scope: &Scope, depth: u32) -> String {
    if depth < 2 && rng.chance(35) {
        let left = having_predicate(rng, scope, depth + 1);
        return match rng.below(3) {
            0 => format!("({left} AND {})", having_predicate(rng, scope, depth + 1)),
            1 => format!("({left} OR {})", having_predicate(rng, scope, depth + 1)),
            _ => format!("(NOT {left})"),
        };
    }
    let (mut aggregate, _, mut class) = aggregate(rng, scope);
    if aggregate.starts_with("sum(") && class == Class::Double {
        // A sum of doubles depends on the order rows arrive in; compared exactly with a literal
        // it would decide group membership by rounding.
        (aggregate, class) = ("count(*)".to_string(), Class::Int);
    }
    let literal = super::schema::literal(rng, class);
    let op = rng.pick(&["=", "<>", "<", "<=", ">", ">="]);
    format!("({aggregate} {op} {literal})")
}

fn tlp_having(rng: &mut Rng, from: &From) -> Check {
    let (keys, mut classes) = select_list(rng, &from.scope, 2);
    let (aggregate, _, class) = aggregate(rng, &from.scope);
    classes.push(class);
    let list = keys.join(", ");
    let having = having_predicate(rng, &from.scope, 0);
    let base = format!(
        "SELECT {list}, {aggregate} FROM {} GROUP BY {list}",
        from.sql
    );
    let right = [
        format!("HAVING {having}"),
        format!("HAVING NOT ({having})"),
        format!("HAVING ({having}) IS NULL"),
    ]
    .iter()
    .map(|clause| format!("{base} {clause}"))
    .collect::<Vec<_>>()
    .join(" UNION ALL ");
    Check {
        oracle: "tlp_having",
        left: Query {
            sql: base,
            classes: classes.clone(),
        },
        right: Query {
            sql: right,
            classes,
        },
    }
}

fn norec(from: &From, predicate: &str) -> Check {
    Check {
        oracle: "norec",
        left: Query {
            sql: format!("SELECT count(*) FROM {} WHERE {predicate}", from.sql),
            classes: vec![Class::Int],
        },
        right: Query {
            sql: format!(
                "SELECT COALESCE(sum(CASE WHEN {predicate} THEN 1 ELSE 0 END), 0) FROM {}",
                from.sql
            ),
            classes: vec![Class::Int],
        },
    }
}
