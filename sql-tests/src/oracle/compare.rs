//! Results as multisets: rows sorted, then compared value by value, exactly except for DOUBLE
//! columns, which agree within a relative tolerance (a SUM of doubles depends on the order rows
//! arrive in, which partitioning and batching change legitimately).

use super::schema::Class;

/// One value as the server rendered it in text; `None` is NULL.
pub(super) type Value = Option<String>;
pub(super) type Rows = Vec<Vec<Value>>;

/// What a query produced: rows, or the server's error.
#[derive(Clone, Debug)]
pub(super) enum Outcome {
    Rows(Rows),
    Error { sqlstate: String, message: String },
}

/// Relative tolerance for DOUBLE values, with an absolute floor for results near zero.
const RELATIVE: f64 = 1e-9;
const ABSOLUTE: f64 = 1e-9;

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

fn floats_agree(a: &str, b: &str) -> bool {
    match (parse_float(a), parse_float(b)) {
        (Some(x), Some(y)) => {
            if x.is_nan() || y.is_nan() || x.is_infinite() || y.is_infinite() {
                return x.is_nan() && y.is_nan() || x == y;
            }
            let scale = x.abs().max(y.abs());
            (x - y).abs() <= ABSOLUTE.max(RELATIVE * scale)
        }
        _ => false,
    }
}

/// A sort key for one value: DOUBLEs rounded to 9 significant digits, so that rows whose float
/// columns differ only by rounding sort into the same place.
fn sort_key(value: &Value, class: Class) -> (u8, String) {
    match value {
        None => (0, String::new()),
        Some(text) if class == Class::Double => match parse_float(text) {
            Some(number) if number.is_finite() => (1, format!("{number:.8e}")),
            _ => (1, text.clone()),
        },
        Some(text) => (1, text.clone()),
    }
}

/// `rows` in a canonical order.
pub(super) fn sorted(mut rows: Rows, classes: &[Class]) -> Rows {
    rows.sort_by_cached_key(|row| {
        row.iter()
            .enumerate()
            .map(|(i, value)| sort_key(value, classes.get(i).copied().unwrap_or(Class::Text)))
            .collect::<Vec<_>>()
    });
    rows
}

/// Whether two results are the same multiset of rows.
pub(super) fn same_rows(left: &Rows, right: &Rows, classes: &[Class]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let left = sorted(left.clone(), classes);
    let right = sorted(right.clone(), classes);
    left.iter().zip(&right).all(|(a, b)| {
        a.len() == b.len()
            && a.iter().zip(b).enumerate().all(|(i, (x, y))| match (x, y) {
                (None, None) => true,
                (Some(x), Some(y)) => {
                    x == y || (classes.get(i) == Some(&Class::Double) && floats_agree(x, y))
                }
                _ => false,
            })
    })
}

/// How two outcomes of a check relate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Same,
    /// Both sides failed (with these SQLSTATEs): not a mismatch, counted by SQLSTATE.
    BothFailed(String, String),
    Mismatch,
}

pub(super) fn judge(left: &Outcome, right: &Outcome, classes: &[Class]) -> Verdict {
    match (left, right) {
        (Outcome::Rows(a), Outcome::Rows(b)) => {
            if same_rows(a, b, classes) {
                Verdict::Same
            } else {
                Verdict::Mismatch
            }
        }
        (Outcome::Error { sqlstate: a, .. }, Outcome::Error { sqlstate: b, .. }) => {
            Verdict::BothFailed(a.clone(), b.clone())
        }
        _ => Verdict::Mismatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[&[Option<&str>]]) -> Rows {
        values
            .iter()
            .map(|row| row.iter().map(|v| v.map(str::to_string)).collect())
            .collect()
    }

    #[test]
    fn order_does_not_matter_multiplicity_does() {
        let a = rows(&[&[Some("1")], &[Some("2")], &[None]]);
        let b = rows(&[&[None], &[Some("2")], &[Some("1")]]);
        assert!(same_rows(&a, &b, &[Class::Int]));
        let c = rows(&[&[None], &[Some("2")], &[Some("2")]]);
        assert!(!same_rows(&a, &c, &[Class::Int]));
    }

    #[test]
    fn doubles_agree_within_tolerance_only() {
        let a = rows(&[&[Some("0.30000000000000004")]]);
        let b = rows(&[&[Some("0.3")]]);
        assert!(same_rows(&a, &b, &[Class::Double]));
        assert!(!same_rows(&a, &b, &[Class::Decimal]));
        let c = rows(&[&[Some("0.31")]]);
        assert!(!same_rows(&a, &c, &[Class::Double]));
    }
}
