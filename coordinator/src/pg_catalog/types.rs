//! Postgres built-in types: the rows of `pg_type`, the Arrow → Postgres mapping every other part of
//! the front end uses, and `format_type`'s spelling of a type with its modifier.

use arrow::datatypes::{DataType, IntervalUnit, TimeUnit};

use super::PgTypeInfo;

/// One row of `pg_type` for a built-in type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BuiltinType {
    pub(super) oid: u32,
    pub(super) name: &'static str,
    pub(super) len: i16,
    pub(super) byval: bool,
    /// `b` base, `p` pseudo.
    pub(super) typtype: char,
    pub(super) category: char,
    pub(super) preferred: bool,
    /// Element type of an array type (also set for `name`, `int2vector`, `oidvector`).
    pub(super) elem: u32,
    /// The array type whose elements are this type, 0 if none.
    pub(super) array: u32,
    pub(super) collation: u32,
    pub(super) align: char,
    pub(super) storage: char,
}

impl BuiltinType {
    pub(super) fn is_array(&self) -> bool {
        self.name.starts_with('_')
    }

    pub(super) fn info(&self, typmod: i32) -> PgTypeInfo {
        PgTypeInfo {
            oid: self.oid,
            name: self.name,
            len: self.len,
            typmod,
        }
    }
}

/// `regproc` OIDs of the array I/O functions every array type shares; Npgsql tells arrays apart
/// by joining `typreceive` to `pg_proc.proname = 'array_recv'`.
pub(super) const ARRAY_IN: u32 = 750;
pub(super) const ARRAY_OUT: u32 = 751;
pub(super) const ARRAY_RECV: u32 = 2400;
pub(super) const ARRAY_SEND: u32 = 2401;
pub(super) const ARRAY_SUBSCRIPT_HANDLER: u32 = 6179;

#[expect(
    clippy::too_many_arguments,
    reason = "one positional row per pg_type entry"
)]
const fn base(
    oid: u32,
    name: &'static str,
    len: i16,
    byval: bool,
    typtype: char,
    category: char,
    preferred: bool,
    elem: u32,
    array: u32,
    collation: u32,
    align: char,
    storage: char,
) -> BuiltinType {
    BuiltinType {
        oid,
        name,
        len,
        byval,
        typtype,
        category,
        preferred,
        elem,
        array,
        collation,
        align,
        storage,
    }
}

/// Base and pseudo types as PostgreSQL 16 has them; their array types are derived in
/// [`builtin_types`]. Dumped from a real server, not written from memory.
const BASE_TYPES: &[BuiltinType] = &[
    base(16, "bool", 1, true, 'b', 'B', true, 0, 1000, 0, 'c', 'p'),
    base(
        17, "bytea", -1, false, 'b', 'U', false, 0, 1001, 0, 'i', 'x',
    ),
    base(18, "char", 1, true, 'b', 'Z', false, 0, 1002, 0, 'c', 'p'),
    base(
        19, "name", 64, false, 'b', 'S', false, 18, 1003, 950, 'c', 'p',
    ),
    base(20, "int8", 8, true, 'b', 'N', false, 0, 1016, 0, 'd', 'p'),
    base(21, "int2", 2, true, 'b', 'N', false, 0, 1005, 0, 's', 'p'),
    base(
        22,
        "int2vector",
        -1,
        false,
        'b',
        'A',
        false,
        21,
        1006,
        0,
        'i',
        'p',
    ),
    base(23, "int4", 4, true, 'b', 'N', false, 0, 1007, 0, 'i', 'p'),
    base(
        24, "regproc", 4, true, 'b', 'N', false, 0, 1008, 0, 'i', 'p',
    ),
    base(
        25, "text", -1, false, 'b', 'S', true, 0, 1009, 100, 'i', 'x',
    ),
    base(26, "oid", 4, true, 'b', 'N', true, 0, 1028, 0, 'i', 'p'),
    base(27, "tid", 6, false, 'b', 'U', false, 0, 1010, 0, 's', 'p'),
    base(28, "xid", 4, true, 'b', 'U', false, 0, 1011, 0, 'i', 'p'),
    base(29, "cid", 4, true, 'b', 'U', false, 0, 1012, 0, 'i', 'p'),
    base(
        30,
        "oidvector",
        -1,
        false,
        'b',
        'A',
        false,
        26,
        1013,
        0,
        'i',
        'p',
    ),
    base(114, "json", -1, false, 'b', 'U', false, 0, 199, 0, 'i', 'x'),
    base(142, "xml", -1, false, 'b', 'U', false, 0, 143, 0, 'i', 'x'),
    base(
        194,
        "pg_node_tree",
        -1,
        false,
        'b',
        'Z',
        false,
        0,
        0,
        100,
        'i',
        'x',
    ),
    base(650, "cidr", -1, false, 'b', 'I', false, 0, 651, 0, 'i', 'm'),
    base(
        700, "float4", 4, true, 'b', 'N', false, 0, 1021, 0, 'i', 'p',
    ),
    base(701, "float8", 8, true, 'b', 'N', true, 0, 1022, 0, 'd', 'p'),
    base(
        705, "unknown", -2, false, 'p', 'X', false, 0, 0, 0, 'c', 'p',
    ),
    base(
        829, "macaddr", 6, false, 'b', 'U', false, 0, 1040, 0, 'i', 'p',
    ),
    base(869, "inet", -1, false, 'b', 'I', true, 0, 1041, 0, 'i', 'm'),
    base(
        1033, "aclitem", 12, false, 'b', 'U', false, 0, 1034, 0, 'i', 'p',
    ),
    base(
        1042, "bpchar", -1, false, 'b', 'S', false, 0, 1014, 100, 'i', 'x',
    ),
    base(
        1043, "varchar", -1, false, 'b', 'S', false, 0, 1015, 100, 'i', 'x',
    ),
    base(1082, "date", 4, true, 'b', 'D', false, 0, 1182, 0, 'i', 'p'),
    base(1083, "time", 8, true, 'b', 'D', false, 0, 1183, 0, 'd', 'p'),
    base(
        1114,
        "timestamp",
        8,
        true,
        'b',
        'D',
        false,
        0,
        1115,
        0,
        'd',
        'p',
    ),
    base(
        1184,
        "timestamptz",
        8,
        true,
        'b',
        'D',
        true,
        0,
        1185,
        0,
        'd',
        'p',
    ),
    base(
        1186, "interval", 16, false, 'b', 'T', true, 0, 1187, 0, 'd', 'p',
    ),
    base(
        1266, "timetz", 12, false, 'b', 'D', false, 0, 1270, 0, 'd', 'p',
    ),
    base(
        1560, "bit", -1, false, 'b', 'V', false, 0, 1561, 0, 'i', 'x',
    ),
    base(
        1562, "varbit", -1, false, 'b', 'V', true, 0, 1563, 0, 'i', 'x',
    ),
    base(
        1700, "numeric", -1, false, 'b', 'N', false, 0, 1231, 0, 'i', 'm',
    ),
    base(
        2202,
        "regprocedure",
        4,
        true,
        'b',
        'N',
        false,
        0,
        2207,
        0,
        'i',
        'p',
    ),
    base(
        2203, "regoper", 4, true, 'b', 'N', false, 0, 2208, 0, 'i', 'p',
    ),
    base(
        2204,
        "regoperator",
        4,
        true,
        'b',
        'N',
        false,
        0,
        2209,
        0,
        'i',
        'p',
    ),
    base(
        2205, "regclass", 4, true, 'b', 'N', false, 0, 2210, 0, 'i', 'p',
    ),
    base(
        2206, "regtype", 4, true, 'b', 'N', false, 0, 2211, 0, 'i', 'p',
    ),
    base(
        2249, "record", -1, false, 'p', 'P', false, 0, 2287, 0, 'd', 'x',
    ),
    base(
        2275, "cstring", -2, false, 'p', 'P', false, 0, 1263, 0, 'c', 'p',
    ),
    base(2276, "any", 4, true, 'p', 'P', false, 0, 0, 0, 'i', 'p'),
    base(
        2277, "anyarray", -1, false, 'p', 'P', false, 0, 0, 0, 'd', 'x',
    ),
    base(2278, "void", 4, true, 'p', 'P', false, 0, 0, 0, 'i', 'p'),
    base(2279, "trigger", 4, true, 'p', 'P', false, 0, 0, 0, 'i', 'p'),
    base(
        2281, "internal", 8, true, 'p', 'P', false, 0, 0, 0, 'd', 'p',
    ),
    base(
        2283,
        "anyelement",
        4,
        true,
        'p',
        'P',
        false,
        0,
        0,
        0,
        'i',
        'p',
    ),
    base(
        2776,
        "anynonarray",
        4,
        true,
        'p',
        'P',
        false,
        0,
        0,
        0,
        'i',
        'p',
    ),
    base(
        2950, "uuid", 16, false, 'b', 'U', false, 0, 2951, 0, 'c', 'p',
    ),
    base(
        3220, "pg_lsn", 8, true, 'b', 'U', false, 0, 3221, 0, 'd', 'p',
    ),
    base(3500, "anyenum", 4, true, 'p', 'P', false, 0, 0, 0, 'i', 'p'),
    base(
        3802, "jsonb", -1, false, 'b', 'U', false, 0, 3807, 0, 'i', 'x',
    ),
    base(
        4089,
        "regnamespace",
        4,
        true,
        'b',
        'N',
        false,
        0,
        4090,
        0,
        'i',
        'p',
    ),
    base(
        4096, "regrole", 4, true, 'b', 'N', false, 0, 4097, 0, 'i', 'p',
    ),
];

/// Array type names: `_` + element name, as Postgres spells them.
const ARRAY_NAMES: &[(u32, &str)] = &[
    (1000, "_bool"),
    (1001, "_bytea"),
    (1002, "_char"),
    (1003, "_name"),
    (1016, "_int8"),
    (1005, "_int2"),
    (1006, "_int2vector"),
    (1007, "_int4"),
    (1008, "_regproc"),
    (1009, "_text"),
    (1028, "_oid"),
    (1010, "_tid"),
    (1011, "_xid"),
    (1012, "_cid"),
    (1013, "_oidvector"),
    (199, "_json"),
    (143, "_xml"),
    (651, "_cidr"),
    (1021, "_float4"),
    (1022, "_float8"),
    (1040, "_macaddr"),
    (1041, "_inet"),
    (1034, "_aclitem"),
    (1014, "_bpchar"),
    (1015, "_varchar"),
    (1182, "_date"),
    (1183, "_time"),
    (1115, "_timestamp"),
    (1185, "_timestamptz"),
    (1187, "_interval"),
    (1270, "_timetz"),
    (1561, "_bit"),
    (1563, "_varbit"),
    (1231, "_numeric"),
    (2207, "_regprocedure"),
    (2208, "_regoper"),
    (2209, "_regoperator"),
    (2210, "_regclass"),
    (2211, "_regtype"),
    (2287, "_record"),
    (1263, "_cstring"),
    (2951, "_uuid"),
    (3221, "_pg_lsn"),
    (3807, "_jsonb"),
    (4090, "_regnamespace"),
    (4097, "_regrole"),
];

fn array_of(element: &BuiltinType) -> Option<BuiltinType> {
    let name = ARRAY_NAMES
        .iter()
        .find(|(oid, _)| *oid == element.array)
        .map(|(_, name)| *name)?;
    let pseudo = element.typtype == 'p';
    Some(BuiltinType {
        oid: element.array,
        name,
        len: -1,
        byval: false,
        typtype: if pseudo { 'p' } else { 'b' },
        category: if pseudo { 'P' } else { 'A' },
        preferred: false,
        elem: element.oid,
        array: 0,
        collation: element.collation,
        align: if element.align == 'd' { 'd' } else { 'i' },
        storage: 'x',
    })
}

/// Every built-in type: base types followed by their array types.
pub(super) fn builtin_types() -> impl Iterator<Item = BuiltinType> {
    BASE_TYPES
        .iter()
        .copied()
        .chain(BASE_TYPES.iter().filter_map(array_of))
}

pub(super) fn builtin_type(oid: u32) -> Option<BuiltinType> {
    if let Some(found) = BASE_TYPES.iter().find(|t| t.oid == oid) {
        return Some(*found);
    }
    let element = BASE_TYPES.iter().find(|t| t.array == oid)?;
    array_of(element)
}

/// A type by `typname` or by one of the SQL spellings `format_type` produces (`integer`,
/// `character varying`, `timestamp with time zone`, `int4[]` ...).
pub(super) fn builtin_type_by_name(name: &str) -> Option<BuiltinType> {
    let name = name.trim().to_ascii_lowercase();
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    if let Some(element) = name.strip_suffix("[]") {
        let element = builtin_type_by_name(element)?;
        return array_of(&element);
    }
    let canonical = match name {
        "boolean" => "bool",
        "\"char\"" => "char",
        "smallint" => "int2",
        "integer" | "int" => "int4",
        "bigint" => "int8",
        "real" => "float4",
        "double precision" => "float8",
        "character varying" => "varchar",
        "character" => "bpchar",
        "decimal" => "numeric",
        "timestamp without time zone" => "timestamp",
        "timestamp with time zone" => "timestamptz",
        "time without time zone" => "time",
        "time with time zone" => "timetz",
        "bit varying" => "varbit",
        other => other,
    };
    BASE_TYPES
        .iter()
        .copied()
        .chain(BASE_TYPES.iter().filter_map(array_of))
        .find(|t| t.name == canonical)
}

fn builtin_info(oid: u32, typmod: i32) -> PgTypeInfo {
    match builtin_type(oid) {
        Some(t) => t.info(typmod),
        // Unreachable for the OIDs used below; text is the safe fallback for any encoder.
        None => PgTypeInfo {
            oid: 25,
            name: "text",
            len: -1,
            typmod: -1,
        },
    }
}

/// `numeric(p,s)` type modifier, as Postgres encodes it (`VARHDRSZ` + precision/scale).
pub(super) fn numeric_typmod(precision: u8, scale: i8) -> i32 {
    ((i32::from(precision) << 16) | (i32::from(scale) & 0x7ff)) + 4
}

/// Precision and scale from a `numeric` type modifier.
pub(super) fn numeric_precision_scale(typmod: i32) -> Option<(i32, i32)> {
    if typmod < 4 {
        return None;
    }
    let value = typmod - 4;
    let precision = (value >> 16) & 0xffff;
    let scale = ((value & 0x7ff) ^ 1024) - 1024;
    Some((precision, scale))
}

fn time_typmod(unit: &TimeUnit) -> i32 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        // Postgres keeps microseconds at most; nanoseconds are shown as the default precision.
        TimeUnit::Microsecond | TimeUnit::Nanosecond => -1,
    }
}

/// The Postgres type a column of `data_type` is presented as: in RowDescription, `pg_attribute`,
/// `information_schema.columns` and `format_type`. The one place this mapping lives.
pub(crate) fn pg_type_for(data_type: &DataType) -> PgTypeInfo {
    match data_type {
        DataType::Boolean => builtin_info(16, -1),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => builtin_info(21, -1),
        DataType::Int32 | DataType::UInt16 => builtin_info(23, -1),
        DataType::Int64 => builtin_info(20, -1),
        // Postgres `oid` is exactly an unsigned 32-bit integer; catalog OID columns are UInt32.
        DataType::UInt32 => builtin_info(26, -1),
        DataType::UInt64 => builtin_info(1700, -1),
        DataType::Float16 | DataType::Float32 => builtin_info(700, -1),
        DataType::Float64 => builtin_info(701, -1),
        DataType::Decimal32(precision, scale)
        | DataType::Decimal64(precision, scale)
        | DataType::Decimal128(precision, scale)
        | DataType::Decimal256(precision, scale) => {
            builtin_info(1700, numeric_typmod(*precision, *scale))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            builtin_info(25, -1)
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => builtin_info(17, -1),
        DataType::Date32 | DataType::Date64 => builtin_info(1082, -1),
        DataType::Time32(unit) | DataType::Time64(unit) => builtin_info(1083, time_typmod(unit)),
        DataType::Timestamp(unit, None) => builtin_info(1114, time_typmod(unit)),
        DataType::Timestamp(unit, Some(_)) => builtin_info(1184, time_typmod(unit)),
        DataType::Interval(IntervalUnit::YearMonth)
        | DataType::Interval(IntervalUnit::DayTime)
        | DataType::Interval(IntervalUnit::MonthDayNano)
        | DataType::Duration(_) => builtin_info(1186, -1),
        DataType::List(field)
        | DataType::LargeList(field)
        | DataType::ListView(field)
        | DataType::LargeListView(field)
        | DataType::FixedSizeList(field, _) => {
            // A list of lists is a multidimensional array of the innermost element (Postgres
            // has no array-of-array types).
            let element = pg_type_for(innermost_element(field.data_type()));
            match builtin_type(element.oid).filter(|t| t.array != 0) {
                Some(t) => PgTypeInfo {
                    typmod: element.typmod,
                    ..builtin_info(t.array, -1)
                },
                // Arrays of types without an array type: shown as text.
                None => builtin_info(25, -1),
            }
        }
        DataType::Struct(_) => builtin_info(2249, -1),
        DataType::Dictionary(_, value) => pg_type_for(value),
        DataType::RunEndEncoded(_, values) => pg_type_for(values.data_type()),
        DataType::Map(_, _) | DataType::Union(_, _) => builtin_info(25, -1),
    }
}

/// A list type's innermost element type (the type itself when it is no list): the element of
/// the multidimensional array a list of lists is sent as.
pub(crate) fn innermost_element(data_type: &DataType) -> &DataType {
    match data_type {
        DataType::List(field)
        | DataType::LargeList(field)
        | DataType::ListView(field)
        | DataType::LargeListView(field)
        | DataType::FixedSizeList(field, _) => innermost_element(field.data_type()),
        other => other,
    }
}

/// `format_type(oid, typmod)`: the SQL spelling of a type. `typmod` is `None` when the caller
/// passed NULL, which Postgres treats differently from -1 for `bpchar`.
pub(super) fn format_type(oid: u32, typmod: Option<i32>) -> String {
    let Some(t) = builtin_type(oid) else {
        return "???".to_owned();
    };
    if t.is_array() && t.elem != 0 {
        return format!("{}[]", format_type(t.elem, typmod));
    }
    let with_typmod = typmod.filter(|m| *m >= 0);
    match (oid, with_typmod) {
        (1042, Some(m)) => format!("character({})", m - 4),
        (1042, None) if typmod.is_some() => "bpchar".to_owned(),
        (1042, None) => "character".to_owned(),
        (1043, Some(m)) => format!("character varying({})", m - 4),
        (1043, None) => "character varying".to_owned(),
        (1700, Some(m)) => match numeric_precision_scale(m) {
            Some((precision, scale)) => format!("numeric({precision},{scale})"),
            None => "numeric".to_owned(),
        },
        (1083, Some(p)) => format!("time({p}) without time zone"),
        (1083, None) => "time without time zone".to_owned(),
        (1114, Some(p)) => format!("timestamp({p}) without time zone"),
        (1114, None) => "timestamp without time zone".to_owned(),
        (1184, Some(p)) => format!("timestamp({p}) with time zone"),
        (1184, None) => "timestamp with time zone".to_owned(),
        (1266, Some(p)) => format!("time({p}) with time zone"),
        (1266, None) => "time with time zone".to_owned(),
        (1560, Some(m)) => format!("bit({m})"),
        (1560, None) => "bit".to_owned(),
        (1562, Some(m)) => format!("bit varying({m})"),
        (1562, None) => "bit varying".to_owned(),
        (16, _) => "boolean".to_owned(),
        (18, _) => "\"char\"".to_owned(),
        (20, _) => "bigint".to_owned(),
        (21, _) => "smallint".to_owned(),
        (23, _) => "integer".to_owned(),
        (700, _) => "real".to_owned(),
        (701, _) => "double precision".to_owned(),
        _ => t.name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::Field;

    use super::*;

    #[test]
    fn arrow_types_map_to_postgres_types() {
        let cases = [
            (DataType::Int64, 20, "int8", 8, -1),
            (DataType::Int32, 23, "int4", 4, -1),
            (DataType::Utf8View, 25, "text", -1, -1),
            (DataType::UInt32, 26, "oid", 4, -1),
            (DataType::Decimal128(15, 2), 1700, "numeric", -1, 983_046),
            (DataType::Date32, 1082, "date", 4, -1),
            (
                DataType::Timestamp(TimeUnit::Microsecond, None),
                1114,
                "timestamp",
                8,
                -1,
            ),
            (
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                1184,
                "timestamptz",
                8,
                3,
            ),
            (
                DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
                1007,
                "_int4",
                -1,
                -1,
            ),
        ];
        for (data_type, oid, name, len, typmod) in cases {
            let info = pg_type_for(&data_type);
            assert_eq!(
                info,
                PgTypeInfo {
                    oid,
                    name,
                    len,
                    typmod
                },
                "{data_type}"
            );
        }
    }

    #[test]
    fn format_type_spells_types_like_postgres() {
        assert_eq!(
            format_type(1700, Some(numeric_typmod(15, 2))),
            "numeric(15,2)"
        );
        assert_eq!(format_type(1043, Some(48)), "character varying(44)");
        assert_eq!(format_type(1042, Some(5)), "character(1)");
        assert_eq!(format_type(1042, Some(-1)), "bpchar");
        assert_eq!(format_type(1114, Some(-1)), "timestamp without time zone");
        assert_eq!(format_type(1184, Some(3)), "timestamp(3) with time zone");
        assert_eq!(format_type(1007, Some(-1)), "integer[]");
        assert_eq!(format_type(18, None), "\"char\"");
        assert_eq!(format_type(99_999, None), "???");
    }

    #[test]
    fn every_array_type_has_a_name() {
        for base in BASE_TYPES.iter().filter(|t| t.array != 0) {
            let array = builtin_type(base.array).expect("array type exists");
            assert_eq!(array.elem, base.oid);
            assert_eq!(builtin_type_by_name(array.name), Some(array));
        }
        assert_eq!(builtin_type_by_name("integer[]").map(|t| t.oid), Some(1007));
        assert_eq!(
            builtin_type_by_name("character varying").map(|t| t.oid),
            Some(1043)
        );
    }
}
