//! `modrl grade`: grade model answers with the rewards of a run config (the trainer's rewards,
//! the deterministic rubric and the LLM judge), and report how the judge agrees with the rules.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use modrl_moderation::Policy;
use modrl_train::grade::{grade_answers, load_rewards, summarize};
use modrl_train::judge::build_judge;
use modrl_train::rewards::RewardInput;
use serde_json::{json, Value};

#[derive(Args)]
pub struct GradeArgs {
    /// Answers to grade: JSONL rows with "id" and "output" (the scores.jsonl of `modrl eval
    /// --scoring reasoned --save-outputs`, or any file of that shape).
    #[arg(long)]
    pub answers: PathBuf,
    /// The data the answers are for (JSONL, CSV or Parquet): each answer's content, label and
    /// categories, by id.
    #[arg(long)]
    pub data: PathBuf,
    /// The policy the answers applied (TOML).
    #[arg(long)]
    pub policy: PathBuf,
    /// A TOML file with a [rewards] table (a run config), or with only that table's keys. A
    /// [rewards.judge] table adds the LLM judge (local model or OpenAI-compatible server).
    #[arg(long)]
    pub rewards: PathBuf,
    /// Output folder: graded.jsonl (one row per answer) and summary.json.
    #[arg(long)]
    pub out: PathBuf,
    /// The answers were asked for the verdict only (the format contract without reasoning).
    #[arg(long)]
    pub no_reasoning: bool,
    /// Grade at most this many answers (the first in file order).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Answers per reward call (the judge's batch).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
}

/// (id, answer) of each row of the answers file; errors name the file, line and field.
fn read_answers(path: &std::path::Path, limit: Option<usize>) -> Result<Vec<(String, String)>> {
    let f =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut out = vec![];
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}: cannot read", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        if limit.is_some_and(|n| out.len() >= n) {
            break;
        }
        let at = format!("{}:{}", path.display(), i + 1);
        let v: Value = serde_json::from_str(&line).with_context(|| format!("{at}: not JSON"))?;
        let field = |k: &str| -> Result<String> {
            match v.get(k) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => bail!("{at}: field \"{k}\" must be a string"),
                None => bail!(
                    "{at}: no field \"{k}\" (write answers with `modrl eval --save-outputs` and a \
                     generating --scoring: reasoned, greedy or mc)"
                ),
            }
        };
        out.push((field("id")?, field("output")?));
    }
    Ok(out)
}

pub fn run(a: GradeArgs) -> Result<()> {
    let cfg = load_rewards(&a.rewards)?;
    let policy = Policy::load(&a.policy)?;
    let answers = read_answers(&a.answers, a.limit)?;
    if answers.is_empty() {
        bail!("{}: no answers", a.answers.display());
    }
    let records = crate::data::read_records_with(&a.data, false, &crate::data::Columns::default())?;
    let by_id: HashMap<&str, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let mut inputs = Vec::with_capacity(answers.len());
    for (id, output) in &answers {
        let Some(&i) = by_id.get(id.as_str()) else {
            bail!(
                "{}: answer id {id:?} is not in {}",
                a.answers.display(),
                a.data.display()
            );
        };
        let r = &records[i];
        inputs.push(RewardInput {
            content: &r.text,
            label: r.label,
            categories: &r.categories,
            completion: output,
            rationale: r.rationale.as_deref(),
            policy: &policy,
        });
    }
    let judge = cfg.judge.as_ref().map(build_judge).transpose()?;
    eprintln!(
        "grading {} answers{}",
        inputs.len(),
        if judge.is_some() {
            " (with the LLM judge)"
        } else {
            ""
        }
    );
    let graded = grade_answers(&cfg, !a.no_reasoning, judge, &inputs, a.batch)?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("{}: cannot create", a.out.display()))?;
    let path = a.out.join("graded.jsonl");
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(&path)
            .with_context(|| format!("{}: cannot create", path.display()))?,
    );
    for ((id, _), (x, g)) in answers.iter().zip(inputs.iter().zip(&graded)) {
        let mut row = serde_json::to_value(g)?;
        row["id"] = json!(id);
        row["label"] = json!(x.label);
        writeln!(w, "{row}")?;
    }
    w.flush()?;
    let summary = summarize(&graded);
    let text = serde_json::to_string_pretty(&summary)?;
    std::fs::write(a.out.join("summary.json"), &text)?;
    println!("{text}");
    eprintln!("wrote {} and summary.json", path.display());
    Ok(())
}
