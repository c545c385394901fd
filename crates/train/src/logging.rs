//! Per-step metric logging: `metrics.jsonl` plus a TensorBoard mirror (the reasoning-length
//! collapse monitor is `length_monitor`).
//!
//! Layout of a run directory:
//!
//! ```text
//! run_dir/metrics.jsonl   one JSON object per log call: {"step": n, "<metric>": value, ...}
//! run_dir/tb/             TensorBoard event files; every numeric metric is a scalar tagged with
//!                         its name (TRL names: reward, rewards/<fn>/mean, kl, eval/f1, ...)
//! ```
//!
//! Each `metrics.jsonl` line is written with a single `write` and flushed, so a crash leaves at
//! most one partial last line, which readers ignore.
//!
//! Non-finite floats are not valid JSON numbers; they are written as the strings `"NaN"`,
//! `"inf"` and `"-inf"` (a NaN loss is worth seeing) and read back as numbers by
//! [`metric_as_f64`], the plots and the TensorBoard mirror.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

use crate::tensorboard::EventWriter;

/// File name of the per-step metrics log inside a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Sub-directory of a run directory holding the TensorBoard event files.
pub const TB_DIR: &str = "tb";

/// One metric value that can be logged.
pub trait MetricValue {
    /// The JSON value written to `metrics.jsonl`.
    fn to_json(&self) -> Value;
}

/// A JSON value for a float; non-finite values become `"NaN"`, `"inf"` or `"-inf"`.
pub fn float_to_json(v: f64) -> Value {
    if v.is_nan() {
        Value::String("NaN".into())
    } else if v == f64::INFINITY {
        Value::String("inf".into())
    } else if v == f64::NEG_INFINITY {
        Value::String("-inf".into())
    } else {
        Value::from(v)
    }
}

/// The numeric value of a logged metric: JSON numbers, and the strings written for non-finite
/// floats (`"NaN"`, `"inf"`, `"-inf"`, also `"nan"`, `"Infinity"`, `"-Infinity"`).
/// Anything else (text, bools, null, objects) is not numeric.
pub fn metric_as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Some(f64::NAN),
            "inf" | "Infinity" | "+inf" => Some(f64::INFINITY),
            "-inf" | "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

impl MetricValue for f64 {
    fn to_json(&self) -> Value {
        float_to_json(*self)
    }
}
impl MetricValue for f32 {
    fn to_json(&self) -> Value {
        float_to_json(f64::from(*self))
    }
}
macro_rules! int_metric {
    ($($t:ty),*) => {$(
        impl MetricValue for $t {
            fn to_json(&self) -> Value {
                Value::from(*self)
            }
        }
    )*};
}
int_metric!(i32, i64, u32, u64, usize, bool);
impl MetricValue for Value {
    fn to_json(&self) -> Value {
        self.clone()
    }
}
impl MetricValue for str {
    fn to_json(&self) -> Value {
        Value::String(self.to_string())
    }
}
impl MetricValue for String {
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
}
impl<T: MetricValue + ?Sized> MetricValue for &T {
    fn to_json(&self) -> Value {
        (**self).to_json()
    }
}

/// Something that can be logged as one step's metrics: a `serde_json::Map`, a `BTreeMap` or
/// `HashMap` from names to numbers or JSON values, or a slice/`Vec` of `(name, value)` pairs.
/// Order is kept (a `HashMap` is sorted by name).
pub trait ToMetrics {
    /// The `(name, value)` pairs, in output order.
    fn to_metrics(&self) -> Vec<(String, Value)>;
}

impl ToMetrics for Map<String, Value> {
    fn to_metrics(&self) -> Vec<(String, Value)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
impl<K: AsRef<str>, V: MetricValue> ToMetrics for BTreeMap<K, V> {
    fn to_metrics(&self) -> Vec<(String, Value)> {
        self.iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.to_json()))
            .collect()
    }
}
impl<K: AsRef<str>, V: MetricValue, S> ToMetrics for HashMap<K, V, S> {
    fn to_metrics(&self) -> Vec<(String, Value)> {
        let mut out: Vec<_> = self
            .iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.to_json()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
impl<K: AsRef<str>, V: MetricValue> ToMetrics for [(K, V)] {
    fn to_metrics(&self) -> Vec<(String, Value)> {
        self.iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.to_json()))
            .collect()
    }
}
impl<K: AsRef<str>, V: MetricValue, const N: usize> ToMetrics for [(K, V); N] {
    fn to_metrics(&self) -> Vec<(String, Value)> {
        self.as_slice().to_metrics()
    }
}
impl<K: AsRef<str>, V: MetricValue> ToMetrics for Vec<(K, V)> {
    fn to_metrics(&self) -> Vec<(String, Value)> {
        self.as_slice().to_metrics()
    }
}

/// Writes `run_dir/metrics.jsonl` and mirrors numeric metrics to TensorBoard in `run_dir/tb/`.
///
/// Resuming: with `resume = true` the existing `metrics.jsonl` is kept (a partial last line left
/// by a crash is dropped) and the **first** [`RunLogger::log`] call removes every line whose
/// step is `>=` the step being logged, so a resumed run ends up with one line per step and no
/// stale tail from the crashed run. The same call writes a TensorBoard `SessionLog START` at that
/// step, which makes TensorBoard discard the stale events of the older event files. Use
/// [`RunLogger::resume_at`] to do the truncation right away instead.
pub struct RunLogger {
    run_dir: PathBuf,
    metrics_path: PathBuf,
    file: File,
    tb: EventWriter,
    resume_pending: bool,
}

impl RunLogger {
    /// Opens the logger for `run_dir` (created if missing).
    ///
    /// `resume = false` starts a fresh log: an existing `metrics.jsonl` is emptied and old
    /// `events.out.tfevents.*` files in `run_dir/tb/` are deleted (with a warning), so the
    /// TensorBoard view matches the metrics file. `resume = true`: see the type docs.
    pub fn create(run_dir: impl AsRef<Path>, resume: bool) -> Result<Self> {
        let run_dir = run_dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&run_dir)
            .with_context(|| format!("creating run dir {}", run_dir.display()))?;
        let metrics_path = run_dir.join(METRICS_FILE);
        let tb_dir = run_dir.join(TB_DIR);
        if resume {
            if metrics_path.exists() {
                let content = std::fs::read_to_string(&metrics_path)
                    .with_context(|| format!("reading {}", metrics_path.display()))?;
                let parsed = parse_metrics(&content, &metrics_path)?;
                if parsed.dropped_tail || !(content.is_empty() || content.ends_with('\n')) {
                    if parsed.dropped_tail {
                        tracing::warn!(
                            "{}: dropping a partial last line left by an interrupted run",
                            metrics_path.display()
                        );
                    }
                    rewrite_lines(&metrics_path, parsed.records.iter().map(|r| r.line))?;
                }
            }
        } else {
            if std::fs::metadata(&metrics_path)
                .map(|m| m.len() > 0)
                .unwrap_or(false)
            {
                tracing::warn!(
                    "{} exists; starting a fresh log (pass resume=true to keep it)",
                    metrics_path.display()
                );
            }
            File::create(&metrics_path)
                .with_context(|| format!("truncating {}", metrics_path.display()))?;
            if let Ok(entries) = std::fs::read_dir(&tb_dir) {
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    if name.to_string_lossy().starts_with("events.out.tfevents.") {
                        std::fs::remove_file(entry.path()).with_context(|| {
                            format!("removing old event file {}", entry.path().display())
                        })?;
                    }
                }
            }
        }
        let file = open_append(&metrics_path)?;
        let tb = EventWriter::create(&tb_dir)?;
        Ok(RunLogger {
            run_dir,
            metrics_path,
            file,
            tb,
            resume_pending: resume,
        })
    }

    /// Opens `run_dir` for a run resuming at `step` and drops the logged lines with
    /// `step >= step` now.
    pub fn resume_at(run_dir: impl AsRef<Path>, step: u64) -> Result<Self> {
        let mut logger = Self::create(run_dir, true)?;
        logger.truncate_from(step)?;
        Ok(logger)
    }

    /// Removes every `metrics.jsonl` line with a step `>= step` and marks a restart at `step`
    /// for TensorBoard.
    pub fn truncate_from(&mut self, step: u64) -> Result<()> {
        let content = std::fs::read_to_string(&self.metrics_path)
            .with_context(|| format!("reading {}", self.metrics_path.display()))?;
        let parsed = parse_metrics(&content, &self.metrics_path)?;
        let keep: Vec<&str> = parsed
            .records
            .iter()
            .filter(|r| r.step < step)
            .map(|r| r.line)
            .collect();
        if keep.len() != parsed.records.len() || parsed.dropped_tail {
            rewrite_lines(&self.metrics_path, keep.into_iter())?;
            self.file = open_append(&self.metrics_path)?;
        }
        self.tb.add_session_start(to_tb_step(step))?;
        self.tb.flush()?;
        self.resume_pending = false;
        Ok(())
    }

    /// Appends `{"step": step, ...metrics}` to `metrics.jsonl` (flushed) and writes each numeric
    /// metric as a TensorBoard scalar tagged with its name. Nested JSON objects are mirrored with
    /// `/`-joined tags (`{"rewards": {"f1": 0.5}}` -> `rewards/f1`); text, bools and nulls are
    /// only written to the JSON line.
    ///
    /// A metric named `step` is an error unless it equals `step`.
    pub fn log<M: ToMetrics + ?Sized>(&mut self, step: u64, metrics: &M) -> Result<()> {
        if self.resume_pending {
            self.truncate_from(step)?;
        }
        let pairs = metrics.to_metrics();
        let mut line = Map::with_capacity(pairs.len() + 1);
        line.insert("step".into(), Value::from(step));
        for (k, v) in pairs {
            if k == "step" {
                if metric_as_f64(&v) != Some(step as f64) {
                    bail!("metric named \"step\" ({v}) differs from the logged step {step}");
                }
                continue;
            }
            line.insert(k, v);
        }
        let mut text = serde_json::to_string(&Value::Object(line.clone()))?;
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .and_then(|_| self.file.flush())
            .with_context(|| format!("writing {}", self.metrics_path.display()))?;

        let tb_step = to_tb_step(step);
        let mut scalars = Vec::new();
        for (k, v) in line.iter().skip(1) {
            collect_scalars(k, v, &mut scalars);
        }
        for (tag, value) in scalars {
            self.tb.add_scalar(&tag, value, tb_step)?;
        }
        self.tb.flush()
    }

    /// Writes a text summary to TensorBoard only (e.g. sample completions).
    pub fn log_text(&mut self, step: u64, tag: &str, text: &str) -> Result<()> {
        self.tb.add_text(tag, text, to_tb_step(step))?;
        self.tb.flush()
    }

    /// Flushes the TensorBoard writer (`metrics.jsonl` is flushed on every line).
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush()?;
        self.tb.flush()
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Path of `metrics.jsonl`.
    pub fn metrics_path(&self) -> &Path {
        &self.metrics_path
    }

    /// The TensorBoard event file being written.
    pub fn tb_event_file(&self) -> &Path {
        self.tb.path()
    }
}

fn to_tb_step(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

fn collect_scalars(prefix: &str, v: &Value, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                collect_scalars(&format!("{prefix}/{k}"), v, out);
            }
        }
        _ => {
            if let Some(x) = metric_as_f64(v) {
                out.push((prefix.to_string(), x));
            }
        }
    }
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// Replaces `path` with `lines` (each followed by a newline), atomically via a rename.
fn rewrite_lines<'a>(path: &Path, lines: impl Iterator<Item = &'a str>) -> Result<()> {
    let tmp = path.with_extension("jsonl.tmp");
    {
        let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut buf = String::new();
        for l in lines {
            buf.push_str(l);
            buf.push('\n');
        }
        f.write_all(buf.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("replacing {} with {}", path.display(), tmp.display()))
}

struct RawRecord<'a> {
    step: u64,
    map: Map<String, Value>,
    line: &'a str,
}

struct Parsed<'a> {
    records: Vec<RawRecord<'a>>,
    dropped_tail: bool,
}

/// Parses metrics.jsonl content. Blank lines are skipped; an unparsable **last** line that has
/// no trailing newline is a crash leftover and is dropped; any other bad line is an error.
fn parse_metrics<'a>(content: &'a str, path: &Path) -> Result<Parsed<'a>> {
    let mut records = Vec::new();
    let mut dropped_tail = false;
    let ends_with_newline = content.ends_with('\n');
    let lines: Vec<&str> = content.lines().collect();
    let n = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let is_partial_tail = i + 1 == n && !ends_with_newline;
        let parsed: Result<(u64, Map<String, Value>)> = (|| {
            let mut map: Map<String, Value> = serde_json::from_str(trimmed)?;
            let step = map
                .remove("step")
                .and_then(|s| s.as_u64())
                .context("no non-negative integer \"step\"")?;
            Ok((step, map))
        })();
        match parsed {
            Ok((step, map)) => records.push(RawRecord {
                step,
                map,
                line: trimmed,
            }),
            Err(_) if is_partial_tail => dropped_tail = true,
            Err(e) => bail!("{}:{}: bad metrics line: {e:#}", path.display(), i + 1),
        }
    }
    Ok(Parsed {
        records,
        dropped_tail,
    })
}

/// Reads a `metrics.jsonl` file into `(step, metrics)` pairs in file order; `"step"` is removed
/// from each map. A partial last line (a run still writing, or killed mid-write) is ignored.
pub fn read_metrics(path: impl AsRef<Path>) -> Result<Vec<(u64, Map<String, Value>)>> {
    let path = path.as_ref();
    let content =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse_metrics(&content, path)?
        .records
        .into_iter()
        .map(|r| (r.step, r.map))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensorboard::tests::read_with_tensorboard;
    use serde_json::json;

    fn steps_of(path: &Path) -> Vec<u64> {
        read_metrics(path)
            .unwrap()
            .into_iter()
            .map(|r| r.0)
            .collect()
    }

    #[test]
    fn logs_lines_and_mirrors_to_tensorboard() {
        let dir = tempfile::tempdir().unwrap();
        let mut lg = RunLogger::create(dir.path(), false).unwrap();
        for step in 0..4u64 {
            let mut m = BTreeMap::new();
            m.insert("reward", step as f64 * 0.5);
            m.insert("rewards/accuracy/mean", 1.0 - step as f64 * 0.1);
            m.insert("completions/mean_length", 100.0 + step as f64);
            lg.log(step, &m).unwrap();
        }
        let mut extra = Map::new();
        extra.insert("eval/f1".into(), json!(0.75));
        extra.insert("note".into(), json!("text is kept in JSON only"));
        extra.insert("kl".into(), json!(f64::NAN.to_string()));
        extra.insert("nested".into(), json!({"a": 2, "b": {"c": 3.5}}));
        lg.log(3, &extra).unwrap();
        lg.log(4, &[("grad_norm", f64::INFINITY), ("loss", f64::NAN)])
            .unwrap();

        // Lines are on disk before the logger is dropped (flushed per line).
        let raw = std::fs::read_to_string(lg.metrics_path()).unwrap();
        let lines: Vec<&str> = raw.lines().collect();
        assert_eq!(lines.len(), 6);
        assert!(lines[0].starts_with("{\"step\":0,"), "{}", lines[0]);
        assert_eq!(lines[5], r#"{"step":4,"grad_norm":"inf","loss":"NaN"}"#);

        let recs = read_metrics(lg.metrics_path()).unwrap();
        assert_eq!(steps_of(lg.metrics_path()), [0, 1, 2, 3, 3, 4]);
        assert_eq!(recs[2].1["reward"], json!(1.0));
        assert!(!recs[2].1.contains_key("step"));
        assert_eq!(recs[4].1["note"], json!("text is kept in JSON only"));
        assert!(metric_as_f64(&recs[5].1["grad_norm"])
            .unwrap()
            .is_infinite());
        assert!(metric_as_f64(&recs[5].1["loss"]).unwrap().is_nan());

        let tb = read_with_tensorboard(&dir.path().join(TB_DIR));
        let s = tb["scalars"].as_object().unwrap();
        let mut tags: Vec<&str> = s.keys().map(|k| k.as_str()).collect();
        tags.sort();
        assert_eq!(
            tags,
            [
                "completions/mean_length",
                "eval/f1",
                "grad_norm",
                "kl",
                "loss",
                "nested/a",
                "nested/b/c",
                "reward",
                "rewards/accuracy/mean"
            ]
        );
        let reward: Vec<(i64, f64)> = s["reward"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
            .collect();
        assert_eq!(reward, [(0, 0.0), (1, 0.5), (2, 1.0), (3, 1.5)]);
        assert_eq!(s["eval/f1"][0][0], json!(3));
        assert_eq!(s["nested/b/c"][0][1], json!(3.5));
        assert_eq!(s["grad_norm"][0][1], json!("Infinity"));
    }

    #[test]
    fn step_metric_must_match() {
        let dir = tempfile::tempdir().unwrap();
        let mut lg = RunLogger::create(dir.path(), false).unwrap();
        lg.log(2, &[("step", 2.0), ("x", 1.0)]).unwrap();
        assert!(lg.log(3, &[("step", 2.0)]).is_err());
        assert_eq!(steps_of(lg.metrics_path()), [2]);
    }

    #[test]
    fn resume_drops_stale_tail_and_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut lg = RunLogger::create(dir.path(), false).unwrap();
            for step in 0..6u64 {
                lg.log(step, &[("reward", step as f64)]).unwrap();
            }
        }
        // A crash mid-write leaves a partial line.
        let path = dir.path().join(METRICS_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"step\":6,\"rew").unwrap();
        drop(f);
        assert_eq!(steps_of(&path), [0, 1, 2, 3, 4, 5]);

        // Resume from a checkpoint at step 3: steps 3.. are logged again, with new values.
        let mut lg = RunLogger::create(dir.path(), true).unwrap();
        // The partial line is gone as soon as the logger opens.
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("}\n"));
        for step in 3..8u64 {
            lg.log(step, &[("reward", 100.0 + step as f64)]).unwrap();
        }
        let recs = read_metrics(&path).unwrap();
        let got: Vec<(u64, f64)> = recs
            .iter()
            .map(|(s, m)| (*s, m["reward"].as_f64().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                (0, 0.0),
                (1, 1.0),
                (2, 2.0),
                (3, 103.0),
                (4, 104.0),
                (5, 105.0),
                (6, 106.0),
                (7, 107.0)
            ]
        );
        drop(lg);

        // TensorBoard sees the SessionLog START and drops the crashed run's steps >= 3.
        let tb = read_with_tensorboard(&dir.path().join(TB_DIR));
        let reward: Vec<(u64, f64)> = tb["scalars"]["reward"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
            .collect();
        assert_eq!(reward, got);
    }

    #[test]
    fn resume_at_truncates_immediately_and_fresh_start_clears() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut lg = RunLogger::create(dir.path(), false).unwrap();
            for step in 0..5u64 {
                lg.log(step, &[("reward", 1.0)]).unwrap();
            }
        }
        let path = dir.path().join(METRICS_FILE);
        let lg = RunLogger::resume_at(dir.path(), 2).unwrap();
        assert_eq!(steps_of(&path), [0, 1]);
        drop(lg);

        // A fresh (non-resume) start empties the log and removes old event files.
        let lg = RunLogger::create(dir.path(), false).unwrap();
        assert!(steps_of(&path).is_empty());
        let events: Vec<_> = std::fs::read_dir(dir.path().join(TB_DIR))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(events, [lg.tb_event_file().to_path_buf()]);
    }

    #[test]
    fn read_metrics_rejects_corruption_in_the_middle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(METRICS_FILE);
        std::fs::write(
            &path,
            "{\"step\":0,\"a\":1}\n{\"step\":1,\"a\n{\"step\":2}\n",
        )
        .unwrap();
        let err = read_metrics(&path).unwrap_err().to_string();
        assert!(err.contains(":2:"), "{err}");
        std::fs::write(&path, "{\"a\":1}\n").unwrap();
        assert!(
            read_metrics(&path).is_err(),
            "a line without step is an error"
        );
        // A partial last line without newline is tolerated.
        std::fs::write(&path, "{\"step\":0,\"a\":1}\n\n{\"step\":1,\"a\":").unwrap();
        assert_eq!(steps_of(&path), [0]);
    }
}
