//! `modrl classify`'s job: rejects with line numbers, and a run cut short resumes with exactly one
//! result per id.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::*;
use modrl_model::{Device, Kind};
use modrl_moderation::parquet_io::jsonl_to_parquet;
use modrl_moderation::prompt::Variant;
use modrl_moderation::score::ClassifierOptions;
use modrl_moderation::score::ScoringMode;
use modrl_serve::jobs::{journal_path, prepare, read_results, ClassifyOptions, ResultRow};

fn options(input: &Path, out: &Path) -> ClassifyOptions {
    ClassifyOptions {
        input: input.to_path_buf(),
        out: out.to_path_buf(),
        rejects: None,
        id_column: "id".into(),
        text_column: "text".into(),
        classifier: ClassifierOptions {
            mode: ScoringMode::VerdictToken,
            threshold: 0.5,
            max_new_tokens: 8,
            batch_rows: 4,
            seed: 0,
            reasoning_variant: Variant::Standard,
            no_system_role: false,
        },
    }
}

fn write_input(dir: &Path) -> std::path::PathBuf {
    let mut lines = vec![];
    for i in 0..10 {
        lines.push(serde_json::json!({"id": format!("r{i}"), "text": format!("message number {i} about people")}).to_string());
        if i == 3 {
            lines.push("{\"id\": \"broken\", \"text\": ".to_string()); // line 5
        }
        if i == 6 {
            lines.push("{\"id\": \"r2\", \"text\": \"duplicate\"}".to_string());
            // line 9
        }
    }
    let p = dir.join("in.jsonl");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn by_id(rows: &[ResultRow]) -> HashMap<String, ResultRow> {
    let mut m = HashMap::new();
    for r in rows {
        assert!(
            m.insert(r.id.clone(), r.clone()).is_none(),
            "duplicate id {}",
            r.id
        );
    }
    m
}

#[test]
fn classify_resumes_after_a_crash_with_one_result_per_id() {
    let (model, tok) = modrl_model::load(&tiny_dir(), Device::Cpu, Kind::Float).unwrap();
    let d = tempfile::tempdir().unwrap();
    let input = write_input(d.path());
    for out_name in ["out.jsonl", "out.csv", "out.parquet"] {
        let out = d.path().join(out_name);
        let job = prepare(options(&input, &out)).unwrap();
        assert_eq!(job.todo_count, 10);
        assert_eq!(
            job.rejects.iter().map(|r| r.line).collect::<Vec<_>>(),
            [5, 9]
        );
        let mut progressed = 0;
        let s = job
            .run(&model, &tok, policy("hate-speech"), |n| progressed += n)
            .unwrap();
        assert_eq!((s.classified, s.already_done, s.rejected), (10, 0, 2));
        assert_eq!(progressed, 10);
        let first = read_results(&out).unwrap();
        assert_eq!(first.len(), 10);
        let first = by_id(&first);
        for r in first.values() {
            assert!((0.0..=1.0).contains(&r.score));
            assert_eq!(r.label, u8::from(r.score >= 0.5));
            assert!(r.label == 1 || r.category == "none");
        }
        // The rejects file: one JSON line per bad row, with its line number.
        let rejects = std::fs::read_to_string(format!("{}.rejects.jsonl", out.display())).unwrap();
        let rj: Vec<serde_json::Value> = rejects
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rj.len(), 2);
        assert_eq!(rj[0]["line"], 5);
        assert!(rj[0]["error"].as_str().unwrap().contains("invalid JSON"));
        assert_eq!(rj[1]["line"], 9);
        assert!(rj[1]["error"]
            .as_str()
            .unwrap()
            .contains("duplicate id \"r2\""));

        // A crash: the last three results never written and the one before cut mid-line. A
        // Parquet output crashes in its journal, before the Parquet file exists.
        let parquet = out_name.ends_with(".parquet");
        let written = if parquet {
            assert!(
                !journal_path(&out).exists(),
                "the journal is removed when done"
            );
            let text: String = read_results(&out)
                .unwrap()
                .iter()
                .map(|r| {
                    serde_json::json!({"id": r.id, "label": r.label, "score": r.score, "category": r.category})
                        .to_string()
                        + "\n"
                })
                .collect();
            std::fs::remove_file(&out).unwrap();
            std::fs::write(journal_path(&out), text).unwrap();
            journal_path(&out)
        } else {
            out.clone()
        };
        let text = std::fs::read_to_string(&written).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let keep = lines.len() - 3;
        let mut cut = lines[..keep - 1].join("\n") + "\n";
        cut.push_str(&lines[keep - 1][..lines[keep - 1].len() / 2]);
        std::fs::write(&written, cut).unwrap();

        let job = prepare(options(&input, &out)).unwrap();
        assert_eq!(job.already_done, 6);
        assert_eq!(job.todo_count, 4);
        let s = job
            .run(&model, &tok, policy("hate-speech"), |_| {})
            .unwrap();
        assert_eq!((s.classified, s.already_done), (4, 6));
        let second = read_results(&out).unwrap();
        assert_eq!(second.len(), 10, "exactly one result per id");
        let second = by_id(&second);
        for (id, a) in &first {
            let b = &second[id];
            assert!(
                (a.score - b.score).abs() < 1e-5,
                "{id}: {} vs {}",
                a.score,
                b.score
            );
            assert_eq!(a.label, b.label);
        }
        // A third run has nothing to do.
        let job = prepare(options(&input, &out)).unwrap();
        assert_eq!(job.todo_count, 0);
        assert_eq!(job.already_done, 10);
    }
}

#[test]
fn classify_reads_csv_without_labels_and_writes_categories() {
    let (model, tok) = modrl_model::load(&tiny_dir(), Device::Cpu, Kind::Float).unwrap();
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.csv");
    std::fs::write(&input, "id,text\na,\"hello, world\"\nb,\nc,another one\n").unwrap();
    let out = d.path().join("res.jsonl");
    let mut o = options(&input, &out);
    o.classifier.threshold = 0.0; // everything flagged: every row names a category
    o.rejects = Some(d.path().join("bad.jsonl"));
    let job = prepare(o).unwrap();
    let s = job.run(&model, &tok, policy("offensive"), |_| {}).unwrap();
    assert_eq!((s.classified, s.rejected, s.flagged), (2, 1, 2));
    let rows = read_results(&out).unwrap();
    let cats = policy("offensive").category_names();
    assert_eq!(
        rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["a", "c"]
    );
    for r in &rows {
        assert_eq!(r.label, 1);
        assert!(cats.contains(&r.category), "{}", r.category);
    }
    let bad = std::fs::read_to_string(d.path().join("bad.jsonl")).unwrap();
    assert!(
        bad.contains("\"line\":3") && bad.contains("`text` is empty"),
        "{bad}"
    );
}

#[test]
fn classify_streams_parquet_with_named_columns_and_adds_new_ids_to_a_finished_output() {
    let (model, tok) = modrl_model::load(&tiny_dir(), Device::Cpu, Kind::Float).unwrap();
    let d = tempfile::tempdir().unwrap();
    let rows = |n: usize| -> String {
        let mut s = String::new();
        for i in 0..n {
            let body = match i {
                2 => serde_json::Value::Null,
                4 => "   ".into(),
                _ => format!("post {i} about people").into(),
            };
            let id = if i == 6 { 1 } else { i as i64 }; // row 7 repeats the id of row 2
            s.push_str(&serde_json::json!({"post_id": id, "body": body, "extra": 0.5}).to_string());
            s.push('\n');
        }
        s
    };
    let jsonl = d.path().join("in.jsonl");
    let input = d.path().join("in.parquet");
    std::fs::write(&jsonl, rows(8)).unwrap();
    jsonl_to_parquet(&jsonl, &input, &[]).unwrap();
    let out = d.path().join("out.parquet");
    let mut o = options(&input, &out);
    o.id_column = "post_id".into();
    o.text_column = "body".into();
    let job = prepare(o.clone()).unwrap();
    assert_eq!((job.todo_count, job.total_rows), (5, 5));
    let s = job.run(&model, &tok, policy("offensive"), |_| {}).unwrap();
    assert_eq!((s.classified, s.rejected), (5, 3));
    let got = read_results(&out).unwrap();
    assert_eq!(
        got.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["0", "1", "3", "5", "7"]
    );
    assert!(!journal_path(&out).exists());
    let rejects = std::fs::read_to_string(format!("{}.rejects.jsonl", out.display())).unwrap();
    let rj: Vec<serde_json::Value> = rejects
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rj.iter()
            .map(|r| r["row"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [3, 5, 7]
    );
    assert!(rj[0]["error"].as_str().unwrap().contains("`body` is null"));
    assert!(rj[1]["error"].as_str().unwrap().contains("`body` is empty"));
    assert!(rj[2]["error"]
        .as_str()
        .unwrap()
        .contains("duplicate id \"1\" (first on row 2)"));
    // The input grows: a re-run classifies only the new ids and keeps the old results.
    std::fs::write(&jsonl, rows(11)).unwrap();
    jsonl_to_parquet(&jsonl, &input, &[]).unwrap();
    let job = prepare(o.clone()).unwrap();
    assert_eq!((job.already_done, job.todo_count), (5, 3));
    job.run(&model, &tok, policy("offensive"), |_| {}).unwrap();
    let again = read_results(&out).unwrap();
    assert_eq!(again.len(), 8);
    assert_eq!(&again[..5], &got[..]);
    // A column that is not there is an error naming the file and the columns it has.
    o.text_column = "content".into();
    let e = format!("{:#}", prepare(o).err().unwrap());
    assert!(
        e.contains("in.parquet: no column `content` (columns: post_id, body, extra)"),
        "{e}"
    );
}
