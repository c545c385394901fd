use super::*;
use std::fs::OpenOptions;
use std::io::Write as _;

#[test]
fn jsonl_reader_rejects_bad_rows_with_line_numbers() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("in.jsonl");
    std::fs::write(
        &p,
        "{\"id\": \"a\", \"text\": \"hello\", \"label\": 1}\n\
             {\"id\": 7, \"text\": \"no label here\"}\n\
             \n\
             {\"id\": \"b\", \"text\": \n\
             {\"id\": \"c\"}\n\
             {\"id\": \"a\", \"text\": \"again\"}\n\
             [1, 2]\n\
             {\"id\": \"d\", \"text\": \"   \"}\n\
             {\"id\": \"e\", \"text\": \"fine\"}",
    )
    .unwrap();
    let (rows, rej) = read_inputs(&p, "id", "text").unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["a", "7", "e"]);
    assert_eq!(rows[2].line, 9);
    let lines: Vec<usize> = rej.iter().map(|r| r.line).collect();
    assert_eq!(lines, [4, 5, 6, 7, 8]);
    assert!(rej[0].error.contains("invalid JSON"), "{:?}", rej[0]);
    assert!(rej[1].error.contains("missing `text`"));
    assert!(rej[2]
        .error
        .contains("duplicate id \"a\" (first on line 1)"));
    assert!(rej[3].error.contains("expected a JSON object"));
    assert!(rej[4].error.contains("`text` is empty"));
    assert_eq!(rej[1].raw, "{\"id\": \"c\"}");
}

#[test]
fn csv_reader_needs_id_and_text_and_reports_lines() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("in.csv");
    std::fs::write(
        &p,
        "id,text,label\n1,hello,0\n2,\"multi\nline\",1\n3,too,many,fields\n,no id,0\n4,ok,\n",
    )
    .unwrap();
    let (rows, rej) = read_inputs(&p, "id", "text").unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.id.as_str(), r.line))
            .collect::<Vec<_>>(),
        [("1", 2), ("2", 3), ("4", 7)]
    );
    assert_eq!(rows[1].text, "multi\nline");
    assert_eq!(rej.iter().map(|r| r.line).collect::<Vec<_>>(), [5, 6]);
    assert!(rej[0].error.contains("expected 3 fields, found 4"));
    std::fs::write(&p, "id,content\n1,x\n").unwrap();
    let e = format!("{:#}", read_inputs(&p, "id", "text").unwrap_err());
    assert!(e.contains("in.csv:1") && e.contains("`text`"), "{e}");
}

#[test]
fn writer_resumes_and_drops_a_cut_last_line() {
    let d = tempfile::tempdir().unwrap();
    for name in ["out.jsonl", "out.csv"] {
        let p = d.path().join(name);
        let row = |id: &str| ResultRow {
            id: id.into(),
            label: 1,
            score: 0.75,
            category: "slurs".into(),
        };
        {
            let (mut w, done) = ResultsWriter::open(&p).unwrap();
            assert!(done.is_empty());
            w.append(&row("x,1")).unwrap();
            w.append(&row("y")).unwrap();
            w.append(&row("z")).unwrap();
        }
        // A crash in the middle of the last line.
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 4]).unwrap();
        let (mut w, done) = ResultsWriter::open(&p).unwrap();
        assert_eq!(
            done,
            HashSet::from(["x,1".to_string(), "y".to_string()]),
            "{name}"
        );
        w.append(&row("z")).unwrap();
        drop(w);
        let got = read_results(&p).unwrap();
        assert_eq!(got, vec![row("x,1"), row("y"), row("z")], "{name}");
        // A complete duplicate is an error that names the line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        let line = if name.ends_with("csv") {
            "y,1,0.75,slurs\n"
        } else {
            "{\"id\":\"y\",\"label\":1,\"score\":0.75,\"category\":\"slurs\"}\n"
        };
        f.write_all(line.as_bytes()).unwrap();
        let e = format!("{:#}", ResultsWriter::open(&p).err().unwrap());
        assert!(e.contains("duplicate id \"y\""), "{e}");
    }
}
