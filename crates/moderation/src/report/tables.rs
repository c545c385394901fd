//! Metric, category, slice and failure tables of a report, in HTML and Markdown.

use super::*;
use crate::plot::*;

/// Escapes a Markdown table cell.
pub(crate) fn md(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

pub(crate) fn f4(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"))
}

pub(crate) fn ci_text(ci: Option<[f64; 2]>) -> String {
    ci.map_or_else(String::new, |[lo, hi]| format!("[{lo:.4}, {hi:.4}]"))
}

pub(crate) fn signed(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |v| format!("{v:+.4}"))
}

// ---------------------------------------------------------------------------------------------
// Tables.

pub(crate) struct MetricRow {
    pub(crate) name: &'static str,
    pub(crate) get: fn(&EvalMetrics) -> Option<f64>,
    pub(crate) ci: fn(&EvalMetrics) -> Option<[f64; 2]>,
    /// Whether higher is better (for colouring deltas); `None` = neutral.
    pub(crate) higher_better: Option<bool>,
}

pub(crate) fn no_ci(_: &EvalMetrics) -> Option<[f64; 2]> {
    None
}

pub(crate) const METRIC_ROWS: &[MetricRow] = &[
    MetricRow {
        name: "PR-AUC (average precision)",
        get: |m| m.pr_auc,
        ci: |m| m.pr_auc_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "ROC-AUC",
        get: |m| m.roc_auc,
        ci: no_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "F1 at threshold",
        get: |m| m.f1,
        ci: |m| m.f1_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "F1 of flagging everything",
        get: |m| m.f1_flag_all,
        ci: no_ci,
        higher_better: None,
    },
    MetricRow {
        name: "False-flag rate at threshold (benign items)",
        get: |m| m.false_flag_rate,
        ci: no_ci,
        higher_better: Some(false),
    },
    MetricRow {
        name: "Precision at threshold",
        get: |m| m.precision,
        ci: no_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "Recall at threshold",
        get: |m| m.recall,
        ci: no_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "Accuracy at threshold",
        get: |m| m.accuracy,
        ci: no_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "Recall at precision ≥ 0.9",
        get: |m| m.recall_at_precision_0_9,
        ci: no_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "Recall at FPR ≤ 0.01",
        get: |m| m.recall_at_fpr_0_01,
        ci: no_ci,
        higher_better: Some(true),
    },
    MetricRow {
        name: "ECE (10 bins)",
        get: |m| m.ece,
        ci: no_ci,
        higher_better: Some(false),
    },
    MetricRow {
        name: "Brier score",
        get: |m| m.brier,
        ci: no_ci,
        higher_better: Some(false),
    },
    MetricRow {
        name: "Format failure rate",
        get: |m| m.format_failure_rate,
        ci: no_ci,
        higher_better: Some(false),
    },
    MetricRow {
        name: "Threshold",
        get: |m| m.threshold,
        ci: no_ci,
        higher_better: None,
    },
    MetricRow {
        name: "Prevalence",
        get: |m| m.prevalence,
        ci: no_ci,
        higher_better: None,
    },
];

pub(crate) fn source_text(m: &EvalMetrics) -> &'static str {
    match m.threshold_source {
        Some(ThresholdSource::Val) => "best F1 on validation",
        Some(ThresholdSource::Test) => "best F1 on the test data itself (optimistic)",
        Some(ThresholdSource::Fixed) => "fixed",
        None => "none (no positives to choose one)",
    }
}

pub(crate) fn counts_line(m: &EvalMetrics) -> String {
    let mut s = format!("{} items, {} violating", m.n, m.n_pos);
    if m.n_excluded > 0 {
        let _ = write!(
            s,
            "; {} rows excluded (invalid label or score)",
            m.n_excluded
        );
    }
    if let Some(w) = m.mean_reasoning_words {
        let _ = write!(s, "; mean reasoning length {w:.1} words");
    }
    s
}

pub(crate) const CSS: &str = "body{font-family:Helvetica,Arial,sans-serif;margin:24px auto;max-width:1120px;color:#222;padding:0 16px}\
h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}\
table{border-collapse:collapse;margin:8px 0;font-size:14px}th,td{padding:4px 10px;border-bottom:1px solid #e5e5e5;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f4f6f8}\
table.meta td{text-align:left;border:none;padding:2px 10px}table.meta td:first-child{color:#666;font-weight:bold}\
code{font-family:Menlo,Consolas,monospace;font-size:13px;word-break:break-all}\
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots figure{margin:0;border:1px solid #e5e5e5;border-radius:4px;padding:4px}\
svg{max-width:100%;height:auto;display:block}.muted{color:#666}.good{color:#1a7f37}.bad{color:#c62828}";

pub(crate) fn html_meta(meta: &ReportMeta) -> String {
    let mut out = String::from("<table class=\"meta\">");
    for (k, v) in meta.fields() {
        let value = if k == "Command" || k == "Data" {
            format!("<code>{}</code>", esc(&v))
        } else {
            esc(&v)
        };
        let _ = write!(out, "<tr><td>{}</td><td>{value}</td></tr>", esc(&k));
    }
    out.push_str("</table>");
    out
}

pub(crate) fn md_meta(meta: &ReportMeta) -> String {
    let mut out = String::new();
    for (k, v) in meta.fields() {
        let _ = writeln!(out, "- **{}**: `{}`", md(&k), v.replace('`', "'"));
    }
    out
}

pub(crate) fn html_metrics(m: &EvalMetrics) -> String {
    let mut out =
        String::from("<table><tr><th>Metric</th><th>Value</th><th>95% bootstrap CI</th></tr>");
    for r in METRIC_ROWS {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(r.name),
            f4((r.get)(m)),
            ci_text((r.ci)(m))
        );
    }
    out.push_str("</table>");
    let _ = write!(
        out,
        "<p class=\"muted\">{}. Threshold source: {}.</p>",
        esc(&counts_line(m)),
        source_text(m)
    );
    out
}

pub(crate) fn md_metrics(m: &EvalMetrics) -> String {
    let mut out = String::from("| Metric | Value | 95% bootstrap CI |\n|---|---:|---:|\n");
    for r in METRIC_ROWS {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            r.name,
            f4((r.get)(m)),
            ci_text((r.ci)(m))
        );
    }
    let _ = write!(
        out,
        "\n{}. Threshold source: {}.\n",
        counts_line(m),
        source_text(m)
    );
    out
}

/// (header, rows) of the per-category, per-slice and failure tables.
pub(crate) type Table = (Vec<&'static str>, Vec<Vec<String>>);

pub(crate) fn category_table(m: &EvalMetrics) -> Table {
    let rows = m
        .per_category
        .iter()
        .map(|(k, v)| {
            vec![
                k.clone(),
                v.n.to_string(),
                f4(v.recall),
                format!("{:.4}", v.mean_score),
                format!("{} ({})", f4(v.category_accuracy), v.n_pred_category),
            ]
        })
        .collect();
    (
        vec![
            "Category",
            "n (violating)",
            "Recall",
            "Mean score",
            "Category accuracy (n predicted)",
        ],
        rows,
    )
}

pub(crate) fn slice_table(m: &EvalMetrics) -> Table {
    let rows = m
        .per_slice
        .iter()
        .map(|(k, v)| {
            vec![
                k.clone(),
                v.n.to_string(),
                v.n_pos.to_string(),
                f4(v.pr_auc),
                f4(v.f1),
                f4(v.fpr),
            ]
        })
        .collect();
    (
        vec!["Slice", "n", "n violating", "PR-AUC", "F1", "FPR"],
        rows,
    )
}

pub(crate) fn failure_table(m: &EvalMetrics) -> Table {
    let rows = m
        .failure_counts
        .iter()
        .map(|(k, v)| {
            let share = if m.n == 0 {
                0.0
            } else {
                *v as f64 / m.n as f64
            };
            vec![k.clone(), v.to_string(), format!("{:.2}%", 100.0 * share)]
        })
        .collect();
    (vec!["Failure kind", "Count", "Share of items"], rows)
}

pub(crate) fn html_table((header, rows): &Table, empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"muted\">{}</p>", esc(empty));
    }
    let mut out = String::from("<table><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", esc(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

pub(crate) fn md_table((header, rows): &Table, empty: &str) -> String {
    if rows.is_empty() {
        return format!("_{empty}_\n");
    }
    let mut out = format!("| {} |\n", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        (0..header.len())
            .map(|i| if i == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for row in rows {
        let cells: Vec<String> = row.iter().map(|s| md(s)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

pub(crate) fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        esc(title)
    )
}
