//! `modrl plot --run LABEL=DIR ... --key K ... --out FILE.svg`: runs side by side, one panel per
//! metric, one line per run (SVG, from each run's metrics.jsonl).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use modrl_train::plots::{plot_metrics, PlotOptions};

#[derive(Args)]
pub struct PlotArgs {
    /// A run to draw, as LABEL=RUN_DIR (or just RUN_DIR, labelled by its folder name); repeat.
    #[arg(long = "run", required = true)]
    runs: Vec<String>,
    /// Metric names as in metrics.jsonl; `*` matches anything (e.g. `rewards/*/mean`); repeat.
    #[arg(long = "key", required = true)]
    keys: Vec<String>,
    #[arg(long)]
    out: PathBuf,
    /// EMA smoothing weight in [0, 1) (raw values are drawn faintly behind).
    #[arg(long, default_value_t = 0.0)]
    smoothing: f64,
    #[arg(long)]
    title: Option<String>,
    /// Panels per row.
    #[arg(long, default_value_t = 2)]
    columns: usize,
}

pub fn run(a: PlotArgs) -> Result<()> {
    if !(0.0..1.0).contains(&a.smoothing) {
        bail!("--smoothing must be in [0, 1)");
    }
    let mut files = vec![];
    for r in &a.runs {
        let (label, dir) = match r.split_once('=') {
            Some((l, d)) => (l.to_string(), PathBuf::from(d)),
            None => {
                let d = PathBuf::from(r);
                let l = d
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| r.clone());
                (l, d)
            }
        };
        let m = dir.join("metrics.jsonl");
        if !m.is_file() {
            bail!("--run {r}: {} does not exist", m.display());
        }
        files.push((label, m));
    }
    let keys: Vec<&str> = a.keys.iter().map(String::as_str).collect();
    let opts = PlotOptions {
        smoothing: a.smoothing,
        title: a.title.clone(),
        columns: a.columns.max(1),
        ..Default::default()
    };
    let n = plot_metrics(&files, &keys, &a.out, &opts)
        .with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "wrote {} ({n} panels, {} runs)",
        a.out.display(),
        files.len()
    );
    Ok(())
}
