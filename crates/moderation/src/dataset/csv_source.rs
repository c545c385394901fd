//! Any CSV with a column mapping ([`CsvMapping`]) into records.

use super::*;

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

pub(super) fn resolve_column(
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

pub(super) fn csv_err(path: &Path, e: csv::Error) -> DataError {
    let line = e.position().map_or(0, |p| p.line() as usize);
    match e.into_kind() {
        csv::ErrorKind::Io(source) => io_err(path)(source),
        kind => DataError::Row(row_err(path, line, None, format!("{kind:?}"))),
    }
}
