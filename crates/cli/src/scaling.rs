//! `modrl scaling fit --in FILE.jsonl --x KEY --y KEY`: fit the ScaleRL sigmoid compute-scaling
//! law `R(C) = R0 + (A - R0) / (1 + (C_mid / C)^B)` to (compute, metric) rows, with bootstrap
//! confidence intervals, a hold-out extrapolation check and an optional SVG plot.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use modrl_train::scaling::{self, fmt_num, FitOptions, Report};

#[derive(Subcommand)]
pub enum ScalingCmd {
    /// Fit R(C) = R0 + (A - R0) / (1 + (C_mid / C)^B) to (compute, metric) rows of a JSONL file.
    Fit(FitArgs),
}

#[derive(Args)]
pub struct FitArgs {
    /// JSONL file of objects (e.g. a run's metrics.jsonl); rows lacking --x or --y are skipped.
    #[arg(long = "in", value_name = "FILE.jsonl")]
    input: PathBuf,
    /// Compute key, e.g. rollout_tokens (values must be > 0). Keys are matched as written
    /// ("eval/pr_auc"), then as a path into nested objects.
    #[arg(long = "x", value_name = "KEY")]
    x_key: String,
    /// Metric key, e.g. eval/pr_auc.
    #[arg(long = "y", value_name = "KEY")]
    y_key: String,
    /// Print exactly one JSON object (the report) on stdout instead of a summary.
    #[arg(long)]
    json: bool,
    /// Pin R0 (e.g. to the zero-step value of the metric) instead of fitting it.
    #[arg(long, value_name = "VALUE", allow_negative_numbers = true)]
    r0: Option<f64>,
    /// Upper bound on the asymptote A (e.g. 1 for PR-AUC); default: unbounded.
    #[arg(long = "a-max", value_name = "VALUE", allow_negative_numbers = true)]
    a_max: Option<f64>,
    /// Bootstrap resamples for the 95% intervals (0: none).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    bootstrap: usize,
    /// Seed for the bootstrap resampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fit on this fraction of the points with the least compute and predict the rest (0: none).
    #[arg(long, value_name = "FRAC", default_value_t = 0.5)]
    holdout: f64,
    /// Write an SVG plot (log-x) of the points and the fitted curve.
    #[arg(long, value_name = "OUT.svg")]
    plot: Option<PathBuf>,
}

pub fn run(c: ScalingCmd) -> Result<()> {
    match c {
        ScalingCmd::Fit(a) => fit(a),
    }
}

fn fit(a: FitArgs) -> Result<()> {
    if !(0.0..1.0).contains(&a.holdout) {
        bail!("--holdout must be in [0, 1) (0 turns the hold-out check off)");
    }
    let mut points = scaling::read_points(&a.input, &a.x_key, &a.y_key)?;
    // metrics.jsonl usually starts with an evaluation at zero compute, which the log-x law cannot
    // take; set it aside and point at --r0 instead.
    let zero: Vec<f64> = points.iter().filter(|p| p.x == 0.0).map(|p| p.y).collect();
    points.retain(|p| p.x != 0.0);
    let mut notes = vec![];
    if !zero.is_empty() {
        let mean = zero.iter().sum::<f64>() / zero.len() as f64;
        notes.push(format!(
            "left out {} row(s) with {} = 0 (the law needs compute > 0){}",
            zero.len(),
            a.x_key,
            if a.r0.is_none() {
                format!(
                    "; their mean {} is {}: pass --r0 {} to pin R0 to it",
                    a.y_key,
                    fmt_num(mean),
                    fmt_num(mean)
                )
            } else {
                String::new()
            }
        ));
    }
    if points.is_empty() {
        bail!(
            "{}: no row has both \"{}\" and \"{}\" as numbers",
            a.input.display(),
            a.x_key,
            a.y_key
        );
    }
    let opts = FitOptions {
        r0: a.r0,
        a_max: a.a_max,
        ..Default::default()
    };
    let fit = scaling::fit_with(&points, &opts).with_context(|| {
        format!(
            "fitting {} against {} ({} rows of {})",
            a.y_key,
            a.x_key,
            points.len(),
            a.input.display()
        )
    })?;
    let intervals = if a.bootstrap > 0 {
        match scaling::bootstrap(&points, &opts, a.bootstrap, a.seed) {
            Ok(ci) => Some(ci),
            Err(e) => {
                notes.push(format!("no confidence intervals: {e:#}"));
                None
            }
        }
    } else {
        None
    };
    let holdout = if a.holdout > 0.0 {
        match scaling::holdout_with(&points, a.holdout, &opts) {
            Ok(h) => Some(h),
            Err(e) => {
                notes.push(format!("no hold-out check: {e:#}"));
                None
            }
        }
    } else {
        None
    };
    let mut report = Report::new(
        &points,
        &a.x_key,
        &a.y_key,
        &fit,
        &opts,
        intervals.as_ref(),
        holdout,
    );
    report.warnings.splice(0..0, notes);
    if let Some(out) = &a.plot {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(out, scaling::plot_svg(&points, &fit, &a.x_key, &a.y_key))
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_summary(&report, &a);
    }
    Ok(())
}

fn print_summary(r: &Report, a: &FitArgs) {
    println!(
        "{} vs {}: {} points from {}",
        r.y_key,
        r.x_key,
        r.n,
        a.input.display()
    );
    println!("  R(C) = R0 + (A - R0) / (1 + (C_mid / C)^B)");
    let ci = |c: Option<[f64; 2]>| match c {
        Some([lo, hi]) => format!("95% CI [{}, {}]", fmt_num(lo), fmt_num(hi)),
        None => String::new(),
    };
    let r0_note = if r.r0_fixed {
        "(fixed)".to_string()
    } else {
        ci(r.ci_r0)
    };
    for (name, v, note) in [
        ("R0", r.r0, r0_note),
        ("A", r.a, ci(r.ci_a)),
        ("B", r.b, ci(r.ci_b)),
        ("C_mid", r.c_mid, ci(r.ci_c_mid)),
    ] {
        println!(
            "{}",
            format!("  {name:<6} {:<10} {note}", fmt_num(v)).trim_end()
        );
    }
    println!("  RMSE   {}", fmt_num(r.rmse));
    if let Some(b) = &r.bootstrap {
        println!(
            "  bootstrap: {} resamples, seed {}{}",
            b.n_resamples,
            b.seed,
            if b.n_failed > 0 {
                format!(", {} failed fits skipped", b.n_failed)
            } else {
                String::new()
            }
        );
    }
    if let Some(h) = &r.holdout {
        println!(
            "  hold-out: fit on {} points with {} <= {}, predicted {}: MAE {}, max |error| {}",
            h.n_fit,
            r.x_key,
            fmt_num(h.x_cut),
            h.n_pred,
            fmt_num(h.mae),
            fmt_num(h.max_abs_error)
        );
    }
    for w in &r.warnings {
        println!("  note: {w}");
    }
}
