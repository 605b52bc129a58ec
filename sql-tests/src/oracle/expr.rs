//! Typed expression generation: every expression is generated for a [`Class`], from columns in
//! scope, literals and deterministic functions DataFusion supports. Every compound expression is
//! parenthesised, so no precedence rule of either SQL dialect matters.
//!
//! Deliberate limits, so that a difference between two plans is a bug and not undefined
//! behaviour: divisors are wrapped in `NULLIF(x, 0)` (an error raised for some rows only would
//! depend on which rows a plan evaluates first), multiplication takes one small literal factor
//! (no overflow), substrings and paddings take small non-negative literal lengths, and nothing
//! reads the clock or a random source.

use super::rng::Rng;
use super::schema::{Class, literal, quote};

/// A column reference in scope: `a0.c1` and its class.
#[derive(Clone, Debug)]
pub(super) struct ScopeColumn {
    pub(super) reference: String,
    pub(super) class: Class,
}

/// The columns an expression may reference.
#[derive(Clone, Debug, Default)]
pub(super) struct Scope {
    pub(super) columns: Vec<ScopeColumn>,
}

impl Scope {
    pub(super) fn of_class(&self, class: Class) -> Vec<&ScopeColumn> {
        self.columns
            .iter()
            .filter(|column| column.class == class)
            .collect()
    }

    /// A class to generate: usually one some column in scope has (so expressions read data rather
    /// than fold to constants), sometimes any.
    pub(super) fn class(&self, rng: &mut Rng) -> Class {
        if !self.columns.is_empty() && rng.chance(75) {
            rng.pick(&self.columns).class
        } else {
            *rng.pick(&Class::ALL)
        }
    }
}

/// Generates expressions over a scope. `max_depth` bounds nesting.
pub(super) struct ExprGen<'a> {
    pub(super) rng: &'a mut Rng,
    pub(super) scope: &'a Scope,
    pub(super) max_depth: u32,
}

const COMPARISONS: [&str; 8] = [
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "IS DISTINCT FROM",
    "IS NOT DISTINCT FROM",
];
const LIKE_PATTERNS: [&str; 9] = ["a%", "%a", "%b%", "_", "a_", "", "%", "h%o", "50\\%"];

impl ExprGen<'_> {
    pub(super) fn expr(&mut self, class: Class) -> String {
        self.at(class, 0)
    }

    /// A boolean predicate, the thing TLP and NoREC partition on.
    pub(super) fn predicate(&mut self) -> String {
        self.at(Class::Bool, 0)
    }

    fn leaf(&mut self, class: Class) -> String {
        let columns = self.scope.of_class(class);
        if !columns.is_empty() && self.rng.chance(75) {
            return self.rng.pick(&columns).reference.clone();
        }
        if self.rng.chance(8) {
            return format!("CAST(NULL AS {})", class.sql_type());
        }
        literal(self.rng, class)
    }

    fn at(&mut self, class: Class, depth: u32) -> String {
        if depth >= self.max_depth || self.rng.chance(30) {
            return self.leaf(class);
        }
        let next = depth + 1;
        match class {
            Class::Int => self.int(next),
            Class::Double => self.double(next),
            Class::Decimal => self.decimal(next),
            Class::Text => self.text(next),
            Class::Bool => self.boolean(next),
            Class::Date => self.date(next),
            Class::Timestamp => self.timestamp(next),
        }
    }

    /// The forms every class has: CASE, COALESCE, NULLIF.
    fn generic(&mut self, class: Class, depth: u32) -> String {
        match self.rng.below(4) {
            0 => format!(
                "(CASE WHEN {} THEN {} ELSE {} END)",
                self.at(Class::Bool, depth),
                self.at(class, depth),
                self.at(class, depth)
            ),
            1 => format!(
                "(CASE {} WHEN {} THEN {} END)",
                self.at(class, depth),
                literal(self.rng, class),
                self.at(class, depth)
            ),
            2 => format!(
                "COALESCE({}, {})",
                self.at(class, depth),
                self.at(class, depth)
            ),
            _ => format!(
                "NULLIF({}, {})",
                self.at(class, depth),
                self.at(class, depth)
            ),
        }
    }

    fn small(&mut self) -> i64 {
        self.rng.range(-5, 5)
    }

    fn int(&mut self, depth: u32) -> String {
        match self.rng.below(16) {
            0 | 1 => format!(
                "({} + {})",
                self.at(Class::Int, depth),
                self.at(Class::Int, depth)
            ),
            2 => format!(
                "({} - {})",
                self.at(Class::Int, depth),
                self.at(Class::Int, depth)
            ),
            3 => format!("({} * ({}))", self.at(Class::Int, depth), self.small()),
            4 => format!(
                "({} / NULLIF({}, 0))",
                self.at(Class::Int, depth),
                self.at(Class::Int, depth)
            ),
            5 => format!(
                "({} % NULLIF({}, 0))",
                self.at(Class::Int, depth),
                self.at(Class::Int, depth)
            ),
            6 => format!("abs({})", self.at(Class::Int, depth)),
            7 => format!("(- {})", self.at(Class::Int, depth)),
            8 => format!("length({})", self.at(Class::Text, depth)),
            9 => format!(
                "strpos({}, {})",
                self.at(Class::Text, depth),
                self.at(Class::Text, depth)
            ),
            10 => format!(
                "CAST(date_part('{}', {}) AS BIGINT)",
                self.rng.pick(&["year", "month", "day"]),
                self.at(Class::Date, depth)
            ),
            11 => format!(
                "{}({}, {})",
                self.rng.pick(&["greatest", "least"]),
                self.at(Class::Int, depth),
                self.at(Class::Int, depth)
            ),
            12 => format!("CAST({} AS BIGINT)", self.at(Class::Decimal, depth)),
            _ => self.generic(Class::Int, depth),
        }
    }

    fn double(&mut self, depth: u32) -> String {
        match self.rng.below(11) {
            0 | 1 => format!(
                "({} + {})",
                self.at(Class::Double, depth),
                self.at(Class::Double, depth)
            ),
            2 => format!(
                "({} - {})",
                self.at(Class::Double, depth),
                self.at(Class::Double, depth)
            ),
            3 => format!("({} * ({}))", self.at(Class::Double, depth), self.small()),
            4 => format!("abs({})", self.at(Class::Double, depth)),
            5 => format!("CAST({} AS DOUBLE)", self.at(Class::Int, depth)),
            6 => format!(
                "{}({})",
                self.rng.pick(&["floor", "ceil", "round", "trunc"]),
                self.at(Class::Double, depth)
            ),
            7 => format!(
                "({} / NULLIF({}, 0.0))",
                self.at(Class::Double, depth),
                self.at(Class::Double, depth)
            ),
            _ => self.generic(Class::Double, depth),
        }
    }

    fn decimal(&mut self, depth: u32) -> String {
        match self.rng.below(8) {
            0 | 1 => format!(
                "({} + {})",
                self.at(Class::Decimal, depth),
                self.at(Class::Decimal, depth)
            ),
            2 => format!(
                "({} - {})",
                self.at(Class::Decimal, depth),
                self.at(Class::Decimal, depth)
            ),
            3 => format!("abs({})", self.at(Class::Decimal, depth)),
            4 => format!("CAST({} AS DECIMAL(10,2))", self.at(Class::Int, depth)),
            _ => self.generic(Class::Decimal, depth),
        }
    }

    fn text(&mut self, depth: u32) -> String {
        match self.rng.below(16) {
            0 => format!("upper({})", self.at(Class::Text, depth)),
            1 => format!("lower({})", self.at(Class::Text, depth)),
            2 => format!(
                "concat({}, {})",
                self.at(Class::Text, depth),
                self.at(Class::Text, depth)
            ),
            3 => format!(
                "({} || {})",
                self.at(Class::Text, depth),
                self.at(Class::Text, depth)
            ),
            4 => format!(
                "substr({}, {})",
                self.at(Class::Text, depth),
                self.rng.range(1, 4)
            ),
            5 => format!(
                "substr({}, {}, {})",
                self.at(Class::Text, depth),
                self.rng.range(1, 4),
                self.rng.range(0, 3)
            ),
            6 => format!(
                "{}({})",
                self.rng.pick(&["trim", "ltrim", "rtrim", "reverse"]),
                self.at(Class::Text, depth)
            ),
            7 => format!(
                "replace({}, {}, {})",
                self.at(Class::Text, depth),
                quote(self.rng.pick_str(&["a", "l", " ", "b"])),
                quote(self.rng.pick_str(&["", "x", "AA"]))
            ),
            8 => format!(
                "{}({}, {})",
                self.rng.pick(&["left", "right"]),
                self.at(Class::Text, depth),
                self.rng.range(0, 3)
            ),
            9 => format!(
                "lpad({}, {}, 'x')",
                self.at(Class::Text, depth),
                self.rng.range(0, 6)
            ),
            10 => format!("CAST({} AS VARCHAR)", self.at(Class::Int, depth)),
            11 => format!("CAST({} AS VARCHAR)", self.at(Class::Date, depth)),
            12 => format!(
                "repeat({}, {})",
                self.at(Class::Text, depth),
                self.rng.range(0, 2)
            ),
            _ => self.generic(Class::Text, depth),
        }
    }

    fn comparable(&mut self) -> Class {
        self.scope.class(self.rng)
    }

    fn boolean(&mut self, depth: u32) -> String {
        match self.rng.below(18) {
            0..=3 => {
                let class = self.comparable();
                format!(
                    "({} {} {})",
                    self.at(class, depth),
                    self.rng.pick(&COMPARISONS),
                    self.at(class, depth)
                )
            }
            4 | 5 => format!(
                "({} AND {})",
                self.at(Class::Bool, depth),
                self.at(Class::Bool, depth)
            ),
            6 | 7 => format!(
                "({} OR {})",
                self.at(Class::Bool, depth),
                self.at(Class::Bool, depth)
            ),
            8 => format!("(NOT {})", self.at(Class::Bool, depth)),
            9 => {
                let class = self.comparable();
                format!(
                    "({} {})",
                    self.at(class, depth),
                    self.rng.pick(&["IS NULL", "IS NOT NULL"])
                )
            }
            10 => format!(
                "({} {})",
                self.at(Class::Bool, depth),
                self.rng.pick(&[
                    "IS TRUE",
                    "IS NOT TRUE",
                    "IS FALSE",
                    "IS NOT FALSE",
                    "IS UNKNOWN",
                    "IS NOT UNKNOWN"
                ])
            ),
            11 => {
                let class = self.comparable();
                format!(
                    "({} {}BETWEEN {} AND {})",
                    self.at(class, depth),
                    if self.rng.chance(30) { "NOT " } else { "" },
                    self.at(class, depth),
                    self.at(class, depth)
                )
            }
            12 => {
                let class = self.comparable();
                let items = (0..self.rng.range(1, 4))
                    .map(|_| self.at(class, depth + 1))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "({} {}IN ({items}))",
                    self.at(class, depth),
                    if self.rng.chance(30) { "NOT " } else { "" }
                )
            }
            13 => format!(
                "({} {} {})",
                self.at(Class::Text, depth),
                self.rng.pick(&["LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"]),
                quote(LIKE_PATTERNS[self.rng.below(LIKE_PATTERNS.len())])
            ),
            14 => format!(
                "starts_with({}, {})",
                self.at(Class::Text, depth),
                self.at(Class::Text, depth)
            ),
            _ => self.generic(Class::Bool, depth),
        }
    }

    fn date(&mut self, depth: u32) -> String {
        match self.rng.below(4) {
            0 => format!("CAST({} AS DATE)", self.at(Class::Timestamp, depth)),
            _ => self.generic(Class::Date, depth),
        }
    }

    fn timestamp(&mut self, depth: u32) -> String {
        match self.rng.below(6) {
            0 => format!("CAST({} AS TIMESTAMP)", self.at(Class::Date, depth)),
            1 => format!(
                "date_trunc('{}', {})",
                self.rng.pick(&["day", "month", "hour", "year"]),
                self.at(Class::Timestamp, depth)
            ),
            2 => format!(
                "({} + INTERVAL '{}')",
                self.at(Class::Timestamp, depth),
                self.rng.pick(&["1 hour", "1 day", "30 minutes", "1 month"])
            ),
            _ => self.generic(Class::Timestamp, depth),
        }
    }
}
