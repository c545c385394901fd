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

mod inputs;
mod results;

pub use inputs::*;
pub use results::*;

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

pub(crate) const CSV_HEADER: &str = "id,label,score,category";

pub(crate) fn is_csv(path: &Path) -> bool {
    OutFormat::of(path) == OutFormat::Csv
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
