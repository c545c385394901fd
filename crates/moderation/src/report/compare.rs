//! [`compare_reports`]: two report folders side by side, with paired intervals when both have
//! scores.

use super::figures::*;
use super::tables::*;
use super::*;
use crate::plot::*;

/// A report directory read back for comparison.
pub(crate) struct Side {
    pub(crate) label: String,
    pub(crate) meta: Option<ReportMeta>,
    pub(crate) metrics: EvalMetrics,
}

pub(crate) fn read_side(dir: &Path, fallback: &str) -> Result<Side, EvalError> {
    let metrics = EvalMetrics::read_json(dir.join("metrics.json"))?;
    let meta: Option<ReportMeta> = std::fs::read_to_string(dir.join("report_meta.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let name = meta
        .as_ref()
        .map(|m| {
            if m.model.trim().is_empty() {
                m.title.clone()
            } else {
                m.model.clone()
            }
        })
        .filter(|s| !s.trim().is_empty())
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    Ok(Side {
        label: format!("{fallback}: {name}"),
        meta,
        metrics,
    })
}

pub(crate) fn delta(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(b? - a?)
}

/// Reads `metrics.json` (and `report_meta.json` when present, for labels) from two report
/// directories and writes `compare.md`, `compare.html`, `compare_pr.svg` and `compare_roc.svg`
/// into `out_dir`: a metrics table with A, B and B − A columns, a per-slice table and the PR
/// and ROC curves of both overlaid. Returns the paths written.
pub fn compare_reports(
    a_dir: impl AsRef<Path>,
    b_dir: impl AsRef<Path>,
    out_dir: impl AsRef<Path>,
) -> Result<Vec<PathBuf>, EvalError> {
    let (a_dir, b_dir, out_dir) = (a_dir.as_ref(), b_dir.as_ref(), out_dir.as_ref());
    let a = read_side(a_dir, "A")?;
    let b = read_side(b_dir, "B")?;
    create_dir(out_dir)?;
    let mut written = Vec::new();
    // Paired intervals of B - A on the items both scored, when both have scores.jsonl.
    let paired = crate::paired::compare_dirs(a_dir, b_dir, 1000, 0)?;
    let paired_md = match &paired {
        Some(c) => {
            let row = |name: &str, m: &crate::paired::PairedMetric| {
                format!(
                    "| {name} | {:.4} | {:.4} | {:+.4} | [{:+.4}, {:+.4}] | {} |\n",
                    m.a,
                    m.b,
                    m.diff,
                    m.ci[0],
                    m.ci[1],
                    if m.b_better() {
                        "B better"
                    } else if m.ci[1] < 0.0 {
                        "A better"
                    } else {
                        "no clear difference"
                    }
                )
            };
            let json = serde_json::to_string_pretty(c).unwrap_or_default();
            write_file(out_dir.join("compare.json"), &json, &mut written)?;
            format!(
                "## Paired comparison on the same items\n\n{} items scored by both ({} violating; {} only in A, {} only in B), \
                 {} paired bootstrap resamples of the items (seed {}).\n\n\
                 | Metric | A | B | B − A | 95 % paired CI | verdict |\n|---|---:|---:|---:|---|---|\n{}{}\n",
                c.n,
                c.n_pos,
                c.only_a,
                c.only_b,
                c.resamples,
                c.seed,
                row("PR-AUC", &c.pr_auc),
                row("ROC-AUC", &c.roc_auc)
            )
        }
        None => String::new(),
    };
    let make = |standalone: bool| {
        let s = [
            Series {
                label: a.label.clone(),
                color: BLUE,
                metrics: &a.metrics,
            },
            Series {
                label: b.label.clone(),
                color: ORANGE,
                metrics: &b.metrics,
            },
        ];
        (
            pr_svg(&s, "Precision-recall curves", standalone),
            roc_svg(&s, "ROC curves", standalone),
        )
    };
    let (pr_file, roc_file) = make(true);
    write_file(out_dir.join("compare_pr.svg"), &pr_file, &mut written)?;
    write_file(out_dir.join("compare_roc.svg"), &roc_file, &mut written)?;

    // Metrics rows: name, A, B, B - A, whether the change is good.
    let mut rows: Vec<(String, String, String, String, Option<bool>)> = vec![(
        "Items (violating)".into(),
        format!("{} ({})", a.metrics.n, a.metrics.n_pos),
        format!("{} ({})", b.metrics.n, b.metrics.n_pos),
        String::new(),
        None,
    )];
    for r in METRIC_ROWS {
        let (va, vb) = ((r.get)(&a.metrics), (r.get)(&b.metrics));
        let with_ci = |v: Option<f64>, ci: Option<[f64; 2]>| {
            let t = ci_text(ci);
            if t.is_empty() {
                f4(v)
            } else {
                format!("{} {t}", f4(v))
            }
        };
        let d = delta(va, vb);
        let good = match (r.higher_better, d) {
            (Some(h), Some(d)) if d != 0.0 => Some((d > 0.0) == h),
            _ => None,
        };
        rows.push((
            r.name.to_string(),
            with_ci(va, (r.ci)(&a.metrics)),
            with_ci(vb, (r.ci)(&b.metrics)),
            signed(d),
            good,
        ));
    }
    rows.push((
        "Threshold source".into(),
        a.metrics
            .threshold_source
            .map_or("none", ThresholdSource::as_str)
            .into(),
        b.metrics
            .threshold_source
            .map_or("none", ThresholdSource::as_str)
            .into(),
        String::new(),
        None,
    ));

    let mut slice_names: Vec<&String> = a
        .metrics
        .per_slice
        .keys()
        .chain(b.metrics.per_slice.keys())
        .collect();
    slice_names.sort();
    slice_names.dedup();
    let slice_rows: Vec<Vec<String>> = slice_names
        .iter()
        .map(|k| {
            let sa = a.metrics.per_slice.get(*k);
            let sb = b.metrics.per_slice.get(*k);
            let pa = sa.and_then(|s| s.pr_auc);
            let pb = sb.and_then(|s| s.pr_auc);
            let fa = sa.and_then(|s| s.f1);
            let fb = sb.and_then(|s| s.f1);
            vec![
                (*k).clone(),
                format!("{} / {}", sa.map_or(0, |s| s.n), sb.map_or(0, |s| s.n)),
                f4(pa),
                f4(pb),
                signed(delta(pa, pb)),
                f4(fa),
                f4(fb),
                signed(delta(fa, fb)),
            ]
        })
        .collect();
    let slice_table: Table = (
        vec![
            "Slice",
            "n (A / B)",
            "PR-AUC A",
            "PR-AUC B",
            "Δ PR-AUC",
            "F1 A",
            "F1 B",
            "Δ F1",
        ],
        slice_rows,
    );

    let title = format!("Comparison: {} vs {}", a.label, b.label);
    // HTML.
    let mut body = format!("<h1>{}</h1>\n<div class=\"plots\">", esc(&title));
    for side in [&a, &b] {
        let meta = side.meta.clone().unwrap_or_default();
        let _ = write!(
            body,
            "<div><h2>{}</h2>{}</div>",
            esc(&side.label),
            html_meta(&meta)
        );
    }
    body.push_str("</div>\n<h2>Metrics</h2>\n<table><tr><th>Metric</th>");
    let _ = write!(
        body,
        "<th>{}</th><th>{}</th><th>B − A</th></tr>",
        esc(&a.label),
        esc(&b.label)
    );
    for (name, va, vb, d, good) in &rows {
        let class = match good {
            Some(true) => " class=\"good\"",
            Some(false) => " class=\"bad\"",
            None => "",
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td{class}>{}</td></tr>",
            esc(name),
            esc(va),
            esc(vb),
            esc(d)
        );
    }
    body.push_str("</table>\n<p class=\"muted\">Green: B is better; red: B is worse (intervals are 95% bootstrap).</p>\n");
    if let Some(c) = &paired {
        let _ = write!(
            body,
            "<h2>Paired comparison on the same items</h2>\n<p>{}</p>\n",
            esc(&crate::paired::summary(c))
        );
    }
    body.push_str("<h2>Curves</h2>\n<div class=\"plots\">");
    let (pr_inline, roc_inline) = make(false);
    let _ = writeln!(
        body,
        "<figure>{pr_inline}</figure><figure>{roc_inline}</figure></div>"
    );
    let _ = write!(
        body,
        "<h2>Per slice</h2>\n{}\n",
        html_table(&slice_table, "No slices.")
    );
    write_file(
        out_dir.join("compare.html"),
        &html_page(&title, &body),
        &mut written,
    )?;

    // Markdown.
    let mut text = format!("# {}\n\n", md(&title));
    for side in [&a, &b] {
        let _ = write!(
            text,
            "## {}\n\n{}\n",
            md(&side.label),
            md_meta(&side.meta.clone().unwrap_or_default())
        );
    }
    let _ = write!(
        text,
        "## Metrics\n\n| Metric | {} | {} | B − A |\n|---|---:|---:|---:|\n",
        md(&a.label),
        md(&b.label)
    );
    for (name, va, vb, d, _) in &rows {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} |",
            md(name),
            md(va),
            md(vb),
            md(d)
        );
    }
    if !paired_md.is_empty() {
        let _ = write!(text, "\n{paired_md}");
    }
    let _ = write!(
        text,
        "\n## Curves\n\n![Precision-recall curves](compare_pr.svg)\n\n![ROC curves](compare_roc.svg)\n\n## Per slice\n\n{}",
        md_table(&slice_table, "No slices.")
    );
    write_file(out_dir.join("compare.md"), &text, &mut written)?;
    Ok(written)
}
