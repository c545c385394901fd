//! Importers for the raw public datasets under `shared/data/` (Davidson, ETHOS, HateXplain,
//! prompt-harm); each function's doc gives its exact label mapping.

use super::*;

/// HateXplain label ids (`Data/classes.npy` order).
const HX_HATE: i64 = 0;
const HX_NORMAL: i64 = 1;
const HX_OFFENSIVE: i64 = 2;

/// Which binary task to derive from a multi-class source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Hate speech only is violating.
    Hate,
    /// Hate speech or offensive language is violating.
    Offensive,
}

/// Reads a headed CSV fully into memory: (header, rows with their starting line).
fn read_headed_csv(
    path: &Path,
    delimiter: u8,
) -> Result<(csv::StringRecord, Vec<(usize, csv::StringRecord)>), DataError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .from_reader(file);
    let headers = reader.headers().map_err(|e| csv_err(path, e))?.clone();
    let mut rows = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| csv_err(path, e))?;
        let line = row.position().map_or(0, |p| p.line() as usize);
        rows.push((line, row));
    }
    Ok((headers, rows))
}

fn header_index(path: &Path, headers: &csv::StringRecord, name: &str) -> Result<usize, DataError> {
    resolve_column(path, Some(headers), &Column::Name(name.to_string()))
}

fn cell<'r>(
    path: &Path,
    line: usize,
    row: &'r csv::StringRecord,
    idx: usize,
    name: &str,
) -> Result<&'r str, DataError> {
    row.get(idx)
        .ok_or_else(|| DataError::Row(row_err(path, line, Some(name), "missing column")))
}

fn parse_cell<T: std::str::FromStr>(
    path: &Path,
    line: usize,
    row: &csv::StringRecord,
    idx: usize,
    name: &str,
) -> Result<T, DataError> {
    let raw = cell(path, line, row, idx, name)?.trim();
    raw.parse().map_err(|_| {
        DataError::Row(row_err(
            path,
            line,
            Some(name),
            format!("expected a number, got {raw:?}"),
        ))
    })
}

/// Decodes the HTML entities that occur in tweets: `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&#39;`,
/// `&apos;`. Numeric entities for emoji (e.g. `&#128514;`) are left as they are.
fn unescape_basic_html(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Imports Davidson et al. (2017) `labeled_data.csv`.
///
/// * id: `davidson-<index column>`; text: the tweet with basic HTML entities decoded;
/// * label: [`Task::Hate`] → `class == 0`; [`Task::Offensive`] → `class ∈ {0, 1}`;
/// * categories: `["hate"]` for class 0, `["offensive"]` for class 1, none for class 2;
/// * soft_label: fraction of annotators voting hate (Hate) or hate + offensive (Offensive);
/// * slices: `agreement:unanimous` or `agreement:split` (annotator agreement on the class).
pub fn import_davidson(path: impl AsRef<Path>, task: Task) -> Result<Vec<Record>, DataError> {
    let path = path.as_ref();
    let (headers, rows) = read_headed_csv(path, b',')?;
    let idx = |name| header_index(path, &headers, name);
    let (i_id, i_count, i_hate, i_off, i_class, i_text) = (
        0,
        idx("count")?,
        idx("hate_speech")?,
        idx("offensive_language")?,
        idx("class")?,
        idx("tweet")?,
    );
    let mut out = Vec::with_capacity(rows.len());
    for (line, row) in &rows {
        let line = *line;
        let id = cell(path, line, row, i_id, "index")?.trim();
        let count: u32 = parse_cell(path, line, row, i_count, "count")?;
        let hate: u32 = parse_cell(path, line, row, i_hate, "hate_speech")?;
        let off: u32 = parse_cell(path, line, row, i_off, "offensive_language")?;
        let class: u8 = parse_cell(path, line, row, i_class, "class")?;
        if class > 2 {
            return Err(DataError::Row(row_err(
                path,
                line,
                Some("class"),
                format!("expected 0, 1 or 2, got {class}"),
            )));
        }
        if count == 0 {
            return Err(DataError::Row(row_err(
                path,
                line,
                Some("count"),
                "zero annotators",
            )));
        }
        let (label, votes) = match task {
            Task::Hate => (class == 0, hate),
            Task::Offensive => (class <= 1, hate + off),
        };
        let mut record = Record::new(
            format!("davidson-{id}"),
            unescape_basic_html(cell(path, line, row, i_text, "tweet")?),
            u8::from(label),
        );
        match class {
            0 => record.categories.push("hate".into()),
            1 => record.categories.push("offensive".into()),
            _ => {}
        }
        record.soft_label = Some(f64::from(votes) / f64::from(count));
        let neither = count.saturating_sub(hate + off);
        let max_votes = hate.max(off).max(neither);
        record.slices.push(
            if max_votes == count {
                "agreement:unanimous"
            } else {
                "agreement:split"
            }
            .into(),
        );
        out.push(record);
    }
    Ok(out)
}

/// Whitespace-collapsed, lower-cased text used to join the two ETHOS files (they differ in
/// non-breaking spaces).
fn join_key(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Imports ETHOS `Ethos_Dataset_Binary.csv` (`;`-separated), optionally joined with
/// `Ethos_Dataset_Multi_Label.csv`.
///
/// * id: `ethos-<0-based row>`; label: `isHate >= 0.5`; soft_label: `isHate`;
/// * with the multi-label file (joined on whitespace-normalised text): categories are the hate
///   aspects scoring `>= 0.5` among `violence`, `gender`, `race`, `national_origin`,
///   `disability`, `religion`, `sexual_orientation`, and the slice `directed` or `generalized`
///   from `directed_vs_generalized`.
pub fn import_ethos(
    binary_path: impl AsRef<Path>,
    multi_label_path: Option<&Path>,
) -> Result<Vec<Record>, DataError> {
    const ASPECTS: [&str; 7] = [
        "violence",
        "gender",
        "race",
        "national_origin",
        "disability",
        "religion",
        "sexual_orientation",
    ];
    let path = binary_path.as_ref();
    let mut aspects: HashMap<String, (Vec<String>, Option<&'static str>)> = HashMap::new();
    if let Some(ml_path) = multi_label_path {
        let (headers, rows) = read_headed_csv(ml_path, b';')?;
        let i_text = header_index(ml_path, &headers, "comment")?;
        let i_directed = header_index(ml_path, &headers, "directed_vs_generalized")?;
        let cols = ASPECTS
            .iter()
            .map(|a| header_index(ml_path, &headers, a).map(|i| (*a, i)))
            .collect::<Result<Vec<_>, _>>()?;
        for (line, row) in &rows {
            let mut cats = Vec::new();
            for (name, i) in &cols {
                let score: f64 = parse_cell(ml_path, *line, row, *i, name)?;
                if score >= 0.5 {
                    cats.push(name.to_string());
                }
            }
            let directed: f64 =
                parse_cell(ml_path, *line, row, i_directed, "directed_vs_generalized")?;
            let slice = if directed >= 0.5 {
                "directed"
            } else {
                "generalized"
            };
            let text = cell(ml_path, *line, row, i_text, "comment")?;
            aspects.insert(join_key(text), (cats, Some(slice)));
        }
    }
    let (headers, rows) = read_headed_csv(path, b';')?;
    let i_text = header_index(path, &headers, "comment")?;
    let i_score = header_index(path, &headers, "isHate")?;
    let mut out = Vec::with_capacity(rows.len());
    for (n, (line, row)) in rows.iter().enumerate() {
        let score: f64 = parse_cell(path, *line, row, i_score, "isHate")?;
        if !(0.0..=1.0).contains(&score) {
            return Err(DataError::Row(row_err(
                path,
                *line,
                Some("isHate"),
                format!("expected a score in [0, 1], got {score}"),
            )));
        }
        let text = cell(path, *line, row, i_text, "comment")?;
        let mut record = Record::new(format!("ethos-{n}"), text.trim(), u8::from(score >= 0.5));
        record.soft_label = Some(score);
        if let Some((cats, slice)) = aspects.get(&join_key(text)) {
            record.categories = cats.clone();
            record.slices.extend(slice.map(str::to_string));
        }
        out.push(record);
    }
    Ok(out)
}

// --- HateXplain ---------------------------------------------------------------------------

/// Imports one HateXplain re-export CSV (`df_{val,test}_with_rationales.csv`, no header; see the
/// folder README for the columns).
///
/// * id: the post id; text: the post tokens joined by spaces (with `<user>`/`<number>`
///   placeholders, as in the original dataset);
/// * the majority label of the three annotators (posts without a majority are skipped — the
///   official val/test splits have none); label: [`Task::Hate`] → majority is `hatespeech`,
///   [`Task::Offensive`] → `hatespeech` or `offensive`; categories: `["hatespeech"]` or
///   `["offensive"]` for toxic majorities;
/// * soft_label: fraction of annotators voting for the violating class(es);
/// * rationale: the tokens marked by at least half of the annotators who gave a rationale,
///   joined by spaces (ERASER-style hard rationale); `None` when no rationale was given;
/// * slices: `source:twitter`, `source:gab` or `source:other` from the id suffix, and `target:<community>` for every target
///   community named by at least two annotators;
/// * split: as given.
pub fn import_hatexplain_csv(
    path: impl AsRef<Path>,
    split: Option<Split>,
    task: Task,
) -> Result<Vec<Record>, DataError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(file);
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| csv_err(path, e))?;
        let line = row.position().map_or(0, |p| p.line() as usize);
        let bad = |field: &str, msg: String| DataError::Row(row_err(path, line, Some(field), msg));
        let col = |i: usize, name: &str| -> Result<Py, DataError> {
            let raw = cell(path, line, &row, i, name)?;
            parse_py(raw).map_err(|e| bad(name, format!("not a Python literal: {e}")))
        };
        let id = cell(path, line, &row, 0, "post_id")?.trim().to_string();
        let annotation = col(1, "annotators")?;
        let labels = annotation
            .get("label")
            .and_then(Py::as_list)
            .and_then(|l| l.iter().map(Py::as_int).collect::<Option<Vec<_>>>())
            .ok_or_else(|| bad("annotators.label", "expected a list of ints".into()))?;
        let rationales = col(2, "rationales")?;
        let rationales = rationales
            .as_list()
            .and_then(|masks| {
                masks
                    .iter()
                    .map(|m| {
                        m.as_list()
                            .and_then(|m| m.iter().map(Py::as_int).collect::<Option<Vec<_>>>())
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| bad("rationales", "expected a list of 0/1 lists".into()))?;
        let tokens = col(3, "post_tokens")?;
        let tokens = tokens
            .as_list()
            .and_then(|t| {
                t.iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| bad("post_tokens", "expected a list of strings".into()))?;
        if tokens.is_empty() {
            return Err(bad("post_tokens", "empty post".into()));
        }

        let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
        for l in &labels {
            *counts.entry(*l).or_insert(0) += 1;
        }
        let Some((&majority, _)) = counts.iter().find(|(_, &c)| c * 2 > labels.len()) else {
            continue;
        };
        if ![HX_HATE, HX_NORMAL, HX_OFFENSIVE].contains(&majority) {
            return Err(bad("annotators.label", format!("unknown class {majority}")));
        }
        let is_positive = |l: i64| match task {
            Task::Hate => l == HX_HATE,
            Task::Offensive => l == HX_HATE || l == HX_OFFENSIVE,
        };
        let mut record = Record::new(
            id.clone(),
            tokens.join(" "),
            u8::from(is_positive(majority)),
        );
        record.split = split;
        record.soft_label =
            Some(labels.iter().filter(|&&l| is_positive(l)).count() as f64 / labels.len() as f64);
        match majority {
            HX_HATE => record.categories.push("hatespeech".into()),
            HX_OFFENSIVE => record.categories.push("offensive".into()),
            _ => {}
        }
        if !rationales.is_empty() {
            if let Some(m) = rationales.iter().find(|m| m.len() != tokens.len()) {
                return Err(bad(
                    "rationales",
                    format!(
                        "mask has {} entries but the post has {} tokens",
                        m.len(),
                        tokens.len()
                    ),
                ));
            }
            let marked: Vec<&str> = (0..tokens.len())
                .filter(|&i| {
                    let votes = rationales.iter().filter(|m| m[i] == 1).count();
                    votes * 2 >= rationales.len()
                })
                .map(|i| tokens[i].as_str())
                .collect();
            if !marked.is_empty() {
                record.rationale = Some(marked.join(" "));
            }
        }
        let source = ["twitter", "gab"]
            .into_iter()
            .find(|s| id.ends_with(&format!("_{s}")))
            .unwrap_or("other");
        record.slices.push(format!("source:{source}"));
        let mut target_votes: BTreeMap<String, usize> = BTreeMap::new();
        for per_annotator in annotation
            .get("target")
            .and_then(Py::as_list)
            .unwrap_or(&[])
        {
            let mut mine: Vec<&str> = per_annotator
                .as_list()
                .unwrap_or(&[])
                .iter()
                .filter_map(Py::as_str)
                .collect();
            mine.sort_unstable();
            mine.dedup();
            for t in mine {
                *target_votes.entry(t.to_string()).or_insert(0) += 1;
            }
        }
        record.slices.extend(
            target_votes
                .into_iter()
                .filter(|(t, n)| *n >= 2 && t != "None")
                .map(|(t, _)| format!("target:{t}")),
        );
        out.push(record);
    }
    Ok(out)
}

/// Imports the HateXplain folder: `df_val_with_rationales.csv` and `df_test_with_rationales.csv`.
/// Splits come from `post_id_divisions.json` when it is present (the official division), else
/// from the file names. See [`import_hatexplain_csv`] for the mapping.
pub fn import_hatexplain(dir: impl AsRef<Path>, task: Task) -> Result<Vec<Record>, DataError> {
    let dir = dir.as_ref();
    let mut records = import_hatexplain_csv(
        dir.join("df_val_with_rationales.csv"),
        Some(Split::Val),
        task,
    )?;
    records.extend(import_hatexplain_csv(
        dir.join("df_test_with_rationales.csv"),
        Some(Split::Test),
        task,
    )?);
    let divisions_path = dir.join("post_id_divisions.json");
    if divisions_path.exists() {
        let src = std::fs::read_to_string(&divisions_path).map_err(io_err(&divisions_path))?;
        let divisions: HashMap<String, Vec<String>> = serde_json::from_str(&src)
            .map_err(|e| DataError::Invalid(format!("{}: {e}", divisions_path.display())))?;
        let mut by_id: HashMap<&str, Split> = HashMap::new();
        for (name, ids) in &divisions {
            if let Some(split) = Split::parse(name) {
                for id in ids {
                    by_id.insert(id, split);
                }
            }
        }
        for record in &mut records {
            if let Some(split) = by_id.get(record.id.as_str()) {
                record.split = Some(*split);
            }
        }
    }
    Ok(records)
}

// --- Prompt harm --------------------------------------------------------------------------

/// Reads a JSON array of prompt objects, returning each element with its starting line.
fn read_json_array(path: &Path) -> Result<Vec<(usize, Value)>, DataError> {
    let src = std::fs::read_to_string(path).map_err(io_err(path))?;
    let raw: Vec<&serde_json::value::RawValue> = serde_json::from_str(&src).map_err(|e| {
        DataError::Row(row_err(
            path,
            e.line(),
            None,
            format!("expected a JSON array of objects: {e}"),
        ))
    })?;
    let base = src.as_ptr() as usize;
    // Elements come in source order, so lines are counted incrementally.
    let (mut counted_to, mut line) = (0usize, 1usize);
    raw.into_iter()
        .map(|item| {
            let offset = item.get().as_ptr() as usize - base;
            line += src.as_bytes()[counted_to..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            counted_to = offset;
            serde_json::from_str(item.get())
                .map(|v| (line, v))
                .map_err(|e| DataError::Row(row_err(path, line, None, e.to_string())))
        })
        .collect()
}

/// Imports one prompt-harm JSON file: an array of `{"prompt"|"text", "label": "safe"|"harmful",
/// "source"}` objects.
///
/// * id: `<name>-<0-based index>`; label: `harmful` → 1, `safe` → 0;
/// * `subcategory_source = true` (WildGuard benchmark): `source` is a subcategory such as
///   `wildguardmix_cyberattack`; its suffix becomes the category of harmful prompts
///   (`benign` gives none), and the split is `test` (the folder README's suggested use);
/// * `subcategory_source = false` (GuardReasoner sample): `source` names the origin dataset and
///   becomes the slice `origin:<source>`; no category, no split;
/// * slices always include `source:<name>`.
pub fn import_prompt_harm_file(
    path: impl AsRef<Path>,
    name: &str,
    subcategory_source: bool,
) -> Result<Vec<Record>, DataError> {
    let path = path.as_ref();
    let mut out = Vec::new();
    for (i, (line, value)) in read_json_array(path)?.into_iter().enumerate() {
        let bad = |field: &str, msg: String| DataError::Row(row_err(path, line, Some(field), msg));
        let text = ["prompt", "text"]
            .iter()
            .find_map(|k| value.get(*k).and_then(Value::as_str))
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| bad("prompt", "missing or empty".into()))?;
        let label = match value.get("label").and_then(Value::as_str) {
            Some("harmful") => 1,
            Some("safe") => 0,
            other => {
                return Err(bad(
                    "label",
                    format!("expected \"safe\" or \"harmful\", got {other:?}"),
                ))
            }
        };
        let source = value.get("source").and_then(Value::as_str).unwrap_or("");
        let mut record = Record::new(format!("{name}-{i:05}"), text, label);
        record.slices.push(format!("source:{name}"));
        if subcategory_source {
            let sub = source.strip_prefix("wildguardmix_").unwrap_or(source);
            if label == 1 && !sub.is_empty() && sub != "benign" {
                record.categories.push(sub.to_string());
            }
            record.split = Some(Split::Test);
        } else if !source.is_empty() {
            record.slices.push(format!("origin:{source}"));
        }
        out.push(record);
    }
    Ok(out)
}

/// Imports the prompt-harm folder: `guardreasoner_test_5k.json` (no split; for training and
/// validation) followed by `wildguard_full_benchmark.json` (split `test`, subcategories as
/// categories). See [`import_prompt_harm_file`].
pub fn import_prompt_harm(dir: impl AsRef<Path>) -> Result<Vec<Record>, DataError> {
    let dir = dir.as_ref();
    let mut records = import_prompt_harm_file(
        dir.join("guardreasoner_test_5k.json"),
        "guardreasoner",
        false,
    )?;
    records.extend(import_prompt_harm_file(
        dir.join("wildguard_full_benchmark.json"),
        "wildguard",
        true,
    )?);
    Ok(records)
}
