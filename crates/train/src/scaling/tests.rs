use super::*;

const TRUTH: (f64, f64, f64, f64) = (0.5, 0.85, 1.5, 1e5);

fn law(r0: f64, a: f64, b: f64, c_mid: f64, x: f64) -> f64 {
    r0 + (a - r0) / (1.0 + (c_mid / x).powf(b))
}

/// 12 log-spaced x from 1e3 to 1e7, y on the true law plus N(0, sd) noise.
fn synthetic(sd: f64, seed: u64) -> Vec<Point> {
    let (r0, a, b, c) = TRUTH;
    let mut rng = SplitMix64::new(seed);
    (0..12)
        .map(|i| {
            let x = 10f64.powf(3.0 + 4.0 * i as f64 / 11.0);
            // Box-Muller
            let (u1, u2) = (1.0 - rng.next_f64(), rng.next_f64());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            Point {
                x,
                y: law(r0, a, b, c, x) + sd * z,
            }
        })
        .collect()
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!(
        "modrl_scaling_test_{}_{name}.jsonl",
        std::process::id()
    ));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn splitmix64_matches_reference() {
    let mut r = SplitMix64::new(0);
    assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
    assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    let mut r = SplitMix64::new(7);
    for _ in 0..1000 {
        let f = r.next_f64();
        assert!((0.0..1.0).contains(&f));
        assert!(r.below(5) < 5);
    }
}

#[test]
fn recovers_noiseless_parameters() {
    let f = fit(&synthetic(0.0, 0)).unwrap();
    assert!((f.r0 - 0.5).abs() < 1e-7, "r0 {}", f.r0);
    assert!((f.a - 0.85).abs() < 1e-7, "a {}", f.a);
    assert!((f.b - 1.5).abs() < 1e-6, "b {}", f.b);
    assert!((f.c_mid / 1e5 - 1.0).abs() < 1e-6, "c_mid {}", f.c_mid);
    assert!(f.rmse < 1e-9, "rmse {}", f.rmse);
    assert_eq!(f.residuals.len(), 12);
    assert!((f.predict(1e5) - 0.675).abs() < 1e-7);
    assert_eq!(f.predict(0.0), f.r0);
    assert!(f.predict(-1.0).is_nan());
    assert!((f.predict(f64::INFINITY) - f.a).abs() < 1e-12);
}

#[test]
fn recovers_a_decreasing_curve_given_in_any_order() {
    // A loss-like metric falling from 2.0 to 1.2, points in reverse order.
    let mut pts: Vec<Point> = (0..10)
        .map(|i| {
            let x = 10f64.powf(2.0 + 5.0 * i as f64 / 9.0);
            Point {
                x,
                y: law(2.0, 1.2, 0.8, 3e4, x),
            }
        })
        .collect();
    pts.reverse();
    let f = fit(&pts).unwrap();
    assert!((f.r0 - 2.0).abs() < 1e-6, "r0 {}", f.r0);
    assert!((f.a - 1.2).abs() < 1e-6, "a {}", f.a);
    assert!((f.b - 0.8).abs() < 1e-5, "b {}", f.b);
    assert!((f.c_mid / 3e4 - 1.0).abs() < 1e-5, "c_mid {}", f.c_mid);
    // residuals follow input order
    for (p, r) in pts.iter().zip(&f.residuals) {
        assert!((p.y - f.predict(p.x) - r).abs() < 1e-12);
    }
}

#[test]
fn a_max_caps_the_asymptote_that_points_before_the_bend_overshoot() {
    // Rising points that stop before the midpoint of a law whose ceiling is 1.3.
    let pts: Vec<Point> = [10.0, 30.0, 100.0, 300.0, 1000.0, 2000.0]
        .iter()
        .map(|&x| Point {
            x,
            y: law(0.5, 1.3, 1.0, 1e4, x),
        })
        .collect();
    let free = fit(&pts).unwrap();
    assert!(free.a > 1.0, "{free:?}");
    let opts = FitOptions {
        a_max: Some(1.0),
        ..Default::default()
    };
    let capped = fit_with(&pts, &opts).unwrap();
    assert!(capped.a <= 1.0 && capped.a > 0.9, "{capped:?}");
    assert!(
        capped.rmse.is_finite() && capped.rmse >= free.rmse,
        "{capped:?} {free:?}"
    );
    let bad = FitOptions {
        a_max: Some(f64::NAN),
        ..Default::default()
    };
    assert!(fit_with(&pts, &bad).is_err());
}

#[test]
fn fixed_r0_needs_three_points_and_recovers_the_rest() {
    let pts = synthetic(0.0, 0);
    let opts = FitOptions {
        r0: Some(0.5),
        ..Default::default()
    };
    let f = fit_with(&pts, &opts).unwrap();
    assert_eq!(f.r0, 0.5);
    assert!((f.a - 0.85).abs() < 1e-7);
    assert!((f.b - 1.5).abs() < 1e-6);
    assert!((f.c_mid / 1e5 - 1.0).abs() < 1e-6);
    // three points spanning the transition pin a, b and c_mid exactly
    let three = [pts[2], pts[5], pts[9]];
    let f = fit_with(&three, &opts).unwrap();
    assert!(f.rmse < 1e-8, "rmse {}", f.rmse);
    assert!((f.c_mid / 1e5 - 1.0).abs() < 1e-4, "c_mid {}", f.c_mid);
    assert!(fit(&three).is_err());
}

#[test]
fn noisy_fit_is_close_and_bootstrap_intervals_cover_the_truth() {
    let pts = synthetic(0.004, 42);
    let f = fit(&pts).unwrap();
    assert!((f.r0 - 0.5).abs() < 0.03, "r0 {}", f.r0);
    assert!((f.a - 0.85).abs() < 0.03, "a {}", f.a);
    assert!((0.8..3.0).contains(&f.b), "b {}", f.b);
    assert!((f.c_mid / 1e5).ln().abs() < 2f64.ln(), "c_mid {}", f.c_mid);
    assert!(f.rmse < 0.01 && f.rmse > 0.0);

    let ci = bootstrap(&pts, &FitOptions::default(), 200, 7).unwrap();
    let (r0, a, b, c) = TRUTH;
    for (name, [lo, hi], truth, est) in [
        ("r0", ci.r0, r0, f.r0),
        ("a", ci.a, a, f.a),
        ("b", ci.b, b, f.b),
        ("c_mid", ci.c_mid, c, f.c_mid),
    ] {
        assert!(
            lo <= truth && truth <= hi,
            "{name}: {truth} not in [{lo}, {hi}]"
        );
        assert!(
            lo <= est && est <= hi,
            "{name}: estimate {est} not in [{lo}, {hi}]"
        );
    }
    assert_eq!(ci.n_resamples, 200);
    assert!(ci.n_failed < 10, "{} failed", ci.n_failed);
    // deterministic for a seed
    let again = bootstrap(&pts, &FitOptions::default(), 200, 7).unwrap();
    assert_eq!(ci.r0, again.r0);
    assert_eq!(ci.c_mid, again.c_mid);
}

#[test]
fn bootstrap_counts_failed_resamples() {
    // 4 distinct x: any resample missing one of them cannot be fitted.
    let pts: Vec<Point> = synthetic(0.0, 0).into_iter().step_by(3).collect();
    assert_eq!(pts.len(), 4);
    let ci = bootstrap(&pts, &FitOptions::default(), 100, 1).unwrap();
    assert!(ci.n_failed > 50, "{} failed", ci.n_failed);
    assert!(ci.n_failed < 100);
    assert!(bootstrap(&pts, &FitOptions::default(), 0, 1).is_err());
}

#[test]
fn holdout_on_noiseless_data_extrapolates() {
    let h = holdout(&synthetic(0.0, 0), 0.5).unwrap();
    assert_eq!((h.n_fit, h.n_pred), (6, 6));
    assert!(h.mae < 1e-6, "mae {}", h.mae);
    assert!(h.max_abs_error < 1e-6);
    assert!(h.predictions.iter().all(|p| p.x > h.x_cut));
    assert!(holdout(&synthetic(0.0, 0), 1.0).is_err());
    assert!(holdout(&synthetic(0.0, 0), 0.0).is_err());
    // too few points left to fit
    let err = holdout(&synthetic(0.0, 0), 0.2).unwrap_err();
    assert!(format!("{err:#}").contains("at least 4"), "{err:#}");
}

#[test]
fn holdout_keeps_ties_on_the_fitted_side() {
    let mut pts = synthetic(0.0, 0);
    pts.push(Point {
        x: pts[5].x,
        y: pts[5].y,
    });
    let h = holdout(&pts, 0.5).unwrap(); // ceil(6.5) = 7 points, x[6] is the duplicate
    assert_eq!(h.n_fit + h.n_pred, 13);
    assert!(h.predictions.iter().all(|p| p.x > h.x_cut));
}

#[test]
fn rejects_bad_input_with_clear_errors() {
    let pts = synthetic(0.0, 0);
    let e = format!("{:#}", fit(&pts[..3]).unwrap_err());
    assert!(e.contains("at least 4 points"), "{e}");
    let e = format!("{:#}", fit(&[]).unwrap_err());
    assert!(e.contains("got 0"), "{e}");

    let mut bad = pts.clone();
    bad[4].x = 0.0;
    let e = format!("{:#}", fit(&bad).unwrap_err());
    assert!(e.contains("point 4") && e.contains("> 0"), "{e}");
    bad[4].x = -3.0;
    assert!(fit(&bad).is_err());

    let mut bad = pts.clone();
    bad[1].y = f64::NAN;
    let e = format!("{:#}", fit(&bad).unwrap_err());
    assert!(e.contains("point 1") && e.contains("not finite"), "{e}");

    let same_x: Vec<Point> = (0..6)
        .map(|i| Point {
            x: 10.0,
            y: i as f64,
        })
        .collect();
    let e = format!("{:#}", fit(&same_x).unwrap_err());
    assert!(e.contains("distinct x"), "{e}");

    let opts = FitOptions {
        r0: Some(f64::NAN),
        ..Default::default()
    };
    assert!(fit_with(&pts, &opts).is_err());
}

#[test]
fn read_points_skips_missing_and_reads_flat_and_nested_keys() {
    let text = r#"{"compute": 1000, "eval/pr_auc": 0.6}
{"compute": 2000}

{"compute": 3000, "eval/pr_auc": null}
{"step": 4, "loss": 1.0}
{"compute": 4e3, "eval": {"pr_auc": 0.7}}
  {"compute": 5000, "eval/pr_auc": 0.75, "extra": [1, 2]}
"#;
    let p = temp_file("ok", text);
    let pts = read_points(&p, "compute", "eval/pr_auc").unwrap();
    std::fs::remove_file(&p).ok();
    assert_eq!(
        pts,
        vec![
            Point { x: 1000.0, y: 0.6 },
            Point { x: 4000.0, y: 0.7 },
            Point { x: 5000.0, y: 0.75 },
        ]
    );
}

#[test]
fn read_points_errors_name_file_line_and_field() {
    let p = temp_file(
        "badjson",
        "{\"compute\": 1, \"y\": 2}\n\n{\"compute\": 2, \"y\":\n",
    );
    let e = format!("{:#}", read_points(&p, "compute", "y").unwrap_err());
    std::fs::remove_file(&p).ok();
    assert!(e.contains(&format!("{}:3", p.display())), "{e}");
    assert!(e.contains("invalid JSON"), "{e}");

    let p = temp_file(
        "badfield",
        "{\"compute\": 1, \"y\": 2}\n{\"compute\": \"lots\", \"y\": 2}\n",
    );
    let e = format!("{:#}", read_points(&p, "compute", "y").unwrap_err());
    std::fs::remove_file(&p).ok();
    assert!(
        e.contains(":2") && e.contains("\"compute\"") && e.contains("not a number"),
        "{e}"
    );

    let p = temp_file("notobj", "[1, 2]\n");
    let e = format!("{:#}", read_points(&p, "compute", "y").unwrap_err());
    std::fs::remove_file(&p).ok();
    assert!(e.contains(":1") && e.contains("JSON object"), "{e}");

    assert!(read_points("/nonexistent/metrics.jsonl", "x", "y").is_err());
}

#[test]
fn report_serialises_the_fit() {
    let pts = synthetic(0.002, 3);
    let opts = FitOptions::default();
    let f = fit_with(&pts, &opts).unwrap();
    let ci = bootstrap(&pts, &opts, 50, 0).unwrap();
    let h = holdout_with(&pts, 0.5, &opts).unwrap();
    let r = Report::new(
        &pts,
        "compute",
        "eval/pr_auc",
        &f,
        &opts,
        Some(&ci),
        Some(h),
    );
    let v: Value = serde_json::to_value(&r).unwrap();
    for k in [
        "n",
        "x_key",
        "y_key",
        "r0",
        "a",
        "b",
        "c_mid",
        "ci_r0",
        "ci_a",
        "ci_b",
        "ci_c_mid",
        "rmse",
        "residuals",
        "holdout",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["n"], 12);
    assert_eq!(v["y_key"], "eval/pr_auc");
    assert_eq!(v["ci_b"].as_array().unwrap().len(), 2);
    for k in ["frac", "mae", "max_abs_error", "n_fit", "n_pred"] {
        assert!(v["holdout"].get(k).is_some(), "missing holdout.{k}");
    }
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let r = Report::new(&pts, "x", "y", &f, &opts, None, None);
    let v = serde_json::to_value(&r).unwrap();
    assert!(v["ci_r0"].is_null() && v["holdout"].is_null());
    // only the rising half of the curve observed: A is an extrapolation
    let early: Vec<Point> = synthetic(0.0, 0)
        .into_iter()
        .filter(|p| p.x < 5e4)
        .collect();
    let f = fit(&early).unwrap();
    let r = Report::new(&early, "x", "y", &f, &opts, None, None);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("A is an extrapolation")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn svg_has_points_curve_and_escaped_title() {
    let pts = synthetic(0.0, 0);
    let f = fit(&pts).unwrap();
    let svg = plot_svg(&pts, &f, "tokens<rollout>", "eval/pr_auc");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<circle").count(), 12);
    assert_eq!(svg.matches("<path d=\"M").count(), 2); // fitted range + dashed extrapolation
    assert!(svg.contains(">1e5</text>"));
    assert!(svg.contains("tokens&lt;rollout&gt;"));
    assert!(
        svg.contains("R0 = 0.5, A = 0.85, B = 1.5, C_mid = 1e5"),
        "{svg}"
    );
    assert!(!svg.contains("NaN"));
    // a flat, single-point fit still renders
    let flat = SigmoidFit {
        r0: 1.0,
        a: 1.0,
        b: 1.0,
        c_mid: 10.0,
        rmse: 0.0,
        residuals: vec![],
    };
    let svg = plot_svg(&[Point { x: 10.0, y: 1.0 }], &flat, "x", "y");
    assert!(!svg.contains("NaN") && svg.contains("<circle"));
}

#[test]
fn number_formatting() {
    assert_eq!(fmt_num(0.85), "0.85");
    assert_eq!(fmt_num(1.5), "1.5");
    assert_eq!(fmt_num(1e5), "1e5");
    assert_eq!(fmt_num(123456.0), "1.235e5");
    assert_eq!(fmt_num(0.0001234), "1.234e-4");
    assert_eq!(fmt_num(12.3456), "12.35");
    assert_eq!(fmt_num(0.0), "0");
    assert_eq!(fmt_num(-2.0), "-2");
}
