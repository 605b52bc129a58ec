//! Rewrites the Postgres-only syntax introspection queries use into SQL DataFusion plans, on the
//! parsed AST and never on query text:
//!
//! * `OPERATOR(pg_catalog.~)` and friends become the plain operators; `COLLATE` is dropped
//!   (DataFusion compares bytes, which is what the `C` collation does);
//! * `pg_catalog.f(...)` calls lose the schema (DataFusion does not resolve qualified function
//!   names), and unqualified catalog tables (`pg_class`) gain it, as Postgres' implicit
//!   `pg_catalog`-first search path does;
//! * casts to `reg*` types become the types' input/output functions (`'t'::regclass` is
//!   `regclassin('t')`, `c.oid::regclass::text` is `regclassout(c.oid)`), and casts to
//!   Postgres type names DataFusion lacks (`oid`, `name`, `"char"`, `pg_catalog.text`,
//!   `character varying`) become types it has;
//! * `current_schema` / `current_role` without parentheses become function calls, the
//!   `tableoid` system column of catalog tables becomes the table's OID, `(record).field`
//!   becomes `get_field(record, 'field')`, and pgjdbc's set-returning
//!   `information_schema._pg_expandarray(a)` becomes `unnest(_pg_expandarray(a))`;
//! * bytea literals and `LIKE ... ESCAPE` are read as Postgres reads them (see [`spellings`]);
//! * subqueries DataFusion cannot plan are reshaped (see [`lateral`] and [`subqueries`]), and
//!   so are `CROSS JOIN UNNEST(column)` lateral calls (see [`unnest`]) and functions called in
//!   `FROM` (see [`from_functions`]);
//! * `x IN (SELECT ...)` in a select list becomes an array membership test (see
//!   [`in_subquery`]);
//! * sort keys holding subqueries become hidden columns sorted outside (see [`order_by`]);
//! * ranking window functions return `bigint` (see [`ranking`]);
//! * top-level output columns get the names Postgres gives them (see [`names`]).

mod from_functions;
mod in_subquery;
mod lateral;
mod names;
mod order_by;
mod ranking;
mod spellings;
mod subqueries;
mod system_columns;
mod unnest;

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::LazyLock;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, ArrayElemTypeDef, BinaryOperator, DataType, Expr, Function, FunctionArg,
    FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, ObjectName, ObjectNamePart,
    Query, Select, Statement, TableFactor, TimezoneInfo, TypedString, Value, VisitMut, VisitorMut,
};

use super::snapshot::system_specs;
use super::table::parse_columns;

pub(crate) use names::duplicate_column_name;

/// The Postgres names of a statement's result columns (see [`names::output_names`]); call it
/// before [`rewrite`].
pub(crate) fn output_names(statement: &Statement) -> Option<Vec<String>> {
    match statement {
        Statement::Query(query) => names::output_names(query),
        _ => None,
    }
}

/// Rewrites Postgres-only syntax in a parsed statement into what DataFusion can plan, in place.
pub(crate) fn rewrite(statement: &mut Statement) {
    if let Statement::Query(query) = statement {
        names::name_output_columns(query);
    }
    let mut rewriter = PgRewriter {
        ctes: cte_names(statement),
        set_comparisons: HashSet::new(),
        laterals: 0,
    };
    // The rewriter never breaks out of the walk.
    let _ = statement.visit(&mut rewriter);
}

struct PgRewriter {
    /// Names of common table expressions anywhere in the statement: they shadow catalog tables.
    ctes: HashSet<String>,
    /// Subqueries that are the right side of `= ANY (SELECT ...)`: many rows are fine there.
    set_comparisons: HashSet<*const Query>,
    /// Lateral joins made so far, to name them uniquely.
    laterals: usize,
}

impl VisitorMut for PgRewriter {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        order_by::hoist_subquery_sort_keys(query);
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        system_columns::rewrite_tableoid(select);
        unnest::inline_lateral_unnest(select);
        lateral::lateralize(select, &mut self.laterals);
        in_subquery::rewrite_in_subqueries_in_projection(select);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        from_functions::rewrite_function_in_from(factor);
        match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => strip_pg_catalog(name),
            TableFactor::Table {
                name, args: None, ..
            } => qualify_catalog_table(name, &self.ctes),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::AnyOp { right, .. } | Expr::AllOp { right, .. } = expr
            && let Expr::Subquery(query) = right.as_ref()
        {
            self.set_comparisons
                .insert(std::ptr::from_ref(query.as_ref()));
        }
        rewrite_reg_cast_chain(expr);
        rewrite_reg_comparison(expr);
        subqueries::rewrite_array_subquery(expr);
        if let Expr::Subquery(query) = expr
            && !self
                .set_comparisons
                .contains(&std::ptr::from_ref(query.as_ref()))
        {
            subqueries::rewrite_scalar_subquery(expr);
        }
        rewrite_array_literal_comparison(expr);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        // `OPERATOR(pg_catalog.=)` first, so the spellings below see the plain operator
        // (psqlODBC writes `i.indisprimary OPERATOR(pg_catalog.=) 't'`).
        if let Expr::BinaryOp { op, .. } = expr
            && let BinaryOperator::PGCustomBinaryOperator(parts) = op
            && let Some(builtin) = parts.last().and_then(|name| builtin_operator(name))
        {
            *op = builtin;
        }
        spellings::rewrite_spelling(expr);
        ranking::cast_ranking_to_bigint(expr);
        match expr {
            Expr::Collate { expr: inner, .. } => *expr = take(inner),
            Expr::Function(function) => {
                if is_expandarray(&function.name) {
                    // A set-returning function in the select list: `unnest` of the pairs.
                    let mut inner = function.clone();
                    inner.name = ObjectName::from(vec![Ident::new(EXPANDARRAY)]);
                    *expr = call("unnest", vec![Expr::Function(inner)]);
                } else {
                    strip_pg_catalog(&mut function.name);
                }
            }
            Expr::CompoundFieldAccess { root, access_chain }
                if !matches!(
                    root.as_ref(),
                    Expr::Identifier(_) | Expr::CompoundIdentifier(_)
                ) && access_chain
                    .iter()
                    .any(|a| matches!(a, AccessExpr::Dot(Expr::Identifier(_)))) =>
            {
                *expr = field_access(take(root), std::mem::take(access_chain));
            }
            Expr::Identifier(ident) if is_keyword_function(ident) => {
                *expr = Expr::Function(function_call(
                    &ident.value.to_ascii_lowercase(),
                    FunctionArguments::None,
                ));
            }
            Expr::Cast {
                expr: inner,
                data_type,
                ..
            } => {
                if let Some(reg) = reg_type(data_type) {
                    *expr = if is_textual(inner) {
                        call(reg.input(), vec![take(inner)])
                    } else {
                        call(reg.output(), vec![take(inner)])
                    };
                } else {
                    if matches!(data_type, DataType::Array(_))
                        && let Some(array) = array_literal(inner)
                    {
                        **inner = array;
                    }
                    normalize_type(data_type);
                }
            }
            Expr::TypedString(TypedString {
                data_type, value, ..
            }) => {
                if let Some(reg) = reg_type(data_type) {
                    let literal = Expr::Value(value.clone());
                    *expr = call(reg.input(), vec![literal]);
                } else {
                    normalize_type(data_type);
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// `current_schema` and `current_role`: SQL keywords that call functions, which the parser
/// leaves as identifiers.
pub(super) fn is_keyword_function(ident: &Ident) -> bool {
    ident.quote_style.is_none()
        && matches!(
            ident.value.to_ascii_lowercase().as_str(),
            "current_schema" | "current_role"
        )
}

/// Name of the UDF behind `information_schema._pg_expandarray`: the (element, position) pairs
/// of an array, which the rewrite unnests.
pub(super) const EXPANDARRAY: &str = "_pg_expandarray";

fn is_expandarray(name: &ObjectName) -> bool {
    let parts: Vec<&Ident> = name.0.iter().filter_map(ident_value).collect();
    matches!(parts.as_slice(), [schema, function]
        if schema.value.eq_ignore_ascii_case("information_schema")
            && function.value.eq_ignore_ascii_case(EXPANDARRAY))
}

/// `(record).field` → `get_field(record, 'field')`: DataFusion takes dot access only after a
/// column name. Subscripts stay as they are.
fn field_access(root: Expr, chain: Vec<AccessExpr>) -> Expr {
    let mut current = root;
    let mut pending = Vec::new();
    for access in chain {
        match access {
            AccessExpr::Dot(Expr::Identifier(field)) => {
                if !pending.is_empty() {
                    current = Expr::CompoundFieldAccess {
                        root: Box::new(current),
                        access_chain: std::mem::take(&mut pending),
                    };
                }
                let name = if field.quote_style.is_some() {
                    field.value
                } else {
                    field.value.to_ascii_lowercase()
                };
                current = call(
                    "get_field",
                    vec![current, Expr::value(Value::SingleQuotedString(name))],
                );
            }
            other => pending.push(other),
        }
    }
    if pending.is_empty() {
        current
    } else {
        Expr::CompoundFieldAccess {
            root: Box::new(current),
            access_chain: pending,
        }
    }
}

/// Moves an expression out, leaving a NULL behind.
fn take(expr: &mut Expr) -> Expr {
    std::mem::replace(expr, null())
}

pub(super) fn null() -> Expr {
    Expr::value(Value::Null)
}

pub(super) fn function_call(name: &str, args: FunctionArguments) -> Function {
    Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args,
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    }
}

pub(super) fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(function_call(
        name,
        FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: Vec::new(),
        }),
    ))
}

fn ident_value(part: &ObjectNamePart) -> Option<&Ident> {
    match part {
        ObjectNamePart::Identifier(ident) => Some(ident),
        ObjectNamePart::Function(_) => None,
    }
}

/// `pg_catalog.f` → `f`.
fn strip_pg_catalog(name: &mut ObjectName) {
    if name.0.len() == 2
        && ident_value(&name.0[0]).is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog"))
    {
        name.0.remove(0);
    }
}

/// Names of the tables and views of `pg_catalog`.
static CATALOG_TABLES: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    system_specs()
        .filter(|(schema, _)| *schema == "pg_catalog")
        .map(|(_, spec)| spec.name)
        .collect()
});

/// `pg_class` → `pg_catalog.pg_class`, unless a CTE of that name shadows it.
fn qualify_catalog_table(name: &mut ObjectName, ctes: &HashSet<String>) {
    let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
        return;
    };
    let table = if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    };
    if CATALOG_TABLES.contains(table.as_str()) && !ctes.contains(&table) {
        name.0
            .insert(0, ObjectNamePart::Identifier(Ident::new("pg_catalog")));
    }
}

fn cte_names(statement: &mut Statement) -> HashSet<String> {
    struct CteCollector(HashSet<String>);
    impl VisitorMut for CteCollector {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            if let Some(with) = &query.with {
                for cte in &with.cte_tables {
                    self.0.insert(cte.alias.name.value.to_ascii_lowercase());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut collector = CteCollector(HashSet::new());
    let _ = statement.visit(&mut collector);
    collector.0
}

/// The operator `OPERATOR(pg_catalog.<name>)` stands for.
fn builtin_operator(name: &str) -> Option<BinaryOperator> {
    Some(match name {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "~~" => BinaryOperator::PGLikeMatch,
        "~~*" => BinaryOperator::PGILikeMatch,
        "!~~" => BinaryOperator::PGNotLikeMatch,
        "!~~*" => BinaryOperator::PGNotILikeMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        "+" => BinaryOperator::Plus,
        "-" => BinaryOperator::Minus,
        "*" => BinaryOperator::Multiply,
        "/" => BinaryOperator::Divide,
        "%" => BinaryOperator::Modulo,
        "||" => BinaryOperator::StringConcat,
        "@>" => BinaryOperator::AtArrow,
        "<@" => BinaryOperator::ArrowAt,
        _ => return None,
    })
}

/// The `reg*` object-identifier types Basin resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegType {
    Class,
    Type,
    Proc,
    Namespace,
    Role,
}

impl RegType {
    fn input(self) -> &'static str {
        match self {
            RegType::Class => "regclassin",
            RegType::Type => "regtypein",
            RegType::Proc => "regprocin",
            RegType::Namespace => "regnamespacein",
            RegType::Role => "regrolein",
        }
    }

    fn output(self) -> &'static str {
        match self {
            RegType::Class => "regclassout",
            RegType::Type => "regtypeout",
            RegType::Proc => "regprocout",
            RegType::Namespace => "regnamespaceout",
            RegType::Role => "regroleout",
        }
    }
}

/// The last part of a custom type name, lower-cased unless quoted.
fn custom_type_name(name: &ObjectName) -> Option<String> {
    let ident = ident_value(name.0.last()?)?;
    Some(if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    })
}

fn reg_type(data_type: &DataType) -> Option<RegType> {
    match data_type {
        DataType::Regclass => Some(RegType::Class),
        DataType::Custom(name, _) => match custom_type_name(name)?.as_str() {
            "regclass" => Some(RegType::Class),
            "regtype" => Some(RegType::Type),
            "regproc" | "regprocedure" => Some(RegType::Proc),
            "regnamespace" => Some(RegType::Namespace),
            "regrole" => Some(RegType::Role),
            _ => None,
        },
        _ => None,
    }
}

/// Types whose cast of a `reg*` value means "its name".
fn is_text_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Text
        | DataType::Varchar(_)
        | DataType::Char(_)
        | DataType::Character(_)
        | DataType::CharacterVarying(_)
        | DataType::CharVarying(_)
        | DataType::String(_) => true,
        DataType::Custom(name, _) => matches!(
            custom_type_name(name).as_deref(),
            Some("text" | "name" | "varchar" | "bpchar" | "char")
        ),
        _ => false,
    }
}

/// Whether an expression is text that names an object (rather than an OID), as far as the AST
/// shows: string literals, parameters, concatenations and casts to text.
fn is_textual(expr: &Expr) -> bool {
    match expr {
        Expr::Value(value) => matches!(
            value.value,
            Value::SingleQuotedString(_)
                | Value::EscapedStringLiteral(_)
                | Value::DollarQuotedString(_)
                | Value::NationalStringLiteral(_)
                | Value::Placeholder(_)
        ),
        Expr::Nested(inner) => is_textual(inner),
        Expr::BinaryOp {
            op: BinaryOperator::StringConcat,
            ..
        } => true,
        Expr::Cast { data_type, .. } => is_text_type(data_type),
        Expr::Function(function) => matches!(
            custom_type_name(&function.name).as_deref(),
            Some("quote_ident" | "format" | "concat" | "concat_ws" | "lower" | "upper")
        ),
        _ => false,
    }
}

/// `x::regclass::text` → `regclassout(x)`; `x::regclass::oid` → `regclassin(x)::oid`. Done
/// before the inner cast is visited so the pair is seen whole.
fn rewrite_reg_cast_chain(expr: &mut Expr) {
    let Expr::Cast {
        expr: inner,
        data_type: outer_type,
        ..
    } = expr
    else {
        return;
    };
    let Expr::Cast {
        expr: value,
        data_type: inner_type,
        ..
    } = inner.as_mut()
    else {
        return;
    };
    let Some(reg) = reg_type(inner_type) else {
        return;
    };
    let value = take(value);
    if is_text_type(outer_type) {
        *expr = call(reg.output(), vec![value]);
    } else {
        **inner = call(reg.input(), vec![value]);
    }
}

/// In comparisons a `reg*` value is its OID: `c.oid::regclass = x` compares `regclassin(...)`.
fn rewrite_reg_comparison(expr: &mut Expr) {
    let Expr::BinaryOp { left, op, right } = expr else {
        return;
    };
    if !matches!(
        op,
        BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
    ) {
        return;
    }
    for side in [left, right] {
        if let Expr::Cast {
            expr: value,
            data_type,
            ..
        } = side.as_mut()
            && let Some(reg) = reg_type(data_type)
        {
            let value = take(value);
            **side = call(reg.input(), vec![value]);
        }
    }
}

/// Catalog columns that hold arrays (`polroles`, `proargtypes`, ...).
static ARRAY_COLUMNS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    system_specs()
        .filter_map(|(_, spec)| parse_columns(spec.name, spec.columns).ok())
        .flatten()
        .filter(|c| c.column_type.is_array())
        .map(|c| c.name)
        .collect()
});

/// Postgres reads `'{a,b}'` compared with an array column as an array literal; DataFusion needs
/// it spelled `ARRAY['a','b']`.
fn rewrite_array_literal_comparison(expr: &mut Expr) {
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq | BinaryOperator::NotEq,
        right,
    } = expr
    else {
        return;
    };
    let column_name = |e: &Expr| match e {
        Expr::Identifier(ident) => Some(ident.value.to_ascii_lowercase()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.to_ascii_lowercase()),
        _ => None,
    };
    let left_is_array = column_name(left).is_some_and(|c| ARRAY_COLUMNS.contains(&c));
    let right_is_array = column_name(right).is_some_and(|c| ARRAY_COLUMNS.contains(&c));
    let literal = match (left_is_array, right_is_array) {
        (true, false) => right,
        (false, true) => left,
        _ => return,
    };
    if let Some(array) = array_literal(literal) {
        **literal = array;
    }
}

/// `'{a,"b c",NULL}'` as `ARRAY['a', 'b c', NULL]`: Postgres' text form of a one-dimensional
/// array, which it reads wherever an array is expected.
fn array_literal(expr: &Expr) -> Option<Expr> {
    let Expr::Value(value) = expr else {
        return None;
    };
    let Value::SingleQuotedString(text) = &value.value else {
        return None;
    };
    let elements = parse_array_text(text)?
        .into_iter()
        .map(|element| match element {
            Some(text) => Expr::value(Value::SingleQuotedString(text)),
            None => null(),
        })
        .collect();
    Some(Expr::Array(datafusion::sql::sqlparser::ast::Array {
        elem: elements,
        named: true,
    }))
}

/// Parses a one-dimensional array literal; `None` for anything else (nested arrays included).
pub(super) fn parse_array_text(text: &str) -> Option<Vec<Option<String>>> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut elements = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            break;
        };
        if first == '"' {
            chars.next();
            let mut element = String::new();
            loop {
                match chars.next()? {
                    '\\' => element.push(chars.next()?),
                    '"' => break,
                    c => element.push(c),
                }
            }
            elements.push(Some(element));
        } else {
            let mut element = String::new();
            while let Some(c) = chars.next_if(|c| *c != ',') {
                if c == '{' || c == '}' || c == '"' {
                    return None;
                }
                element.push(c);
            }
            let element = element.trim();
            if element.is_empty() {
                return None;
            }
            elements.push((!element.eq_ignore_ascii_case("null")).then(|| element.to_owned()));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(_) => return None,
        }
    }
    Some(elements)
}

/// Replaces Postgres type names DataFusion does not know with ones it plans the same way.
fn normalize_type(data_type: &mut DataType) {
    match data_type {
        DataType::Array(ArrayElemTypeDef::SquareBracket(inner, _))
        | DataType::Array(ArrayElemTypeDef::AngleBracket(inner)) => normalize_type(inner),
        DataType::Custom(name, _) => {
            if let Some(known) = custom_type_name(name).and_then(|n| known_type(&n)) {
                *data_type = known;
            }
        }
        DataType::Character(_) | DataType::CharacterVarying(_) | DataType::CharVarying(_) => {
            *data_type = DataType::Varchar(None);
        }
        DataType::JSON | DataType::JSONB | DataType::Uuid | DataType::Regclass => {
            *data_type = DataType::Text;
        }
        DataType::Timestamp(Some(precision), tz) if ![0, 3, 6, 9].contains(precision) => {
            // Postgres allows any precision up to 6; DataFusion has seconds, milli, micro, nano.
            *data_type = DataType::Timestamp(Some(6), *tz);
        }
        _ => {}
    }
}

/// A Postgres type name (as `Custom`) mapped to the sqlparser type DataFusion plans for it.
fn known_type(name: &str) -> Option<DataType> {
    Some(match name {
        "oid" | "xid" | "cid" | "regoper" | "regoperator" | "regconfig" | "regdictionary"
        | "regcollation" => DataType::IntUnsigned(None),
        "int2" | "smallint" => DataType::SmallInt(None),
        "int4" | "int" | "integer" => DataType::Integer(None),
        "int8" | "bigint" => DataType::BigInt(None),
        "float4" | "real" => DataType::Real,
        "float8" => DataType::DoublePrecision,
        "bool" | "boolean" => DataType::Boolean,
        "numeric" | "decimal" => {
            DataType::Numeric(datafusion::sql::sqlparser::ast::ExactNumberInfo::None)
        }
        "date" => DataType::Date,
        "timestamp" => DataType::Timestamp(None, TimezoneInfo::None),
        "timestamptz" => DataType::Timestamp(None, TimezoneInfo::Tz),
        "time" => DataType::Time(None, TimezoneInfo::None),
        "interval" => DataType::Interval {
            fields: None,
            precision: None,
        },
        "bytea" => DataType::Bytea,
        "int2vector" => DataType::Array(ArrayElemTypeDef::SquareBracket(
            Box::new(DataType::SmallInt(None)),
            None,
        )),
        "oidvector" => DataType::Array(ArrayElemTypeDef::SquareBracket(
            Box::new(DataType::IntUnsigned(None)),
            None,
        )),
        "text" | "name" | "char" | "bpchar" | "varchar" | "citext" | "json" | "jsonb" | "uuid"
        | "xml" | "inet" | "cidr" | "macaddr" | "pg_node_tree" | "aclitem" | "unknown"
        | "cstring" | "anyelement" | "pg_lsn" => DataType::Text,
        _ => return None,
    })
}
