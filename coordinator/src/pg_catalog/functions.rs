//! Postgres functions introspection queries call, as DataFusion scalar UDFs.
//!
//! They are small and evaluated over catalog-sized inputs, so one generic [`PgFunction`] runs a
//! per-row closure over `ScalarValue`s instead of each function writing Arrow kernels. Arguments
//! are taken as they come (`TypeSignature::Any`) and converted leniently, the way Postgres'
//! implicit casts let `'16385'` or an `int4` stand for an `oid`. Functions that read the session
//! or the catalog capture the session's [`CatalogSource`] and are volatile, so a prepared
//! statement never sees a value folded at planning time.

mod any;
mod misc;
mod objects;
mod session;
mod strings;
mod table_functions;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::new_empty_array;
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use super::snapshot::CatalogSource;

pub(super) use any::ANY_EQUALS;
pub(super) use strings::LIKE_ESCAPE;

type Body = Arc<dyn Fn(&[ScalarValue]) -> Result<ScalarValue> + Send + Sync>;

/// A Postgres function: name, accepted argument counts, result type and a per-row body.
pub(super) struct PgFunction {
    name: &'static str,
    aliases: Vec<String>,
    signature: Signature,
    return_type: DataType,
    body: Body,
}

impl PgFunction {
    /// `arities` lists the argument counts the function accepts.
    pub(super) fn new(
        name: &'static str,
        arities: &[usize],
        return_type: DataType,
        volatility: Volatility,
        body: impl Fn(&[ScalarValue]) -> Result<ScalarValue> + Send + Sync + 'static,
    ) -> Self {
        let signatures: Vec<TypeSignature> = arities
            .iter()
            .map(|&n| {
                if n == 0 {
                    TypeSignature::Nullary
                } else {
                    TypeSignature::Any(n)
                }
            })
            .collect();
        let signature = match signatures.as_slice() {
            [single] => Signature::new(single.clone(), volatility),
            _ => Signature::one_of(signatures, volatility),
        };
        Self {
            name,
            aliases: Vec::new(),
            signature,
            return_type,
            body: Arc::new(body),
        }
    }

    pub(super) fn with_aliases(mut self, aliases: &[&str]) -> Self {
        self.aliases = aliases.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    pub(super) fn into_udf(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(self)
    }
}

impl fmt::Debug for PgFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgFunction")
            .field("name", &self.name)
            .field("signature", &self.signature)
            .finish_non_exhaustive()
    }
}

// Two instances are the same function when they have the same name and shape: a session
// registers each name once, and instances of different sessions never meet in one plan.
impl PartialEq for PgFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.signature == other.signature
            && self.return_type == other.return_type
    }
}

impl Eq for PgFunction {}

impl Hash for PgFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.return_type.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalars: Option<Vec<ScalarValue>> = args
            .args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Some(s.clone()),
                ColumnarValue::Array(_) => None,
            })
            .collect();
        if let Some(scalars) = scalars {
            return Ok(ColumnarValue::Scalar((self.body)(&scalars)?));
        }
        if args.number_rows == 0 {
            return Ok(ColumnarValue::Array(new_empty_array(&self.return_type)));
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut results = Vec::with_capacity(args.number_rows);
        let mut row = Vec::with_capacity(arrays.len());
        for index in 0..args.number_rows {
            row.clear();
            for array in &arrays {
                row.push(ScalarValue::try_from_array(array, index)?);
            }
            results.push((self.body)(&row)?);
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(results)?))
    }
}

/// Registers every Postgres function, replacing DataFusion's own `version()`.
pub(super) fn register(ctx: &SessionContext, source: &Arc<CatalogSource>) {
    let functions = session::functions(source)
        .into_iter()
        .chain(objects::functions(source))
        .chain(misc::functions())
        .chain(strings::functions())
        .chain(any::functions());
    for function in functions {
        ctx.register_udf(function.into_udf());
    }
    table_functions::register(ctx);
}

/// An integer argument of any width, or its text form (`'16385'`); `None` for NULL or junk.
pub(super) fn arg_i64(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Int8(v) => v.map(i64::from),
        ScalarValue::Int16(v) => v.map(i64::from),
        ScalarValue::Int32(v) => v.map(i64::from),
        ScalarValue::Int64(v) => *v,
        ScalarValue::UInt8(v) => v.map(i64::from),
        ScalarValue::UInt16(v) => v.map(i64::from),
        ScalarValue::UInt32(v) => v.map(i64::from),
        ScalarValue::UInt64(v) => v.and_then(|v| i64::try_from(v).ok()),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An OID argument.
pub(super) fn arg_oid(value: &ScalarValue) -> Option<u32> {
    arg_i64(value).and_then(|v| u32::try_from(v).ok())
}

/// A text argument; other non-null scalars in their display form.
pub(super) fn arg_text(value: &ScalarValue) -> Option<String> {
    match value {
        ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => v.clone(),
        other if other.is_null() => None,
        other => Some(other.to_string()),
    }
}

/// A boolean argument, accepting Postgres' text spellings.
pub(super) fn arg_bool(value: &ScalarValue) -> Option<bool> {
    match value {
        ScalarValue::Boolean(v) => *v,
        other => match arg_text(other)?.to_ascii_lowercase().as_str() {
            "t" | "true" | "on" | "yes" | "1" => Some(true),
            "f" | "false" | "off" | "no" | "0" => Some(false),
            _ => None,
        },
    }
}

/// Argument `index`, or NULL when the call passed fewer.
pub(super) fn arg(args: &[ScalarValue], index: usize) -> &ScalarValue {
    args.get(index).unwrap_or(&ScalarValue::Null)
}

pub(super) fn text(value: Option<impl Into<String>>) -> ScalarValue {
    ScalarValue::Utf8(value.map(Into::into))
}

pub(super) fn boolean(value: Option<bool>) -> ScalarValue {
    ScalarValue::Boolean(value)
}

pub(super) fn oid(value: Option<u32>) -> ScalarValue {
    ScalarValue::UInt32(value)
}
