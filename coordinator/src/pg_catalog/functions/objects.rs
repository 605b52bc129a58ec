//! Functions that look objects up in the catalog: visibility, owners, definitions, sizes, and
//! the input/output functions of the `reg*` types (`regclassin('t')` is what `'t'::regclass`
//! becomes after [`rewrite`](crate::pg_catalog::rewrite)).

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::logical_expr::Volatility;

use super::{PgFunction, arg, arg_oid, arg_text, boolean, oid, text};
use crate::pg_catalog::snapshot::{CatalogSource, SUPERUSER_OID, Snapshot, split_qualified_name};
use crate::pg_catalog::system::{builtin_proc, procs_named};
use crate::pg_catalog::types::{builtin_type, builtin_type_by_name, format_type};

/// A `reg*` type: how to turn a name into an OID and back.
struct RegType {
    /// `reg*in`: text to OID, an error when missing.
    input: &'static str,
    /// `to_reg*`: text to OID, NULL when missing.
    to: &'static str,
    /// `reg*out`: OID to text.
    output: &'static str,
    /// What Postgres calls a missing object of this kind (`relation "x" does not exist`).
    object: &'static str,
    lookup: fn(&Snapshot<'_>, &str) -> Option<u32>,
    display: fn(&Snapshot<'_>, u32) -> Option<String>,
}

fn lookup_class(snapshot: &Snapshot<'_>, name: &str) -> Option<u32> {
    snapshot.lookup_relation(name).map(|r| r.oid)
}

fn display_class(snapshot: &Snapshot<'_>, oid: u32) -> Option<String> {
    Some(snapshot.relation_display_name(oid))
}

fn lookup_type(_: &Snapshot<'_>, name: &str) -> Option<u32> {
    builtin_type_by_name(name).map(|t| t.oid)
}

fn display_type(_: &Snapshot<'_>, oid: u32) -> Option<String> {
    builtin_type(oid).map(|_| format_type(oid, None))
}

fn lookup_namespace(snapshot: &Snapshot<'_>, name: &str) -> Option<u32> {
    match split_qualified_name(name)?.as_slice() {
        [name] => snapshot.namespace_oid(name),
        _ => None,
    }
}

fn display_namespace(snapshot: &Snapshot<'_>, oid: u32) -> Option<String> {
    snapshot.namespace_name(oid)
}

fn lookup_proc(_: &Snapshot<'_>, name: &str) -> Option<u32> {
    let parts = split_qualified_name(name)?;
    let name = parts.last()?;
    procs_named(name).next().map(|p| p.oid)
}

fn display_proc(_: &Snapshot<'_>, oid: u32) -> Option<String> {
    builtin_proc(oid).map(|p| p.name.to_owned())
}

fn lookup_role(snapshot: &Snapshot<'_>, name: &str) -> Option<u32> {
    let parts = split_qualified_name(name)?;
    (parts.as_slice() == [snapshot.user().to_owned()]).then_some(SUPERUSER_OID)
}

fn display_role(snapshot: &Snapshot<'_>, oid: u32) -> Option<String> {
    (oid == SUPERUSER_OID).then(|| snapshot.user().to_owned())
}

const REG_TYPES: &[RegType] = &[
    RegType {
        input: "regclassin",
        to: "to_regclass",
        output: "regclassout",
        object: "relation",
        lookup: lookup_class,
        display: display_class,
    },
    RegType {
        input: "regtypein",
        to: "to_regtype",
        output: "regtypeout",
        object: "type",
        lookup: lookup_type,
        display: display_type,
    },
    RegType {
        input: "regnamespacein",
        to: "to_regnamespace",
        output: "regnamespaceout",
        object: "schema",
        lookup: lookup_namespace,
        display: display_namespace,
    },
    RegType {
        input: "regprocin",
        to: "to_regproc",
        output: "regprocout",
        object: "function",
        lookup: lookup_proc,
        display: display_proc,
    },
    RegType {
        input: "regrolein",
        to: "to_regrole",
        output: "regroleout",
        object: "role",
        lookup: lookup_role,
        display: display_role,
    },
];

/// `reg*in(text)` (errors when missing), `to_reg*(text)` (NULL when missing) and
/// `reg*out(oid)` for one `reg*` type.
fn reg_functions(source: &Arc<CatalogSource>, reg: &'static RegType) -> Vec<PgFunction> {
    let s = Arc::clone(source);
    let input = PgFunction::new(
        reg.input,
        &[1],
        DataType::UInt32,
        Volatility::Volatile,
        move |args| {
            let value = arg(args, 0);
            // An OID given as a number or numeric text is taken as is, as Postgres does.
            if let Some(number) = arg_oid(value) {
                return Ok(oid(Some(number)));
            }
            let Some(name) = arg_text(value) else {
                return Ok(oid(None));
            };
            match (reg.lookup)(&s.snapshot(), &name) {
                Some(found) => Ok(oid(Some(found))),
                None => exec_err!("{} \"{name}\" does not exist", reg.object),
            }
        },
    );

    let s = Arc::clone(source);
    let to = PgFunction::new(
        reg.to,
        &[1],
        DataType::UInt32,
        Volatility::Volatile,
        move |args| {
            let found = arg_text(arg(args, 0)).and_then(|name| (reg.lookup)(&s.snapshot(), &name));
            Ok(oid(found))
        },
    );

    let s = Arc::clone(source);
    let output = PgFunction::new(
        reg.output,
        &[1],
        DataType::Utf8,
        Volatility::Volatile,
        move |args| {
            let Some(number) = arg_oid(arg(args, 0)) else {
                return Ok(text(None::<String>));
            };
            if number == 0 {
                return Ok(text(Some("-")));
            }
            let shown = (reg.display)(&s.snapshot(), number).unwrap_or_else(|| number.to_string());
            Ok(text(Some(shown)))
        },
    );

    vec![input, to, output]
}

/// The OID an argument names: a number, or a relation name as `regclass` input reads it.
fn object_oid(snapshot: &Snapshot<'_>, value: &ScalarValue) -> Option<u32> {
    arg_oid(value).or_else(|| lookup_class(snapshot, &arg_text(value)?))
}

/// A function whose first argument is an OID (or a relation name), reading the snapshot.
fn with_oid(
    source: &Arc<CatalogSource>,
    name: &'static str,
    arities: &[usize],
    return_type: DataType,
    body: fn(&Snapshot<'_>, u32, &[ScalarValue]) -> ScalarValue,
) -> PgFunction {
    let s = Arc::clone(source);
    let null = ScalarValue::try_new_null(&return_type).unwrap_or(ScalarValue::Null);
    PgFunction::new(
        name,
        arities,
        return_type,
        Volatility::Volatile,
        move |args| {
            let snapshot = s.snapshot();
            Ok(match object_oid(&snapshot, arg(args, 0)) {
                Some(number) => body(&snapshot, number, args),
                None => null.clone(),
            })
        },
    )
}

fn table_is_visible(snapshot: &Snapshot<'_>, oid: u32, _: &[ScalarValue]) -> ScalarValue {
    boolean(snapshot.relation(oid).map(|r| snapshot.is_visible(&r)))
}

fn user_by_id(snapshot: &Snapshot<'_>, oid: u32, _: &[ScalarValue]) -> ScalarValue {
    if oid == SUPERUSER_OID {
        text(Some(snapshot.user()))
    } else {
        text(Some(format!("unknown (OID={oid})")))
    }
}

fn view_definition(snapshot: &Snapshot<'_>, oid: u32, _: &[ScalarValue]) -> ScalarValue {
    text(
        snapshot
            .relation(oid)
            .and_then(|r| r.definition.map(str::to_owned)),
    )
}

/// Basin does not track relation sizes yet: 0 for relations that exist.
fn relation_size(snapshot: &Snapshot<'_>, oid: u32, _: &[ScalarValue]) -> ScalarValue {
    ScalarValue::Int64(snapshot.relation(oid).map(|_| 0))
}

pub(super) fn functions(source: &Arc<CatalogSource>) -> Vec<PgFunction> {
    let mut functions: Vec<PgFunction> = REG_TYPES
        .iter()
        .flat_map(|reg| reg_functions(source, reg))
        .collect();
    functions.push(with_oid(
        source,
        "pg_table_is_visible",
        &[1],
        DataType::Boolean,
        table_is_visible,
    ));
    functions.push(with_oid(
        source,
        "pg_get_userbyid",
        &[1],
        DataType::Utf8,
        user_by_id,
    ));
    functions.push(with_oid(
        source,
        "pg_get_viewdef",
        &[1, 2],
        DataType::Utf8,
        view_definition,
    ));
    for name in [
        "pg_table_size",
        "pg_relation_size",
        "pg_total_relation_size",
        "pg_indexes_size",
    ] {
        functions.push(with_oid(
            source,
            name,
            &[1, 2],
            DataType::Int64,
            relation_size,
        ));
    }
    functions
}
