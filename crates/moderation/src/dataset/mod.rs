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

mod csv_source;
mod import;
mod jsonl;
mod pyliteral;
mod splits;
mod stats;
#[cfg(test)]
mod tests;

pub use csv_source::{read_csv, Column, CsvMapping};
pub use import::{
    import_davidson, import_ethos, import_hatexplain, import_hatexplain_csv, import_prompt_harm,
    import_prompt_harm_file, Task,
};
pub use jsonl::{read_jsonl, read_parquet, write_jsonl, write_jsonl_to, ReadOptions, ReadOutcome};
pub use splits::{assign_splits, in_split, SplitConfig};
pub use stats::{stats, GroupStats, Stats};
// Shared between the readers and the importers.
use csv_source::{csv_err, resolve_column};
use jsonl::Collector;
use pyliteral::{parse_py, Py};

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
    /// A complete answer to teach for this record (reasoning and verdict line), e.g. the model's
    /// own reasoning kept by rejection sampling (`modrl data self-reason`). SFT with reasoning
    /// trains on it verbatim instead of a templated target; verdict-only SFT ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
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
            target: None,
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
