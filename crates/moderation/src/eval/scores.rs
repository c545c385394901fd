//! The `scores.jsonl` file: [`ScoredRow`], reading it ([`read_scores`]) and appending to it
//! ([`ScoresWriter`], resumable).

use super::*;
use crate::journal::{JournalError, LineJournal, Reopened};

pub(crate) fn yes() -> bool {
    true
}

/// One scored item: a line of `scores.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredRow {
    /// The item's id (unique within a scores file).
    pub id: String,
    /// Gold label: 1 = violating, 0 = non-violating.
    pub label: u8,
    /// P(violating) in `[0, 1]`.
    pub score: f64,
    /// The item's split (`train`, `val`, `test`), when known.
    #[serde(default)]
    pub split: Option<String>,
    /// Gold categories of the item.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Predicted label, when the scoring mode produced one.
    #[serde(default)]
    pub pred_label: Option<u8>,
    /// Predicted category, when the model named one.
    #[serde(default)]
    pub pred_category: Option<String>,
    /// Analysis slices of the item (e.g. `target:Women`).
    #[serde(default)]
    pub slices: Vec<String>,
    /// Whether the model output parsed under the verdict contract (true when absent).
    #[serde(default = "yes")]
    pub format_ok: bool,
    /// The [`crate::ParseFailure::kind`] when the output did not parse.
    #[serde(default)]
    pub failure: Option<String>,
    /// Words of reasoning in the model output, when generated.
    #[serde(default)]
    pub reasoning_words: Option<usize>,
    /// Monte-Carlo samples behind the score, when sampled.
    #[serde(default)]
    pub n_samples: Option<usize>,
    /// The model's answer (the first sample's reasoning and verdict), when generated and asked
    /// for (`modrl eval --save-outputs`); `modrl grade` reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

impl ScoredRow {
    /// A row with only the required fields set (`format_ok` true).
    pub fn new(id: impl Into<String>, label: u8, score: f64) -> ScoredRow {
        ScoredRow {
            id: id.into(),
            label,
            score,
            split: None,
            categories: Vec::new(),
            pred_label: None,
            pred_category: None,
            slices: Vec::new(),
            format_ok: true,
            failure: None,
            reasoning_words: None,
            n_samples: None,
            output: None,
        }
    }

    /// Whether the row can enter the metrics: label 0/1 and a finite score in `[0, 1]`.
    pub fn is_valid(&self) -> bool {
        self.label <= 1 && self.score.is_finite() && (0.0..=1.0).contains(&self.score)
    }

    fn check(&self) -> Result<(), String> {
        if self.id.trim().is_empty() {
            return Err("field \"id\": empty".into());
        }
        if self.label > 1 {
            return Err(format!(
                "field \"label\": expected 0 or 1, got {}",
                self.label
            ));
        }
        if !(self.score.is_finite() && (0.0..=1.0).contains(&self.score)) {
            return Err(format!(
                "field \"score\": expected a number in [0, 1], got {}",
                self.score
            ));
        }
        Ok(())
    }
}

/// Errors reading or writing scores and metrics files.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a scores file is invalid.
    #[error("{}:{line}: {message}", path.display())]
    Row {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A JSON file (e.g. `metrics.json`) could not be parsed.
    #[error("{}: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A row handed to [`ScoresWriter::append`] is invalid or already in the file.
    #[error("row {id:?}: {message}")]
    InvalidRow {
        /// The row's id.
        id: String,
        /// What is wrong.
        message: String,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EvalError + '_ {
    move |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn parse_row(path: &Path, line_no: usize, line: &[u8]) -> Result<ScoredRow, EvalError> {
    let err = |message: String| EvalError::Row {
        path: path.to_path_buf(),
        line: line_no,
        message,
    };
    let text = std::str::from_utf8(line).map_err(|_| err("line is not valid UTF-8".into()))?;
    let row: ScoredRow = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| err(format!("invalid scored row: {e}")))?;
    row.check().map_err(err)?;
    Ok(row)
}

/// A scores file split into its newline-terminated lines and a possibly cut-short tail.
pub(crate) struct ParsedScores {
    /// Rows of the newline-terminated lines.
    pub(crate) rows: Vec<ScoredRow>,
    /// The parse of a non-blank final segment without a newline (`None` if there is none).
    pub(crate) last: Option<Result<ScoredRow, EvalError>>,
}

/// Parses a scores file's bytes; any bad newline-terminated line is an error.
pub(crate) fn parse_scores_bytes(path: &Path, bytes: &[u8]) -> Result<ParsedScores, EvalError> {
    let complete_len = crate::journal::complete_len(bytes);
    let mut rows = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut line_no = 0;
    for line in bytes[..complete_len].split(|&b| b == b'\n') {
        line_no += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let row = parse_row(path, line_no, line)?;
        if let Some(first) = seen.insert(row.id.clone(), line_no) {
            return Err(EvalError::Row {
                path: path.to_path_buf(),
                line: line_no,
                message: format!("duplicate id {:?} (first seen on line {first})", row.id),
            });
        }
        rows.push(row);
    }
    let tail = &bytes[complete_len..];
    let last = (!tail.iter().all(u8::is_ascii_whitespace)).then(|| {
        // `split` yields one empty piece after the final newline, so the tail's line number is
        // the count of newlines plus one.
        let tail_line = bytes[..complete_len]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        parse_row(path, tail_line, tail).and_then(|row| match seen.get(&row.id) {
            Some(first) => Err(EvalError::Row {
                path: path.to_path_buf(),
                line: tail_line,
                message: format!("duplicate id {:?} (first seen on line {first})", row.id),
            }),
            None => Ok(row),
        })
    });
    Ok(ParsedScores { rows, last })
}

/// Reads a scores file. Blank lines are ignored; every error names the file and 1-based line;
/// duplicate ids are an error.
pub fn read_scores(path: impl AsRef<Path>) -> Result<Vec<ScoredRow>, EvalError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let ParsedScores { mut rows, last, .. } = parse_scores_bytes(path, &bytes)?;
    if let Some(last) = last {
        rows.push(last?);
    }
    Ok(rows)
}

/// The rows whose `split` names `split` (`val` also matches `validation`/`dev`).
pub fn filter_split(rows: &[ScoredRow], split: Split) -> Vec<ScoredRow> {
    rows.iter()
        .filter(|r| r.split.as_deref().and_then(Split::parse) == Some(split))
        .cloned()
        .collect()
}

/// Appends scored rows to a scores file, one flushed line each (a [`LineJournal`]).
#[derive(Debug)]
pub struct ScoresWriter {
    pub(crate) journal: LineJournal,
    pub(crate) done: HashSet<String>,
}

impl From<JournalError> for EvalError {
    fn from(e: JournalError) -> EvalError {
        EvalError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl ScoresWriter {
    /// Opens (creating if needed) a scores file for appending. Returns the writer, the ids
    /// already in the file and its rows. A last line without a newline that does not parse (a
    /// write cut short by a crash) is dropped and the file truncated to the last complete line; a
    /// complete last line without its newline gets one. Any other bad line is an error, and the
    /// file is left as it was.
    pub fn open_append(
        path: impl AsRef<Path>,
    ) -> Result<(ScoresWriter, HashSet<String>, Vec<ScoredRow>), EvalError> {
        let path = path.as_ref();
        let mut parsed = None;
        let Reopened { journal, .. } = LineJournal::open(path, |bytes| {
            let p = parse_scores_bytes(path, bytes)?;
            let keep = matches!(p.last, Some(Ok(_)));
            parsed = Some(p);
            Ok::<bool, EvalError>(keep)
        })?;
        let ParsedScores { mut rows, last, .. } = parsed.expect("inspected");
        if let Some(Ok(row)) = last {
            rows.push(row);
        }
        let done: HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
        let writer = ScoresWriter {
            journal,
            done: done.clone(),
        };
        Ok((writer, done, rows))
    }

    /// Appends one row as a single line and flushes it. Rejects invalid rows (label not 0/1,
    /// score not a finite number in `[0, 1]`) and ids already in the file.
    pub fn append(&mut self, row: &ScoredRow) -> Result<(), EvalError> {
        row.check().map_err(|message| EvalError::InvalidRow {
            id: row.id.clone(),
            message,
        })?;
        if self.done.contains(&row.id) {
            return Err(EvalError::InvalidRow {
                id: row.id.clone(),
                message: "already in the scores file".into(),
            });
        }
        let line = serde_json::to_vec(row).map_err(|e| EvalError::InvalidRow {
            id: row.id.clone(),
            message: e.to_string(),
        })?;
        self.journal.append(&line)?;
        self.done.insert(row.id.clone());
        Ok(())
    }

    /// Forces written rows to disk (fsync); appends already reach the OS on every row.
    pub fn sync(&self) -> Result<(), EvalError> {
        Ok(self.journal.sync()?)
    }

    /// Whether `id` is in the file.
    pub fn contains(&self, id: &str) -> bool {
        self.done.contains(id)
    }

    /// Rows in the file, including those appended through this writer.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// Whether the file has no rows.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.journal.path()
    }
}
