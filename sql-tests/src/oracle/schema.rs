//! The tables a seed creates: a few Basin-managed tables with typed columns, filled by several
//! INSERTs each (so each table is several Parquet files, read by several partitions and tasks),
//! with NULLs and duplicates drawn from small pools of values.

use super::rng::Rng;

/// What an expression evaluates to, as far as the generator cares: INT and BIGINT are both
/// [`Class::Int`], so they can be compared and combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Class {
    Int,
    Double,
    Decimal,
    Text,
    Bool,
    Date,
    Timestamp,
}

impl Class {
    pub(super) const ALL: [Class; 7] = [
        Class::Int,
        Class::Double,
        Class::Decimal,
        Class::Text,
        Class::Bool,
        Class::Date,
        Class::Timestamp,
    ];

    /// The sqllogictest column type letter: `I` integer, `R` floating or decimal, `T` the rest.
    pub(super) fn slt_letter(self) -> char {
        match self {
            Class::Int => 'I',
            Class::Double | Class::Decimal => 'R',
            _ => 'T',
        }
    }

    /// The SQL type a typed NULL of this class is cast to.
    pub(super) fn sql_type(self) -> &'static str {
        match self {
            Class::Int => "BIGINT",
            Class::Double => "DOUBLE",
            Class::Decimal => "DECIMAL(10,2)",
            Class::Text => "VARCHAR",
            Class::Bool => "BOOLEAN",
            Class::Date => "DATE",
            Class::Timestamp => "TIMESTAMP",
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Column {
    pub(super) name: String,
    pub(super) class: Class,
    /// The declared type in CREATE TABLE.
    pub(super) sql_type: &'static str,
}

#[derive(Clone, Debug)]
pub(super) struct Table {
    pub(super) name: String,
    pub(super) columns: Vec<Column>,
    pub(super) rows: usize,
}

/// The tables of one seed and the statements that create them.
#[derive(Clone, Debug)]
pub(super) struct Schema {
    pub(super) tables: Vec<Table>,
    pub(super) setup: Vec<String>,
}

const TABLES: usize = 4;

impl Schema {
    /// Tables `t0..t3`. Every table has an INT column first (joins always find a key), the rest
    /// of the columns are of random classes.
    pub(super) fn generate(rng: &mut Rng, prefix: &str) -> Self {
        let mut tables = Vec::new();
        let mut setup = Vec::new();
        for index in 0..TABLES {
            let width = rng.range(3, 6) as usize;
            let mut columns = Vec::new();
            for position in 0..width {
                let class = if position == 0 {
                    Class::Int
                } else {
                    *rng.pick(&Class::ALL)
                };
                let sql_type = match class {
                    Class::Int if rng.chance(50) => "BIGINT",
                    Class::Int => "INT",
                    other => other.sql_type(),
                };
                columns.push(Column {
                    name: format!("c{position}"),
                    class,
                    sql_type,
                });
            }
            // One table in eight is empty: aggregates over nothing, joins with nothing.
            let rows = if rng.chance(12) {
                0
            } else {
                rng.range(1, 30) as usize
            };
            let table = Table {
                name: format!("{prefix}t{index}"),
                columns,
                rows,
            };
            let definition = table
                .columns
                .iter()
                .map(|column| format!("{} {}", column.name, column.sql_type))
                .collect::<Vec<_>>()
                .join(", ");
            setup.push(format!("CREATE TABLE {} ({definition})", table.name));
            // One to three INSERTs: one to three files, so scans have several partitions. More
            // files would test little more and cost a file open per scan (~7 ms in a debug build).
            let files = *rng.pick(&[1, 2, 2, 3]);
            let per_file = table.rows.div_ceil(files).max(1);
            let mut remaining = table.rows;
            while remaining > 0 {
                let batch = per_file.min(remaining);
                remaining -= batch;
                let mut insert = format!("INSERT INTO {} VALUES ", table.name);
                for row in 0..batch {
                    if row > 0 {
                        insert.push_str(", ");
                    }
                    insert.push('(');
                    for (position, column) in table.columns.iter().enumerate() {
                        if position > 0 {
                            insert.push_str(", ");
                        }
                        if rng.chance(15) {
                            insert.push_str("NULL");
                        } else {
                            insert.push_str(&stored_value(rng, column.class));
                        }
                    }
                    insert.push(')');
                }
                setup.push(insert);
            }
            tables.push(table);
        }
        Self { tables, setup }
    }
}

const INTS: [i64; 12] = [0, 1, -1, 2, 3, 5, 7, 10, -10, 42, 100, -100];
const DOUBLES: [&str; 12] = [
    "0.0", "1.0", "-1.0", "0.5", "2.25", "-3.75", "0.1", "10.5", "100.0", "-0.125", "7.0", "1e3",
];
const DECIMALS: [&str; 10] = [
    "0.00", "1.00", "-1.00", "0.50", "2.25", "-3.75", "0.10", "10.05", "99.99", "-0.01",
];
const TEXTS: [&str; 14] = [
    "", "a", "A", "ab", "abc", "Abc", " a", "a ", "hello", "HeLLo", "x_y", "50%", "é", "zz",
];
const DATES: [&str; 8] = [
    "1999-12-31",
    "2000-01-01",
    "2000-02-29",
    "2020-06-15",
    "2024-01-01",
    "2024-01-02",
    "2024-12-31",
    "1970-01-01",
];
const TIMESTAMPS: [&str; 8] = [
    "2024-01-01 00:00:00",
    "2024-01-01 12:30:00",
    "2024-01-01 12:30:00.5",
    "2000-02-29 23:59:59",
    "1999-12-31 23:59:59.999",
    "2020-06-15 08:00:00",
    "1970-01-01 00:00:00",
    "2024-12-31 23:00:00",
];

/// A value as written in an INSERT into a column of `class`.
fn stored_value(rng: &mut Rng, class: Class) -> String {
    match class {
        Class::Int => rng.pick(&INTS).to_string(),
        Class::Double => (*rng.pick(&DOUBLES)).to_string(),
        Class::Decimal => (*rng.pick(&DECIMALS)).to_string(),
        Class::Text => quote(TEXTS[rng.below(TEXTS.len())]),
        Class::Bool => if rng.chance(50) { "true" } else { "false" }.to_string(),
        Class::Date => format!("DATE '{}'", rng.pick(&DATES)),
        Class::Timestamp => format!("TIMESTAMP '{}'", rng.pick(&TIMESTAMPS)),
    }
}

/// A literal of `class` for use inside an expression (negative numbers parenthesised).
pub(super) fn literal(rng: &mut Rng, class: Class) -> String {
    match class {
        Class::Int => {
            let value = if rng.chance(70) {
                *rng.pick(&INTS)
            } else {
                rng.range(-20, 20)
            };
            if value < 0 {
                format!("({value})")
            } else {
                value.to_string()
            }
        }
        Class::Double => {
            let text = rng.pick(&DOUBLES);
            match text.strip_prefix('-') {
                Some(_) => format!("({text})"),
                None => (*text).to_string(),
            }
        }
        Class::Decimal => format!("CAST('{}' AS DECIMAL(10,2))", rng.pick(&DECIMALS)),
        Class::Text => quote(TEXTS[rng.below(TEXTS.len())]),
        Class::Bool => if rng.chance(50) { "true" } else { "false" }.to_string(),
        Class::Date => format!("DATE '{}'", rng.pick(&DATES)),
        Class::Timestamp => format!("TIMESTAMP '{}'", rng.pick(&TIMESTAMPS)),
    }
}

/// `text` as a SQL string literal.
pub(super) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
