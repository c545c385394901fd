use super::compare::*;
use super::*;
use crate::eval::tests::synthetic_rows;
use crate::eval::{evaluate, EvalOptions, ScoredRow};
use crate::plot::*;

fn meta(title: &str) -> ReportMeta {
    ReportMeta {
        title: title.into(),
        model: "qwen3-0.6b-grpo".into(),
        policy_id: "hate".into(),
        policy_version: "3".into(),
        data_file: "data/hatexplain_test.jsonl".into(),
        scoring_mode: "mc N=32 T=1.0".into(),
        command: "modrl eval --scores s.jsonl".into(),
        timestamp: "2025-01-01T00:00:00Z".into(),
        extra: vec![("seed".into(), "7".into())],
    }
}

/// Checks that every start tag has its end tag (a cheap well-formedness check of the SVG).
fn balanced(xml: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').ok_or("unclosed <")? + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') || tag.starts_with('?') || tag.ends_with('/') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
        } else {
            let name = tag.split_whitespace().next().unwrap_or("").to_string();
            if !["meta", "br"].contains(&name.as_str()) {
                stack.push(name);
            }
        }
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed {stack:?}"))
    }
}

fn external_links(html: &str) -> Vec<String> {
    let lower = html.to_lowercase();
    let mut found = Vec::new();
    for attr in ["src=", "href=", "url("] {
        for (i, _) in lower.match_indices(attr) {
            let value = lower[i + attr.len()..].trim_start_matches(['"', '\'', ' ']);
            if value.starts_with("http") || value.starts_with("//") {
                found.push(lower[i..(i + 60).min(lower.len())].to_string());
            }
        }
    }
    found
}

#[test]
fn report_is_complete_and_self_contained() {
    let rows = synthetic_rows(800, 21, 2.5);
    let m = evaluate(
        &rows,
        None,
        &EvalOptions {
            bootstrap: 100,
            ..EvalOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let written = write_report(dir.path(), &m, &meta("Hate <speech> & co")).unwrap();
    for file in [
        "report.md",
        "report.html",
        "pr.svg",
        "roc.svg",
        "reliability.svg",
        "hist.svg",
        "confusion.svg",
        "metrics.json",
        "report_meta.json",
    ] {
        assert!(
            written.contains(&dir.path().join(file)),
            "{file} not reported"
        );
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 5);
    for title in [
        "Precision-recall curve",
        "ROC curve",
        "Reliability diagram",
        "Score distribution by class",
        "Confusion matrix",
    ] {
        assert!(html.contains(&format!("<title>{title}</title>")), "{title}");
    }
    assert_eq!(external_links(&html), Vec::<String>::new());
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("@import"));
    assert!(html.contains("Hate &lt;speech&gt; &amp; co") && !html.contains("<speech>"));
    balanced(&html).unwrap();
    // Numbers in the page are evaluate's.
    assert!(html.contains(&format!("{:.4}", m.pr_auc.unwrap())));
    let [lo, hi] = m.pr_auc_ci.unwrap();
    assert!(html.contains(&format!("[{lo:.4}, {hi:.4}]")));
    assert!(html.contains("source:gab") && html.contains("slurs") && html.contains("bad_json"));
    for (file, _) in PLOTS {
        let svg = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{file}"
        );
        balanced(&svg).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{file}");
    }
    let roc = std::fs::read_to_string(dir.path().join("roc.svg")).unwrap();
    assert!(roc.contains("chance") && roc.contains(&format!("ROC-AUC {:.4}", m.roc_auc.unwrap())));
    let pr = std::fs::read_to_string(dir.path().join("pr.svg")).unwrap();
    assert!(pr.contains(&format!("prevalence {:.3}", m.prevalence.unwrap())));
    let confusion = std::fs::read_to_string(dir.path().join("confusion.svg")).unwrap();
    let cm = m.confusion.unwrap();
    for count in [cm.tp, cm.fp, cm.tn, cm.fn_] {
        assert!(confusion.contains(&format!(">{count}</text>")));
    }
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for (file, caption) in PLOTS {
        assert!(md.contains(&format!("![{caption}]({file})")), "{file}");
    }
    assert!(md.contains("| PR-AUC (average precision) |") && md.contains("| source:gab |"));
    assert!(md.contains("modrl eval --scores s.jsonl"));
    assert_eq!(
        EvalMetrics::read_json(dir.path().join("metrics.json")).unwrap(),
        m
    );
}

#[test]
fn degenerate_metrics_still_render() {
    let one_class = vec![ScoredRow::new("a", 0, 0.3), ScoredRow::new("b", 0, 0.6)];
    for rows in [Vec::new(), one_class] {
        let m = evaluate(&rows, None, &EvalOptions::default());
        let dir = tempfile::tempdir().unwrap();
        write_report(dir.path(), &m, &ReportMeta::default()).unwrap();
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert_eq!(html.matches("<svg").count(), 5);
        assert!(html.contains("<title>Moderation evaluation</title>"));
        assert!(html.contains("undefined: no violating items"));
        assert!(html.contains("no threshold: no confusion matrix"));
        assert!(!html.contains("NaN"));
        balanced(&html).unwrap();
    }
}

#[test]
fn comparison_has_both_models_and_deltas() {
    let root = tempfile::tempdir().unwrap();
    let (a_dir, b_dir, out) = (
        root.path().join("a"),
        root.path().join("b"),
        root.path().join("cmp"),
    );
    let opts = EvalOptions {
        bootstrap: 50,
        ..EvalOptions::default()
    };
    let ma = evaluate(&synthetic_rows(500, 1, 1.5), None, &opts);
    let mb = evaluate(&synthetic_rows(500, 1, 3.0), None, &opts);
    write_report(
        &a_dir,
        &ma,
        &ReportMeta {
            model: "base".into(),
            ..meta("A")
        },
    )
    .unwrap();
    // B has only metrics.json: the directory name labels it.
    std::fs::create_dir_all(&b_dir).unwrap();
    mb.write_json(b_dir.join("metrics.json")).unwrap();
    let written = compare_reports(&a_dir, &b_dir, &out).unwrap();
    assert_eq!(written.len(), 4);
    let html = std::fs::read_to_string(out.join("compare.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(html.contains("A: base") && html.contains("B: b"));
    let d = mb.pr_auc.unwrap() - ma.pr_auc.unwrap();
    assert!(d > 0.0);
    assert!(html.contains(&format!("<td class=\"good\">{d:+.4}</td>")));
    assert!(external_links(&html).is_empty() && !html.contains("http"));
    balanced(&html).unwrap();
    let pr = std::fs::read_to_string(out.join("compare_pr.svg")).unwrap();
    assert!(pr.contains(BLUE) && pr.contains(ORANGE));
    assert!(pr.contains(&format!("A: base (PR-AUC {:.4})", ma.pr_auc.unwrap())));
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("![ROC curves](compare_roc.svg)") && md.contains("| B − A |"));
    assert!(md.contains(&format!("{d:+.4}")));
    // A directory without metrics.json is an error naming the file.
    let err = compare_reports(&out, &b_dir, root.path().join("x")).unwrap_err();
    assert!(err.to_string().contains("metrics.json"));
}
