//! Datasets: the canonical [`Record`], readers and writers, importers for the raw public
//! datasets, deterministic stratified splits and statistics.
//!
//! # Canonical JSONL
//!
//! One JSON object per line. Only `id`, `text` and `label` are required:
//!
//! ```text
//! {"id": "a1", "text": "some post", "label": 1}
//! {"id": "a2", "text": "another", "label": false, "categories": ["slurs"], "split": "test"}
//! ```
//!
//! * `id` — string (an integer is accepted and converted); unique within a file;
//! * `text` — non-empty string;
//! * `label` — `0`/`1` or `false`/`true` (1 = violating);
//! * optional: `categories` (array of strings) or `category` (string, `"none"` = no category),
//!   `rationale` (string), `slices` (array of strings), `split` (`train`, `val`/`validation`/`dev`,
//!   `test`), `soft_label` (number in `[0, 1]`). Unknown keys are ignored.
//!
//! Every row error names the file, the 1-based line and the field, e.g.
//! `data.jsonl:17: field "label": expected 0 or 1, got "maybe"`. With
//! [`ReadOptions::skip_bad_rows`] bad rows are skipped and counted instead.
//!
//! # Importers
//!
//! [`import_davidson`], [`import_ethos`], [`import_hatexplain`] and [`import_prompt_harm`] turn the
//! raw files under `shared/data/` into records; their docs give the exact label mapping. Data is
//! always read from a path given at run time.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A dataset split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training data.
    Train,
    /// Validation data (threshold selection, early stopping).
    #[serde(alias = "validation", alias = "dev")]
    Val,
    /// Held-out test data.
    Test,
}

impl Split {
    /// `train`, `val` or `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// Parses `train`, `val`/`validation`/`dev`, `test` (case-insensitive).
    pub fn parse(s: &str) -> Option<Split> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" => Some(Split::Train),
            "val" | "validation" | "dev" => Some(Split::Val),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One labelled item in canonical form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unique identifier within the dataset.
    pub id: String,
    /// The content to classify.
    pub text: String,
    /// 1 = violating, 0 = non-violating.
    pub label: u8,
    /// Dataset categories of the item (dataset taxonomy, not necessarily policy category names).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Human rationale (e.g. the tokens annotators highlighted), when available.
    #[serde(default)]
    pub rationale: Option<String>,
    /// Analysis slices, e.g. `target:Women` or `source:gab`.
    #[serde(default)]
    pub slices: Vec<String>,
    /// The split this record belongs to, if assigned.
    #[serde(default)]
    pub split: Option<Split>,
    /// Soft label in `[0, 1]` (e.g. the fraction of annotators who said "violating"), when the
    /// source has one. Not part of the required schema; kept so soft scores are not lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_label: Option<f64>,
}

impl Record {
    /// A record with only the required fields set.
    pub fn new(id: impl Into<String>, text: impl Into<String>, label: u8) -> Record {
        Record {
            id: id.into(),
            text: text.into(),
            label,
            categories: Vec::new(),
            rationale: None,
            slices: Vec::new(),
            split: None,
            soft_label: None,
        }
    }
}

/// A bad row: file, 1-based line, field and message.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    /// The file, as given.
    pub file: PathBuf,
    /// 1-based line where the row starts.
    pub line: usize,
    /// The field (or column) at fault, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// `line` is a 1-based row of a Parquet file, not a line of text.
    pub parquet_row: bool,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parquet_row {
            write!(f, "{}: row {}: ", self.file.display(), self.line)?;
        } else {
            write!(f, "{}:{}: ", self.file.display(), self.line)?;
        }
        if let Some(field) = &self.field {
            write!(f, "field \"{field}\": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Errors from reading, writing, importing or splitting data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A row (or the file's structure at a given line) is invalid.
    #[error("{0}")]
    Row(RowError),
    /// Invalid arguments, e.g. split fractions that do not sum to 1.
    #[error("{0}")]
    Invalid(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn row_err(file: &Path, line: usize, field: Option<&str>, message: impl Into<String>) -> RowError {
    RowError {
        file: file.to_path_buf(),
        line,
        field: field.map(str::to_string),
        message: message.into(),
        parquet_row: false,
    }
}

/// How readers treat bad rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOptions {
    /// Skip bad rows (counting them) instead of failing on the first one.
    pub skip_bad_rows: bool,
    /// How many row errors to keep in [`ReadOutcome::errors`] when skipping.
    pub max_errors_kept: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            skip_bad_rows: false,
            max_errors_kept: 5,
        }
    }
}

impl ReadOptions {
    /// Options that skip bad rows and keep the first five errors.
    pub fn skipping() -> ReadOptions {
        ReadOptions {
            skip_bad_rows: true,
            ..ReadOptions::default()
        }
    }
}

/// What a reader returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReadOutcome {
    /// The good records, in file order.
    pub records: Vec<Record>,
    /// How many rows were skipped (always 0 unless `skip_bad_rows`).
    pub skipped: usize,
    /// The first few errors of skipped rows.
    pub errors: Vec<RowError>,
}

/// Accumulates rows, enforcing unique ids and the skip policy.
struct Collector<'a> {
    options: &'a ReadOptions,
    outcome: ReadOutcome,
    seen: HashMap<String, usize>,
    /// Rows of a Parquet file, not lines.
    parquet: bool,
}

impl<'a> Collector<'a> {
    fn new(options: &'a ReadOptions) -> Self {
        Collector {
            options,
            outcome: ReadOutcome::default(),
            seen: HashMap::new(),
            parquet: false,
        }
    }

    fn push(
        &mut self,
        file: &Path,
        line: usize,
        row: Result<Record, RowError>,
    ) -> Result<(), DataError> {
        let unit = if self.parquet { "row" } else { "line" };
        let row = row.and_then(|record| match self.seen.get(&record.id) {
            Some(first) => Err(RowError {
                parquet_row: self.parquet,
                ..row_err(
                    file,
                    line,
                    Some("id"),
                    format!(
                        "duplicate id {:?} (first seen on {unit} {first})",
                        record.id
                    ),
                )
            }),
            None => Ok(record),
        });
        match row {
            Ok(record) => {
                self.seen.insert(record.id.clone(), line);
                self.outcome.records.push(record);
                Ok(())
            }
            Err(e) if self.options.skip_bad_rows => {
                self.outcome.skipped += 1;
                if self.outcome.errors.len() < self.options.max_errors_kept {
                    self.outcome.errors.push(e);
                }
                Ok(())
            }
            Err(e) => Err(DataError::Row(e)),
        }
    }
}

/// Reads canonical JSONL (see the module docs). Blank lines are ignored.
pub fn read_jsonl(path: impl AsRef<Path>, options: &ReadOptions) -> Result<ReadOutcome, DataError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut collector = Collector::new(options);
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line_no = i + 1;
        let row = match line {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => parse_jsonl_row(path, line_no, &line),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Err(row_err(path, line_no, None, "line is not valid UTF-8"))
            }
            Err(e) => return Err(io_err(path)(e)),
        };
        collector.push(path, line_no, row)?;
    }
    Ok(collector.outcome)
}

fn json_repr(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// Reads canonical records from a Parquet file, a batch at a time: the columns are the JSONL fields
/// (`id`, `text`, `label` required; `categories`, `slices` as lists of strings, ...), or renamed
/// with `columns` (file column -> canonical field). Errors name the file and the 1-based row.
pub fn read_parquet(
    path: impl AsRef<Path>,
    options: &ReadOptions,
    columns: &[(&str, &str)],
) -> Result<ReadOutcome, DataError> {
    let path = path.as_ref();
    let mut collector = Collector::new(options);
    collector.parquet = true;
    let required: Vec<&str> = ["id", "text", "label"]
        .iter()
        .map(|f| {
            columns
                .iter()
                .find(|(_, to)| to == f)
                .map_or(*f, |(from, _)| *from)
        })
        .collect();
    let mut failed: Option<DataError> = None;
    let r = crate::parquet_io::read_json_rows(path, &required, |row, mut obj| {
        for (from, to) in columns {
            if let Some(v) = obj.remove(*from) {
                obj.insert(to.to_string(), v);
            }
        }
        let rec = record_from_value(path, row, &Value::Object(obj)).map_err(|mut e| {
            e.parquet_row = true;
            e
        });
        if let Err(e) = collector.push(path, row, rec) {
            failed = Some(e);
            anyhow::bail!("stop");
        }
        Ok(())
    });
    if let Some(e) = failed {
        return Err(e);
    }
    r.map_err(|e| DataError::Invalid(format!("{e:#}")))?;
    Ok(collector.outcome)
}

fn parse_jsonl_row(file: &Path, line: usize, text: &str) -> Result<Record, RowError> {
    let value: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| row_err(file, line, None, format!("invalid JSON: {e}")))?;
    record_from_value(file, line, &value)
}

fn record_from_value(file: &Path, line: usize, value: &Value) -> Result<Record, RowError> {
    let err = |field: Option<&str>, msg: String| row_err(file, line, field, msg);
    let obj = value.as_object().ok_or_else(|| {
        err(
            None,
            format!("expected a JSON object, got {}", json_repr(&value)),
        )
    })?;
    let field = |name: &str| obj.get(name).filter(|v| !v.is_null());

    let id = match field("id") {
        None => return Err(err(Some("id"), "missing".into())),
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(v) => {
            return Err(err(
                Some("id"),
                format!("expected a non-empty string, got {}", json_repr(v)),
            ))
        }
    };
    let text = match field("text") {
        None => return Err(err(Some("text"), "missing".into())),
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(v) => {
            return Err(err(
                Some("text"),
                format!("expected a non-empty string, got {}", json_repr(v)),
            ))
        }
    };
    let label = match field("label") {
        None => return Err(err(Some("label"), "missing".into())),
        Some(Value::Bool(b)) => u8::from(*b),
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => 0,
        Some(Value::Number(n)) if n.as_f64() == Some(1.0) => 1,
        Some(v) => {
            return Err(err(
                Some("label"),
                format!("expected 0 or 1, got {}", json_repr(v)),
            ))
        }
    };
    let string_list = |name: &str| -> Result<Vec<String>, RowError> {
        match field(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(err(
                        Some(name),
                        format!("expected an array of strings, found {}", json_repr(other)),
                    )),
                })
                .collect(),
            Some(v) => Err(err(
                Some(name),
                format!("expected an array of strings, got {}", json_repr(v)),
            )),
        }
    };
    let mut categories = string_list("categories")?;
    if categories.is_empty() {
        match field("category") {
            None => {}
            Some(Value::String(s)) => {
                let s = s.trim();
                if !s.is_empty() && !s.eq_ignore_ascii_case("none") {
                    categories.push(s.to_string());
                }
            }
            Some(v) => {
                return Err(err(
                    Some("category"),
                    format!("expected a string, got {}", json_repr(v)),
                ))
            }
        }
    }
    let rationale = match field("rationale") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            return Err(err(
                Some("rationale"),
                format!("expected a string, got {}", json_repr(v)),
            ))
        }
    };
    let slices = string_list("slices")?;
    let split = match field("split") {
        None => None,
        Some(Value::String(s)) => Some(Split::parse(s).ok_or_else(|| {
            err(
                Some("split"),
                format!("expected \"train\", \"val\" or \"test\", got {s:?}"),
            )
        })?),
        Some(v) => {
            return Err(err(
                Some("split"),
                format!("expected a string, got {}", json_repr(v)),
            ))
        }
    };
    let soft_label = match field("soft_label") {
        None => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => Some(x),
            _ => {
                return Err(err(
                    Some("soft_label"),
                    format!("expected a number in [0, 1], got {n}"),
                ))
            }
        },
        Some(v) => {
            return Err(err(
                Some("soft_label"),
                format!("expected a number in [0, 1], got {}", json_repr(v)),
            ))
        }
    };
    Ok(Record {
        id,
        text,
        label,
        categories,
        rationale,
        slices,
        split,
        soft_label,
    })
}

/// Writes records as canonical JSONL to any writer.
pub fn write_jsonl_to<W: Write>(mut writer: W, records: &[Record]) -> std::io::Result<()> {
    for record in records {
        serde_json::to_writer(&mut writer, record)?;
        writer.write_all(b"\n")?;
    }
    writer.flush()
}

/// Writes records as canonical JSONL to a file (created or truncated).
pub fn write_jsonl(path: impl AsRef<Path>, records: &[Record]) -> Result<(), DataError> {
    let path = path.as_ref();
    let file = std::fs::File::create(path).map_err(io_err(path))?;
    write_jsonl_to(BufWriter::new(file), records).map_err(io_err(path))
}

/// A CSV column, by header name or by 0-based index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// Header name (requires `has_headers`).
    Name(String),
    /// 0-based position.
    Index(usize),
}

impl From<&str> for Column {
    fn from(name: &str) -> Self {
        Column::Name(name.to_string())
    }
}

impl From<usize> for Column {
    fn from(index: usize) -> Self {
        Column::Index(index)
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Column::Name(name) => f.write_str(name),
            Column::Index(i) => write!(f, "column {i}"),
        }
    }
}

/// How to map CSV columns onto [`Record`] fields.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvMapping {
    /// Id column; when `None`, ids are `row-<n>` with n the 1-based data row.
    pub id: Option<Column>,
    /// Text column.
    pub text: Column,
    /// Label column: `0`/`1`/`true`/`false`, or a number compared with `label_threshold`.
    pub label: Column,
    /// Category column; split on `list_separator`; empty or `none` means no category.
    pub category: Option<Column>,
    /// Rationale column; empty means none.
    pub rationale: Option<Column>,
    /// Field delimiter, e.g. `b','` or `b';'`.
    pub delimiter: u8,
    /// Whether the first row is a header.
    pub has_headers: bool,
    /// When set, the label column is a number and `label = value >= threshold`; values in
    /// `[0, 1]` are also kept as `soft_label`.
    pub label_threshold: Option<f64>,
    /// Separator for multiple categories in one cell.
    pub list_separator: char,
}

impl CsvMapping {
    /// A comma-separated mapping with headers, no id/category/rationale columns.
    pub fn new(text: impl Into<Column>, label: impl Into<Column>) -> CsvMapping {
        CsvMapping {
            id: None,
            text: text.into(),
            label: label.into(),
            category: None,
            rationale: None,
            delimiter: b',',
            has_headers: true,
            label_threshold: None,
            list_separator: '|',
        }
    }
}

fn resolve_column(
    file: &Path,
    headers: Option<&csv::StringRecord>,
    column: &Column,
) -> Result<usize, DataError> {
    match (column, headers) {
        (Column::Index(i), _) => Ok(*i),
        (Column::Name(name), Some(headers)) => headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| {
                DataError::Row(row_err(
                    file,
                    1,
                    Some(name),
                    format!(
                        "column not found in header (have: {})",
                        headers.iter().collect::<Vec<_>>().join(", ")
                    ),
                ))
            }),
        (Column::Name(name), None) => Err(DataError::Invalid(format!(
            "{}: column {name:?} is named but the mapping says the file has no header",
            file.display()
        ))),
    }
}

/// Reads a CSV file with a column mapping. Quoted fields may span lines; errors give the line
/// where the row starts.
pub fn read_csv(
    path: impl AsRef<Path>,
    mapping: &CsvMapping,
    options: &ReadOptions,
) -> Result<ReadOutcome, DataError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(mapping.delimiter)
        .has_headers(mapping.has_headers)
        .flexible(true)
        .from_reader(file);
    let headers = if mapping.has_headers {
        Some(reader.headers().map_err(|e| csv_err(path, e))?.clone())
    } else {
        None
    };
    let h = headers.as_ref();
    let col = |c: &Column| resolve_column(path, h, c);
    let id_col = mapping.id.as_ref().map(col).transpose()?;
    let text_col = col(&mapping.text)?;
    let label_col = col(&mapping.label)?;
    let category_col = mapping.category.as_ref().map(col).transpose()?;
    let rationale_col = mapping.rationale.as_ref().map(col).transpose()?;
    let name_of = |c: &Column| c.to_string();

    let mut collector = Collector::new(options);
    let mut row = csv::StringRecord::new();
    let mut data_row = 0usize;
    loop {
        let line = reader.position().line() as usize;
        match reader.read_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(csv_err(path, e));
                }
                let line = e.position().map_or(line, |p| p.line() as usize);
                collector.push(path, line, Err(row_err(path, line, None, e.to_string())))?;
                continue;
            }
        }
        data_row += 1;
        let line = row.position().map_or(line, |p| p.line() as usize);
        let get = |idx: usize, column: &Column| -> Result<&str, RowError> {
            row.get(idx).ok_or_else(|| {
                row_err(
                    path,
                    line,
                    Some(&name_of(column)),
                    format!("row has only {} fields", row.len()),
                )
            })
        };
        let record = (|| -> Result<Record, RowError> {
            let id = match (id_col, &mapping.id) {
                (Some(i), Some(c)) => {
                    let id = get(i, c)?.trim();
                    if id.is_empty() {
                        return Err(row_err(path, line, Some(&name_of(c)), "empty id"));
                    }
                    id.to_string()
                }
                _ => format!("row-{data_row}"),
            };
            let text = get(text_col, &mapping.text)?;
            if text.trim().is_empty() {
                return Err(row_err(
                    path,
                    line,
                    Some(&name_of(&mapping.text)),
                    "empty text",
                ));
            }
            let raw_label = get(label_col, &mapping.label)?.trim();
            let (label, soft_label) = parse_csv_label(raw_label, mapping.label_threshold)
                .map_err(|m| row_err(path, line, Some(&name_of(&mapping.label)), m))?;
            let mut record = Record::new(id, text, label);
            record.soft_label = soft_label;
            if let (Some(i), Some(c)) = (category_col, &mapping.category) {
                record.categories = get(i, c)?
                    .split(mapping.list_separator)
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("none"))
                    .map(str::to_string)
                    .collect();
            }
            if let (Some(i), Some(c)) = (rationale_col, &mapping.rationale) {
                let r = get(i, c)?.trim();
                record.rationale = (!r.is_empty()).then(|| r.to_string());
            }
            Ok(record)
        })();
        collector.push(path, line, record)?;
    }
    Ok(collector.outcome)
}

fn parse_csv_label(raw: &str, threshold: Option<f64>) -> Result<(u8, Option<f64>), String> {
    if let Some(t) = threshold {
        return match raw.parse::<f64>() {
            Ok(v) if v.is_finite() => {
                let soft = (0.0..=1.0).contains(&v).then_some(v);
                Ok((u8::from(v >= t), soft))
            }
            _ => Err(format!("expected a number, got {raw:?}")),
        };
    }
    match raw.to_ascii_lowercase().as_str() {
        "0" | "false" => Ok((0, None)),
        "1" | "true" => Ok((1, None)),
        _ => Err(format!("expected 0 or 1, got {raw:?}")),
    }
}

fn csv_err(path: &Path, e: csv::Error) -> DataError {
    let line = e.position().map_or(0, |p| p.line() as usize);
    match e.into_kind() {
        csv::ErrorKind::Io(source) => io_err(path)(source),
        kind => DataError::Row(row_err(path, line, None, format!("{kind:?}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Importers
// ---------------------------------------------------------------------------------------------

/// Which binary task to derive from a multi-class source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Hate speech only is violating.
    Hate,
    /// Hate speech or offensive language is violating.
    Offensive,
}

/// Reads a headed CSV fully into memory: (header, rows with their starting line).
fn read_headed_csv(
    path: &Path,
    delimiter: u8,
) -> Result<(csv::StringRecord, Vec<(usize, csv::StringRecord)>), DataError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .from_reader(file);
    let headers = reader.headers().map_err(|e| csv_err(path, e))?.clone();
    let mut rows = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| csv_err(path, e))?;
        let line = row.position().map_or(0, |p| p.line() as usize);
        rows.push((line, row));
    }
    Ok((headers, rows))
}

fn header_index(path: &Path, headers: &csv::StringRecord, name: &str) -> Result<usize, DataError> {
    resolve_column(path, Some(headers), &Column::Name(name.to_string()))
}

fn cell<'r>(
    path: &Path,
    line: usize,
    row: &'r csv::StringRecord,
    idx: usize,
    name: &str,
) -> Result<&'r str, DataError> {
    row.get(idx)
        .ok_or_else(|| DataError::Row(row_err(path, line, Some(name), "missing column")))
}

fn parse_cell<T: std::str::FromStr>(
    path: &Path,
    line: usize,
    row: &csv::StringRecord,
    idx: usize,
    name: &str,
) -> Result<T, DataError> {
    let raw = cell(path, line, row, idx, name)?.trim();
    raw.parse().map_err(|_| {
        DataError::Row(row_err(
            path,
            line,
            Some(name),
            format!("expected a number, got {raw:?}"),
        ))
    })
}

/// Decodes the HTML entities that occur in tweets: `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&#39;`,
/// `&apos;`. Numeric entities for emoji (e.g. `&#128514;`) are left as they are.
fn unescape_basic_html(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Imports Davidson et al. (2017) `labeled_data.csv`.
///
/// * id: `davidson-<index column>`; text: the tweet with basic HTML entities decoded;
/// * label: [`Task::Hate`] → `class == 0`; [`Task::Offensive`] → `class ∈ {0, 1}`;
/// * categories: `["hate"]` for class 0, `["offensive"]` for class 1, none for class 2;
/// * soft_label: fraction of annotators voting hate (Hate) or hate + offensive (Offensive);
/// * slices: `agreement:unanimous` or `agreement:split` (annotator agreement on the class).
pub fn import_davidson(path: impl AsRef<Path>, task: Task) -> Result<Vec<Record>, DataError> {
    let path = path.as_ref();
    let (headers, rows) = read_headed_csv(path, b',')?;
    let idx = |name| header_index(path, &headers, name);
    let (i_id, i_count, i_hate, i_off, i_class, i_text) = (
        0,
        idx("count")?,
        idx("hate_speech")?,
        idx("offensive_language")?,
        idx("class")?,
        idx("tweet")?,
    );
    let mut out = Vec::with_capacity(rows.len());
    for (line, row) in &rows {
        let line = *line;
        let id = cell(path, line, row, i_id, "index")?.trim();
        let count: u32 = parse_cell(path, line, row, i_count, "count")?;
        let hate: u32 = parse_cell(path, line, row, i_hate, "hate_speech")?;
        let off: u32 = parse_cell(path, line, row, i_off, "offensive_language")?;
        let class: u8 = parse_cell(path, line, row, i_class, "class")?;
        if class > 2 {
            return Err(DataError::Row(row_err(
                path,
                line,
                Some("class"),
                format!("expected 0, 1 or 2, got {class}"),
            )));
        }
        if count == 0 {
            return Err(DataError::Row(row_err(
                path,
                line,
                Some("count"),
                "zero annotators",
            )));
        }
        let (label, votes) = match task {
            Task::Hate => (class == 0, hate),
            Task::Offensive => (class <= 1, hate + off),
        };
        let mut record = Record::new(
            format!("davidson-{id}"),
            unescape_basic_html(cell(path, line, row, i_text, "tweet")?),
            u8::from(label),
        );
        match class {
            0 => record.categories.push("hate".into()),
            1 => record.categories.push("offensive".into()),
            _ => {}
        }
        record.soft_label = Some(f64::from(votes) / f64::from(count));
        let neither = count.saturating_sub(hate + off);
        let max_votes = hate.max(off).max(neither);
        record.slices.push(
            if max_votes == count {
                "agreement:unanimous"
            } else {
                "agreement:split"
            }
            .into(),
        );
        out.push(record);
    }
    Ok(out)
}

/// Whitespace-collapsed, lower-cased text used to join the two ETHOS files (they differ in
/// non-breaking spaces).
fn join_key(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Imports ETHOS `Ethos_Dataset_Binary.csv` (`;`-separated), optionally joined with
/// `Ethos_Dataset_Multi_Label.csv`.
///
/// * id: `ethos-<0-based row>`; label: `isHate >= 0.5`; soft_label: `isHate`;
/// * with the multi-label file (joined on whitespace-normalised text): categories are the hate
///   aspects scoring `>= 0.5` among `violence`, `gender`, `race`, `national_origin`,
///   `disability`, `religion`, `sexual_orientation`, and the slice `directed` or `generalized`
///   from `directed_vs_generalized`.
pub fn import_ethos(
    binary_path: impl AsRef<Path>,
    multi_label_path: Option<&Path>,
) -> Result<Vec<Record>, DataError> {
    const ASPECTS: [&str; 7] = [
        "violence",
        "gender",
        "race",
        "national_origin",
        "disability",
        "religion",
        "sexual_orientation",
    ];
    let path = binary_path.as_ref();
    let mut aspects: HashMap<String, (Vec<String>, Option<&'static str>)> = HashMap::new();
    if let Some(ml_path) = multi_label_path {
        let (headers, rows) = read_headed_csv(ml_path, b';')?;
        let i_text = header_index(ml_path, &headers, "comment")?;
        let i_directed = header_index(ml_path, &headers, "directed_vs_generalized")?;
        let cols = ASPECTS
            .iter()
            .map(|a| header_index(ml_path, &headers, a).map(|i| (*a, i)))
            .collect::<Result<Vec<_>, _>>()?;
        for (line, row) in &rows {
            let mut cats = Vec::new();
            for (name, i) in &cols {
                let score: f64 = parse_cell(ml_path, *line, row, *i, name)?;
                if score >= 0.5 {
                    cats.push(name.to_string());
                }
            }
            let directed: f64 =
                parse_cell(ml_path, *line, row, i_directed, "directed_vs_generalized")?;
            let slice = if directed >= 0.5 {
                "directed"
            } else {
                "generalized"
            };
            let text = cell(ml_path, *line, row, i_text, "comment")?;
            aspects.insert(join_key(text), (cats, Some(slice)));
        }
    }
    let (headers, rows) = read_headed_csv(path, b';')?;
    let i_text = header_index(path, &headers, "comment")?;
    let i_score = header_index(path, &headers, "isHate")?;
    let mut out = Vec::with_capacity(rows.len());
    for (n, (line, row)) in rows.iter().enumerate() {
        let score: f64 = parse_cell(path, *line, row, i_score, "isHate")?;
        if !(0.0..=1.0).contains(&score) {
            return Err(DataError::Row(row_err(
                path,
                *line,
                Some("isHate"),
                format!("expected a score in [0, 1], got {score}"),
            )));
        }
        let text = cell(path, *line, row, i_text, "comment")?;
        let mut record = Record::new(format!("ethos-{n}"), text.trim(), u8::from(score >= 0.5));
        record.soft_label = Some(score);
        if let Some((cats, slice)) = aspects.get(&join_key(text)) {
            record.categories = cats.clone();
            record.slices.extend(slice.map(str::to_string));
        }
        out.push(record);
    }
    Ok(out)
}

// --- HateXplain ---------------------------------------------------------------------------

/// A Python literal, as written by `repr()` in the HateXplain re-export.
#[derive(Debug, Clone, PartialEq)]
enum Py {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

impl Py {
    fn get(&self, key: &str) -> Option<&Py> {
        match self {
            Py::Dict(items) => items
                .iter()
                .find(|(k, _)| matches!(k, Py::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_list(&self) -> Option<&[Py]> {
        match self {
            Py::List(items) => Some(items),
            _ => None,
        }
    }

    fn as_int(&self) -> Option<i64> {
        match self {
            Py::Int(i) => Some(*i),
            Py::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Py::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Parses a Python literal (lists, tuples, dicts, strings, ints, floats, None, True, False).
fn parse_py(src: &str) -> Result<Py, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut p = PyParser { chars, pos: 0 };
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos != p.chars.len() {
        return Err(format!("trailing characters at position {}", p.pos));
    }
    Ok(value)
}

struct PyParser {
    chars: Vec<char>,
    pos: usize,
}

impl PyParser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {c:?} at position {}", self.pos))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Py, String> {
        if depth > 64 {
            return Err("nesting too deep".into());
        }
        self.skip_ws();
        match self.peek() {
            Some('[') => self.sequence('[', ']', depth).map(Py::List),
            Some('(') => self.sequence('(', ')', depth).map(Py::List),
            Some('{') => self.dict(depth),
            Some(q @ ('\'' | '"')) => self.string(q).map(Py::Str),
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "None" => Ok(Py::None),
                    "True" => Ok(Py::Bool(true)),
                    "False" => Ok(Py::Bool(false)),
                    other => Err(format!("unexpected name {other:?}")),
                }
            }
            Some(c) => Err(format!("unexpected {c:?} at position {}", self.pos)),
            None => Err("unexpected end of input".into()),
        }
    }

    fn sequence(&mut self, open: char, close: char, depth: usize) -> Result<Vec<Py>, String> {
        self.expect(open)?;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => {
                    return Err(format!(
                        "expected ',' or {close:?} at position {}",
                        self.pos
                    ))
                }
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Py, String> {
        self.expect('{')?;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some('}') {
                self.pos += 1;
                return Ok(Py::Dict(items));
            }
            let key = self.value(depth + 1)?;
            self.expect(':')?;
            let value = self.value(depth + 1)?;
            items.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {}
                _ => return Err(format!("expected ',' or '}}' at position {}", self.pos)),
            }
        }
    }

    fn hex(&mut self, digits: usize) -> Result<char, String> {
        let end = self.pos + digits;
        if end > self.chars.len() {
            return Err("truncated escape".into());
        }
        let hex: String = self.chars[self.pos..end].iter().collect();
        self.pos = end;
        u32::from_str_radix(&hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| format!("bad escape \\{hex}"))
    }

    fn string(&mut self, quote: char) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated string".into()),
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    self.pos += 1;
                    let esc = self.peek().ok_or("unterminated escape")?;
                    self.pos += 1;
                    match esc {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        'x' => out.push(self.hex(2)?),
                        'u' => out.push(self.hex(4)?),
                        'U' => out.push(self.hex(8)?),
                        '\\' | '\'' | '"' => out.push(esc),
                        '\n' => {}
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn number(&mut self) -> Result<Py, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Py::Int(i));
        }
        text.parse::<f64>()
            .map(Py::Float)
            .map_err(|_| format!("bad number {text:?}"))
    }
}

/// HateXplain label ids (`Data/classes.npy` order).
const HX_HATE: i64 = 0;
const HX_NORMAL: i64 = 1;
const HX_OFFENSIVE: i64 = 2;

/// Imports one HateXplain re-export CSV (`df_{val,test}_with_rationales.csv`, no header; see the
/// folder README for the columns).
///
/// * id: the post id; text: the post tokens joined by spaces (with `<user>`/`<number>`
///   placeholders, as in the original dataset);
/// * the majority label of the three annotators (posts without a majority are skipped — the
///   official val/test splits have none); label: [`Task::Hate`] → majority is `hatespeech`,
///   [`Task::Offensive`] → `hatespeech` or `offensive`; categories: `["hatespeech"]` or
///   `["offensive"]` for toxic majorities;
/// * soft_label: fraction of annotators voting for the violating class(es);
/// * rationale: the tokens marked by at least half of the annotators who gave a rationale,
///   joined by spaces (ERASER-style hard rationale); `None` when no rationale was given;
/// * slices: `source:twitter`, `source:gab` or `source:other` from the id suffix, and `target:<community>` for every target
///   community named by at least two annotators;
/// * split: as given.
pub fn import_hatexplain_csv(
    path: impl AsRef<Path>,
    split: Option<Split>,
    task: Task,
) -> Result<Vec<Record>, DataError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(file);
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| csv_err(path, e))?;
        let line = row.position().map_or(0, |p| p.line() as usize);
        let bad = |field: &str, msg: String| DataError::Row(row_err(path, line, Some(field), msg));
        let col = |i: usize, name: &str| -> Result<Py, DataError> {
            let raw = cell(path, line, &row, i, name)?;
            parse_py(raw).map_err(|e| bad(name, format!("not a Python literal: {e}")))
        };
        let id = cell(path, line, &row, 0, "post_id")?.trim().to_string();
        let annotation = col(1, "annotators")?;
        let labels = annotation
            .get("label")
            .and_then(Py::as_list)
            .and_then(|l| l.iter().map(Py::as_int).collect::<Option<Vec<_>>>())
            .ok_or_else(|| bad("annotators.label", "expected a list of ints".into()))?;
        let rationales = col(2, "rationales")?;
        let rationales = rationales
            .as_list()
            .and_then(|masks| {
                masks
                    .iter()
                    .map(|m| {
                        m.as_list()
                            .and_then(|m| m.iter().map(Py::as_int).collect::<Option<Vec<_>>>())
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| bad("rationales", "expected a list of 0/1 lists".into()))?;
        let tokens = col(3, "post_tokens")?;
        let tokens = tokens
            .as_list()
            .and_then(|t| {
                t.iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| bad("post_tokens", "expected a list of strings".into()))?;
        if tokens.is_empty() {
            return Err(bad("post_tokens", "empty post".into()));
        }

        let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
        for l in &labels {
            *counts.entry(*l).or_insert(0) += 1;
        }
        let Some((&majority, _)) = counts.iter().find(|(_, &c)| c * 2 > labels.len()) else {
            continue;
        };
        if ![HX_HATE, HX_NORMAL, HX_OFFENSIVE].contains(&majority) {
            return Err(bad("annotators.label", format!("unknown class {majority}")));
        }
        let is_positive = |l: i64| match task {
            Task::Hate => l == HX_HATE,
            Task::Offensive => l == HX_HATE || l == HX_OFFENSIVE,
        };
        let mut record = Record::new(
            id.clone(),
            tokens.join(" "),
            u8::from(is_positive(majority)),
        );
        record.split = split;
        record.soft_label =
            Some(labels.iter().filter(|&&l| is_positive(l)).count() as f64 / labels.len() as f64);
        match majority {
            HX_HATE => record.categories.push("hatespeech".into()),
            HX_OFFENSIVE => record.categories.push("offensive".into()),
            _ => {}
        }
        if !rationales.is_empty() {
            if let Some(m) = rationales.iter().find(|m| m.len() != tokens.len()) {
                return Err(bad(
                    "rationales",
                    format!(
                        "mask has {} entries but the post has {} tokens",
                        m.len(),
                        tokens.len()
                    ),
                ));
            }
            let marked: Vec<&str> = (0..tokens.len())
                .filter(|&i| {
                    let votes = rationales.iter().filter(|m| m[i] == 1).count();
                    votes * 2 >= rationales.len()
                })
                .map(|i| tokens[i].as_str())
                .collect();
            if !marked.is_empty() {
                record.rationale = Some(marked.join(" "));
            }
        }
        let source = ["twitter", "gab"]
            .into_iter()
            .find(|s| id.ends_with(&format!("_{s}")))
            .unwrap_or("other");
        record.slices.push(format!("source:{source}"));
        let mut target_votes: BTreeMap<String, usize> = BTreeMap::new();
        for per_annotator in annotation
            .get("target")
            .and_then(Py::as_list)
            .unwrap_or(&[])
        {
            let mut mine: Vec<&str> = per_annotator
                .as_list()
                .unwrap_or(&[])
                .iter()
                .filter_map(Py::as_str)
                .collect();
            mine.sort_unstable();
            mine.dedup();
            for t in mine {
                *target_votes.entry(t.to_string()).or_insert(0) += 1;
            }
        }
        record.slices.extend(
            target_votes
                .into_iter()
                .filter(|(t, n)| *n >= 2 && t != "None")
                .map(|(t, _)| format!("target:{t}")),
        );
        out.push(record);
    }
    Ok(out)
}

/// Imports the HateXplain folder: `df_val_with_rationales.csv` and `df_test_with_rationales.csv`.
/// Splits come from `post_id_divisions.json` when it is present (the official division), else
/// from the file names. See [`import_hatexplain_csv`] for the mapping.
pub fn import_hatexplain(dir: impl AsRef<Path>, task: Task) -> Result<Vec<Record>, DataError> {
    let dir = dir.as_ref();
    let mut records = import_hatexplain_csv(
        dir.join("df_val_with_rationales.csv"),
        Some(Split::Val),
        task,
    )?;
    records.extend(import_hatexplain_csv(
        dir.join("df_test_with_rationales.csv"),
        Some(Split::Test),
        task,
    )?);
    let divisions_path = dir.join("post_id_divisions.json");
    if divisions_path.exists() {
        let src = std::fs::read_to_string(&divisions_path).map_err(io_err(&divisions_path))?;
        let divisions: HashMap<String, Vec<String>> = serde_json::from_str(&src)
            .map_err(|e| DataError::Invalid(format!("{}: {e}", divisions_path.display())))?;
        let mut by_id: HashMap<&str, Split> = HashMap::new();
        for (name, ids) in &divisions {
            if let Some(split) = Split::parse(name) {
                for id in ids {
                    by_id.insert(id, split);
                }
            }
        }
        for record in &mut records {
            if let Some(split) = by_id.get(record.id.as_str()) {
                record.split = Some(*split);
            }
        }
    }
    Ok(records)
}

// --- Prompt harm --------------------------------------------------------------------------

/// Reads a JSON array of prompt objects, returning each element with its starting line.
fn read_json_array(path: &Path) -> Result<Vec<(usize, Value)>, DataError> {
    let src = std::fs::read_to_string(path).map_err(io_err(path))?;
    let raw: Vec<&serde_json::value::RawValue> = serde_json::from_str(&src).map_err(|e| {
        DataError::Row(row_err(
            path,
            e.line(),
            None,
            format!("expected a JSON array of objects: {e}"),
        ))
    })?;
    let base = src.as_ptr() as usize;
    // Elements come in source order, so lines are counted incrementally.
    let (mut counted_to, mut line) = (0usize, 1usize);
    raw.into_iter()
        .map(|item| {
            let offset = item.get().as_ptr() as usize - base;
            line += src.as_bytes()[counted_to..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            counted_to = offset;
            serde_json::from_str(item.get())
                .map(|v| (line, v))
                .map_err(|e| DataError::Row(row_err(path, line, None, e.to_string())))
        })
        .collect()
}

/// Imports one prompt-harm JSON file: an array of `{"prompt"|"text", "label": "safe"|"harmful",
/// "source"}` objects.
///
/// * id: `<name>-<0-based index>`; label: `harmful` → 1, `safe` → 0;
/// * `subcategory_source = true` (WildGuard benchmark): `source` is a subcategory such as
///   `wildguardmix_cyberattack`; its suffix becomes the category of harmful prompts
///   (`benign` gives none), and the split is `test` (the folder README's suggested use);
/// * `subcategory_source = false` (GuardReasoner sample): `source` names the origin dataset and
///   becomes the slice `origin:<source>`; no category, no split;
/// * slices always include `source:<name>`.
pub fn import_prompt_harm_file(
    path: impl AsRef<Path>,
    name: &str,
    subcategory_source: bool,
) -> Result<Vec<Record>, DataError> {
    let path = path.as_ref();
    let mut out = Vec::new();
    for (i, (line, value)) in read_json_array(path)?.into_iter().enumerate() {
        let bad = |field: &str, msg: String| DataError::Row(row_err(path, line, Some(field), msg));
        let text = ["prompt", "text"]
            .iter()
            .find_map(|k| value.get(*k).and_then(Value::as_str))
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| bad("prompt", "missing or empty".into()))?;
        let label = match value.get("label").and_then(Value::as_str) {
            Some("harmful") => 1,
            Some("safe") => 0,
            other => {
                return Err(bad(
                    "label",
                    format!("expected \"safe\" or \"harmful\", got {other:?}"),
                ))
            }
        };
        let source = value.get("source").and_then(Value::as_str).unwrap_or("");
        let mut record = Record::new(format!("{name}-{i:05}"), text, label);
        record.slices.push(format!("source:{name}"));
        if subcategory_source {
            let sub = source.strip_prefix("wildguardmix_").unwrap_or(source);
            if label == 1 && !sub.is_empty() && sub != "benign" {
                record.categories.push(sub.to_string());
            }
            record.split = Some(Split::Test);
        } else if !source.is_empty() {
            record.slices.push(format!("origin:{source}"));
        }
        out.push(record);
    }
    Ok(out)
}

/// Imports the prompt-harm folder: `guardreasoner_test_5k.json` (no split; for training and
/// validation) followed by `wildguard_full_benchmark.json` (split `test`, subcategories as
/// categories). See [`import_prompt_harm_file`].
pub fn import_prompt_harm(dir: impl AsRef<Path>) -> Result<Vec<Record>, DataError> {
    let dir = dir.as_ref();
    let mut records = import_prompt_harm_file(
        dir.join("guardreasoner_test_5k.json"),
        "guardreasoner",
        false,
    )?;
    records.extend(import_prompt_harm_file(
        dir.join("wildguard_full_benchmark.json"),
        "wildguard",
        true,
    )?);
    Ok(records)
}

// ---------------------------------------------------------------------------------------------
// Splits
// ---------------------------------------------------------------------------------------------

/// Fractions and seed for [`assign_splits`].
#[derive(Debug, Clone, PartialEq)]
pub struct SplitConfig {
    /// Fraction of each label stratum in train.
    pub train: f64,
    /// Fraction in val.
    pub val: f64,
    /// Fraction in test.
    pub test: f64,
    /// Seed; the same seed and ids always give the same assignment.
    pub seed: u64,
    /// Leave records that already have a split alone (e.g. official test sets).
    pub keep_existing: bool,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            train: 0.8,
            val: 0.1,
            test: 0.1,
            seed: 0,
            keep_existing: true,
        }
    }
}

/// SplitMix64 finaliser: a fixed, portable 64-bit mix.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Assigns train/val/test splits, stratified by label.
///
/// Within each label, the records to assign are ordered by a seeded hash of their id (ties by
/// id), and the first `round(n·train)` go to train, the next `round(n·val)` to val and the rest
/// to test. The result depends only on the ids, labels, fractions and seed — not on input order
/// or on the `rand` crate's version.
pub fn assign_splits(records: &mut [Record], config: &SplitConfig) -> Result<(), DataError> {
    let fractions = [config.train, config.val, config.test];
    if fractions.iter().any(|f| !f.is_finite() || *f < 0.0)
        || (fractions.iter().sum::<f64>() - 1.0).abs() > 1e-9
    {
        return Err(DataError::Invalid(format!(
            "split fractions must be non-negative and sum to 1, got {fractions:?}"
        )));
    }
    let mut strata: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if !(config.keep_existing && r.split.is_some()) {
            strata.entry(r.label).or_default().push(i);
        }
    }
    let seed_mix = mix64(config.seed);
    for indices in strata.values_mut() {
        indices.sort_by_cached_key(|&i| {
            let id = &records[i].id;
            (mix64(fnv1a(id.as_bytes()) ^ seed_mix), id.clone())
        });
        let n = indices.len();
        let n_train = (((n as f64) * config.train).round() as usize).min(n);
        let n_val = (((n as f64) * config.val).round() as usize).min(n - n_train);
        for (rank, &i) in indices.iter().enumerate() {
            records[i].split = Some(if rank < n_train {
                Split::Train
            } else if rank < n_train + n_val {
                Split::Val
            } else {
                Split::Test
            });
        }
    }
    Ok(())
}

/// The records of one split.
pub fn in_split(records: &[Record], split: Split) -> Vec<&Record> {
    records.iter().filter(|r| r.split == Some(split)).collect()
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

/// Counts for one group of records.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct GroupStats {
    /// Records in the group.
    pub count: usize,
    /// Violating records in the group.
    pub positives: usize,
    /// `positives / count`.
    pub prevalence: f64,
    /// Mean text length in characters.
    pub mean_chars: f64,
}

impl GroupStats {
    fn of<'a>(records: impl IntoIterator<Item = &'a Record>) -> GroupStats {
        let (mut count, mut positives, mut chars) = (0usize, 0usize, 0usize);
        for r in records {
            count += 1;
            positives += usize::from(r.label == 1);
            chars += r.text.chars().count();
        }
        let ratio = |a: usize| {
            if count == 0 {
                0.0
            } else {
                a as f64 / count as f64
            }
        };
        GroupStats {
            count,
            positives,
            prevalence: ratio(positives),
            mean_chars: ratio(chars),
        }
    }
}

/// Dataset statistics; `Display` prints a table.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Stats {
    /// All records.
    pub overall: GroupStats,
    /// Count and share of each label value.
    pub by_label: BTreeMap<u8, (usize, f64)>,
    /// Per dataset category.
    pub by_category: BTreeMap<String, GroupStats>,
    /// Per split (`unassigned` for records without one).
    pub by_split: BTreeMap<String, GroupStats>,
    /// Per slice.
    pub by_slice: BTreeMap<String, GroupStats>,
}

/// Computes [`Stats`].
pub fn stats(records: &[Record]) -> Stats {
    let overall = GroupStats::of(records);
    let mut by_label: BTreeMap<u8, (usize, f64)> = BTreeMap::new();
    let mut cats: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    let mut splits: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    let mut slices: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for r in records {
        by_label.entry(r.label).or_insert((0, 0.0)).0 += 1;
        for c in &r.categories {
            cats.entry(c.clone()).or_default().push(r);
        }
        for s in &r.slices {
            slices.entry(s.clone()).or_default().push(r);
        }
        let split = r.split.map_or("unassigned", Split::as_str);
        splits.entry(split.to_string()).or_default().push(r);
    }
    for (count, share) in by_label.values_mut() {
        *share = *count as f64 / records.len() as f64;
    }
    let group = |m: BTreeMap<String, Vec<&Record>>| {
        m.into_iter()
            .map(|(k, v)| (k, GroupStats::of(v)))
            .collect::<BTreeMap<_, _>>()
    };
    Stats {
        overall,
        by_label,
        by_category: group(cats),
        by_split: group(splits),
        by_slice: group(slices),
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "records: {}   violating: {} ({:.2}%)   mean length: {:.1} chars",
            self.overall.count,
            self.overall.positives,
            100.0 * self.overall.prevalence,
            self.overall.mean_chars
        )?;
        writeln!(f)?;
        writeln!(f, "{:<8} {:>9} {:>8}", "label", "count", "share")?;
        for (label, (count, share)) in &self.by_label {
            writeln!(f, "{:<8} {:>9} {:>7.2}%", label, count, 100.0 * share)?;
        }
        let sections = [
            ("split", &self.by_split),
            ("category", &self.by_category),
            ("slice", &self.by_slice),
        ];
        let width = sections
            .iter()
            .flat_map(|(_, m)| m.keys().map(|k| k.chars().count()))
            .max()
            .unwrap_or(0)
            .max(8);
        for (title, groups) in sections {
            if groups.is_empty() {
                continue;
            }
            writeln!(f)?;
            writeln!(
                f,
                "{:<width$} {:>9} {:>9} {:>10} {:>10}",
                title, "count", "violating", "prevalence", "mean_chars"
            )?;
            for (name, g) in groups {
                writeln!(
                    f,
                    "{:<width$} {:>9} {:>9} {:>9.2}% {:>10.1}",
                    name,
                    g.count,
                    g.positives,
                    100.0 * g.prevalence,
                    g.mean_chars
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn parquet_records_with_renamed_columns_and_row_errors() {
        let d = tempfile::tempdir().unwrap();
        let j = d.path().join("d.jsonl");
        std::fs::write(
            &j,
            "{\"post\": 7, \"body\": \"hello\", \"y\": 1, \"split\": \"test\"}\n\
             {\"post\": 8, \"body\": \"bad label\", \"y\": 2}\n\
             {\"post\": 7, \"body\": \"again\", \"y\": 0}\n",
        )
        .unwrap();
        let p = d.path().join("d.parquet");
        crate::parquet_io::jsonl_to_parquet(&j, &p, &[]).unwrap();
        let cols = [("post", "id"), ("body", "text"), ("y", "label")];
        let out = read_parquet(&p, &ReadOptions::skipping(), &cols).unwrap();
        assert_eq!(out.records.len(), 1);
        let r = &out.records[0];
        assert_eq!((r.id.as_str(), r.text.as_str(), r.label), ("7", "hello", 1));
        assert_eq!(r.split, Some(Split::Test));
        assert_eq!(out.skipped, 2);
        let e0 = out.errors[0].to_string();
        assert!(
            e0.contains("d.parquet: row 2: field \"label\": expected 0 or 1"),
            "{e0}"
        );
        let e1 = out.errors[1].to_string();
        assert!(
            e1.contains("row 3") && e1.contains("first seen on row 1"),
            "{e1}"
        );
        // Without skipping, the first bad row stops the read with that error.
        let e = read_parquet(&p, &ReadOptions::default(), &cols)
            .unwrap_err()
            .to_string();
        assert!(e.contains("d.parquet: row 2"), "{e}");
        // The canonical names are required when not renamed.
        let e = read_parquet(&p, &ReadOptions::default(), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("field \"id\": missing"), "{e}");
    }
    use super::*;

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
    }

    fn temp_file(name: &str, contents: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(contents.as_bytes())
            .unwrap();
        (dir, path)
    }

    fn row_error(e: DataError) -> RowError {
        match e {
            DataError::Row(r) => r,
            other => panic!("expected a row error, got {other}"),
        }
    }

    #[test]
    fn jsonl_minimal_and_full_rows() {
        let (_d, path) = temp_file(
            "data.jsonl",
            "{\"id\": \"a\", \"text\": \"hello\", \"label\": 0}\n\n\
             {\"id\": 7, \"text\": \"bye\", \"label\": true, \"category\": \"slurs\", \"split\": \"validation\", \"rationale\": \"bye\", \"slices\": [\"s\"], \"soft_label\": 0.75, \"extra\": 1}\n",
        );
        let out = read_jsonl(&path, &ReadOptions::default()).unwrap();
        assert_eq!(out.skipped, 0);
        assert_eq!(out.records.len(), 2);
        assert_eq!(out.records[0], Record::new("a", "hello", 0));
        let b = &out.records[1];
        assert_eq!(b.id, "7");
        assert_eq!(b.label, 1);
        assert_eq!(b.categories, vec!["slurs"]);
        assert_eq!(b.split, Some(Split::Val));
        assert_eq!(b.rationale.as_deref(), Some("bye"));
        assert_eq!(b.slices, vec!["s"]);
        assert_eq!(b.soft_label, Some(0.75));
    }

    #[test]
    fn jsonl_error_names_file_line_field() {
        let mut src = String::new();
        for i in 0..16 {
            src.push_str(&format!(
                "{{\"id\": \"r{i}\", \"text\": \"t\", \"label\": 1}}\n"
            ));
        }
        src.push_str("{\"id\": \"bad\", \"text\": \"t\", \"label\": \"maybe\"}\n");
        let (_d, path) = temp_file("data.jsonl", &src);
        let e = row_error(read_jsonl(&path, &ReadOptions::default()).unwrap_err());
        assert_eq!(e.line, 17);
        assert_eq!(e.field.as_deref(), Some("label"));
        assert_eq!(
            e.to_string(),
            format!(
                "{}:17: field \"label\": expected 0 or 1, got \"maybe\"",
                path.display()
            )
        );
    }

    #[test]
    fn jsonl_skip_bad_rows_counts_and_keeps_first_errors() {
        let src = "{\"id\": \"a\", \"text\": \"x\", \"label\": 1}\n\
                   not json\n\
                   {\"id\": \"b\", \"text\": \"\", \"label\": 1}\n\
                   {\"id\": \"a\", \"text\": \"dup\", \"label\": 0}\n\
                   {\"text\": \"no id\", \"label\": 0}\n\
                   {\"id\": \"c\", \"text\": \"ok\", \"label\": 2}\n\
                   {\"id\": \"d\", \"text\": \"ok\", \"label\": 0, \"split\": \"holdout\"}\n\
                   {\"id\": \"e\", \"text\": \"fine\", \"label\": 0}\n";
        let (_d, path) = temp_file("d.jsonl", src);
        let out = read_jsonl(
            &path,
            &ReadOptions {
                skip_bad_rows: true,
                max_errors_kept: 3,
            },
        )
        .unwrap();
        assert_eq!(
            out.records
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            vec!["a", "e"]
        );
        assert_eq!(out.skipped, 6);
        assert_eq!(out.errors.len(), 3);
        assert_eq!(out.errors[0].line, 2);
        assert_eq!(out.errors[1].field.as_deref(), Some("text"));
        assert_eq!(out.errors[2].field.as_deref(), Some("id"));
        assert!(out.errors[2]
            .message
            .contains("duplicate id \"a\" (first seen on line 1)"));
    }

    #[test]
    fn jsonl_round_trip() {
        let mut r = Record::new("x", "line one\nline \"two\" ✓", 1);
        r.categories = vec!["a".into(), "b".into()];
        r.rationale = Some("two".into());
        r.slices = vec!["target:Women".into()];
        r.split = Some(Split::Test);
        r.soft_label = Some(2.0 / 3.0);
        let records = vec![r, Record::new("y", "plain", 0)];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        write_jsonl(&path, &records).unwrap();
        let back = read_jsonl(&path, &ReadOptions::default()).unwrap();
        assert_eq!(back.records, records);
        // Serde round trip of the struct itself.
        let json = serde_json::to_string(&records[0]).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), records[0]);
    }

    #[test]
    fn csv_with_mapping_and_multiline_fields() {
        let src = "key;body;y;cat;why\n\
                   k1;\"multi\nline; text\";1;slurs|threats;\"line\"\n\
                   k2;plain;0;none;\n\
                   k3;oops;maybe;;\n";
        let (_d, path) = temp_file("d.csv", src);
        let mapping = CsvMapping {
            id: Some("key".into()),
            category: Some("cat".into()),
            rationale: Some("why".into()),
            delimiter: b';',
            ..CsvMapping::new("body", "y")
        };
        let e = row_error(read_csv(&path, &mapping, &ReadOptions::default()).unwrap_err());
        assert_eq!(e.line, 5);
        assert_eq!(e.field.as_deref(), Some("y"));
        assert_eq!(e.message, "expected 0 or 1, got \"maybe\"");

        let out = read_csv(&path, &mapping, &ReadOptions::skipping()).unwrap();
        assert_eq!(out.skipped, 1);
        assert_eq!(out.records.len(), 2);
        assert_eq!(out.records[0].id, "k1");
        assert_eq!(out.records[0].text, "multi\nline; text");
        assert_eq!(out.records[0].categories, vec!["slurs", "threats"]);
        assert_eq!(out.records[0].rationale.as_deref(), Some("line"));
        assert_eq!(out.records[1].categories, Vec::<String>::new());
        assert_eq!(out.records[1].rationale, None);
    }

    #[test]
    fn csv_threshold_index_columns_and_missing_header() {
        let (_d, path) = temp_file("s.csv", "a post,0.83\nanother,0.2\n");
        let mapping = CsvMapping {
            has_headers: false,
            label_threshold: Some(0.5),
            ..CsvMapping::new(0usize, 1usize)
        };
        let out = read_csv(&path, &mapping, &ReadOptions::default()).unwrap();
        assert_eq!(out.records[0].id, "row-1");
        assert_eq!(out.records[0].label, 1);
        assert_eq!(out.records[0].soft_label, Some(0.83));
        assert_eq!(out.records[1].label, 0);

        let (_d2, path2) = temp_file("h.csv", "text,label\nx,1\n");
        let e = row_error(
            read_csv(
                &path2,
                &CsvMapping::new("text", "class"),
                &ReadOptions::default(),
            )
            .unwrap_err(),
        );
        assert_eq!((e.line, e.field.as_deref()), (1, Some("class")));
        assert!(e.message.contains("column not found"));
    }

    #[test]
    fn splits_are_stratified_deterministic_and_order_independent() {
        let mut records: Vec<Record> = (0..1000)
            .map(|i| Record::new(format!("id{i}"), "t", u8::from(i % 10 == 0)))
            .collect();
        let config = SplitConfig {
            seed: 42,
            ..SplitConfig::default()
        };
        assign_splits(&mut records, &config).unwrap();
        let s = stats(&records);
        assert_eq!(s.by_split["train"].count, 800);
        assert_eq!(s.by_split["val"].count, 100);
        assert_eq!(s.by_split["test"].count, 100);
        for split in ["train", "val", "test"] {
            assert!(
                (s.by_split[split].prevalence - 0.1).abs() < 1e-12,
                "{split}"
            );
        }
        let mut reversed: Vec<Record> = records.iter().rev().cloned().collect();
        for r in &mut reversed {
            r.split = None;
        }
        assign_splits(&mut reversed, &config).unwrap();
        reversed.reverse();
        assert_eq!(reversed, records);

        let mut other = records.clone();
        for r in &mut other {
            r.split = None;
        }
        assign_splits(
            &mut other,
            &SplitConfig {
                seed: 7,
                ..config.clone()
            },
        )
        .unwrap();
        assert_ne!(other, records, "a different seed gives a different split");
    }

    #[test]
    fn splits_keep_existing_and_validate_fractions() {
        let mut records = vec![Record::new("a", "t", 1), Record::new("b", "t", 0)];
        records[0].split = Some(Split::Test);
        let config = SplitConfig {
            train: 1.0,
            val: 0.0,
            test: 0.0,
            ..SplitConfig::default()
        };
        assign_splits(&mut records, &config).unwrap();
        assert_eq!(records[0].split, Some(Split::Test));
        assert_eq!(records[1].split, Some(Split::Train));
        let bad = SplitConfig {
            train: 0.9,
            ..SplitConfig::default()
        };
        assert!(matches!(
            assign_splits(&mut records, &bad),
            Err(DataError::Invalid(_))
        ));
    }

    #[test]
    fn stats_counts_and_table() {
        let mut a = Record::new("a", "abcd", 1);
        a.categories = vec!["hate".into()];
        a.split = Some(Split::Train);
        let b = Record::new("b", "ab", 0);
        let s = stats(&[a, b]);
        assert_eq!(s.overall.count, 2);
        assert_eq!(s.overall.positives, 1);
        assert_eq!(s.overall.mean_chars, 3.0);
        assert_eq!(s.by_label[&1], (1, 0.5));
        assert_eq!(s.by_category["hate"].prevalence, 1.0);
        assert_eq!(s.by_split["unassigned"].count, 1);
        let table = s.to_string();
        assert!(table.contains("records: 2"), "{table}");
        assert!(table.contains("unassigned"), "{table}");
        assert!(table.contains("hate"), "{table}");
        assert_eq!(stats(&[]).overall.count, 0);
    }

    #[test]
    fn python_literal_parser() {
        let v = parse_py("{'label': [0, 2, 0], 'target': [['None'], [\"Women\", 'Islam']], 'x': (1.5, None, True)}").unwrap();
        assert_eq!(
            v.get("label").unwrap(),
            &Py::List(vec![Py::Int(0), Py::Int(2), Py::Int(0)])
        );
        assert_eq!(
            parse_py(r#"["don't", 'say \'hi\'', '\xe9\u00e9', "a\\b"]"#).unwrap(),
            Py::List(vec![
                Py::Str("don't".into()),
                Py::Str("say 'hi'".into()),
                Py::Str("éé".into()),
                Py::Str("a\\b".into()),
            ])
        );
        assert!(parse_py("[1, 2").is_err());
        assert!(parse_py("{'a' 1}").is_err());
        assert!(parse_py("[1] x").is_err());
    }

    #[test]
    fn hatexplain_row_mapping() {
        let row = "123_gab,\"{'label': [0, 0, 2], 'annotator_id': [1, 2, 3], 'target': [['Women', 'Islam'], ['Women'], ['None']]}\",\"[[0, 1, 1], [0, 1, 0]]\",\"['you', 'stupid', 'x']\",[],x,x,x\n\
                   456_twitter,\"{'label': [1, 1, 2], 'annotator_id': [1, 2, 3], 'target': [['None'], ['None'], ['None']]}\",[],\"['hello', 'there']\",[],x,x,x\n\
                   789_twitter,\"{'label': [0, 1, 2], 'annotator_id': [1, 2, 3], 'target': [['None'], ['None'], ['None']]}\",[],\"['no', 'majority']\",[],x,x,x\n";
        let (_d, path) = temp_file("hx.csv", row);
        let hate = import_hatexplain_csv(&path, Some(Split::Val), Task::Hate).unwrap();
        assert_eq!(hate.len(), 2, "the no-majority post is skipped");
        let a = &hate[0];
        assert_eq!(a.id, "123_gab");
        assert_eq!(a.text, "you stupid x");
        assert_eq!(a.label, 1);
        assert_eq!(a.categories, vec!["hatespeech"]);
        assert_eq!(a.rationale.as_deref(), Some("stupid x"));
        assert_eq!(a.slices, vec!["source:gab", "target:Women"]);
        assert!((a.soft_label.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(a.split, Some(Split::Val));
        assert_eq!(hate[1].label, 0);
        assert_eq!(hate[1].rationale, None);
        let toxic = import_hatexplain_csv(&path, None, Task::Offensive).unwrap();
        assert_eq!(toxic[0].soft_label, Some(1.0));
        assert_eq!(toxic[1].label, 0);
    }

    #[test]
    fn hatexplain_bad_literal_is_located() {
        let (_d, path) = temp_file(
            "hx.csv",
            "1_gab,\"{'label': [0, 0, 0]\",[],\"['a']\",[],x,x,x\n",
        );
        let e = row_error(import_hatexplain_csv(&path, None, Task::Hate).unwrap_err());
        assert_eq!(e.line, 1);
        assert_eq!(e.field.as_deref(), Some("annotators"));
    }

    #[test]
    fn davidson_mapping_on_synthetic_rows() {
        let src = ",count,hate_speech,offensive_language,neither,class,tweet\n\
                   0,3,2,1,0,0,\"they are &amp; always &lt;3\"\n\
                   1,3,0,3,0,1,rude\n\
                   2,3,0,1,2,2,fine\n";
        let (_d, path) = temp_file("labeled_data.csv", src);
        let hate = import_davidson(&path, Task::Hate).unwrap();
        assert_eq!(
            hate.iter().map(|r| r.label).collect::<Vec<_>>(),
            vec![1, 0, 0]
        );
        assert_eq!(hate[0].id, "davidson-0");
        assert_eq!(hate[0].text, "they are & always <3");
        assert_eq!(hate[0].categories, vec!["hate"]);
        assert_eq!(hate[0].slices, vec!["agreement:split"]);
        assert_eq!(hate[1].slices, vec!["agreement:unanimous"]);
        let off = import_davidson(&path, Task::Offensive).unwrap();
        assert_eq!(
            off.iter().map(|r| r.label).collect::<Vec<_>>(),
            vec![1, 1, 0]
        );
        assert!((off[2].soft_label.unwrap() - 1.0 / 3.0).abs() < 1e-12);

        let (_d2, bad) = temp_file(
            "labeled_data.csv",
            &src.replace("1,3,0,3,0,1", "1,3,0,3,0,x"),
        );
        let e = row_error(import_davidson(&bad, Task::Hate).unwrap_err());
        assert_eq!((e.line, e.field.as_deref()), (3, Some("class")));
    }

    #[test]
    fn prompt_harm_file_mapping_and_errors() {
        let src = "[\n  {\"text\": \"how to hack\", \"label\": \"harmful\", \"source\": \"wildguardmix_cyberattack\"},\n  {\"text\": \"hi\", \"label\": \"safe\", \"source\": \"wildguardmix_benign\"}\n]";
        let (_d, path) = temp_file("wg.json", src);
        let r = import_prompt_harm_file(&path, "wildguard", true).unwrap();
        assert_eq!(r[0].id, "wildguard-00000");
        assert_eq!(r[0].label, 1);
        assert_eq!(r[0].categories, vec!["cyberattack"]);
        assert_eq!(r[1].categories, Vec::<String>::new());
        assert_eq!(r[1].split, Some(Split::Test));
        let (_d2, bad) = temp_file("wg.json", &src.replace("\"safe\"", "\"unsure\""));
        let e = row_error(import_prompt_harm_file(&bad, "wildguard", true).unwrap_err());
        assert_eq!((e.line, e.field.as_deref()), (3, Some("label")));
    }

    // --- Real data (shared/data, read-only) ------------------------------------------------

    #[test]
    fn real_davidson() {
        let records = import_davidson(
            data_dir().join("davidson-hate-offensive/labeled_data.csv"),
            Task::Hate,
        )
        .unwrap();
        assert_eq!(records.len(), 24_783);
        assert_eq!(records.iter().filter(|r| r.label == 1).count(), 1_430);
        let off = import_davidson(
            data_dir().join("davidson-hate-offensive/labeled_data.csv"),
            Task::Offensive,
        )
        .unwrap();
        assert_eq!(off.iter().filter(|r| r.label == 1).count(), 1_430 + 19_190);
    }

    #[test]
    fn real_ethos_with_multilabel_join() {
        let dir = data_dir().join("ethos");
        let records = import_ethos(
            dir.join("Ethos_Dataset_Binary.csv"),
            Some(&dir.join("Ethos_Dataset_Multi_Label.csv")),
        )
        .unwrap();
        assert_eq!(records.len(), 998);
        let hate: Vec<_> = records.iter().filter(|r| r.label == 1).collect();
        assert_eq!(hate.len(), 433);
        // Every hateful comment is joined with its multi-label row.
        assert!(hate.iter().all(|r| r
            .slices
            .iter()
            .any(|s| s == "directed" || s == "generalized")));
        let s = stats(&records);
        assert_eq!(s.by_category["violence"].count, 142);
        assert_eq!(s.by_category["gender"].count, 86);
        assert_eq!(s.by_slice["directed"].count, 135);
    }

    #[test]
    fn real_hatexplain() {
        let records = import_hatexplain(data_dir().join("hatexplain-partial"), Task::Hate).unwrap();
        assert_eq!(records.len(), 3_846);
        let s = stats(&records);
        assert_eq!(s.by_split["val"].count, 1_922);
        assert_eq!(s.by_split["test"].count, 1_924);
        assert_eq!(s.overall.positives, 593 + 594);
        let with_rationale = records.iter().filter(|r| r.rationale.is_some()).count();
        assert!(
            with_rationale > 2_000 && with_rationale <= 2_283,
            "{with_rationale}"
        );
        assert!(s.by_slice.contains_key("target:African"));
        let sources: usize = ["source:gab", "source:twitter", "source:other"]
            .iter()
            .map(|k| s.by_slice[*k].count)
            .sum();
        assert_eq!(sources, 3_846);
        let toxic =
            import_hatexplain(data_dir().join("hatexplain-partial"), Task::Offensive).unwrap();
        assert_eq!(
            toxic.iter().filter(|r| r.label == 1).count(),
            593 + 548 + 594 + 548
        );
    }

    #[test]
    fn real_prompt_harm() {
        let records = import_prompt_harm(data_dir().join("prompt-harm")).unwrap();
        assert_eq!(records.len(), 6_554);
        let s = stats(&records);
        assert_eq!(s.by_slice["source:guardreasoner"].positives, 2_500);
        assert_eq!(s.by_slice["source:wildguard"].positives, 609);
        assert_eq!(s.by_split["test"].count, 1_554);
        assert_eq!(s.by_category["cyberattack"].count, 48);
        assert_eq!(s.by_slice["origin:WildGuardTrainR"].count, 3_502);
    }
}
