//! Tests of the dataset module.

#[test]
fn parquet_records_with_renamed_columns_and_row_errors() {
    let d = tempfile::tempdir().unwrap();
    let j = d.path().join("d.jsonl");
    std::fs::write(
        &j,
        "{\"post\": 7, \"body\": \"hello\", \"y\": 1, \"split\": \"test\"}\n\
         {\"post\": 8, \"body\": \"bad label\", \"y\": 2}\n\
         {\"post\": 7, \"body\": \"again\", \"y\": 0}\n",
    )
    .unwrap();
    let p = d.path().join("d.parquet");
    crate::parquet_io::jsonl_to_parquet(&j, &p, &[]).unwrap();
    let cols = [("post", "id"), ("body", "text"), ("y", "label")];
    let out = read_parquet(&p, &ReadOptions::skipping(), &cols).unwrap();
    assert_eq!(out.records.len(), 1);
    let r = &out.records[0];
    assert_eq!((r.id.as_str(), r.text.as_str(), r.label), ("7", "hello", 1));
    assert_eq!(r.split, Some(Split::Test));
    assert_eq!(out.skipped, 2);
    let e0 = out.errors[0].to_string();
    assert!(
        e0.contains("d.parquet: row 2: field \"label\": expected 0 or 1"),
        "{e0}"
    );
    let e1 = out.errors[1].to_string();
    assert!(
        e1.contains("row 3") && e1.contains("first seen on row 1"),
        "{e1}"
    );
    // Without skipping, the first bad row stops the read with that error.
    let e = read_parquet(&p, &ReadOptions::default(), &cols)
        .unwrap_err()
        .to_string();
    assert!(e.contains("d.parquet: row 2"), "{e}");
    // The canonical names are required when not renamed.
    let e = read_parquet(&p, &ReadOptions::default(), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("field \"id\": missing"), "{e}");
}
use super::*;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn temp_file(name: &str, contents: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(contents.as_bytes())
        .unwrap();
    (dir, path)
}

fn row_error(e: DataError) -> RowError {
    match e {
        DataError::Row(r) => r,
        other => panic!("expected a row error, got {other}"),
    }
}

#[test]
fn jsonl_minimal_and_full_rows() {
    let (_d, path) = temp_file(
        "data.jsonl",
        "{\"id\": \"a\", \"text\": \"hello\", \"label\": 0}\n\n\
         {\"id\": 7, \"text\": \"bye\", \"label\": true, \"category\": \"slurs\", \"split\": \"validation\", \"rationale\": \"bye\", \"slices\": [\"s\"], \"soft_label\": 0.75, \"extra\": 1}\n",
    );
    let out = read_jsonl(&path, &ReadOptions::default()).unwrap();
    assert_eq!(out.skipped, 0);
    assert_eq!(out.records.len(), 2);
    assert_eq!(out.records[0], Record::new("a", "hello", 0));
    let b = &out.records[1];
    assert_eq!(b.id, "7");
    assert_eq!(b.label, 1);
    assert_eq!(b.categories, vec!["slurs"]);
    assert_eq!(b.split, Some(Split::Val));
    assert_eq!(b.rationale.as_deref(), Some("bye"));
    assert_eq!(b.slices, vec!["s"]);
    assert_eq!(b.soft_label, Some(0.75));
}

#[test]
fn jsonl_error_names_file_line_field() {
    let mut src = String::new();
    for i in 0..16 {
        src.push_str(&format!(
            "{{\"id\": \"r{i}\", \"text\": \"t\", \"label\": 1}}\n"
        ));
    }
    src.push_str("{\"id\": \"bad\", \"text\": \"t\", \"label\": \"maybe\"}\n");
    let (_d, path) = temp_file("data.jsonl", &src);
    let e = row_error(read_jsonl(&path, &ReadOptions::default()).unwrap_err());
    assert_eq!(e.line, 17);
    assert_eq!(e.field.as_deref(), Some("label"));
    assert_eq!(
        e.to_string(),
        format!(
            "{}:17: field \"label\": expected 0 or 1, got \"maybe\"",
            path.display()
        )
    );
}

#[test]
fn jsonl_skip_bad_rows_counts_and_keeps_first_errors() {
    let src = "{\"id\": \"a\", \"text\": \"x\", \"label\": 1}\n\
               not json\n\
               {\"id\": \"b\", \"text\": \"\", \"label\": 1}\n\
               {\"id\": \"a\", \"text\": \"dup\", \"label\": 0}\n\
               {\"text\": \"no id\", \"label\": 0}\n\
               {\"id\": \"c\", \"text\": \"ok\", \"label\": 2}\n\
               {\"id\": \"d\", \"text\": \"ok\", \"label\": 0, \"split\": \"holdout\"}\n\
               {\"id\": \"e\", \"text\": \"fine\", \"label\": 0}\n";
    let (_d, path) = temp_file("d.jsonl", src);
    let out = read_jsonl(
        &path,
        &ReadOptions {
            skip_bad_rows: true,
            max_errors_kept: 3,
        },
    )
    .unwrap();
    assert_eq!(
        out.records
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        vec!["a", "e"]
    );
    assert_eq!(out.skipped, 6);
    assert_eq!(out.errors.len(), 3);
    assert_eq!(out.errors[0].line, 2);
    assert_eq!(out.errors[1].field.as_deref(), Some("text"));
    assert_eq!(out.errors[2].field.as_deref(), Some("id"));
    assert!(out.errors[2]
        .message
        .contains("duplicate id \"a\" (first seen on line 1)"));
}

#[test]
fn jsonl_round_trip() {
    let mut r = Record::new("x", "line one\nline \"two\" ✓", 1);
    r.categories = vec!["a".into(), "b".into()];
    r.rationale = Some("two".into());
    r.slices = vec!["target:Women".into()];
    r.split = Some(Split::Test);
    r.soft_label = Some(2.0 / 3.0);
    let records = vec![r, Record::new("y", "plain", 0)];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    write_jsonl(&path, &records).unwrap();
    let back = read_jsonl(&path, &ReadOptions::default()).unwrap();
    assert_eq!(back.records, records);
    // Serde round trip of the struct itself.
    let json = serde_json::to_string(&records[0]).unwrap();
    assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), records[0]);
}

#[test]
fn csv_with_mapping_and_multiline_fields() {
    let src = "key;body;y;cat;why\n\
               k1;\"multi\nline; text\";1;slurs|threats;\"line\"\n\
               k2;plain;0;none;\n\
               k3;oops;maybe;;\n";
    let (_d, path) = temp_file("d.csv", src);
    let mapping = CsvMapping {
        id: Some("key".into()),
        category: Some("cat".into()),
        rationale: Some("why".into()),
        delimiter: b';',
        ..CsvMapping::new("body", "y")
    };
    let e = row_error(read_csv(&path, &mapping, &ReadOptions::default()).unwrap_err());
    assert_eq!(e.line, 5);
    assert_eq!(e.field.as_deref(), Some("y"));
    assert_eq!(e.message, "expected 0 or 1, got \"maybe\"");

    let out = read_csv(&path, &mapping, &ReadOptions::skipping()).unwrap();
    assert_eq!(out.skipped, 1);
    assert_eq!(out.records.len(), 2);
    assert_eq!(out.records[0].id, "k1");
    assert_eq!(out.records[0].text, "multi\nline; text");
    assert_eq!(out.records[0].categories, vec!["slurs", "threats"]);
    assert_eq!(out.records[0].rationale.as_deref(), Some("line"));
    assert_eq!(out.records[1].categories, Vec::<String>::new());
    assert_eq!(out.records[1].rationale, None);
}

#[test]
fn csv_threshold_index_columns_and_missing_header() {
    let (_d, path) = temp_file("s.csv", "a post,0.83\nanother,0.2\n");
    let mapping = CsvMapping {
        has_headers: false,
        label_threshold: Some(0.5),
        ..CsvMapping::new(0usize, 1usize)
    };
    let out = read_csv(&path, &mapping, &ReadOptions::default()).unwrap();
    assert_eq!(out.records[0].id, "row-1");
    assert_eq!(out.records[0].label, 1);
    assert_eq!(out.records[0].soft_label, Some(0.83));
    assert_eq!(out.records[1].label, 0);

    let (_d2, path2) = temp_file("h.csv", "text,label\nx,1\n");
    let e = row_error(
        read_csv(
            &path2,
            &CsvMapping::new("text", "class"),
            &ReadOptions::default(),
        )
        .unwrap_err(),
    );
    assert_eq!((e.line, e.field.as_deref()), (1, Some("class")));
    assert!(e.message.contains("column not found"));
}

#[test]
fn splits_are_stratified_deterministic_and_order_independent() {
    let mut records: Vec<Record> = (0..1000)
        .map(|i| Record::new(format!("id{i}"), "t", u8::from(i % 10 == 0)))
        .collect();
    let config = SplitConfig {
        seed: 42,
        ..SplitConfig::default()
    };
    assign_splits(&mut records, &config).unwrap();
    let s = stats(&records);
    assert_eq!(s.by_split["train"].count, 800);
    assert_eq!(s.by_split["val"].count, 100);
    assert_eq!(s.by_split["test"].count, 100);
    for split in ["train", "val", "test"] {
        assert!(
            (s.by_split[split].prevalence - 0.1).abs() < 1e-12,
            "{split}"
        );
    }
    let mut reversed: Vec<Record> = records.iter().rev().cloned().collect();
    for r in &mut reversed {
        r.split = None;
    }
    assign_splits(&mut reversed, &config).unwrap();
    reversed.reverse();
    assert_eq!(reversed, records);

    let mut other = records.clone();
    for r in &mut other {
        r.split = None;
    }
    assign_splits(
        &mut other,
        &SplitConfig {
            seed: 7,
            ..config.clone()
        },
    )
    .unwrap();
    assert_ne!(other, records, "a different seed gives a different split");
}

#[test]
fn splits_keep_existing_and_validate_fractions() {
    let mut records = vec![Record::new("a", "t", 1), Record::new("b", "t", 0)];
    records[0].split = Some(Split::Test);
    let config = SplitConfig {
        train: 1.0,
        val: 0.0,
        test: 0.0,
        ..SplitConfig::default()
    };
    assign_splits(&mut records, &config).unwrap();
    assert_eq!(records[0].split, Some(Split::Test));
    assert_eq!(records[1].split, Some(Split::Train));
    let bad = SplitConfig {
        train: 0.9,
        ..SplitConfig::default()
    };
    assert!(matches!(
        assign_splits(&mut records, &bad),
        Err(DataError::Invalid(_))
    ));
}

#[test]
fn stats_counts_and_table() {
    let mut a = Record::new("a", "abcd", 1);
    a.categories = vec!["hate".into()];
    a.split = Some(Split::Train);
    let b = Record::new("b", "ab", 0);
    let s = stats(&[a, b]);
    assert_eq!(s.overall.count, 2);
    assert_eq!(s.overall.positives, 1);
    assert_eq!(s.overall.mean_chars, 3.0);
    assert_eq!(s.by_label[&1], (1, 0.5));
    assert_eq!(s.by_category["hate"].prevalence, 1.0);
    assert_eq!(s.by_split["unassigned"].count, 1);
    let table = s.to_string();
    assert!(table.contains("records: 2"), "{table}");
    assert!(table.contains("unassigned"), "{table}");
    assert!(table.contains("hate"), "{table}");
    assert_eq!(stats(&[]).overall.count, 0);
}

#[test]
fn python_literal_parser() {
    let v = parse_py(
        "{'label': [0, 2, 0], 'target': [['None'], [\"Women\", 'Islam']], 'x': (1.5, None, True)}",
    )
    .unwrap();
    assert_eq!(
        v.get("label").unwrap(),
        &Py::List(vec![Py::Int(0), Py::Int(2), Py::Int(0)])
    );
    assert_eq!(
        parse_py(r#"["don't", 'say \'hi\'', '\xe9\u00e9', "a\\b"]"#).unwrap(),
        Py::List(vec![
            Py::Str("don't".into()),
            Py::Str("say 'hi'".into()),
            Py::Str("éé".into()),
            Py::Str("a\\b".into()),
        ])
    );
    assert!(parse_py("[1, 2").is_err());
    assert!(parse_py("{'a' 1}").is_err());
    assert!(parse_py("[1] x").is_err());
}

#[test]
fn hatexplain_row_mapping() {
    let row = "123_gab,\"{'label': [0, 0, 2], 'annotator_id': [1, 2, 3], 'target': [['Women', 'Islam'], ['Women'], ['None']]}\",\"[[0, 1, 1], [0, 1, 0]]\",\"['you', 'stupid', 'x']\",[],x,x,x\n\
               456_twitter,\"{'label': [1, 1, 2], 'annotator_id': [1, 2, 3], 'target': [['None'], ['None'], ['None']]}\",[],\"['hello', 'there']\",[],x,x,x\n\
               789_twitter,\"{'label': [0, 1, 2], 'annotator_id': [1, 2, 3], 'target': [['None'], ['None'], ['None']]}\",[],\"['no', 'majority']\",[],x,x,x\n";
    let (_d, path) = temp_file("hx.csv", row);
    let hate = import_hatexplain_csv(&path, Some(Split::Val), Task::Hate).unwrap();
    assert_eq!(hate.len(), 2, "the no-majority post is skipped");
    let a = &hate[0];
    assert_eq!(a.id, "123_gab");
    assert_eq!(a.text, "you stupid x");
    assert_eq!(a.label, 1);
    assert_eq!(a.categories, vec!["hatespeech"]);
    assert_eq!(a.rationale.as_deref(), Some("stupid x"));
    assert_eq!(a.slices, vec!["source:gab", "target:Women"]);
    assert!((a.soft_label.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(a.split, Some(Split::Val));
    assert_eq!(hate[1].label, 0);
    assert_eq!(hate[1].rationale, None);
    let toxic = import_hatexplain_csv(&path, None, Task::Offensive).unwrap();
    assert_eq!(toxic[0].soft_label, Some(1.0));
    assert_eq!(toxic[1].label, 0);
}

#[test]
fn hatexplain_bad_literal_is_located() {
    let (_d, path) = temp_file(
        "hx.csv",
        "1_gab,\"{'label': [0, 0, 0]\",[],\"['a']\",[],x,x,x\n",
    );
    let e = row_error(import_hatexplain_csv(&path, None, Task::Hate).unwrap_err());
    assert_eq!(e.line, 1);
    assert_eq!(e.field.as_deref(), Some("annotators"));
}

#[test]
fn davidson_mapping_on_synthetic_rows() {
    let src = ",count,hate_speech,offensive_language,neither,class,tweet\n\
               0,3,2,1,0,0,\"they are &amp; always &lt;3\"\n\
               1,3,0,3,0,1,rude\n\
               2,3,0,1,2,2,fine\n";
    let (_d, path) = temp_file("labeled_data.csv", src);
    let hate = import_davidson(&path, Task::Hate).unwrap();
    assert_eq!(
        hate.iter().map(|r| r.label).collect::<Vec<_>>(),
        vec![1, 0, 0]
    );
    assert_eq!(hate[0].id, "davidson-0");
    assert_eq!(hate[0].text, "they are & always <3");
    assert_eq!(hate[0].categories, vec!["hate"]);
    assert_eq!(hate[0].slices, vec!["agreement:split"]);
    assert_eq!(hate[1].slices, vec!["agreement:unanimous"]);
    let off = import_davidson(&path, Task::Offensive).unwrap();
    assert_eq!(
        off.iter().map(|r| r.label).collect::<Vec<_>>(),
        vec![1, 1, 0]
    );
    assert!((off[2].soft_label.unwrap() - 1.0 / 3.0).abs() < 1e-12);

    let (_d2, bad) = temp_file(
        "labeled_data.csv",
        &src.replace("1,3,0,3,0,1", "1,3,0,3,0,x"),
    );
    let e = row_error(import_davidson(&bad, Task::Hate).unwrap_err());
    assert_eq!((e.line, e.field.as_deref()), (3, Some("class")));
}

#[test]
fn prompt_harm_file_mapping_and_errors() {
    let src = "[\n  {\"text\": \"how to hack\", \"label\": \"harmful\", \"source\": \"wildguardmix_cyberattack\"},\n  {\"text\": \"hi\", \"label\": \"safe\", \"source\": \"wildguardmix_benign\"}\n]";
    let (_d, path) = temp_file("wg.json", src);
    let r = import_prompt_harm_file(&path, "wildguard", true).unwrap();
    assert_eq!(r[0].id, "wildguard-00000");
    assert_eq!(r[0].label, 1);
    assert_eq!(r[0].categories, vec!["cyberattack"]);
    assert_eq!(r[1].categories, Vec::<String>::new());
    assert_eq!(r[1].split, Some(Split::Test));
    let (_d2, bad) = temp_file("wg.json", &src.replace("\"safe\"", "\"unsure\""));
    let e = row_error(import_prompt_harm_file(&bad, "wildguard", true).unwrap_err());
    assert_eq!((e.line, e.field.as_deref()), (3, Some("label")));
}

// --- Real data (shared/data, read-only) ------------------------------------------------

#[test]
fn real_davidson() {
    let records = import_davidson(
        data_dir().join("davidson-hate-offensive/labeled_data.csv"),
        Task::Hate,
    )
    .unwrap();
    assert_eq!(records.len(), 24_783);
    assert_eq!(records.iter().filter(|r| r.label == 1).count(), 1_430);
    let off = import_davidson(
        data_dir().join("davidson-hate-offensive/labeled_data.csv"),
        Task::Offensive,
    )
    .unwrap();
    assert_eq!(off.iter().filter(|r| r.label == 1).count(), 1_430 + 19_190);
}

#[test]
fn real_ethos_with_multilabel_join() {
    let dir = data_dir().join("ethos");
    let records = import_ethos(
        dir.join("Ethos_Dataset_Binary.csv"),
        Some(&dir.join("Ethos_Dataset_Multi_Label.csv")),
    )
    .unwrap();
    assert_eq!(records.len(), 998);
    let hate: Vec<_> = records.iter().filter(|r| r.label == 1).collect();
    assert_eq!(hate.len(), 433);
    // Every hateful comment is joined with its multi-label row.
    assert!(hate.iter().all(|r| r
        .slices
        .iter()
        .any(|s| s == "directed" || s == "generalized")));
    let s = stats(&records);
    assert_eq!(s.by_category["violence"].count, 142);
    assert_eq!(s.by_category["gender"].count, 86);
    assert_eq!(s.by_slice["directed"].count, 135);
}

#[test]
fn real_hatexplain() {
    let records = import_hatexplain(data_dir().join("hatexplain-partial"), Task::Hate).unwrap();
    assert_eq!(records.len(), 3_846);
    let s = stats(&records);
    assert_eq!(s.by_split["val"].count, 1_922);
    assert_eq!(s.by_split["test"].count, 1_924);
    assert_eq!(s.overall.positives, 593 + 594);
    let with_rationale = records.iter().filter(|r| r.rationale.is_some()).count();
    assert!(
        with_rationale > 2_000 && with_rationale <= 2_283,
        "{with_rationale}"
    );
    assert!(s.by_slice.contains_key("target:African"));
    let sources: usize = ["source:gab", "source:twitter", "source:other"]
        .iter()
        .map(|k| s.by_slice[*k].count)
        .sum();
    assert_eq!(sources, 3_846);
    let toxic = import_hatexplain(data_dir().join("hatexplain-partial"), Task::Offensive).unwrap();
    assert_eq!(
        toxic.iter().filter(|r| r.label == 1).count(),
        593 + 548 + 594 + 548
    );
}

#[test]
fn real_prompt_harm() {
    let records = import_prompt_harm(data_dir().join("prompt-harm")).unwrap();
    assert_eq!(records.len(), 6_554);
    let s = stats(&records);
    assert_eq!(s.by_slice["source:guardreasoner"].positives, 2_500);
    assert_eq!(s.by_slice["source:wildguard"].positives, 609);
    assert_eq!(s.by_split["test"].count, 1_554);
    assert_eq!(s.by_category["cyberattack"].count, 48);
    assert_eq!(s.by_slice["origin:WildGuardTrainR"].count, 3_502);
}
