//! Reading the rows to classify (JSONL, CSV, Parquet streamed) and the rejects file.

use super::*;

/// One row to classify.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRow {
    /// 1-based line where the row starts.
    pub line: usize,
    pub id: String,
    pub text: String,
}

/// A row that cannot be classified.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub line: usize,
    pub error: String,
    /// The row as it was in the file.
    pub raw: String,
}

pub(crate) fn check_id(id: &str, id_col: &str) -> Option<String> {
    if id.trim().is_empty() {
        Some(format!("`{id_col}` is empty"))
    } else if id.contains('\n') || id.contains('\r') {
        Some(format!("`{id_col}` contains a line break"))
    } else {
        None
    }
}

/// Why a row with this id and text cannot be classified: a bad id or an empty text.
fn row_error(id: &str, text: &str, id_col: &str, text_col: &str) -> Option<String> {
    check_id(id, id_col).or_else(|| {
        text.trim()
            .is_empty()
            .then(|| format!("`{text_col}` is empty"))
    })
}

/// Keep a row read from the file, or reject it for a bad id or an empty text.
fn push_row(
    rows: &mut Vec<InputRow>,
    rejects: &mut Vec<Reject>,
    row: InputRow,
    raw: String,
    id_col: &str,
    text_col: &str,
) {
    match row_error(&row.id, &row.text, id_col, text_col) {
        Some(error) => rejects.push(Reject {
            line: row.line,
            error,
            raw,
        }),
        None => rows.push(row),
    }
}

/// A JSONL row's field `col`: a string (with `integer_ok`, an integer is taken as its digits).
fn json_field(
    obj: &serde_json::Map<String, Value>,
    col: &str,
    integer_ok: bool,
) -> Result<String, String> {
    match obj.get(col) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) if integer_ok && (n.is_i64() || n.is_u64()) => Ok(n.to_string()),
        Some(_) if integer_ok => Err(format!("`{col}` must be a string or an integer")),
        Some(_) => Err(format!("`{col}` must be a string")),
        None => Err(format!("missing `{col}`")),
    }
}

/// Read the rows of a JSONL or CSV file; bad rows come back as rejects. Only a file that cannot
/// be read at all (or a CSV without `id` / `text` columns) is an error.
pub fn read_inputs(
    path: &Path,
    id_col: &str,
    text_col: &str,
) -> Result<(Vec<InputRow>, Vec<Reject>)> {
    let mut rows = vec![];
    let mut rejects = vec![];
    if is_csv(path) {
        let mut rd = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let headers = rd
            .headers()
            .with_context(|| format!("{}:1: cannot read the CSV header", path.display()))?
            .clone();
        let col = |name: &str| {
            headers.iter().position(|h| {
                h.trim()
                    .trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case(name)
            })
        };
        let (Some(id_i), Some(text_i)) = (col(id_col), col(text_col)) else {
            bail!(
                "{}:1: the CSV header needs `{id_col}` and `{text_col}` columns (found: {})",
                path.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            );
        };
        let width = headers.len();
        let mut rec = csv::StringRecord::new();
        loop {
            let line = rd.position().line() as usize;
            match rd.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {
                    let line = rec.position().map_or(line, |p| p.line() as usize);
                    let raw = {
                        let mut w = csv::Writer::from_writer(vec![]);
                        let _ = w.write_record(&rec);
                        String::from_utf8_lossy(&w.into_inner().unwrap_or_default())
                            .trim_end()
                            .to_string()
                    };
                    if rec.len() != width {
                        rejects.push(Reject {
                            line,
                            error: format!("expected {width} fields, found {}", rec.len()),
                            raw,
                        });
                        continue;
                    }
                    let (id, text) = (rec[id_i].to_string(), rec[text_i].to_string());
                    let row = InputRow { line, id, text };
                    push_row(&mut rows, &mut rejects, row, raw, id_col, text_col);
                }
                Err(e) => {
                    let line = e.position().map_or(line, |p| p.line() as usize);
                    rejects.push(Reject {
                        line,
                        error: format!("invalid CSV row: {e}"),
                        raw: String::new(),
                    });
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        break;
                    }
                }
            }
        }
    } else {
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        for (i, raw_line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i + 1;
            let raw = String::from_utf8_lossy(raw_line)
                .trim_end_matches('\r')
                .to_string();
            if raw.trim().is_empty() {
                continue;
            }
            let Ok(text_line) = std::str::from_utf8(raw_line) else {
                rejects.push(Reject {
                    line,
                    error: "the line is not valid UTF-8".into(),
                    raw,
                });
                continue;
            };
            let text_line = if line == 1 {
                text_line.trim_start_matches('\u{feff}')
            } else {
                text_line
            };
            let v: Value = match serde_json::from_str(text_line.trim()) {
                Ok(v) => v,
                Err(e) => {
                    rejects.push(Reject {
                        line,
                        error: format!("invalid JSON: {e}"),
                        raw,
                    });
                    continue;
                }
            };
            let Some(obj) = v.as_object() else {
                rejects.push(Reject {
                    line,
                    error: "expected a JSON object".into(),
                    raw,
                });
                continue;
            };
            let fields = json_field(obj, id_col, true)
                .and_then(|id| Ok((id, json_field(obj, text_col, false)?)));
            match fields {
                Ok((id, text)) => {
                    let row = InputRow { line, id, text };
                    push_row(&mut rows, &mut rejects, row, raw, id_col, text_col);
                }
                Err(error) => rejects.push(Reject { line, error, raw }),
            }
        }
    }
    // Duplicate ids: the first occurrence wins.
    let mut first: HashMap<String, usize> = HashMap::new();
    let mut kept = Vec::with_capacity(rows.len());
    for r in rows {
        match first.get(&r.id) {
            Some(&l) => rejects.push(Reject {
                line: r.line,
                error: format!("duplicate id {:?} (first on line {l})", r.id),
                raw: json!({"id": r.id, "text": r.text}).to_string(),
            }),
            None => {
                first.insert(r.id.clone(), r.line);
                kept.push(r);
            }
        }
    }
    rejects.sort_by_key(|r| r.line);
    Ok((kept, rejects))
}

/// Write the rejects file (replacing an earlier one).
pub fn write_rejects(path: &Path, input: &Path, rejects: &[Reject]) -> Result<()> {
    let mut out = String::new();
    let at = if parquet_io::is_parquet(input) {
        "row"
    } else {
        "line"
    };
    for r in rejects {
        out.push_str(
            &json!({"file": input.display().to_string(), at: r.line, "error": r.error, "raw": r.raw})
                .to_string(),
        );
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("{}: cannot write", path.display()))
}

/// What the first pass over a Parquet input found.
pub(crate) struct ParquetScan {
    pub(crate) rejects: Vec<Reject>,
    /// Good rows (valid, first of their id).
    pub(crate) total_rows: usize,
    /// 1-based rows the second pass skips: rejected, or already in the output.
    pub(crate) skip: HashSet<usize>,
    pub(crate) already_done: usize,
}

/// First pass over a Parquet input: check every row's id and text, keeping only the ids.
pub(crate) fn scan_parquet(
    path: &Path,
    id_col: &str,
    text_col: &str,
    done: &HashSet<String>,
) -> Result<ParquetScan> {
    let mut scan = ParquetScan {
        rejects: vec![],
        total_rows: 0,
        skip: HashSet::new(),
        already_done: 0,
    };
    let mut first: HashMap<String, usize> = HashMap::new();
    parquet_io::read_text_columns(path, &[id_col, text_col], |start, cols| {
        for (i, (id, text)) in cols[0].iter().zip(&cols[1]).enumerate() {
            let row = start + i + 1;
            let raw = || json!({"id": id, "text": text}).to_string();
            let error = match (id, text) {
                (None, _) => Some(format!("`{id_col}` is null")),
                (_, None) => Some(format!("`{text_col}` is null")),
                (Some(id), Some(text)) => row_error(id, text, id_col, text_col).or_else(|| {
                    first
                        .get(id)
                        .map(|l| format!("duplicate id {id:?} (first on row {l})"))
                }),
            };
            if let Some(error) = error {
                scan.rejects.push(Reject {
                    line: row,
                    error,
                    raw: raw(),
                });
                scan.skip.insert(row);
                continue;
            }
            let id = id.clone().expect("checked");
            scan.total_rows += 1;
            if done.contains(&id) {
                scan.already_done += 1;
                scan.skip.insert(row);
            }
            first.insert(id, row);
        }
        Ok(())
    })?;
    Ok(scan)
}
