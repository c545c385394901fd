//! From scored items to metrics: the resumable `scores.jsonl` file and [`evaluate`], which turns
//! scored rows into the [`EvalMetrics`] written to `metrics.json`.
//!
//! # `scores.jsonl`
//!
//! One [`ScoredRow`] per line. Only `id`, `label` and `score` are required:
//!
//! ```text
//! {"id": "a1", "label": 1, "score": 0.93}
//! {"id": "a2", "label": 0, "score": 0.04, "split": "test", "format_ok": false, "failure": "bad_json"}
//! ```
//!
//! [`ScoresWriter`] appends one line per item and flushes it, so a killed run loses nothing it
//! wrote; reopening it returns the ids already done so scoring resumes where it stopped. A last
//! line cut short by a crash is dropped and the file truncated back to the last complete line.
//!
//! # Metrics
//!
//! All numbers come from [`crate::metrics`]. A metric that is undefined on the data (PR-AUC
//! without a positive, ROC-AUC with one class, anything on zero items) is `None` and serialises
//! as `null`, so `metrics.json` never contains NaN. Rows whose label is not 0/1 or whose score is
//! not a finite number in `[0, 1]` are left out of every metric and counted in `n_excluded`.

use crate::dataset::Split;
use crate::journal::{JournalError, LineJournal, Reopened};
use crate::metrics::{self, CALIBRATION_BINS};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Number of bins of the per-class score histograms in [`Curves`].
pub const HIST_BINS: usize = 20;

/// Curves are thinned for plotting: a point is kept when it moves at least this far (in either
/// coordinate) from the last kept point. First and last points are always kept.
pub const CURVE_RESOLUTION: f64 = 1e-3;

fn yes() -> bool {
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

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EvalError + '_ {
    move |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn parse_row(path: &Path, line_no: usize, line: &[u8]) -> Result<ScoredRow, EvalError> {
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
struct ParsedScores {
    /// Rows of the newline-terminated lines.
    rows: Vec<ScoredRow>,
    /// The parse of a non-blank final segment without a newline (`None` if there is none).
    last: Option<Result<ScoredRow, EvalError>>,
}

/// Parses a scores file's bytes; any bad newline-terminated line is an error.
fn parse_scores_bytes(path: &Path, bytes: &[u8]) -> Result<ParsedScores, EvalError> {
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
    journal: LineJournal,
    done: HashSet<String>,
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

/// How [`evaluate`] chooses the decision threshold on the validation rows (or, without usable
/// ones, on the test rows).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ThresholdRule {
    /// The threshold of the best F1.
    #[default]
    BestF1,
    /// The lowest threshold whose precision is at least this (the most recall at that
    /// precision): "of what we flag, at most 1 - p is wrong".
    Precision(f64),
    /// The lowest threshold whose false-positive rate is at most this: "flag at most this
    /// fraction of benign items".
    Fpr(f64),
}

impl std::str::FromStr for ThresholdRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let target = |v: &str| -> Result<f64, String> {
            match v.parse::<f64>() {
                Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
                _ => Err(format!(
                    "threshold rule {s:?}: the target must be a number in [0, 1]"
                )),
            }
        };
        match s.split_once(':') {
            None if s == "best-f1" => Ok(ThresholdRule::BestF1),
            Some(("precision", v)) => Ok(ThresholdRule::Precision(target(v)?)),
            Some(("fpr", v)) => Ok(ThresholdRule::Fpr(target(v)?)),
            _ => Err(format!(
                "unknown threshold rule {s:?} (expected best-f1, precision:P or fpr:F, e.g. precision:0.9)"
            )),
        }
    }
}

impl std::fmt::Display for ThresholdRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThresholdRule::BestF1 => f.write_str("best-f1"),
            ThresholdRule::Precision(p) => write!(f, "precision:{p}"),
            ThresholdRule::Fpr(x) => write!(f, "fpr:{x}"),
        }
    }
}

impl ThresholdRule {
    /// The threshold this rule picks on `scores` / `labels`; `None` when the rule is undefined
    /// there (no positive; for `Fpr`, no negative). When no threshold reaches a precision or FPR
    /// target, 1.0 + 1e-9: nothing is flagged.
    pub fn choose(&self, scores: &[f64], labels: &[u8]) -> Option<f64> {
        const NOTHING: f64 = 1.0 + 1e-9;
        match *self {
            ThresholdRule::BestF1 => metrics::best_f1_threshold(scores, labels)
                .ok()
                .map(|m| m.threshold),
            ThresholdRule::Precision(p) => metrics::recall_at_precision(scores, labels, p)
                .ok()
                .map(|o| o.threshold.unwrap_or(NOTHING)),
            ThresholdRule::Fpr(x) => metrics::recall_at_fpr(scores, labels, x)
                .ok()
                .map(|o| o.threshold.unwrap_or(NOTHING)),
        }
    }
}

/// Options of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// Use this threshold instead of choosing one with `rule`.
    pub threshold: Option<f64>,
    /// How to choose the threshold (default: best F1).
    pub rule: ThresholdRule,
    /// Bootstrap resamples for the intervals (0 = no intervals).
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    pub seed: u64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            threshold: None,
            rule: ThresholdRule::BestF1,
            bootstrap: 1000,
            seed: 0,
        }
    }
}

/// Where the decision threshold came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdSource {
    /// Best F1 on the validation rows.
    Val,
    /// Best F1 on the test rows themselves (optimistic; no usable validation rows).
    Test,
    /// Given by [`EvalOptions::threshold`].
    Fixed,
}

impl ThresholdSource {
    /// `val`, `test` or `fixed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdSource::Val => "val",
            ThresholdSource::Test => "test",
            ThresholdSource::Fixed => "fixed",
        }
    }
}

impl fmt::Display for ThresholdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts at the decision threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Violating, predicted violating.
    pub tp: usize,
    /// Non-violating, predicted violating.
    pub fp: usize,
    /// Non-violating, predicted non-violating.
    pub tn: usize,
    /// Violating, predicted non-violating.
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl From<metrics::ConfusionMatrix> for Confusion {
    fn from(m: metrics::ConfusionMatrix) -> Self {
        Confusion {
            tp: m.true_positives,
            fp: m.false_positives,
            tn: m.true_negatives,
            fn_: m.false_negatives,
        }
    }
}

/// Metrics of one gold category (over the positives that carry it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryMetrics {
    /// Positives with this category.
    pub n: usize,
    /// Fraction of them scored at or above the threshold (`null` without a threshold).
    pub recall: Option<f64>,
    /// Their mean score.
    pub mean_score: f64,
    /// How many of them have a predicted category.
    pub n_pred_category: usize,
    /// Fraction of those whose predicted category is one of the item's gold categories
    /// (case-insensitive, `-`/space = `_`); `null` when none has a prediction.
    pub category_accuracy: Option<f64>,
}

/// Metrics of one slice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliceMetrics {
    /// Items in the slice.
    pub n: usize,
    /// Violating items in the slice.
    pub n_pos: usize,
    /// PR-AUC (`null` unless both classes are present).
    pub pr_auc: Option<f64>,
    /// F1 at the global threshold (`null` without a threshold or a positive).
    pub f1: Option<f64>,
    /// False-positive rate at the global threshold (`null` without a threshold or a negative).
    pub fpr: Option<f64>,
}

/// One bin of the reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityPoint {
    /// Lower edge.
    pub bin_lo: f64,
    /// Upper edge.
    pub bin_hi: f64,
    /// Items in the bin.
    pub count: usize,
    /// Mean score of the bin (`null` when empty).
    pub mean_score: Option<f64>,
    /// Fraction violating in the bin (`null` when empty).
    pub frac_pos: Option<f64>,
}

/// Curves for the plots (thinned to [`CURVE_RESOLUTION`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Curves {
    /// `[recall, precision]`, recall increasing, starting with sklearn's `[0, 1]` sentinel;
    /// plotted as steps its area is the PR-AUC. Empty without a positive.
    pub pr: Vec<[f64; 2]>,
    /// `[fpr, tpr]` from `[0, 0]` to `[1, 1]`. Empty unless both classes are present.
    pub roc: Vec<[f64; 2]>,
    /// Reliability bins (10, empty ones included; no bins on zero items).
    pub reliability: Vec<ReliabilityPoint>,
    /// Score histogram of the violating items ([`HIST_BINS`] equal bins on `[0, 1]`).
    pub hist_pos: Vec<usize>,
    /// Score histogram of the non-violating items.
    pub hist_neg: Vec<usize>,
}

/// Everything [`evaluate`] computes; serialised as `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// Items evaluated.
    pub n: usize,
    /// Violating items.
    pub n_pos: usize,
    /// Rows left out because their label or score was invalid.
    #[serde(default)]
    pub n_excluded: usize,
    /// `n_pos / n`.
    pub prevalence: Option<f64>,
    /// Average precision.
    pub pr_auc: Option<f64>,
    /// ROC-AUC.
    pub roc_auc: Option<f64>,
    /// The decision threshold (predict violating when `score >= threshold`).
    pub threshold: Option<f64>,
    /// Where the threshold came from.
    pub threshold_source: Option<ThresholdSource>,
    /// How it was chosen (`best-f1`, `precision:P`, `fpr:F`; absent in files written before the
    /// rule was a setting, which all used best F1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_rule: Option<String>,
    /// F1 at the threshold.
    pub f1: Option<f64>,
    /// F1 of flagging every item (`2p / (1 + p)` at prevalence `p`): the floor an F1 at a
    /// threshold must clear to show a usable classifier.
    #[serde(default)]
    pub f1_flag_all: Option<f64>,
    /// False-flag rate at the threshold: share of non-violating items predicted violating.
    #[serde(default)]
    pub false_flag_rate: Option<f64>,
    /// Precision at the threshold.
    pub precision: Option<f64>,
    /// Recall at the threshold.
    pub recall: Option<f64>,
    /// Accuracy at the threshold.
    pub accuracy: Option<f64>,
    /// Highest recall with precision ≥ 0.9 (0 when no threshold reaches it).
    #[serde(rename = "recall_at_precision_0.9")]
    pub recall_at_precision_0_9: Option<f64>,
    /// Highest recall with FPR ≤ 1 %.
    #[serde(rename = "recall_at_fpr_0.01")]
    pub recall_at_fpr_0_01: Option<f64>,
    /// Expected calibration error, 10 bins.
    pub ece: Option<f64>,
    /// Brier score.
    pub brier: Option<f64>,
    /// Fraction of rows whose output did not parse.
    pub format_failure_rate: Option<f64>,
    /// Failure kind → count (`unknown` when a failing row names no kind).
    pub failure_counts: BTreeMap<String, usize>,
    /// Mean reasoning words over rows that report them.
    pub mean_reasoning_words: Option<f64>,
    /// 95 % bootstrap interval of the PR-AUC.
    pub pr_auc_ci: Option<[f64; 2]>,
    /// 95 % bootstrap interval of F1 at the threshold.
    pub f1_ci: Option<[f64; 2]>,
    /// Gold category → metrics over the positives with it.
    pub per_category: BTreeMap<String, CategoryMetrics>,
    /// Slice tag → metrics.
    pub per_slice: BTreeMap<String, SliceMetrics>,
    /// Curves for the plots.
    pub curves: Curves,
    /// Counts at the threshold.
    pub confusion: Option<Confusion>,
}

impl EvalMetrics {
    /// Writes pretty-printed JSON to `path`.
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<(), EvalError> {
        let path = path.as_ref();
        let mut text = serde_json::to_string_pretty(self).map_err(|e| EvalError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        text.push('\n');
        std::fs::write(path, text).map_err(io_err(path))
    }

    /// Reads a `metrics.json`.
    pub fn read_json(path: impl AsRef<Path>) -> Result<EvalMetrics, EvalError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        serde_json::from_str(&text).map_err(|e| EvalError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"))
}

impl fmt::Display for EvalMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ci = |c: Option<[f64; 2]>| {
            c.map_or_else(String::new, |[lo, hi]| format!(" [{lo:.4}, {hi:.4}]"))
        };
        writeln!(
            f,
            "n = {}, positives = {} (prevalence {})",
            self.n,
            self.n_pos,
            opt(self.prevalence)
        )?;
        writeln!(
            f,
            "PR-AUC            {}{}",
            opt(self.pr_auc),
            ci(self.pr_auc_ci)
        )?;
        writeln!(f, "ROC-AUC           {}", opt(self.roc_auc))?;
        writeln!(
            f,
            "threshold         {} ({})",
            opt(self.threshold),
            self.threshold_source
                .map_or("none", ThresholdSource::as_str)
        )?;
        writeln!(
            f,
            "F1 {}{}  P {}  R {}  acc {}",
            opt(self.f1),
            ci(self.f1_ci),
            opt(self.precision),
            opt(self.recall),
            opt(self.accuracy)
        )?;
        writeln!(f, "recall @ P>=0.90  {}", opt(self.recall_at_precision_0_9))?;
        writeln!(f, "recall @ FPR<=1%  {}", opt(self.recall_at_fpr_0_01))?;
        writeln!(f, "ECE (10 bins)     {}", opt(self.ece))?;
        writeln!(f, "Brier             {}", opt(self.brier))?;
        write!(f, "format failures   {}", opt(self.format_failure_rate))
    }
}

/// Keeps the first and last points and every point at least `eps` away (in some coordinate)
/// from the last kept one.
fn thin(points: Vec<[f64; 2]>, eps: f64) -> Vec<[f64; 2]> {
    let n = points.len();
    let mut out: Vec<[f64; 2]> = Vec::with_capacity(n.min(4096));
    for (i, p) in points.into_iter().enumerate() {
        let keep = match out.last() {
            None => true,
            Some(q) => i + 1 == n || (p[0] - q[0]).abs() >= eps || (p[1] - q[1]).abs() >= eps,
        };
        if keep {
            out.push(p);
        }
    }
    out
}

fn histogram(scores: impl Iterator<Item = f64>) -> Vec<usize> {
    let mut h = vec![0; HIST_BINS];
    for s in scores {
        let i = ((s * HIST_BINS as f64).floor() as usize).min(HIST_BINS - 1);
        h[i] += 1;
    }
    h
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    (count > 0).then(|| sum / count as f64)
}

fn normalise_category(c: &str) -> String {
    c.trim().to_lowercase().replace(['-', ' '], "_")
}

fn has_both_classes(labels: &[u8]) -> bool {
    labels.contains(&0) && labels.contains(&1)
}

/// Chooses the threshold: fixed if given, else by `opts.rule` on `val` (when it has both
/// classes), else by the rule on the test rows (when it is defined there).
fn choose_threshold(
    test: (&[f64], &[u8]),
    val: Option<&[ScoredRow]>,
    opts: &EvalOptions,
) -> Option<(f64, ThresholdSource)> {
    if let Some(t) = opts.threshold.filter(|t| !t.is_nan()) {
        return Some((t, ThresholdSource::Fixed));
    }
    if let Some(val) = val {
        let (s, l): (Vec<f64>, Vec<u8>) = val
            .iter()
            .filter(|r| r.is_valid())
            .map(|r| (r.score, r.label))
            .unzip();
        if has_both_classes(&l) {
            if let Some(t) = opts.rule.choose(&s, &l) {
                return Some((t, ThresholdSource::Val));
            }
        }
    }
    opts.rule
        .choose(test.0, test.1)
        .map(|t| (t, ThresholdSource::Test))
}

/// Computes all metrics of the `test` rows; the threshold is chosen on `val` when given (see
/// [`EvalMetrics::threshold_source`]). Never panics; undefined metrics are `None`.
pub fn evaluate(test: &[ScoredRow], val: Option<&[ScoredRow]>, opts: &EvalOptions) -> EvalMetrics {
    let rows: Vec<&ScoredRow> = test.iter().filter(|r| r.is_valid()).collect();
    let n_excluded = test.len() - rows.len();
    let scores: Vec<f64> = rows.iter().map(|r| r.score).collect();
    let labels: Vec<u8> = rows.iter().map(|r| r.label).collect();
    let n = rows.len();
    let n_pos = labels.iter().filter(|&&l| l == 1).count();
    let (s, l) = (scores.as_slice(), labels.as_slice());
    let both = has_both_classes(l);

    let chosen = choose_threshold((s, l), val, opts);
    let threshold = chosen.map(|c| c.0);
    let at = threshold.and_then(|t| metrics::at_threshold(s, l, t).ok());
    let confusion = at.map(|m| m.confusion);

    let pr_auc = metrics::average_precision(s, l).ok();
    let roc_auc = metrics::roc_auc(s, l).ok();
    let ci = |r: Result<metrics::Interval, metrics::MetricsError>| {
        r.ok()
            .filter(|i| i.lower.is_finite() && i.upper.is_finite())
            .map(|i| [i.lower, i.upper])
    };
    let (pr_auc_ci, f1_ci) = if opts.bootstrap > 0 && n > 0 {
        let pr = if pr_auc.is_some() {
            ci(metrics::bootstrap_pr_auc(s, l, opts.bootstrap, opts.seed))
        } else {
            None
        };
        let f1 = match threshold {
            Some(t) if n_pos > 0 => ci(metrics::bootstrap_f1(s, l, t, opts.bootstrap, opts.seed)),
            _ => None,
        };
        (pr, f1)
    } else {
        (None, None)
    };

    let mut failure_counts = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.format_ok) {
        let kind = r.failure.clone().unwrap_or_else(|| "unknown".into());
        *failure_counts.entry(kind).or_insert(0) += 1;
    }
    let n_failed: usize = failure_counts.values().sum();

    let mut per_category: BTreeMap<String, CategoryMetrics> = BTreeMap::new();
    let mut categories: Vec<&str> = rows
        .iter()
        .filter(|r| r.label == 1)
        .flat_map(|r| r.categories.iter().map(String::as_str))
        .collect();
    categories.sort_unstable();
    categories.dedup();
    for cat in categories {
        let members: Vec<&&ScoredRow> = rows
            .iter()
            .filter(|r| r.label == 1 && r.categories.iter().any(|c| c == cat))
            .collect();
        let predicted: Vec<bool> = members
            .iter()
            .filter_map(|r| {
                let p = normalise_category(r.pred_category.as_deref()?);
                Some(r.categories.iter().any(|c| normalise_category(c) == p))
            })
            .collect();
        per_category.insert(
            cat.to_string(),
            CategoryMetrics {
                n: members.len(),
                recall: threshold
                    .and_then(|t| mean(members.iter().map(|r| f64::from(u8::from(r.score >= t))))),
                mean_score: mean(members.iter().map(|r| r.score)).unwrap_or(0.0),
                n_pred_category: predicted.len(),
                category_accuracy: mean(predicted.iter().map(|&ok| f64::from(u8::from(ok)))),
            },
        );
    }

    let mut per_slice: BTreeMap<String, SliceMetrics> = BTreeMap::new();
    let mut slices: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.slices.iter().map(String::as_str))
        .collect();
    slices.sort_unstable();
    slices.dedup();
    for tag in slices {
        let (ss, sl): (Vec<f64>, Vec<u8>) = rows
            .iter()
            .filter(|r| r.slices.iter().any(|t| t == tag))
            .map(|r| (r.score, r.label))
            .unzip();
        let pos = sl.iter().filter(|&&x| x == 1).count();
        let m = threshold.and_then(|t| metrics::at_threshold(&ss, &sl, t).ok());
        per_slice.insert(
            tag.to_string(),
            SliceMetrics {
                n: ss.len(),
                n_pos: pos,
                pr_auc: if has_both_classes(&sl) {
                    metrics::average_precision(&ss, &sl).ok()
                } else {
                    None
                },
                f1: m.filter(|_| pos > 0).map(|m| m.f1),
                fpr: m.filter(|_| pos < ss.len()).map(|m| m.fpr),
            },
        );
    }

    let pr = match metrics::pr_curve(s, l) {
        Ok(points) => {
            let mut v = vec![[0.0, 1.0]];
            v.extend(points.iter().map(|p| [p.recall, p.precision]));
            thin(v, CURVE_RESOLUTION)
        }
        Err(_) => Vec::new(),
    };
    let roc = match metrics::roc_curve(s, l) {
        Ok(points) if both => thin(
            points.iter().map(|p| [p.fpr, p.tpr]).collect(),
            CURVE_RESOLUTION,
        ),
        _ => Vec::new(),
    };
    let reliability = metrics::reliability_bins(s, l, CALIBRATION_BINS)
        .map(|bins| {
            bins.iter()
                .map(|b| ReliabilityPoint {
                    bin_lo: b.lower,
                    bin_hi: b.upper,
                    count: b.count,
                    mean_score: b.mean_score,
                    frac_pos: b.fraction_positive,
                })
                .collect()
        })
        .unwrap_or_default();

    EvalMetrics {
        n,
        n_pos,
        n_excluded,
        prevalence: (n > 0).then(|| n_pos as f64 / n as f64),
        pr_auc,
        roc_auc,
        threshold,
        threshold_source: chosen.map(|c| c.1),
        threshold_rule: chosen
            .filter(|c| c.1 != ThresholdSource::Fixed)
            .map(|_| opts.rule.to_string()),
        f1: at.map(|m| m.f1),
        f1_flag_all: (n_pos > 0).then(|| 2.0 * n_pos as f64 / (n + n_pos) as f64),
        false_flag_rate: confusion
            .filter(|c| c.false_positives + c.true_negatives > 0)
            .map(|c| c.false_positives as f64 / (c.false_positives + c.true_negatives) as f64),
        precision: at.map(|m| m.precision),
        recall: at.map(|m| m.recall),
        accuracy: confusion.map(|c| c.accuracy()),
        recall_at_precision_0_9: metrics::recall_at_precision(s, l, 0.9)
            .ok()
            .map(|p| p.recall),
        recall_at_fpr_0_01: metrics::recall_at_fpr(s, l, 0.01).ok().map(|p| p.recall),
        ece: metrics::expected_calibration_error(s, l, CALIBRATION_BINS).ok(),
        brier: metrics::brier_score(s, l).ok(),
        format_failure_rate: (n > 0).then(|| n_failed as f64 / n as f64),
        failure_counts,
        mean_reasoning_words: mean(
            rows.iter()
                .filter_map(|r| r.reasoning_words)
                .map(|w| w as f64),
        ),
        pr_auc_ci,
        f1_ci,
        per_category,
        per_slice,
        curves: Curves {
            pr,
            roc,
            reliability,
            hist_pos: histogram(rows.iter().filter(|r| r.label == 1).map(|r| r.score)),
            hist_neg: histogram(rows.iter().filter(|r| r.label == 0).map(|r| r.score)),
        },
        confusion: confusion.map(Confusion::from),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write as _;

    #[test]
    fn threshold_rules_parse_and_pick_the_operating_point_on_validation() {
        assert_eq!(
            "best-f1".parse::<ThresholdRule>(),
            Ok(ThresholdRule::BestF1)
        );
        assert_eq!("precision:0.9".parse(), Ok(ThresholdRule::Precision(0.9)));
        assert_eq!("fpr:0.05".parse(), Ok(ThresholdRule::Fpr(0.05)));
        assert!("precision:1.5"
            .parse::<ThresholdRule>()
            .unwrap_err()
            .contains("[0, 1]"));
        assert!("recall:0.9"
            .parse::<ThresholdRule>()
            .unwrap_err()
            .contains("unknown threshold rule"));
        assert_eq!(ThresholdRule::Fpr(0.05).to_string(), "fpr:0.05");
        // Validation: positives at 0.9, 0.8, 0.6, 0.3; negatives at 0.7, 0.5, 0.2, 0.1.
        let s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.2, 0.1];
        let l = [1, 1, 0, 1, 0, 1, 0, 0];
        // Precision >= 0.75: at 0.6 (3 of 4 flagged are positive), the most recall there.
        assert_eq!(ThresholdRule::Precision(0.75).choose(&s, &l), Some(0.6));
        assert_eq!(ThresholdRule::Precision(1.0).choose(&s, &l), Some(0.8));
        // FPR <= 0.25: one negative of four may be flagged: down to 0.6.
        assert_eq!(ThresholdRule::Fpr(0.25).choose(&s, &l), Some(0.6));
        assert_eq!(ThresholdRule::Fpr(0.0).choose(&s, &l), Some(0.8));
        // A target nothing reaches flags nothing.
        let l2 = [0, 1, 0, 1, 0, 1, 0, 0];
        assert!(ThresholdRule::Precision(1.0).choose(&s, &l2).unwrap() > 1.0);
        let l3 = [0, 0, 0, 0, 0, 0, 0, 1];
        assert!(ThresholdRule::Precision(0.9).choose(&s, &l3).unwrap() > 1.0);
        // evaluate() applies the rule on validation and records it.
        let rows = |l: &[u8]| -> Vec<ScoredRow> {
            s.iter()
                .zip(l)
                .enumerate()
                .map(|(i, (&x, &y))| ScoredRow::new(format!("r{i}"), y, x))
                .collect()
        };
        let val = rows(&l);
        let opts = EvalOptions {
            rule: ThresholdRule::Fpr(0.0),
            bootstrap: 0,
            ..EvalOptions::default()
        };
        let m = evaluate(&rows(&l), Some(&val), &opts);
        assert_eq!(m.threshold, Some(0.8));
        assert_eq!(m.threshold_source, Some(ThresholdSource::Val));
        assert_eq!(m.threshold_rule.as_deref(), Some("fpr:0"));
    }
    use super::*;
    use crate::metrics::{
        at_threshold, average_precision, best_f1_threshold, bootstrap_f1, bootstrap_pr_auc,
        brier_score, expected_calibration_error, recall_at_fpr, recall_at_precision, roc_auc,
    };

    /// SplitMix64 for reproducible test data.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        pub(crate) fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let u1 = self.uniform().max(1e-12);
            let u2 = self.uniform();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
    }

    /// `n` rows, about 30 % violating, score = sigmoid(±separation/2 + noise) rounded to three
    /// decimals (so there are ties), with categories, slices and a few format failures.
    pub(crate) fn synthetic_rows(n: usize, seed: u64, separation: f64) -> Vec<ScoredRow> {
        let mut rng = Rng(seed);
        (0..n)
            .map(|i| {
                let label = u8::from(rng.uniform() < 0.3);
                let z = separation * (f64::from(label) - 0.5) + rng.normal();
                let score = (1.0 / (1.0 + (-z).exp()) * 1000.0).round() / 1000.0;
                let mut row = ScoredRow::new(format!("r{i}"), label, score);
                if label == 1 {
                    let cat = ["slurs", "threats", "harassment"][i % 3];
                    row.categories.push(cat.to_string());
                    row.pred_category = (i % 2 == 0).then(|| {
                        if i % 4 == 0 {
                            cat.to_uppercase()
                        } else {
                            "threats".into()
                        }
                    });
                }
                row.slices
                    .push(format!("source:{}", ["gab", "twitter"][i % 2]));
                if i % 5 == 0 {
                    row.slices.push("target:women".into());
                }
                if i % 17 == 0 {
                    row.format_ok = false;
                    row.failure = Some(if i % 2 == 0 { "bad_json" } else { "no_verdict" }.into());
                }
                row.reasoning_words = Some(20 + i % 40);
                row
            })
            .collect()
    }

    fn split(rows: &[ScoredRow]) -> (Vec<f64>, Vec<u8>) {
        rows.iter().map(|r| (r.score, r.label)).unzip()
    }

    fn no_bootstrap() -> EvalOptions {
        EvalOptions {
            bootstrap: 0,
            ..EvalOptions::default()
        }
    }

    #[test]
    fn minimal_row_reads_with_defaults() {
        let row: ScoredRow = serde_json::from_str(r#"{"id":"a","label":1,"score":0.25}"#).unwrap();
        assert_eq!(row, ScoredRow::new("a", 1, 0.25));
        assert!(row.format_ok);
        let full = synthetic_rows(20, 1, 2.0).remove(17);
        let back: ScoredRow = serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
        assert_eq!(back, full);
        assert!(!back.format_ok);
    }

    #[test]
    fn evaluate_agrees_with_metrics_module() {
        let rows = synthetic_rows(600, 7, 2.5);
        let (s, l) = split(&rows);
        let opts = EvalOptions {
            bootstrap: 200,
            seed: 9,
            threshold: None,
            rule: ThresholdRule::BestF1,
        };
        let m = evaluate(&rows, None, &opts);
        assert_eq!(m.n, 600);
        assert_eq!(m.n_pos, l.iter().filter(|&&x| x == 1).count());
        assert_eq!(m.prevalence, Some(m.n_pos as f64 / 600.0));
        assert_eq!(m.pr_auc, Some(average_precision(&s, &l).unwrap()));
        assert_eq!(m.roc_auc, Some(roc_auc(&s, &l).unwrap()));
        let best = best_f1_threshold(&s, &l).unwrap();
        assert_eq!(m.threshold, Some(best.threshold));
        assert_eq!(m.threshold_source, Some(ThresholdSource::Test));
        assert_eq!(m.f1, Some(best.f1));
        assert_eq!(m.precision, Some(best.precision));
        assert_eq!(m.recall, Some(best.recall));
        assert_eq!(m.accuracy, Some(best.confusion.accuracy()));
        assert_eq!(m.confusion, Some(Confusion::from(best.confusion)));
        assert_eq!(
            m.recall_at_precision_0_9,
            Some(recall_at_precision(&s, &l, 0.9).unwrap().recall)
        );
        assert_eq!(
            m.recall_at_fpr_0_01,
            Some(recall_at_fpr(&s, &l, 0.01).unwrap().recall)
        );
        assert_eq!(m.ece, Some(expected_calibration_error(&s, &l, 10).unwrap()));
        assert_eq!(m.brier, Some(brier_score(&s, &l).unwrap()));
        let pr_ci = bootstrap_pr_auc(&s, &l, 200, 9).unwrap();
        assert_eq!(m.pr_auc_ci, Some([pr_ci.lower, pr_ci.upper]));
        let f1_ci = bootstrap_f1(&s, &l, best.threshold, 200, 9).unwrap();
        assert_eq!(m.f1_ci, Some([f1_ci.lower, f1_ci.upper]));
        // Sanity of the separation: a real signal, not a perfect one.
        let auc = m.roc_auc.unwrap();
        assert!(auc > 0.85 && auc < 0.99, "{auc}");
        // Format failures, reasoning words.
        let failed = rows.iter().filter(|r| !r.format_ok).count();
        assert_eq!(m.format_failure_rate, Some(failed as f64 / 600.0));
        assert_eq!(m.failure_counts.values().sum::<usize>(), failed);
        assert_eq!(
            m.failure_counts.keys().collect::<Vec<_>>(),
            vec!["bad_json", "no_verdict"]
        );
        let words: usize = rows.iter().map(|r| r.reasoning_words.unwrap()).sum();
        assert!((m.mean_reasoning_words.unwrap() - words as f64 / 600.0).abs() < 1e-9);
    }

    #[test]
    fn curves_are_consistent() {
        let rows = synthetic_rows(5000, 3, 1.5);
        let (s, l) = split(&rows);
        let m = evaluate(&rows, None, &no_bootstrap());
        let c = &m.curves;
        assert_eq!(c.pr.first(), Some(&[0.0, 1.0]));
        assert_eq!(c.pr.last().unwrap()[0], 1.0);
        assert!(c.pr.windows(2).all(|w| w[0][0] <= w[1][0]));
        // The step area of the (thinned) curve stays within the resolution of the PR-AUC.
        let area: f64 = c.pr.windows(2).map(|w| (w[1][0] - w[0][0]) * w[1][1]).sum();
        assert!((area - m.pr_auc.unwrap()).abs() < 5e-3, "{area}");
        assert_eq!(c.roc.first(), Some(&[0.0, 0.0]));
        assert_eq!(c.roc.last(), Some(&[1.0, 1.0]));
        assert!(c.roc.len() < 2100, "thinned: {}", c.roc.len());
        let full = crate::metrics::roc_curve(&s, &l).unwrap().len();
        assert!(full > c.roc.len());
        assert_eq!(c.hist_pos.len(), HIST_BINS);
        assert_eq!(c.hist_pos.iter().sum::<usize>(), m.n_pos);
        assert_eq!(c.hist_neg.iter().sum::<usize>(), m.n - m.n_pos);
        assert_eq!(c.reliability.len(), CALIBRATION_BINS);
        assert_eq!(c.reliability.iter().map(|b| b.count).sum::<usize>(), m.n);
        // A score of exactly 1.0 lands in the last histogram bin.
        let edge = evaluate(
            &[ScoredRow::new("a", 1, 1.0), ScoredRow::new("b", 0, 0.0)],
            None,
            &no_bootstrap(),
        );
        assert_eq!(edge.curves.hist_pos[HIST_BINS - 1], 1);
        assert_eq!(edge.curves.hist_neg[0], 1);
    }

    #[test]
    fn threshold_comes_from_val_when_given() {
        let test = synthetic_rows(400, 11, 2.0);
        // A validation set whose scores are shifted down, so its best-F1 threshold differs.
        let mut val = synthetic_rows(300, 12, 2.0);
        for r in &mut val {
            r.score = (r.score * 0.5).clamp(0.0, 1.0);
        }
        let (vs, vl) = split(&val);
        let (ts, tl) = split(&test);
        let val_best = best_f1_threshold(&vs, &vl).unwrap();
        let test_best = best_f1_threshold(&ts, &tl).unwrap();
        assert_ne!(val_best.threshold, test_best.threshold);
        let m = evaluate(&test, Some(&val), &no_bootstrap());
        assert_eq!(m.threshold, Some(val_best.threshold));
        assert_eq!(m.threshold_source, Some(ThresholdSource::Val));
        let at = at_threshold(&ts, &tl, val_best.threshold).unwrap();
        assert_eq!(m.f1, Some(at.f1));
        assert_eq!(m.confusion, Some(Confusion::from(at.confusion)));
        // A one-class validation set cannot choose: fall back to the test data.
        let negatives: Vec<ScoredRow> = val.iter().filter(|r| r.label == 0).cloned().collect();
        let m = evaluate(&test, Some(&negatives), &no_bootstrap());
        assert_eq!(m.threshold_source, Some(ThresholdSource::Test));
        assert_eq!(m.threshold, Some(test_best.threshold));
        // A fixed threshold wins over both.
        let opts = EvalOptions {
            threshold: Some(0.5),
            ..no_bootstrap()
        };
        let m = evaluate(&test, Some(&val), &opts);
        assert_eq!(m.threshold_source, Some(ThresholdSource::Fixed));
        assert_eq!(m.f1, Some(at_threshold(&ts, &tl, 0.5).unwrap().f1));
        // filter_split picks rows by their split tag.
        let mut mixed = test.clone();
        for (i, r) in mixed.iter_mut().enumerate() {
            r.split = Some(if i % 4 == 0 { "validation" } else { "test" }.into());
        }
        assert_eq!(filter_split(&mixed, Split::Val).len(), 100);
        assert_eq!(filter_split(&mixed, Split::Test).len(), 300);
    }

    #[test]
    fn degenerate_inputs_give_nulls_not_nan() {
        let cases: Vec<Vec<ScoredRow>> = vec![
            Vec::new(),
            vec![ScoredRow::new("a", 0, 0.2), ScoredRow::new("b", 0, 0.7)],
            vec![ScoredRow::new("a", 1, 0.2), ScoredRow::new("b", 1, 0.7)],
            vec![
                ScoredRow::new("a", 1, f64::NAN),
                ScoredRow::new("b", 2, 0.5),
                ScoredRow::new("c", 0, 1.5),
            ],
        ];
        for rows in &cases {
            let m = evaluate(rows, None, &EvalOptions::default());
            let json = serde_json::to_string(&m).unwrap();
            assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
            let back: EvalMetrics = serde_json::from_str(&json).unwrap();
            assert_eq!(back, m);
            assert_eq!(m.roc_auc, None);
            assert!(m.curves.roc.is_empty());
        }
        let empty = evaluate(&cases[0], None, &EvalOptions::default());
        assert_eq!(
            (empty.n, empty.prevalence, empty.threshold),
            (0, None, None)
        );
        assert_eq!(
            (empty.ece, empty.brier, empty.format_failure_rate),
            (None, None, None)
        );
        assert_eq!(empty.confusion, None);
        assert!(empty.curves.reliability.is_empty());
        let negatives = evaluate(&cases[1], None, &EvalOptions::default());
        assert_eq!(
            (negatives.pr_auc, negatives.threshold, negatives.f1),
            (None, None, None)
        );
        assert_eq!(negatives.prevalence, Some(0.0));
        assert!(negatives.brier.is_some() && negatives.curves.pr.is_empty());
        // With a fixed threshold a one-class set still gets its confusion matrix.
        let fixed = evaluate(
            &cases[1],
            None,
            &EvalOptions {
                threshold: Some(0.5),
                ..EvalOptions::default()
            },
        );
        assert_eq!(
            fixed.confusion,
            Some(Confusion {
                tp: 0,
                fp: 1,
                tn: 1,
                fn_: 0
            })
        );
        assert_eq!(fixed.f1_ci, None);
        let positives = evaluate(&cases[2], None, &EvalOptions::default());
        assert_eq!(positives.pr_auc, Some(1.0));
        assert_eq!(positives.recall_at_fpr_0_01, None);
        assert_eq!(positives.threshold, Some(0.2));
        let invalid = evaluate(&cases[3], None, &EvalOptions::default());
        assert_eq!((invalid.n, invalid.n_excluded), (0, 3));
    }

    #[test]
    fn per_category_and_per_slice() {
        let mut rows = vec![
            ScoredRow::new("p1", 1, 0.9),
            ScoredRow::new("p2", 1, 0.4),
            ScoredRow::new("p3", 1, 0.8),
            ScoredRow::new("n1", 0, 0.6),
            ScoredRow::new("n2", 0, 0.1),
            ScoredRow::new("n3", 0, 0.2),
        ];
        rows[0].categories = vec!["slurs".into(), "threats".into()];
        rows[0].pred_category = Some("Threats".into());
        rows[1].categories = vec!["slurs".into()];
        rows[1].pred_category = Some("threats".into());
        rows[2].categories = vec!["threats".into()];
        rows[3].categories = vec!["ignored-on-negatives".into()];
        for r in &mut rows[..4] {
            r.slices.push("s:a".into());
        }
        rows[4].slices.push("s:neg".into());
        let opts = EvalOptions {
            threshold: Some(0.5),
            ..no_bootstrap()
        };
        let m = evaluate(&rows, None, &opts);
        assert_eq!(
            m.per_category.keys().collect::<Vec<_>>(),
            vec!["slurs", "threats"]
        );
        let slurs = &m.per_category["slurs"];
        assert_eq!((slurs.n, slurs.recall), (2, Some(0.5)));
        assert!((slurs.mean_score - 0.65).abs() < 1e-12);
        assert_eq!(
            (slurs.n_pred_category, slurs.category_accuracy),
            (2, Some(0.5))
        );
        let threats = &m.per_category["threats"];
        assert_eq!((threats.n, threats.recall), (2, Some(1.0)));
        assert_eq!(
            (threats.n_pred_category, threats.category_accuracy),
            (1, Some(1.0))
        );
        let a = &m.per_slice["s:a"];
        assert_eq!((a.n, a.n_pos), (4, 3));
        let (s, l) = (vec![0.9, 0.4, 0.8, 0.6], vec![1u8, 1, 1, 0]);
        assert_eq!(a.pr_auc, Some(average_precision(&s, &l).unwrap()));
        assert_eq!(a.f1, Some(at_threshold(&s, &l, 0.5).unwrap().f1));
        assert_eq!(a.fpr, Some(1.0));
        let neg = &m.per_slice["s:neg"];
        assert_eq!(
            (neg.n, neg.n_pos, neg.pr_auc, neg.f1, neg.fpr),
            (1, 0, None, None, Some(0.0))
        );
    }

    #[test]
    fn metrics_json_keys_and_round_trip() {
        let rows = synthetic_rows(300, 5, 2.0);
        let m = evaluate(
            &rows,
            None,
            &EvalOptions {
                bootstrap: 50,
                ..EvalOptions::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.json");
        m.write_json(&path).unwrap();
        assert_eq!(EvalMetrics::read_json(&path).unwrap(), m);
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "n",
            "n_pos",
            "prevalence",
            "pr_auc",
            "roc_auc",
            "threshold",
            "threshold_source",
            "f1",
            "precision",
            "recall",
            "accuracy",
            "recall_at_precision_0.9",
            "recall_at_fpr_0.01",
            "ece",
            "brier",
            "format_failure_rate",
            "failure_counts",
            "mean_reasoning_words",
            "pr_auc_ci",
            "f1_ci",
            "per_category",
            "per_slice",
            "curves",
            "confusion",
        ] {
            assert!(keys.contains(&key), "missing {key}");
        }
        assert_eq!(value["threshold_source"], "test");
        assert!(value["confusion"]["fn"].is_u64());
        assert!(value["curves"]["reliability"][0]["bin_hi"].is_f64());
        assert_eq!(value["pr_auc_ci"].as_array().unwrap().len(), 2);
        assert!(m.to_string().contains("PR-AUC"));
        assert!(matches!(
            EvalMetrics::read_json(dir.path().join("missing.json")),
            Err(EvalError::Io { .. })
        ));
    }

    #[test]
    fn resume_drops_only_a_truncated_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scores.jsonl");
        let rows = synthetic_rows(5, 1, 2.0);
        {
            let (mut w, done, existing) = ScoresWriter::open_append(&path).unwrap();
            assert!(done.is_empty() && existing.is_empty() && w.is_empty());
            for r in &rows[..3] {
                w.append(r).unwrap();
            }
            assert_eq!(w.len(), 3);
        }
        let good_len = std::fs::metadata(&path).unwrap().len();
        // A crash in the middle of the fourth line.
        let fourth = serde_json::to_string(&rows[3]).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&fourth.as_bytes()[..fourth.len() / 2]).unwrap();
        drop(f);
        assert!(read_scores(&path).is_err());
        let (mut w, done, existing) = ScoresWriter::open_append(&path).unwrap();
        assert_eq!(existing, rows[..3].to_vec());
        assert_eq!(done, rows[..3].iter().map(|r| r.id.clone()).collect());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
        assert!(w.contains("r0") && !w.contains("r3"));
        w.append(&rows[3]).unwrap();
        assert!(matches!(
            w.append(&rows[0]),
            Err(EvalError::InvalidRow { .. })
        ));
        let mut bad = rows[4].clone();
        bad.score = f64::NAN;
        assert!(matches!(w.append(&bad), Err(EvalError::InvalidRow { .. })));
        drop(w);
        assert_eq!(read_scores(&path).unwrap(), rows[..4].to_vec());
        // A complete last line that only lacks its newline is kept, and the newline added.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(serde_json::to_string(&rows[4]).unwrap().as_bytes())
            .unwrap();
        drop(f);
        let (w, _, existing) = ScoresWriter::open_append(&path).unwrap();
        assert_eq!(existing, rows.to_vec());
        drop(w);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n") && text.lines().count() == 5);
    }

    #[test]
    fn bad_lines_are_errors_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scores.jsonl");
        let text = "{\"id\":\"a\",\"label\":1,\"score\":0.9}\n\n{\"id\":\"b\",\"label\":1}\n{\"id\":\"c\",\"label\":0,\"score\":0.1}\n";
        std::fs::write(&path, text).unwrap();
        let err = read_scores(&path).unwrap_err().to_string();
        assert!(
            err.contains("scores.jsonl:3:") && err.contains("score"),
            "{err}"
        );
        // A bad line that is not the last one is not a crash: resuming refuses and keeps the file.
        assert!(ScoresWriter::open_append(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let dup =
            "{\"id\":\"a\",\"label\":1,\"score\":0.9}\n{\"id\":\"a\",\"label\":0,\"score\":0.2}\n";
        std::fs::write(&path, dup).unwrap();
        let err = read_scores(&path).unwrap_err().to_string();
        assert!(err.contains(":2:") && err.contains("duplicate"), "{err}");
        std::fs::write(&path, "{\"id\":\"a\",\"label\":1,\"score\":1.5}\n").unwrap();
        assert!(read_scores(&path).unwrap_err().to_string().contains(":1:"));
    }
}
