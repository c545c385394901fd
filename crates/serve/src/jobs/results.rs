//! The results file: [`ResultsWriter`] (resumable, a [`LineJournal`]; Parquet through its
//! journal) and [`read_results`].

use super::*;

/// One classification result.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub id: String,
    pub label: u8,
    pub score: f64,
    pub category: String,
}

/// Appends results, one flushed line each.
pub struct ResultsWriter {
    /// The file written to (for a Parquet output, its journal).
    pub(crate) journal: LineJournal,
    pub(crate) format: OutFormat,
    /// The Parquet file [`Self::finish`] writes from the journal.
    pub(crate) parquet: Option<PathBuf>,
}

pub(crate) const RESULT_COLUMNS: [&str; 4] = ["id", "label", "score", "category"];

pub(crate) fn result_json(r: &ResultRow) -> Value {
    json!({"id": r.id, "label": r.label, "score": r.score, "category": r.category})
}

impl ResultsWriter {
    /// Open (creating if needed) a results file; returns the writer and the ids already in it. A
    /// final line without its newline is cut off (it was being written when a run stopped).
    /// Any other unreadable line is an error naming the file and line. A Parquet output is
    /// written through its journal (see the module docs).
    pub fn open(path: &Path) -> Result<(ResultsWriter, HashSet<String>)> {
        if OutFormat::of(path) != OutFormat::Parquet {
            return Self::open_lines(path);
        }
        let journal = journal_path(path);
        if !journal.exists() && path.exists() {
            // Start the journal from the finished output: the journal then holds every row.
            let tmp = journal.with_extension("tmp");
            let mut out = String::new();
            parquet_io::read_json_rows(path, &["id"], |row, obj| {
                let r = result_from_json(&Value::Object(obj))
                    .with_context(|| format!("{}: row {row}", path.display()))?;
                out.push_str(&result_json(&r).to_string());
                out.push('\n');
                Ok(())
            })?;
            std::fs::write(&tmp, out)
                .and_then(|_| std::fs::rename(&tmp, &journal))
                .with_context(|| format!("{}: cannot write", journal.display()))?;
        }
        let (mut w, done) = Self::open_lines(&journal)?;
        w.parquet = Some(path.to_path_buf());
        Ok((w, done))
    }

    /// Write the Parquet output from the journal and remove the journal (nothing to do for
    /// JSONL and CSV outputs).
    pub fn finish(self) -> Result<()> {
        let Some(out) = &self.parquet else {
            return Ok(());
        };
        self.sync()?;
        let journal = self.journal.path();
        parquet_io::jsonl_to_parquet(journal, out, &RESULT_COLUMNS)?;
        std::fs::remove_file(journal)
            .with_context(|| format!("{}: cannot remove", journal.display()))
    }

    fn open_lines(path: &Path) -> Result<(ResultsWriter, HashSet<String>)> {
        let format = OutFormat::of(path);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        // A final line without its newline was being written when a run stopped: never kept (a
        // cut CSV line can still parse, with a cut score).
        let Reopened {
            journal,
            bytes,
            dropped,
        } = LineJournal::open::<anyhow::Error>(path, |_| Ok(false))?;
        if let Some(cut) = dropped {
            tracing::warn!(
                "{}: dropping an unfinished last line {:?} (it is classified again)",
                path.display(),
                String::from_utf8_lossy(&cut)
            );
        }
        let text = std::str::from_utf8(&bytes)
            .with_context(|| format!("{}: not UTF-8", path.display()))?;
        let mut done: HashMap<String, usize> = HashMap::new();
        let mut add = |id: String, line: usize| -> Result<()> {
            if let Some(first) = done.insert(id.clone(), line) {
                bail!(
                    "{}:{line}: duplicate id {id:?} (first on line {first})",
                    path.display()
                );
            }
            Ok(())
        };
        let mut needs_header = format == OutFormat::Csv;
        match format {
            OutFormat::Jsonl => {
                for (i, l) in text.lines().enumerate() {
                    if l.trim().is_empty() {
                        continue;
                    }
                    let v: Value = serde_json::from_str(l).with_context(|| {
                        format!("{}:{}: not a results line", path.display(), i + 1)
                    })?;
                    let id = v.get("id").and_then(Value::as_str).with_context(|| {
                        format!("{}:{}: result without a string `id`", path.display(), i + 1)
                    })?;
                    add(id.to_string(), i + 1)?;
                }
            }
            OutFormat::Csv if !text.trim().is_empty() => {
                let first = text.lines().next().unwrap_or("");
                if first.trim_end() != CSV_HEADER {
                    bail!(
                        "{}:1: expected the header {CSV_HEADER:?}, found {first:?}",
                        path.display()
                    );
                }
                needs_header = false;
                let mut rd = csv::ReaderBuilder::new().from_reader(text.as_bytes());
                for rec in rd.records() {
                    let rec = rec.with_context(|| format!("{}: invalid CSV", path.display()))?;
                    let line = rec.position().map_or(0, |p| p.line() as usize);
                    let id = rec
                        .get(0)
                        .with_context(|| format!("{}:{line}: empty row", path.display()))?;
                    add(id.to_string(), line)?;
                }
            }
            OutFormat::Csv | OutFormat::Parquet => {}
        }
        let mut w = ResultsWriter {
            journal,
            format,
            parquet: None,
        };
        if needs_header {
            // An empty (or whitespace-only) file: start it over with the header.
            w.journal.clear()?;
            w.write_line(CSV_HEADER)?;
        }
        Ok((w, done.into_keys().collect()))
    }

    fn write_line(&mut self, line: &str) -> Result<()> {
        Ok(self.journal.append(line.as_bytes())?)
    }

    /// Append one result as one line and flush it.
    pub fn append(&mut self, r: &ResultRow) -> Result<()> {
        let line = match self.format {
            OutFormat::Jsonl | OutFormat::Parquet => result_json(r).to_string(),
            OutFormat::Csv => {
                let mut w = csv::WriterBuilder::new()
                    .terminator(csv::Terminator::Any(b'\n'))
                    .from_writer(vec![]);
                w.write_record([
                    r.id.as_str(),
                    &r.label.to_string(),
                    &r.score.to_string(),
                    r.category.as_str(),
                ])?;
                String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?
                    .trim_end_matches('\n')
                    .to_string()
            }
        };
        self.write_line(&line)
    }

    /// Force what was written to disk.
    pub fn sync(&self) -> Result<()> {
        Ok(self.journal.sync()?)
    }
}

pub(crate) fn result_from_json(v: &Value) -> Result<ResultRow> {
    Ok(ResultRow {
        id: v["id"].as_str().context("no string `id`")?.to_string(),
        label: v["label"].as_u64().context("no integer `label`")? as u8,
        score: v["score"].as_f64().context("no number `score`")?,
        category: v["category"].as_str().unwrap_or("none").to_string(),
    })
}

/// Read every result of a results file (JSONL, CSV or Parquet), for checks and tests.
pub fn read_results(path: &Path) -> Result<Vec<ResultRow>> {
    let mut out = vec![];
    if OutFormat::of(path) == OutFormat::Parquet {
        parquet_io::read_json_rows(path, &["id"], |row, obj| {
            out.push(
                result_from_json(&Value::Object(obj))
                    .with_context(|| format!("{}: row {row}", path.display()))?,
            );
            Ok(())
        })?;
    } else if is_csv(path) {
        let mut rd = csv::Reader::from_path(path)?;
        for rec in rd.records() {
            let rec = rec?;
            out.push(ResultRow {
                id: rec[0].to_string(),
                label: rec[1].parse()?,
                score: rec[2].parse()?,
                category: rec[3].to_string(),
            });
        }
    } else {
        for (i, l) in std::fs::read_to_string(path)?.lines().enumerate() {
            if l.trim().is_empty() {
                continue;
            }
            let v: Value =
                serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1))?;
            out.push(ResultRow {
                id: v["id"].as_str().unwrap_or_default().to_string(),
                label: v["label"].as_u64().unwrap_or(9) as u8,
                score: v["score"].as_f64().unwrap_or(f64::NAN),
                category: v["category"].as_str().unwrap_or_default().to_string(),
            });
        }
    }
    Ok(out)
}
