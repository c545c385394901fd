//! `modrl classify`: classify a JSONL, CSV or Parquet file under a policy, resumably.
//!
//! * Input: JSONL (one object per line with `id` — a string or an integer — and `text`; other
//!   fields, `label` included, are ignored), CSV with a header naming `id` and `text` columns, or
//!   Parquet (`.parquet`) with `id` (string or integer) and `text` (string) columns. The column
//!   names are settings (`--id-column`, `--text-column`). JSONL and CSV inputs are read into
//!   memory; Parquet is streamed a batch at a time (one pass for the ids, one for the texts), so
//!   memory holds the ids, never all the texts. In Parquet, "line" means the 1-based row.
//!   Bad rows (invalid JSON, a missing or empty `id` / `text`, an id seen before, a line break in
//!   an id, a ragged CSV row, too long for the model) are not fatal: they are reported with their
//!   line numbers and written to a rejects file (`{"line", "error", "raw"}` per line, rewritten on
//!   every run).
//! * Output (format by extension: `.csv`, `.parquet`, else JSONL): `id`, `label` (predicted 0/1
//!   at the threshold), `score` (P(violating)), `category` (the predicted category, `none` when
//!   not violating). Each result is written as one line and flushed as soon as its batch finishes
//!   (and the file synced after each batch). A re-run skips the ids already in the output; a last
//!   line without its newline (a write cut short by a crash) is dropped and redone.
//!   Parquet cannot be appended to line by line: results go to the journal `OUT.partial.jsonl`
//!   (as above), and when every row is done the journal becomes `OUT` (written beside it, then
//!   renamed) and is removed. A re-run with an `OUT` already there first copies its rows into a
//!   new journal, so new input ids are added to it; while a journal exists it holds every row.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use modrl_model::{Model, Tokenizer};
use modrl_moderation::journal::{LineJournal, Reopened};
use modrl_moderation::parquet_io;
use modrl_moderation::Policy;
use serde_json::{json, Value};

use modrl_moderation::score::{ClassifierOptions, TextClassifier};

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

/// Output file format, from the extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFormat {
    Jsonl,
    Csv,
    Parquet,
}

impl OutFormat {
    pub fn of(path: &Path) -> OutFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => OutFormat::Csv,
            Some(e) if e.eq_ignore_ascii_case("parquet") => OutFormat::Parquet,
            _ => OutFormat::Jsonl,
        }
    }
}

/// The journal of a Parquet output (see the module docs).
pub fn journal_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".partial.jsonl");
    PathBuf::from(s)
}

const CSV_HEADER: &str = "id,label,score,category";

fn is_csv(path: &Path) -> bool {
    OutFormat::of(path) == OutFormat::Csv
}

fn check_id(id: &str, id_col: &str) -> Option<String> {
    if id.trim().is_empty() {
        Some(format!("`{id_col}` is empty"))
    } else if id.contains('\n') || id.contains('\r') {
        Some(format!("`{id_col}` contains a line break"))
    } else {
        None
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
                    let id = rec[id_i].to_string();
                    let text = rec[text_i].to_string();
                    if let Some(e) = check_id(&id, id_col) {
                        rejects.push(Reject {
                            line,
                            error: e,
                            raw,
                        });
                    } else if text.trim().is_empty() {
                        rejects.push(Reject {
                            line,
                            error: format!("`{text_col}` is empty"),
                            raw,
                        });
                    } else {
                        rows.push(InputRow { line, id, text });
                    }
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
            let id = match obj.get(id_col) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
                Some(_) => {
                    rejects.push(Reject {
                        line,
                        error: format!("`{id_col}` must be a string or an integer"),
                        raw,
                    });
                    continue;
                }
                None => {
                    rejects.push(Reject {
                        line,
                        error: format!("missing `{id_col}`"),
                        raw,
                    });
                    continue;
                }
            };
            let text = match obj.get(text_col) {
                Some(Value::String(s)) => s.clone(),
                Some(_) => {
                    rejects.push(Reject {
                        line,
                        error: format!("`{text_col}` must be a string"),
                        raw,
                    });
                    continue;
                }
                None => {
                    rejects.push(Reject {
                        line,
                        error: format!("missing `{text_col}`"),
                        raw,
                    });
                    continue;
                }
            };
            if let Some(e) = check_id(&id, id_col) {
                rejects.push(Reject {
                    line,
                    error: e,
                    raw,
                });
            } else if text.trim().is_empty() {
                rejects.push(Reject {
                    line,
                    error: format!("`{text_col}` is empty"),
                    raw,
                });
            } else {
                rows.push(InputRow { line, id, text });
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
struct ParquetScan {
    rejects: Vec<Reject>,
    /// Good rows (valid, first of their id).
    total_rows: usize,
    /// 1-based rows the second pass skips: rejected, or already in the output.
    skip: HashSet<usize>,
    already_done: usize,
}

/// First pass over a Parquet input: check every row's id and text, keeping only the ids.
fn scan_parquet(
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
                (Some(id), Some(text)) => check_id(id, id_col)
                    .or_else(|| {
                        text.trim()
                            .is_empty()
                            .then(|| format!("`{text_col}` is empty"))
                    })
                    .or_else(|| {
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

/// One classification result.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub id: String,
    pub label: u8,
    pub score: f64,
    pub category: String,
}

/// Appends results, one flushed line each.
pub struct ResultsWriter {
    /// The file written to (for a Parquet output, its journal).
    journal: LineJournal,
    format: OutFormat,
    /// The Parquet file [`Self::finish`] writes from the journal.
    parquet: Option<PathBuf>,
}

const RESULT_COLUMNS: [&str; 4] = ["id", "label", "score", "category"];

fn result_json(r: &ResultRow) -> Value {
    json!({"id": r.id, "label": r.label, "score": r.score, "category": r.category})
}

impl ResultsWriter {
    /// Open (creating if needed) a results file; returns the writer and the ids already in it. A
    /// final line without its newline is cut off (it was being written when a run stopped).
    /// Any other unreadable line is an error naming the file and line. A Parquet output is
    /// written through its journal (see the module docs).
    pub fn open(path: &Path) -> Result<(ResultsWriter, HashSet<String>)> {
        if OutFormat::of(path) != OutFormat::Parquet {
            return Self::open_lines(path);
        }
        let journal = journal_path(path);
        if !journal.exists() && path.exists() {
            // Start the journal from the finished output: the journal then holds every row.
            let tmp = journal.with_extension("tmp");
            let mut out = String::new();
            parquet_io::read_json_rows(path, &["id"], |row, obj| {
                let r = result_from_json(&Value::Object(obj))
                    .with_context(|| format!("{}: row {row}", path.display()))?;
                out.push_str(&result_json(&r).to_string());
                out.push('\n');
                Ok(())
            })?;
            std::fs::write(&tmp, out)
                .and_then(|_| std::fs::rename(&tmp, &journal))
                .with_context(|| format!("{}: cannot write", journal.display()))?;
        }
        let (mut w, done) = Self::open_lines(&journal)?;
        w.parquet = Some(path.to_path_buf());
        Ok((w, done))
    }

    /// Write the Parquet output from the journal and remove the journal (nothing to do for
    /// JSONL and CSV outputs).
    pub fn finish(self) -> Result<()> {
        let Some(out) = &self.parquet else {
            return Ok(());
        };
        self.sync()?;
        let journal = self.journal.path();
        parquet_io::jsonl_to_parquet(journal, out, &RESULT_COLUMNS)?;
        std::fs::remove_file(journal)
            .with_context(|| format!("{}: cannot remove", journal.display()))
    }

    fn open_lines(path: &Path) -> Result<(ResultsWriter, HashSet<String>)> {
        let format = OutFormat::of(path);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        // A final line without its newline was being written when a run stopped: never kept (a
        // cut CSV line can still parse, with a cut score).
        let Reopened {
            journal,
            bytes,
            dropped,
        } = LineJournal::open::<anyhow::Error>(path, |_| Ok(false))?;
        if let Some(cut) = dropped {
            tracing::warn!(
                "{}: dropping an unfinished last line {:?} (it is classified again)",
                path.display(),
                String::from_utf8_lossy(&cut)
            );
        }
        let text = std::str::from_utf8(&bytes)
            .with_context(|| format!("{}: not UTF-8", path.display()))?;
        let mut done: HashMap<String, usize> = HashMap::new();
        let mut add = |id: String, line: usize| -> Result<()> {
            if let Some(first) = done.insert(id.clone(), line) {
                bail!(
                    "{}:{line}: duplicate id {id:?} (first on line {first})",
                    path.display()
                );
            }
            Ok(())
        };
        let mut needs_header = format == OutFormat::Csv;
        match format {
            OutFormat::Jsonl => {
                for (i, l) in text.lines().enumerate() {
                    if l.trim().is_empty() {
                        continue;
                    }
                    let v: Value = serde_json::from_str(l).with_context(|| {
                        format!("{}:{}: not a results line", path.display(), i + 1)
                    })?;
                    let id = v.get("id").and_then(Value::as_str).with_context(|| {
                        format!("{}:{}: result without a string `id`", path.display(), i + 1)
                    })?;
                    add(id.to_string(), i + 1)?;
                }
            }
            OutFormat::Csv if !text.trim().is_empty() => {
                let first = text.lines().next().unwrap_or("");
                if first.trim_end() != CSV_HEADER {
                    bail!(
                        "{}:1: expected the header {CSV_HEADER:?}, found {first:?}",
                        path.display()
                    );
                }
                needs_header = false;
                let mut rd = csv::ReaderBuilder::new().from_reader(text.as_bytes());
                for rec in rd.records() {
                    let rec = rec.with_context(|| format!("{}: invalid CSV", path.display()))?;
                    let line = rec.position().map_or(0, |p| p.line() as usize);
                    let id = rec
                        .get(0)
                        .with_context(|| format!("{}:{line}: empty row", path.display()))?;
                    add(id.to_string(), line)?;
                }
            }
            OutFormat::Csv | OutFormat::Parquet => {}
        }
        let mut w = ResultsWriter {
            journal,
            format,
            parquet: None,
        };
        if needs_header {
            // An empty (or whitespace-only) file: start it over with the header.
            w.journal.clear()?;
            w.write_line(CSV_HEADER)?;
        }
        Ok((w, done.into_keys().collect()))
    }

    fn write_line(&mut self, line: &str) -> Result<()> {
        Ok(self.journal.append(line.as_bytes())?)
    }

    /// Append one result as one line and flush it.
    pub fn append(&mut self, r: &ResultRow) -> Result<()> {
        let line = match self.format {
            OutFormat::Jsonl | OutFormat::Parquet => result_json(r).to_string(),
            OutFormat::Csv => {
                let mut w = csv::WriterBuilder::new()
                    .terminator(csv::Terminator::Any(b'\n'))
                    .from_writer(vec![]);
                w.write_record([
                    r.id.as_str(),
                    &r.label.to_string(),
                    &r.score.to_string(),
                    r.category.as_str(),
                ])?;
                String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?
                    .trim_end_matches('\n')
                    .to_string()
            }
        };
        self.write_line(&line)
    }

    /// Force what was written to disk.
    pub fn sync(&self) -> Result<()> {
        Ok(self.journal.sync()?)
    }
}

fn result_from_json(v: &Value) -> Result<ResultRow> {
    Ok(ResultRow {
        id: v["id"].as_str().context("no string `id`")?.to_string(),
        label: v["label"].as_u64().context("no integer `label`")? as u8,
        score: v["score"].as_f64().context("no number `score`")?,
        category: v["category"].as_str().unwrap_or("none").to_string(),
    })
}

/// Read every result of a results file (JSONL, CSV or Parquet), for checks and tests.
pub fn read_results(path: &Path) -> Result<Vec<ResultRow>> {
    let mut out = vec![];
    if OutFormat::of(path) == OutFormat::Parquet {
        parquet_io::read_json_rows(path, &["id"], |row, obj| {
            out.push(
                result_from_json(&Value::Object(obj))
                    .with_context(|| format!("{}: row {row}", path.display()))?,
            );
            Ok(())
        })?;
    } else if is_csv(path) {
        let mut rd = csv::Reader::from_path(path)?;
        for rec in rd.records() {
            let rec = rec?;
            out.push(ResultRow {
                id: rec[0].to_string(),
                label: rec[1].parse()?,
                score: rec[2].parse()?,
                category: rec[3].to_string(),
            });
        }
    } else {
        for (i, l) in std::fs::read_to_string(path)?.lines().enumerate() {
            if l.trim().is_empty() {
                continue;
            }
            let v: Value =
                serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1))?;
            out.push(ResultRow {
                id: v["id"].as_str().unwrap_or_default().to_string(),
                label: v["label"].as_u64().unwrap_or(9) as u8,
                score: v["score"].as_f64().unwrap_or(f64::NAN),
                category: v["category"].as_str().unwrap_or_default().to_string(),
            });
        }
    }
    Ok(out)
}

/// Settings of a classify run.
#[derive(Debug, Clone)]
pub struct ClassifyOptions {
    pub input: PathBuf,
    pub out: PathBuf,
    /// Default: `OUT.rejects.jsonl`.
    pub rejects: Option<PathBuf>,
    /// Input column (JSONL key, CSV header, Parquet column) of the ids.
    pub id_column: String,
    /// Input column of the texts.
    pub text_column: String,
    /// Scoring mode, threshold, batch size, ...
    pub classifier: ClassifierOptions,
}

impl ClassifyOptions {
    pub fn rejects_path(&self) -> PathBuf {
        self.rejects.clone().unwrap_or_else(|| {
            let mut s = self.out.clone().into_os_string();
            s.push(".rejects.jsonl");
            PathBuf::from(s)
        })
    }
}

/// The rows still to classify.
enum Todo {
    /// JSONL and CSV inputs: read into memory, in file order.
    Rows(Vec<InputRow>),
    /// Parquet inputs: streamed again from the file, skipping these 1-based rows.
    Parquet { skip: HashSet<usize> },
}

/// A run after reading the input and the existing output, before any model work.
pub struct Prepared {
    pub opts: ClassifyOptions,
    pub writer: ResultsWriter,
    todo: Todo,
    /// Rows still to classify.
    pub todo_count: usize,
    pub rejects: Vec<Reject>,
    pub already_done: usize,
    pub total_rows: usize,
}

/// Read the input (a first pass only, for Parquet), write the rejects file and open the output.
pub fn prepare(opts: ClassifyOptions) -> Result<Prepared> {
    if !(0.0..=1.0).contains(&opts.classifier.threshold) {
        bail!("--threshold must be in [0, 1]");
    }
    let (writer, done) = ResultsWriter::open(&opts.out)?;
    let (todo, todo_count, rejects, already_done, total_rows) =
        if parquet_io::is_parquet(&opts.input) {
            let scan = scan_parquet(&opts.input, &opts.id_column, &opts.text_column, &done)?;
            let todo_count = scan.total_rows - scan.already_done;
            (
                Todo::Parquet { skip: scan.skip },
                todo_count,
                scan.rejects,
                scan.already_done,
                scan.total_rows,
            )
        } else {
            let (rows, rejects) = read_inputs(&opts.input, &opts.id_column, &opts.text_column)?;
            let total_rows = rows.len();
            let todo: Vec<InputRow> = rows.into_iter().filter(|r| !done.contains(&r.id)).collect();
            let n = todo.len();
            (Todo::Rows(todo), n, rejects, total_rows - n, total_rows)
        };
    write_rejects(&opts.rejects_path(), &opts.input, &rejects)?;
    Ok(Prepared {
        opts,
        writer,
        todo,
        todo_count,
        rejects,
        already_done,
        total_rows,
    })
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub classified: usize,
    pub already_done: usize,
    /// Rows rejected (reading and too-long rows together).
    pub rejected: usize,
    pub flagged: usize,
}

/// Classify one batch of rows and append the results; returns how many were flagged.
fn classify_batch(
    clf: &TextClassifier,
    model: &Model,
    tok: &Tokenizer,
    rows: &[InputRow],
    writer: &mut ResultsWriter,
) -> Result<usize> {
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    // Every row was checked with `too_long` when it was taken.
    let res = clf.classify_fitting(model, tok, &texts)?;
    let flagged = res.iter().filter(|c| c.label == 1).count();
    for (r, c) in rows.iter().zip(res) {
        writer.append(&ResultRow {
            id: r.id.clone(),
            label: c.label,
            score: c.score,
            category: c.category,
        })?;
    }
    writer.sync()?;
    Ok(flagged)
}

impl Prepared {
    /// Write the Parquet output when nothing is left to classify (see [`ResultsWriter::finish`]).
    pub fn finish(self) -> Result<()> {
        self.writer.finish()
    }

    /// Classify the remaining rows, appending each batch's results as it finishes; `progress` is
    /// called with the number of rows finished (or rejected as too long) after each batch.
    pub fn run(
        self,
        model: &Model,
        tok: &Tokenizer,
        policy: Policy,
        mut progress: impl FnMut(usize),
    ) -> Result<Summary> {
        let Prepared {
            opts: o,
            mut writer,
            todo,
            mut rejects,
            already_done,
            ..
        } = self;
        let clf = TextClassifier::new(model, tok, policy, o.classifier.clone())?;
        let per_batch = clf.items_per_batch();
        let mut pending: Vec<InputRow> = Vec::with_capacity(per_batch);
        let mut too_long: Vec<Reject> = vec![];
        let (mut classified, mut flagged) = (0, 0);
        {
            // Rows that do not fit the model's context are rejected, not truncated.
            let mut take = |r: InputRow| -> Result<()> {
                if let Some(why) = clf.too_long(model, tok, &r.text)? {
                    too_long.push(Reject {
                        line: r.line,
                        error: why,
                        raw: json!({"id": r.id, "text": r.text}).to_string(),
                    });
                    progress(1);
                    return Ok(());
                }
                pending.push(r);
                if pending.len() == per_batch {
                    flagged += classify_batch(&clf, model, tok, &pending, &mut writer)?;
                    classified += pending.len();
                    progress(pending.len());
                    pending.clear();
                }
                Ok(())
            };
            match todo {
                Todo::Rows(rows) => rows.into_iter().try_for_each(&mut take)?,
                Todo::Parquet { skip } => parquet_io::read_text_columns(
                    &o.input,
                    &[&o.id_column, &o.text_column],
                    |start, cols| {
                        for (i, (id, text)) in cols[0].iter().zip(&cols[1]).enumerate() {
                            let line = start + i + 1;
                            if skip.contains(&line) {
                                continue;
                            }
                            let (Some(id), Some(text)) = (id, text) else {
                                bail!(
                                    "{}: row {line} changed since the first pass",
                                    o.input.display()
                                );
                            };
                            take(InputRow {
                                line,
                                id: id.clone(),
                                text: text.clone(),
                            })?;
                        }
                        Ok(())
                    },
                )?,
            }
        }
        if !pending.is_empty() {
            flagged += classify_batch(&clf, model, tok, &pending, &mut writer)?;
            classified += pending.len();
            progress(pending.len());
        }
        if !too_long.is_empty() {
            rejects.extend(too_long);
            rejects.sort_by_key(|r| r.line);
            write_rejects(&o.rejects_path(), &o.input, &rejects)?;
        }
        writer.finish()?;
        Ok(Summary {
            classified,
            already_done,
            rejected: rejects.len(),
            flagged,
        })
    }
}

#[cfg(test)]
mod tests;
