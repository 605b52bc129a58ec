//! The buffer layout of an IPC record batch, checked against its schema before arrow-ipc
//! decodes it. arrow-ipc 59 builds each array's validity bitmap with `BooleanBuffer::new`,
//! which asserts (panics) when the bitmap is shorter than the declared length, and asserts that
//! every variadic buffer count of a view column was used; both are reachable from a batch whose
//! framing is valid (found by the `stream_log`, `arrow_ipc` and `flight_data` fuzz targets).
//! This walks the field nodes and buffers in the order arrow-ipc's `create_array` reads them and
//! refuses what it would panic on. Buffer contents (offsets, values) are left to arrow's own
//! validation, which returns errors.

use std::collections::{HashMap, VecDeque};

use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;

/// Longest array Basin accepts in one IPC batch. Bounds the arithmetic arrow does on declared
/// lengths (a length times a value width must not overflow).
const MAX_LENGTH: i64 = i32::MAX as i64;

/// The value types of the dictionary-encoded fields of `schema`, by dictionary id.
pub(super) fn dictionaries(schema: &Schema) -> HashMap<i64, DataType> {
    fn visit(field: &Field, out: &mut HashMap<i64, DataType>) {
        #[allow(
            deprecated,
            reason = "arrow-ipc 59 still keys dictionaries by the field's id"
        )]
        if let (Some(id), DataType::Dictionary(_, value)) = (field.dict_id(), field.data_type()) {
            out.insert(id, value.as_ref().clone());
        }
        for child in children(field.data_type()) {
            visit(child, out);
        }
    }
    let mut out = HashMap::new();
    for field in schema.fields() {
        visit(field, &mut out);
    }
    out
}

fn children(data_type: &DataType) -> Vec<&Field> {
    match data_type {
        DataType::List(child)
        | DataType::LargeList(child)
        | DataType::ListView(child)
        | DataType::LargeListView(child)
        | DataType::FixedSizeList(child, _)
        | DataType::Map(child, _) => vec![child.as_ref()],
        DataType::Struct(fields) => fields.iter().map(AsRef::as_ref).collect(),
        DataType::RunEndEncoded(run_ends, values) => vec![run_ends.as_ref(), values.as_ref()],
        DataType::Dictionary(_, value) => children(value),
        _ => Vec::new(),
    }
}

/// Checks `batch` (a record batch or a dictionary batch's data) whose columns are `types`.
pub(super) fn check_batch<'a>(
    batch: arrow::ipc::RecordBatch<'_>,
    types: impl IntoIterator<Item = &'a DataType>,
) -> Result<(), ArrowError> {
    let mut walk = Walk {
        // Buffer lengths of a compressed batch (which Flight clients such as pyarrow may send;
        // Basin never writes one) are compressed sizes and say nothing about the decoded
        // buffers: only the structure is checked then.
        compressed: batch.compression().is_some(),
        nodes: batch
            .nodes()
            .map(|n| n.iter().copied().collect())
            .unwrap_or_default(),
        buffers: batch
            .buffers()
            .map(|b| b.iter().map(|b| b.length()).collect())
            .unwrap_or_default(),
        variadic: batch
            .variadicBufferCounts()
            .map(|c| c.iter().collect())
            .unwrap_or_default(),
    };
    check_length(batch.length())?;
    for data_type in types {
        walk.array(data_type)?;
    }
    if !walk.variadic.is_empty() {
        return Err(invalid("more variadic buffer counts than view columns"));
    }
    Ok(())
}

fn invalid(what: &str) -> ArrowError {
    ArrowError::IpcError(format!("invalid IPC record batch: {what}"))
}

fn check_length(length: i64) -> Result<(), ArrowError> {
    if (0..=MAX_LENGTH).contains(&length) {
        Ok(())
    } else {
        Err(invalid(&format!("array length {length}")))
    }
}

/// Bytes per offset of a variable-length type.
fn offset_width(data_type: &DataType) -> usize {
    match data_type {
        DataType::LargeUtf8
        | DataType::LargeBinary
        | DataType::LargeList(_)
        | DataType::LargeListView(_) => 8,
        _ => 4,
    }
}

struct Walk {
    compressed: bool,
    nodes: VecDeque<arrow::ipc::FieldNode>,
    /// Declared length of each buffer (offsets were checked against the body already).
    buffers: VecDeque<i64>,
    variadic: VecDeque<i64>,
}

impl Walk {
    fn node(&mut self) -> Result<arrow::ipc::FieldNode, ArrowError> {
        let node = self
            .nodes
            .pop_front()
            .ok_or_else(|| invalid("fewer field nodes than the schema has arrays"))?;
        check_length(node.length())?;
        if !(0..=node.length()).contains(&node.null_count()) {
            return Err(invalid(&format!(
                "null count {} of an array of length {}",
                node.null_count(),
                node.length()
            )));
        }
        Ok(node)
    }

    fn buffer(&mut self) -> Result<i64, ArrowError> {
        self.buffers
            .pop_front()
            .ok_or_else(|| invalid("fewer buffers than the schema's arrays have"))
    }

    /// A buffer arrow reads as a slice of `width`-byte values (offsets, views, fixed-width
    /// values): its length must be a whole number of them, or arrow-buffer's `typed_data`
    /// asserts (found by the fuzz targets once validity was checked).
    fn typed(&mut self, width: usize) -> Result<(), ArrowError> {
        let bytes = self.buffer()?;
        let whole = self.compressed
            || usize::try_from(bytes).is_ok_and(|bytes| width == 0 || bytes % width == 0);
        if !whole {
            return Err(invalid(&format!(
                "a buffer of {bytes} bytes holding {width}-byte values"
            )));
        }
        Ok(())
    }

    /// The validity buffer of `node`: arrow-ipc reads it when the node has nulls, and then it
    /// must hold one bit per element.
    fn validity(&mut self, node: &arrow::ipc::FieldNode) -> Result<(), ArrowError> {
        let bytes = self.buffer()?;
        if !self.compressed && node.null_count() > 0 && bytes.saturating_mul(8) < node.length() {
            return Err(invalid(&format!(
                "a validity buffer of {bytes} bytes for {} elements",
                node.length()
            )));
        }
        Ok(())
    }

    /// One array of `data_type` and its children, in arrow-ipc's reading order.
    fn array(&mut self, data_type: &DataType) -> Result<(), ArrowError> {
        match data_type {
            DataType::Null => {
                self.node()?;
            }
            DataType::Utf8 | DataType::Binary | DataType::LargeUtf8 | DataType::LargeBinary => {
                let node = self.node()?;
                self.validity(&node)?;
                self.typed(offset_width(data_type))?;
                self.buffer()?;
            }
            DataType::Utf8View | DataType::BinaryView => {
                let count = self
                    .variadic
                    .pop_front()
                    .ok_or_else(|| invalid("a view column without a variadic buffer count"))?;
                let count = usize::try_from(count)
                    .ok()
                    .filter(|count| *count <= self.buffers.len())
                    .ok_or_else(|| invalid(&format!("variadic buffer count {count}")))?;
                // arrow-ipc reads a view column's buffers before its node.
                let validity = self.buffer()?;
                self.typed(16)?;
                for _ in 0..count {
                    self.buffer()?;
                }
                let node = self.node()?;
                self.buffers.push_front(validity);
                self.validity(&node)?;
            }
            DataType::List(child) | DataType::LargeList(child) | DataType::Map(child, _) => {
                let node = self.node()?;
                self.validity(&node)?;
                self.typed(offset_width(data_type))?;
                self.array(child.data_type())?;
            }
            DataType::ListView(child) | DataType::LargeListView(child) => {
                let node = self.node()?;
                self.validity(&node)?;
                self.typed(offset_width(data_type))?;
                self.typed(offset_width(data_type))?;
                self.array(child.data_type())?;
            }
            DataType::FixedSizeList(child, _) => {
                let node = self.node()?;
                self.validity(&node)?;
                self.array(child.data_type())?;
            }
            DataType::Struct(fields) => {
                let node = self.node()?;
                self.validity(&node)?;
                for field in fields {
                    self.array(field.data_type())?;
                }
            }
            DataType::RunEndEncoded(run_ends, values) => {
                self.node()?;
                self.array(run_ends.data_type())?;
                self.array(values.data_type())?;
            }
            DataType::Union(..) => return Err(invalid("a union column")),
            DataType::Dictionary(key, _) => {
                let node = self.node()?;
                self.validity(&node)?;
                self.typed(key.primitive_width().unwrap_or(1))?;
            }
            // Fixed-width values and booleans (bit-packed, any byte count): validity and one data
            // buffer.
            _ => {
                let node = self.node()?;
                self.validity(&node)?;
                self.typed(data_type.primitive_width().unwrap_or(1))?;
            }
        }
        Ok(())
    }
}
