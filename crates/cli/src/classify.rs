//! `modrl classify`: classify a JSONL / CSV / Parquet file under a policy into a results file, resumably
//! (see `modrl_serve::jobs`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use modrl_moderation::score::ClassifierOptions;
use modrl_moderation::score::ScoringMode;
use modrl_moderation::Policy;
use modrl_serve::jobs::{prepare, ClassifyOptions};

use crate::ModelArgs;

#[derive(Args)]
pub struct ClassifyArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Policy file (TOML).
    #[arg(long)]
    pub policy: PathBuf,
    /// Input: JSONL ({"id", "text"} per line; label optional), CSV with id and text columns, or
    /// Parquet (.parquet; streamed a batch at a time).
    #[arg(long = "in")]
    pub input: PathBuf,
    /// Output: .csv, .parquet, or JSONL otherwise; rows id, label (0/1), score, category.
    /// Appended to and resumed: ids already there are skipped (Parquet: through the journal
    /// OUT.partial.jsonl, turned into OUT when every row is done).
    #[arg(long)]
    pub out: PathBuf,
    /// Input column (JSONL key, CSV header, Parquet column) holding the ids.
    #[arg(long, default_value = "id")]
    pub id_column: String,
    /// Input column holding the texts.
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// verdict-token, greedy, reasoned (greedy reasoning, then the label token), or mc[:N[:T]].
    #[arg(long, default_value = "verdict-token")]
    pub scoring: String,
    /// Where bad input rows go (default: OUT.rejects.jsonl).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Label 1 when P(violating) >= this.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
    /// Prompt variant for greedy / mc: standard or reflection.
    #[arg(long, default_value = "standard")]
    pub variant: String,
    #[arg(long, default_value_t = 384)]
    pub max_new_tokens: usize,
    /// Most sequences per forward pass (mc: items per batch = batch_rows / N).
    #[arg(long, default_value_t = 32)]
    pub batch_rows: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fold the system message into the user turn (templates without a system role).
    #[arg(long)]
    pub no_system_role: bool,
}

pub fn run(a: ClassifyArgs) -> Result<()> {
    let policy = Policy::load(&a.policy)?;
    let mode: ScoringMode = a.scoring.parse()?;
    let opts = ClassifyOptions {
        input: a.input.clone(),
        out: a.out.clone(),
        rejects: a.rejects.clone(),
        id_column: a.id_column.clone(),
        text_column: a.text_column.clone(),
        classifier: ClassifierOptions {
            mode,
            threshold: a.threshold,
            max_new_tokens: a.max_new_tokens,
            batch_rows: a.batch_rows,
            seed: a.seed,
            reasoning_variant: crate::eval::parse_variant(&a.variant)?,
            no_system_role: a.no_system_role,
        },
    };
    // Check the model before `prepare` creates the output files: a wrong --model or --adapter
    // must not leave an empty results file behind.
    modrl_model::ModelConfig::from_dir(&a.model.model)?;
    if let Some(dir) = &a.model.adapter {
        if !dir.join("adapter_config.json").is_file() {
            anyhow::bail!(
                "adapter directory {} has no adapter_config.json",
                dir.display()
            );
        }
    }
    let rejects_path = opts.rejects_path();
    let job = prepare(opts)?;
    if !job.rejects.is_empty() {
        let r = &job.rejects[0];
        eprintln!(
            "warning: {} bad rows written to {}; first: {}:{}: {}",
            job.rejects.len(),
            rejects_path.display(),
            a.input.display(),
            r.line,
            r.error
        );
    }
    if job.already_done > 0 {
        eprintln!(
            "{}: {} rows already classified, {} to go",
            a.out.display(),
            job.already_done,
            job.todo_count
        );
    }
    if job.todo_count == 0 {
        eprintln!("nothing to classify");
        return job.finish();
    }
    let (model, tok) = crate::load_model(&a.model)?;
    let pb = ProgressBar::new(job.todo_count as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "classify [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta}",
        )
        .unwrap(),
    );
    let s = job.run(&model, &tok, policy, |n| pb.inc(n as u64))?;
    pb.finish_and_clear();
    println!(
        "classified {} rows ({} flagged) with {}; {} already done, {} rejected -> {}",
        s.classified,
        s.flagged,
        mode.describe(),
        s.already_done,
        s.rejected,
        a.out.display()
    );
    Ok(())
}
