//! `modrl eval`: score a dataset under a policy, write scores.jsonl (resumable), metrics.json and
//! report.html / report.md; `--compare A B` puts two reports side by side.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use modrl_moderation::eval::{evaluate, EvalOptions, ScoredRow, ScoresWriter};
use modrl_moderation::prompt::Variant;
use modrl_moderation::report::{compare_reports, write_report, ReportMeta};
use modrl_moderation::score::{ItemScore, ScoreConfig, Scorer, ScoringMode};
use modrl_moderation::{Policy, Record};

use crate::ModelArgs;

#[derive(Args)]
pub struct EvalArgs {
    /// HF model directory (config.json, *.safetensors, tokenizer.json); not needed with
    /// --compare or --from-scores.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32, or bf16 on CUDA.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// A PEFT LoRA adapter directory to apply on top of the model.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Policy file (TOML).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Data file: canonical JSONL ({"id","text","label"} at least), CSV with id,text,label, or
    /// Parquet with those columns (see --id-column, --text-column, --label-column).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// verdict-token, greedy, reasoned (P(violating) at the verdict after the greedy reasoning), or
    /// mc[:N[:T]] (Monte-Carlo, default N = 32, T = 1).
    #[arg(long, default_value = "verdict-token")]
    pub scoring: String,
    /// Output folder (scores.jsonl, val_scores.jsonl, metrics.json, report.html, report.md).
    #[arg(long)]
    pub out: PathBuf,
    /// Split to evaluate when records carry splits.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Split to choose the threshold on (best F1); "none" to choose on the evaluated split.
    #[arg(long, default_value = "val")]
    pub val_split: String,
    /// Evaluate at most this many items (the first in file order), and as many validation items
    /// unless --val-limit says otherwise.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Score at most this many validation items (the first in file order) for the threshold.
    #[arg(long)]
    pub val_limit: Option<usize>,
    /// Use this decision threshold instead of choosing one.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// How to choose the threshold on the validation items: best-f1, precision:P (the most
    /// recall with precision >= P, e.g. precision:0.9) or fpr:F (the most recall flagging at
    /// most a fraction F of benign items, e.g. fpr:0.05).
    #[arg(long, default_value = "best-f1")]
    pub threshold_rule: String,
    /// Column names of --data for CSV and Parquet files (JSONL uses the canonical fields).
    #[arg(long, default_value = "id")]
    pub id_column: String,
    #[arg(long, default_value = "text")]
    pub text_column: String,
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// Prompt variant for reasoning modes: standard or reflection.
    #[arg(long, default_value = "standard")]
    pub variant: String,
    #[arg(long, default_value_t = 384)]
    pub max_new_tokens: usize,
    /// Most sequences decoded at once (MC: items per batch = batch_rows / N).
    #[arg(long, default_value_t = 32)]
    pub batch_rows: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Skip malformed data rows (counted) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Also write the scores as Parquet (scores.parquet, val_scores.parquet) beside the JSONL.
    #[arg(long)]
    pub parquet: bool,
    /// Keep each generated answer (reasoning and verdict) in its row of scores.jsonl as
    /// "output" (generating modes: reasoned, greedy, mc; `modrl grade` reads them).
    #[arg(long)]
    pub save_outputs: bool,
    /// Fold the system message into the user turn (templates without a system role).
    #[arg(long)]
    pub no_system_role: bool,
    /// Compare two report folders instead (writes compare.html / compare.md into --out; with
    /// both folders' scores.jsonl also compare.json, paired bootstrap intervals of B - A on the
    /// items both scored).
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    pub compare: Option<Vec<PathBuf>>,
    /// Write the metrics and report of scores made elsewhere (e.g. a classical baseline): reads
    /// DIR/scores.jsonl and, for the threshold, DIR/val_scores.jsonl when present. No model.
    #[arg(long, value_name = "DIR", conflicts_with = "compare")]
    pub from_scores: Option<PathBuf>,
    /// With --from-scores: what produced the scores, for the report header.
    #[arg(long, default_value = "external scores")]
    pub scorer_name: String,
}

/// A reasoning prompt variant (standard or reflection) from the command line.
pub fn parse_variant(s: &str) -> Result<Variant> {
    let v: Variant = s.parse().map_err(anyhow::Error::msg)?;
    if !v.has_reasoning() {
        bail!("--variant {s}: the reasoning modes need standard or reflection (verdict-token scoring already uses the no-reasoning prompt)");
    }
    Ok(v)
}

fn to_row(r: &Record, s: &ItemScore, save_output: bool) -> ScoredRow {
    let mut row = ScoredRow::new(r.id.clone(), r.label, s.score);
    row.split = r.split.map(|x| x.as_str().to_string());
    row.categories = r.categories.clone();
    row.slices = r.slices.clone();
    row.pred_label = s.pred_label;
    row.pred_category = s.pred_category.clone();
    row.format_ok = s.format_ok;
    row.failure = s.failure.clone();
    row.reasoning_words = s.reasoning_words;
    row.n_samples = Some(s.n_samples);
    if save_output {
        row.output = s.output.clone();
    }
    row
}

/// Score `records` into the scores file at `path`, skipping ids already there; returns all rows.
/// `save_outputs`: keep each generated answer in its row.
pub fn score_into(
    scorer: &Scorer,
    records: &[&Record],
    path: &std::path::Path,
    what: &str,
    save_outputs: bool,
) -> Result<Vec<ScoredRow>> {
    let (mut writer, done, mut rows) = ScoresWriter::open_append(path)?;
    let ids: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    rows.retain(|r| ids.contains(r.id.as_str()));
    let todo: Vec<&Record> = records
        .iter()
        .copied()
        .filter(|r| !done.contains(&r.id))
        .collect();
    if !done.is_empty() {
        eprintln!(
            "{what}: {} items already scored in {}, {} to go",
            rows.len(),
            path.display(),
            todo.len()
        );
    }
    let pb = ProgressBar::new(todo.len() as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta}",
        )
        .unwrap(),
    );
    pb.set_prefix(what.to_string());
    for chunk in todo.chunks(scorer.items_per_batch()) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        let scores = scorer.score_batch(&texts)?;
        for (r, s) in chunk.iter().zip(&scores) {
            let row = to_row(r, s, save_outputs);
            writer.append(&row)?;
            rows.push(row);
        }
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    Ok(rows)
}

pub fn run(a: EvalArgs) -> Result<()> {
    if let Some(ab) = &a.compare {
        let written = compare_reports(&ab[0], &ab[1], &a.out)?;
        for p in written {
            eprintln!("wrote {}", p.display());
        }
        let json = a.out.join("compare.json");
        if json.exists() {
            let c: modrl_moderation::paired::PairedComparison =
                serde_json::from_str(&std::fs::read_to_string(&json)?)
                    .with_context(|| format!("{}", json.display()))?;
            println!(
                "A = {}, B = {}: {}",
                ab[0].display(),
                ab[1].display(),
                modrl_moderation::paired::summary(&c)
            );
        }
        return Ok(());
    }
    if let Some(dir) = &a.from_scores {
        return from_scores(&a, dir);
    }
    let margs = &ModelArgs {
        model: a
            .model
            .clone()
            .context("--model is required (or --compare A B, or --from-scores DIR)")?,
        device: a.device.clone(),
        dtype: a.dtype.clone(),
        adapter: a.adapter.clone(),
    };
    let policy_path = a.policy.as_ref().context("--policy is required")?;
    let data_path = a.data.as_ref().context("--data is required")?;
    let policy = Policy::load(policy_path)?;
    let mode: ScoringMode = a.scoring.parse()?;
    let cols = crate::data::Columns {
        id: a.id_column.clone(),
        text: a.text_column.clone(),
        label: a.label_column.clone(),
    };
    let records = crate::data::read_records_with(data_path, a.skip_bad_rows, &cols)?;
    if records.is_empty() {
        bail!("{}: no records", data_path.display());
    }
    let has_splits = records.iter().any(|r| r.split.is_some());
    let pick = |split: &str, limit: Option<usize>| -> Vec<&Record> {
        let mut v: Vec<&Record> = records
            .iter()
            .filter(|r| r.split.map(|s| s.as_str()) == Some(split))
            .collect();
        if let Some(n) = limit {
            v.truncate(n);
        }
        v
    };
    let (test, val): (Vec<&Record>, Vec<&Record>) = if has_splits {
        let t = pick(&a.split, a.limit);
        if t.is_empty() {
            bail!("{}: no records in split {:?}", data_path.display(), a.split);
        }
        let v = if a.val_split == "none" || a.threshold.is_some() {
            vec![]
        } else {
            pick(&a.val_split, a.val_limit.or(a.limit))
        };
        (t, v)
    } else {
        let mut t: Vec<&Record> = records.iter().collect();
        if let Some(n) = a.limit {
            t.truncate(n);
        }
        (t, vec![])
    };
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let (model, tok) = crate::load_model(margs)?;
    let cfg = ScoreConfig {
        mode,
        variant: parse_variant(&a.variant)?,
        max_new_tokens: a.max_new_tokens,
        batch_rows: a.batch_rows,
        seed: a.seed,
        no_system_role: a.no_system_role,
    };
    let scorer = Scorer::new(&model, &tok, &policy, cfg)?;
    eprintln!(
        "scoring {} test + {} validation items with {} (shared prompt prefix: {} tokens)",
        test.len(),
        val.len(),
        mode.describe(),
        scorer.prefix_len()
    );
    let t0 = std::time::Instant::now();
    let val_rows = if val.is_empty() {
        None
    } else {
        Some(score_into(
            &scorer,
            &val,
            &a.out.join("val_scores.jsonl"),
            "val",
            a.save_outputs,
        )?)
    };
    let test_rows = score_into(
        &scorer,
        &test,
        &a.out.join("scores.jsonl"),
        "test",
        a.save_outputs,
    )?;
    let secs = t0.elapsed().as_secs_f64();
    let opts = EvalOptions {
        threshold: a.threshold,
        rule: a.threshold_rule.parse().map_err(anyhow::Error::msg)?,
        bootstrap: a.bootstrap,
        seed: a.seed,
    };
    let metrics = evaluate(&test_rows, val_rows.as_deref(), &opts);
    let meta = ReportMeta {
        title: format!(
            "{} on {}",
            policy.id,
            data_path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        model: margs.describe(),
        policy_id: policy.id.clone(),
        policy_version: policy.version.to_string(),
        data_file: data_path.display().to_string(),
        scoring_mode: mode.describe(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        timestamp: crate::now_utc(),
        extra: vec![
            ("prompt variant".into(), format!("{:?}", scorer.cfg.variant)),
            ("scoring time (this run)".into(), format!("{secs:.1} s")),
        ],
    };
    write_report(&a.out, &metrics, &meta)?;
    write_parquet_scores(&a, &a.out)?;
    let j = serde_json::to_value(&metrics)?;
    println!(
        "n={} pr_auc={} roc_auc={} f1={} ece={} format_failure_rate={}  -> {}",
        j["n"],
        j["pr_auc"],
        j["roc_auc"],
        j["f1"],
        j["ece"],
        j["format_failure_rate"],
        a.out.join("report.html").display()
    );
    Ok(())
}

/// `--from-scores DIR`: metrics and report of an existing scores file.
fn from_scores(a: &EvalArgs, dir: &std::path::Path) -> Result<()> {
    let test_rows = modrl_moderation::eval::read_scores(dir.join("scores.jsonl"))?;
    let val_path = dir.join("val_scores.jsonl");
    let val_rows = if val_path.exists() && a.threshold.is_none() && a.val_split != "none" {
        Some(modrl_moderation::eval::read_scores(&val_path)?)
    } else {
        None
    };
    let opts = EvalOptions {
        threshold: a.threshold,
        rule: a.threshold_rule.parse().map_err(anyhow::Error::msg)?,
        bootstrap: a.bootstrap,
        seed: a.seed,
    };
    let metrics = evaluate(&test_rows, val_rows.as_deref(), &opts);
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let meta = ReportMeta {
        title: format!("{} ({})", a.scorer_name, dir.display()),
        model: a.scorer_name.clone(),
        policy_id: String::new(),
        policy_version: String::new(),
        data_file: dir.join("scores.jsonl").display().to_string(),
        scoring_mode: "external".into(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        timestamp: crate::now_utc(),
        extra: vec![],
    };
    write_report(&a.out, &metrics, &meta)?;
    write_parquet_scores(a, dir)?;
    let j = serde_json::to_value(&metrics)?;
    println!(
        "n={} pr_auc={} roc_auc={} f1={} ece={}  -> {}",
        j["n"],
        j["pr_auc"],
        j["roc_auc"],
        j["f1"],
        j["ece"],
        a.out.join("report.html").display()
    );
    Ok(())
}

/// `--parquet`: scores.jsonl (and val_scores.jsonl) of `src` as Parquet in the output folder.
fn write_parquet_scores(a: &EvalArgs, src: &std::path::Path) -> Result<()> {
    if !a.parquet {
        return Ok(());
    }
    for name in ["scores", "val_scores"] {
        let j = src.join(format!("{name}.jsonl"));
        if j.exists() {
            modrl_moderation::parquet_io::jsonl_to_parquet(
                &j,
                &a.out.join(format!("{name}.parquet")),
                &["id", "label", "score"],
            )?;
        }
    }
    Ok(())
}
