//! Canonical JSONL (and Parquet) in and out: read with row errors, write.

use super::*;

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
pub(super) struct Collector<'a> {
    options: &'a ReadOptions,
    pub(super) outcome: ReadOutcome,
    seen: HashMap<String, usize>,
    /// Rows of a Parquet file, not lines.
    parquet: bool,
}

impl<'a> Collector<'a> {
    pub(super) fn new(options: &'a ReadOptions) -> Self {
        Collector {
            options,
            outcome: ReadOutcome::default(),
            seen: HashMap::new(),
            parquet: false,
        }
    }

    pub(super) fn push(
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
    let optional_string = |name: &'static str| match field(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(err(
            Some(name),
            format!("expected a string, got {}", json_repr(v)),
        )),
    };
    let rationale = optional_string("rationale")?;
    let target = optional_string("target")?;
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
        target,
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
