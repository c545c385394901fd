//! Parquet in and out, with bounded memory: columns are read a batch at a time (a batch never
//! spans more than one row group), and JSONL is written to Parquet in row groups.
//!
//! Readers name the file and the 1-based row in their errors; the column types accepted are
//! strings (`Utf8`, `LargeUtf8`, `Utf8View`), integers, floats, booleans and lists of those.
//! Compression: uncompressed and Snappy (the default of pyarrow, pandas, Spark and Ray) are read
//! and written; a file in another codec is an error naming it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::{Map, Number, Value};

/// Rows per batch when reading and per write when writing.
pub const BATCH_ROWS: usize = 4096;
/// Rows per row group of the files this module writes.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// Is this a `.parquet` path?
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

fn open_reader(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))
}

/// The number of rows (from the footer) and the column names of a Parquet file.
pub fn describe(path: &Path) -> Result<(usize, Vec<String>)> {
    let b = open_reader(path)?;
    let rows = b.metadata().file_metadata().num_rows().max(0) as usize;
    let names = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    Ok((rows, names))
}

/// Stream some columns of a Parquet file as text: `f(first_row, columns)` gets the 0-based index
/// of the batch's first row and, per requested column (in the order asked), one value per row
/// (`None` for null). Integer columns come as their decimal text. A missing column or one of
/// another type is an error naming the file and the column.
pub fn read_text_columns(
    path: &Path,
    columns: &[&str],
    mut f: impl FnMut(usize, Vec<Vec<Option<String>>>) -> Result<()>,
) -> Result<()> {
    let b = open_reader(path)?;
    let names: Vec<String> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut roots = vec![];
    for c in columns {
        let i = names.iter().position(|n| n == c).with_context(|| {
            format!(
                "{}: no column `{c}` (columns: {})",
                path.display(),
                names.join(", ")
            )
        })?;
        roots.push(i);
    }
    let mask = ProjectionMask::roots(b.parquet_schema(), roots);
    for_each_batch(path, b.with_projection(mask), |row, batch| {
        let mut cols = Vec::with_capacity(columns.len());
        for c in columns {
            let a = batch.column_by_name(c).expect("projected column");
            cols.push(text_values(a).with_context(|| format!("{}: column `{c}`", path.display()))?);
        }
        f(row, cols)
    })
}

/// Read a file in batches of at most [`BATCH_ROWS`] rows: `f(first_row, batch)` with the 0-based
/// index of the batch's first row.
fn for_each_batch(
    path: &Path,
    builder: ParquetRecordBatchReaderBuilder<File>,
    mut f: impl FnMut(usize, RecordBatch) -> Result<()>,
) -> Result<()> {
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut row = 0usize;
    for batch in reader {
        let batch = batch
            .with_context(|| format!("{}: cannot read the rows after row {row}", path.display()))?;
        let n = batch.num_rows();
        f(row, batch)?;
        row += n;
    }
    Ok(())
}

fn text_values(a: &ArrayRef) -> Result<Vec<Option<String>>> {
    fn prim<T: arrow_array::ArrowPrimitiveType>(a: &ArrayRef) -> Vec<Option<String>>
    where
        T::Native: ToString,
    {
        a.as_primitive::<T>()
            .iter()
            .map(|v| v.map(|x| x.to_string()))
            .collect()
    }
    Ok(match a.data_type() {
        DataType::Utf8 => a
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
        DataType::LargeUtf8 => a
            .as_string::<i64>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
        DataType::Utf8View => a
            .as_string_view()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
        DataType::Int8 => prim::<Int8Type>(a),
        DataType::Int16 => prim::<Int16Type>(a),
        DataType::Int32 => prim::<Int32Type>(a),
        DataType::Int64 => prim::<Int64Type>(a),
        DataType::UInt8 => prim::<UInt8Type>(a),
        DataType::UInt16 => prim::<UInt16Type>(a),
        DataType::UInt32 => prim::<UInt32Type>(a),
        DataType::UInt64 => prim::<UInt64Type>(a),
        t => bail!("has type {t}; expected strings or integers"),
    })
}

/// One value of an Arrow array as JSON (`None`: a type with no JSON form here).
fn json_value(a: &dyn Array, i: usize) -> Option<Value> {
    if a.is_null(i) {
        return Some(Value::Null);
    }
    let num = |x: f64| Number::from_f64(x).map_or(Value::Null, Value::Number);
    Some(match a.data_type() {
        DataType::Utf8 => Value::String(a.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::String(a.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Value::String(a.as_string_view().value(i).to_string()),
        DataType::Boolean => Value::Bool(a.as_boolean().value(i)),
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i).into(),
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i).into(),
        DataType::Float32 => num(a.as_primitive::<Float32Type>().value(i) as f64),
        DataType::Float64 => num(a.as_primitive::<Float64Type>().value(i)),
        DataType::List(_) => {
            let l = a.as_list::<i32>().value(i);
            Value::Array(
                (0..l.len())
                    .map(|j| json_value(&l, j))
                    .collect::<Option<_>>()?,
            )
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>().value(i);
            Value::Array(
                (0..l.len())
                    .map(|j| json_value(&l, j))
                    .collect::<Option<_>>()?,
            )
        }
        _ => return None,
    })
}

/// Stream the rows of a Parquet file as JSON objects: `f(row, object)` with the 1-based row
/// number. Columns of a type with no JSON form here are left out of the objects, unless named in
/// `required`, which is then an error naming the column and its type.
pub fn read_json_rows(
    path: &Path,
    required: &[&str],
    mut f: impl FnMut(usize, Map<String, Value>) -> Result<()>,
) -> Result<()> {
    for_each_batch(path, open_reader(path)?, |row, batch| {
        let schema = batch.schema();
        for (k, field) in schema.fields().iter().enumerate() {
            let a = batch.column(k);
            if required.contains(&field.name().as_str())
                && batch.num_rows() > 0
                && (0..a.len()).all(|i| json_value(a.as_ref(), i).is_none())
            {
                bail!(
                    "{}: column `{}` has type {}, which cannot be read here",
                    path.display(),
                    field.name(),
                    field.data_type()
                );
            }
        }
        for i in 0..batch.num_rows() {
            let mut obj = Map::new();
            for (k, field) in schema.fields().iter().enumerate() {
                if let Some(v) = json_value(batch.column(k).as_ref(), i) {
                    obj.insert(field.name().clone(), v);
                }
            }
            f(row + i + 1, obj)?;
        }
        Ok(())
    })
}

/// Column types of a JSONL file, inferred over all its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColType {
    Null,
    Bool,
    Int,
    Float,
    Text,
    /// Arrays and objects, and columns of mixed types: written as their JSON text.
    Json,
}

fn type_of(v: &Value) -> ColType {
    match v {
        Value::Null => ColType::Null,
        Value::Bool(_) => ColType::Bool,
        Value::Number(n) if n.is_i64() => ColType::Int,
        Value::Number(_) => ColType::Float,
        Value::String(_) => ColType::Text,
        _ => ColType::Json,
    }
}

fn merge(a: ColType, b: ColType) -> ColType {
    use ColType::*;
    match (a, b) {
        (x, y) if x == y => x,
        (Null, x) | (x, Null) => x,
        (Int, Float) | (Float, Int) => Float,
        _ => Json,
    }
}

/// Write a JSONL file of flat objects as Parquet (Snappy, row groups of [`ROW_GROUP_ROWS`]),
/// streaming: `columns` fixes the first columns' order (others follow in order of first
/// appearance). Types are inferred over all rows: integers (Int64), floats (Float64; integers
/// mixed with floats too), booleans, strings; arrays, objects and mixed types as JSON text.
/// Written to a temporary file beside `out`, then renamed over it.
pub fn jsonl_to_parquet(jsonl: &Path, out: &Path, columns: &[&str]) -> Result<usize> {
    let lines = || -> Result<_> {
        let f = File::open(jsonl).with_context(|| format!("{}: cannot open", jsonl.display()))?;
        Ok(BufReader::new(f)
            .lines()
            .enumerate()
            .filter_map(|(i, l)| match l {
                Ok(l) if l.trim().is_empty() => None,
                Ok(l) => Some(
                    serde_json::from_str::<Map<String, Value>>(&l).with_context(|| {
                        format!("{}:{}: not a JSON object", jsonl.display(), i + 1)
                    }),
                ),
                Err(e) => Some(Err(anyhow::Error::new(e).context(format!(
                    "{}:{}: cannot read",
                    jsonl.display(),
                    i + 1
                )))),
            }))
    };
    // Pass 1: the columns and their types.
    let mut names: Vec<String> = columns.iter().map(|s| s.to_string()).collect();
    let mut types: Vec<ColType> = vec![ColType::Null; names.len()];
    for obj in lines()? {
        for (k, v) in obj? {
            match names.iter().position(|n| *n == k) {
                Some(j) => types[j] = merge(types[j], type_of(&v)),
                None => {
                    names.push(k);
                    types.push(type_of(&v));
                }
            }
        }
    }
    let fields: Vec<Field> = names
        .iter()
        .zip(&types)
        .map(|(n, t)| {
            let dt = match t {
                ColType::Bool => DataType::Boolean,
                ColType::Int => DataType::Int64,
                ColType::Float => DataType::Float64,
                ColType::Null | ColType::Text | ColType::Json => DataType::Utf8,
            };
            Field::new(n, dt, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let tmp = out.with_extension("parquet.tmp");
    let file = File::create(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props))
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    let mut buf: Vec<Map<String, Value>> = Vec::with_capacity(BATCH_ROWS);
    let mut n = 0usize;
    let flush = |buf: &mut Vec<Map<String, Value>>, w: &mut ArrowWriter<File>| -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let cols: Vec<ArrayRef> = names
            .iter()
            .zip(&types)
            .map(|(name, t)| column(buf, name, *t))
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), cols)?;
        w.write(&batch)
            .with_context(|| format!("{}: cannot write", tmp.display()))?;
        buf.clear();
        Ok(())
    };
    for obj in lines()? {
        buf.push(obj?);
        n += 1;
        if buf.len() == BATCH_ROWS {
            flush(&mut buf, &mut w)?;
        }
    }
    flush(&mut buf, &mut w)?;
    w.close()
        .with_context(|| format!("{}: cannot finish", tmp.display()))?;
    std::fs::rename(&tmp, out)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), out.display()))?;
    Ok(n)
}

fn column(rows: &[Map<String, Value>], name: &str, t: ColType) -> ArrayRef {
    fn get<'a>(r: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
        r.get(name).filter(|v| !v.is_null())
    }
    let get = |r| get(r, name);
    match t {
        ColType::Bool => Arc::new(BooleanArray::from(
            rows.iter()
                .map(|r| get(r).and_then(Value::as_bool))
                .collect::<Vec<_>>(),
        )),
        ColType::Int => Arc::new(Int64Array::from(
            rows.iter()
                .map(|r| get(r).and_then(Value::as_i64))
                .collect::<Vec<_>>(),
        )),
        ColType::Float => Arc::new(Float64Array::from(
            rows.iter()
                .map(|r| get(r).and_then(Value::as_f64))
                .collect::<Vec<_>>(),
        )),
        ColType::Null | ColType::Text | ColType::Json => Arc::new(StringArray::from(
            rows.iter()
                .map(|r| {
                    get(r).map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                })
                .collect::<Vec<_>>(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_round_trips_through_parquet_with_inferred_types() {
        let d = tempfile::tempdir().unwrap();
        let j = d.path().join("rows.jsonl");
        let mut s = String::new();
        for i in 0..(BATCH_ROWS + 10) {
            s.push_str(
                &serde_json::json!({
                    "id": format!("r{i}"),
                    "label": i % 2,
                    "score": if i == 3 { serde_json::json!(1) } else { serde_json::json!(i as f64 / 1e4) },
                    "ok": i % 3 == 0,
                    "tags": ["a", i.to_string()],
                })
                .to_string(),
            );
            s.push('\n');
        }
        s.push('\n');
        std::fs::write(&j, s).unwrap();
        let p = d.path().join("rows.parquet");
        let n = jsonl_to_parquet(&j, &p, &["score", "id"]).unwrap();
        assert_eq!(n, BATCH_ROWS + 10);
        let (rows, names) = describe(&p).unwrap();
        assert_eq!(rows, BATCH_ROWS + 10);
        assert_eq!(names, ["score", "id", "label", "ok", "tags"]);
        let mut seen = vec![];
        read_json_rows(&p, &["id"], |row, obj| {
            seen.push((row, obj));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), BATCH_ROWS + 10);
        let (row, o) = &seen[4100];
        assert_eq!(*row, 4101);
        assert_eq!(o["id"], "r4100");
        assert_eq!(o["label"], 0);
        assert_eq!(o["score"].as_f64(), Some(0.41));
        assert_eq!(o["ok"], false);
        assert_eq!(o["tags"], "[\"a\",\"4100\"]");
        // An integer among floats is a float.
        assert_eq!(seen[3].1["score"].as_f64(), Some(1.0));
        let mut ids = vec![];
        read_text_columns(&p, &["label", "id"], |first, cols| {
            assert_eq!(cols.len(), 2);
            assert!(cols[0].len() <= BATCH_ROWS);
            ids.push((first, cols[1][0].clone(), cols[0][0].clone()));
            Ok(())
        })
        .unwrap();
        assert_eq!(ids[0], (0, Some("r0".into()), Some("0".into())));
        assert_eq!(ids[1].0, BATCH_ROWS);
    }

    #[test]
    fn errors_name_the_file_and_column() {
        let d = tempfile::tempdir().unwrap();
        let j = d.path().join("rows.jsonl");
        std::fs::write(&j, "{\"id\": \"a\", \"score\": 0.5}\n").unwrap();
        let p = d.path().join("rows.parquet");
        jsonl_to_parquet(&j, &p, &[]).unwrap();
        let e = format!(
            "{:#}",
            read_text_columns(&p, &["id", "text"], |_, _| Ok(())).unwrap_err()
        );
        assert!(
            e.contains("rows.parquet: no column `text` (columns: id, score)"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            read_text_columns(&p, &["score"], |_, _| Ok(())).unwrap_err()
        );
        assert!(e.contains("column `score`") && e.contains("Float64"), "{e}");
        std::fs::write(&p, b"not parquet").unwrap();
        let e = format!("{:#}", describe(&p).unwrap_err());
        assert!(
            e.contains("rows.parquet: not a readable Parquet file"),
            "{e}"
        );
        std::fs::write(&j, "{\"id\": \"a\"}\n[1]\n").unwrap();
        let e = format!("{:#}", jsonl_to_parquet(&j, &p, &[]).unwrap_err());
        assert!(e.contains("rows.jsonl:2: not a JSON object"), "{e}");
    }
}
