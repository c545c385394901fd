//! Files a person looks at: `report.md` and a self-contained `report.html` with inline SVG plots
//! drawn here (no plotting crate, no external CSS, JS or fonts; the HTML opens from `file://`),
//! plus each plot as a standalone `.svg`, and side-by-side comparisons of two reports.
//!
//! [`write_report`] writes into a directory:
//!
//! * `report.html` — header with the [`ReportMeta`], metrics table with bootstrap intervals, the
//!   plots inline, per-category, per-slice and format-failure tables;
//! * `report.md` — the same tables in Markdown, linking the plot files;
//! * `pr.svg`, `roc.svg`, `reliability.svg`, `hist.svg`, `confusion.svg`;
//! * `metrics.json` (the [`EvalMetrics`]) and `report_meta.json` (the [`ReportMeta`]), so that
//!   [`compare_reports`] can read the directory later.
//!
//! [`compare_reports`] reads two such directories (only `metrics.json` is required) and writes
//! `compare.md`, `compare.html`, `compare_pr.svg` and `compare_roc.svg`; when both have
//! `scores.jsonl`, also `compare.json` with paired bootstrap intervals of the differences
//! ([`crate::paired`]).

use crate::eval::{EvalError, EvalMetrics, ThresholdSource};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod compare;
mod figures;
mod tables;
#[cfg(test)]
mod tests;

use crate::plot::{esc, BLUE};
pub use compare::compare_reports;
use figures::*;
use tables::*;

/// Who and what produced a report; shown in its header. Empty fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportMeta {
    /// Report title.
    pub title: String,
    /// Model (name, path or checkpoint).
    pub model: String,
    /// Policy id.
    pub policy_id: String,
    /// Policy version.
    pub policy_version: String,
    /// The scored data file.
    pub data_file: String,
    /// Scoring mode, e.g. `verdict-token`, `mc N=32 T=1.0`, `greedy`.
    pub scoring_mode: String,
    /// The command line that produced the scores.
    pub command: String,
    /// When the report was made.
    pub timestamp: String,
    /// Further key/value pairs, shown in order.
    #[serde(default)]
    pub extra: Vec<(String, String)>,
}

impl ReportMeta {
    fn fields(&self) -> Vec<(String, String)> {
        let policy = match (self.policy_id.is_empty(), self.policy_version.is_empty()) {
            (true, true) => String::new(),
            (false, true) => self.policy_id.clone(),
            (true, false) => format!("version {}", self.policy_version),
            (false, false) => format!("{} v{}", self.policy_id, self.policy_version),
        };
        let mut out: Vec<(String, String)> = [
            ("Model", self.model.clone()),
            ("Policy", policy),
            ("Data", self.data_file.clone()),
            ("Scoring", self.scoring_mode.clone()),
            ("Command", self.command.clone()),
            ("Time", self.timestamp.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        out.extend(self.extra.iter().cloned());
        out.retain(|(_, v)| !v.trim().is_empty());
        out
    }

    fn title_or(&self, fallback: &str) -> String {
        if self.title.trim().is_empty() {
            fallback.to_string()
        } else {
            self.title.clone()
        }
    }
}

pub(crate) fn write_file(
    path: PathBuf,
    contents: &str,
    written: &mut Vec<PathBuf>,
) -> Result<(), EvalError> {
    std::fs::write(&path, contents).map_err(|source| EvalError::Io {
        path: path.clone(),
        source,
    })?;
    written.push(path);
    Ok(())
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), EvalError> {
    std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// The plot files of a report, with their captions.
pub(crate) const PLOTS: [(&str, &str); 5] = [
    ("pr.svg", "Precision-recall curve"),
    ("roc.svg", "ROC curve"),
    ("reliability.svg", "Reliability diagram"),
    ("hist.svg", "Score distribution by class"),
    ("confusion.svg", "Confusion matrix"),
];

pub(crate) fn plots(m: &EvalMetrics, standalone: bool) -> [String; 5] {
    let one = [Series {
        label: "model".into(),
        color: BLUE,
        metrics: m,
    }];
    [
        pr_svg(&one, "Precision-recall curve", standalone),
        roc_svg(&one, "ROC curve", standalone),
        reliability_svg(m, standalone),
        hist_svg(m, standalone),
        confusion_svg(m, standalone),
    ]
}

/// Writes `report.md`, `report.html`, the five plot `.svg` files, `metrics.json` and
/// `report_meta.json` into `dir` (created if needed). Returns the paths written.
pub fn write_report(
    dir: impl AsRef<Path>,
    metrics: &EvalMetrics,
    meta: &ReportMeta,
) -> Result<Vec<PathBuf>, EvalError> {
    let dir = dir.as_ref();
    create_dir(dir)?;
    let mut written = Vec::new();
    let title = meta.title_or("Moderation evaluation");

    for ((file, _), svg) in PLOTS.iter().zip(plots(metrics, true)) {
        write_file(dir.join(file), &svg, &mut written)?;
    }

    let cats = category_table(metrics);
    let slices = slice_table(metrics);
    let failures = failure_table(metrics);
    let no_cat = "No gold categories on violating items.";
    let no_slice = "No slices.";
    let no_fail = "Every output parsed.";

    let mut body = format!(
        "<h1>{}</h1>\n{}\n<h2>Metrics</h2>\n{}\n<h2>Plots</h2>\n<div class=\"plots\">",
        esc(&title),
        html_meta(meta),
        html_metrics(metrics)
    );
    for ((_, caption), svg) in PLOTS.iter().zip(plots(metrics, false)) {
        let _ = write!(
            body,
            "<figure aria-label=\"{}\">{svg}</figure>",
            esc(caption)
        );
    }
    body.push_str("</div>\n");
    let _ = write!(
        body,
        "<h2>Per category</h2>\n{}\n<h2>Per slice</h2>\n{}\n<h2>Format failures</h2>\n{}\n",
        html_table(&cats, no_cat),
        html_table(&slices, no_slice),
        html_table(&failures, no_fail)
    );
    write_file(
        dir.join("report.html"),
        &html_page(&title, &body),
        &mut written,
    )?;

    let mut text = format!(
        "# {}\n\n{}\n## Metrics\n\n{}\n## Plots\n\n",
        md(&title),
        md_meta(meta),
        md_metrics(metrics)
    );
    for (file, caption) in PLOTS {
        let _ = writeln!(text, "![{caption}]({file})\n");
    }
    let _ = write!(
        text,
        "## Per category\n\n{}\n## Per slice\n\n{}\n## Format failures\n\n{}",
        md_table(&cats, no_cat),
        md_table(&slices, no_slice),
        md_table(&failures, no_fail)
    );
    write_file(dir.join("report.md"), &text, &mut written)?;

    let path = dir.join("metrics.json");
    metrics.write_json(&path)?;
    written.push(path);
    let meta_json = serde_json::to_string_pretty(meta).map_err(|e| EvalError::Json {
        path: dir.join("report_meta.json"),
        message: e.to_string(),
    })?;
    write_file(
        dir.join("report_meta.json"),
        &(meta_json + "\n"),
        &mut written,
    )?;
    Ok(written)
}
