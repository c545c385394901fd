//! `modrl train --config FILE [--overlay FILE ...] [--set KEY=VALUE ...] [--max-steps N] [--out DIR] [--resume]`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use modrl_train::config::RunConfig;
use modrl_train::trainer::{self, TrainOptions};

#[derive(Args)]
pub struct TrainArgs {
    /// Run config (TOML); see docs/config-reference.md and configs/runs/.
    #[arg(long)]
    pub config: PathBuf,
    /// Cap every stage at this many optimizer steps.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Run folder (default: the config's run.out, else runs/<config name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the run folder's latest checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Stop (after a checkpoint) once this many steps over all stages are done; `--resume`
    /// continues. For time-sliced jobs.
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Override a config value, e.g. `--set data.max_train_examples=300 --set stages=["rl"]`
    /// (repeatable; TOML values, dotted keys; validated like the file).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A TOML file merged over the config (tables key by key), before the --set overrides;
    /// repeatable, later ones win. E.g. a recipe from configs/runs/recipes/.
    #[arg(long = "overlay", value_name = "FILE")]
    pub overlay: Vec<PathBuf>,
}

pub fn run(a: TrainArgs) -> Result<()> {
    let cfg = RunConfig::load_layers(&a.config, &a.overlay, &a.set)?;
    let opts = TrainOptions {
        resume: a.resume,
        max_steps: a.max_steps,
        out: a.out.clone(),
        stop_after: a.stop_after,
    };
    let dir = trainer::run(&cfg, &a.config, &opts)?;
    println!("run folder: {}", dir.display());
    Ok(())
}
