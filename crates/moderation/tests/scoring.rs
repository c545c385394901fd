//! Scoring on the default model: the shared policy prefix changes nothing, and each mode returns
//! well-formed scores.

use std::path::Path;

use modrl_model::{next_token_logits, Device, Kind};
use modrl_moderation::score::{ScoreConfig, Scorer, ScoringMode};
use modrl_moderation::Policy;

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn setup() -> (modrl_model::Model, modrl_model::Tokenizer, Policy) {
    let dir = root().join("models/smollm2-135m-instruct");
    assert!(
        dir.exists(),
        "{} missing: run scripts/setup.sh",
        dir.display()
    );
    let (m, t) = modrl_model::load(&dir, Device::Cpu, Kind::Float).unwrap();
    let p = Policy::load(root().join("configs/policies/hate-speech.toml")).unwrap();
    (m, t, p)
}

const TEXTS: [&str; 3] = [
    "I hope you have a wonderful day, neighbour!",
    "People like them are vermin and should be wiped out.",
    "ok",
];

#[test]
fn verdict_token_scores_equal_the_unshared_computation() {
    let (model, tok, policy) = setup();
    let scorer = Scorer::new(
        &model,
        &tok,
        &policy,
        ScoreConfig {
            mode: ScoringMode::VerdictToken,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        scorer.prefix_len() > 200,
        "the policy prefix should be long, got {}",
        scorer.prefix_len()
    );
    let got = scorer.score_batch(&TEXTS).unwrap();
    let prompts: Vec<Vec<u32>> = TEXTS
        .iter()
        .map(|t| scorer.prompt_ids(t).unwrap())
        .collect();
    let logits = next_token_logits(&model, None, &prompts)
        .unwrap()
        .log_softmax(-1, Kind::Float);
    let v = tok.encode("{\"label\": \"violating").unwrap();
    let n = tok.encode("{\"label\": \"non_violating").unwrap();
    let base = tok.encode("{\"label\": \"").unwrap().len();
    for (i, s) in got.iter().enumerate() {
        let pv = logits.double_value(&[i as i64, v[base] as i64]).exp();
        let pn = logits.double_value(&[i as i64, n[base] as i64]).exp();
        assert!(
            (s.score - pv / (pv + pn)).abs() < 1e-4,
            "item {i}: {} vs {}",
            s.score,
            pv / (pv + pn)
        );
        assert!((0.0..=1.0).contains(&s.score));
    }
}

#[test]
fn sampled_modes_return_one_score_per_item_with_samples() {
    let (model, tok, policy) = setup();
    let cfg = ScoreConfig {
        mode: ScoringMode::MonteCarlo {
            n: 3,
            temperature: 1.0,
        },
        max_new_tokens: 40,
        ..Default::default()
    };
    let scorer = Scorer::new(&model, &tok, &policy, cfg).unwrap();
    let got = scorer.score_batch(&TEXTS[..2]).unwrap();
    assert_eq!(got.len(), 2);
    for s in &got {
        assert_eq!(s.n_samples, 3);
        assert!((0.0..=1.0).contains(&s.score) && (0.0..=1.0).contains(&s.format_ok_rate));
        assert!(s.output.as_ref().is_some_and(|o| !o.is_empty()));
        assert_eq!(s.format_ok, s.format_ok_rate > 0.0);
    }
    let greedy = Scorer::new(
        &model,
        &tok,
        &policy,
        ScoreConfig {
            mode: ScoringMode::Greedy,
            max_new_tokens: 40,
            ..Default::default()
        },
    )
    .unwrap();
    let a = greedy.score_batch(&TEXTS[..1]).unwrap();
    let b = greedy.score_batch(&TEXTS[..1]).unwrap();
    assert_eq!(
        a[0].output, b[0].output,
        "greedy scoring must be deterministic"
    );
}

#[test]
fn reasoned_scores_read_the_label_token_after_the_greedy_reasoning() {
    let (model, tok, policy) = setup();
    let cfg = |mode| ScoreConfig {
        mode,
        max_new_tokens: 40,
        ..Default::default()
    };
    let greedy = Scorer::new(&model, &tok, &policy, cfg(ScoringMode::Greedy)).unwrap();
    let reasoned = Scorer::new(&model, &tok, &policy, cfg(ScoringMode::Reasoned)).unwrap();
    let g = greedy.score_batch(&TEXTS[..2]).unwrap();
    let r = reasoned.score_batch(&TEXTS[..2]).unwrap();
    let (tv, tn) = modrl_moderation::score::label_tokens(&tok).unwrap();
    for (i, (gs, rs)) in g.iter().zip(&r).enumerate() {
        // The same greedy reasoning, then the two-way label distribution after its stem.
        assert_eq!(gs.output, rs.output, "item {i}");
        let stem = modrl_moderation::score::reasoned_stem(gs.output.as_deref().unwrap());
        let ids = tok
            .encode(&format!("{}{stem}", greedy.prompt_text(TEXTS[i]).unwrap()))
            .unwrap();
        let lp = next_token_logits(&model, None, &[ids])
            .unwrap()
            .log_softmax(-1, Kind::Float);
        let (pv, pn) = (
            lp.double_value(&[0, tv as i64]).exp(),
            lp.double_value(&[0, tn as i64]).exp(),
        );
        assert!(
            (rs.score - pv / (pv + pn)).abs() < 1e-4,
            "item {i}: {} vs {}",
            rs.score,
            pv / (pv + pn)
        );
        assert_eq!(rs.pred_label, Some(u8::from(rs.score >= 0.5)));
    }
}

/// The classifier of `modrl classify` and the Python package runs the same verdict-token code as
/// the `Scorer`, with category scores on top: for a one-category policy (no divergence point) every
/// flagged text gets that category with all of P(violating); for a six-category policy the category
/// scores add up to P(violating).
#[test]
fn classifier_category_scores_cover_one_and_many_categories() {
    use modrl_moderation::prompt::Variant;
    use modrl_moderation::score::{Budget, ClassifierOptions, PolicyPrompts, TextClassifier};
    let (model, tok, many) = setup();
    let one = Policy::load(root().join("configs/policies/offensive-compact.toml")).unwrap();
    assert_eq!(one.category_names().len(), 1);
    let opts = ClassifierOptions {
        threshold: 0.0,
        ..Default::default()
    };
    let clf = TextClassifier::new(&model, &tok, one.clone(), opts).unwrap();
    let got = clf.classify(&model, &tok, &TEXTS).unwrap();
    let scorer = Scorer::new(&model, &tok, &one, ScoreConfig::default()).unwrap();
    let want = scorer.score_batch(&TEXTS).unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.label, 1);
        assert_eq!(g.category, one.category_names()[0]);
        assert!(
            (g.score - w.score).abs() < 1e-5,
            "{} vs {}",
            g.score,
            w.score
        );
    }
    for policy in [one, many] {
        let pp = PolicyPrompts::new(policy.clone(), &tok, Variant::Standard, false).unwrap();
        let prompts: Vec<Vec<u32>> = TEXTS
            .iter()
            .map(|t| pp.prompt_ids(&tok, t, Variant::NoReasoning).unwrap())
            .collect();
        let budget = Budget {
            max_new_tokens: 8,
            seed: 0,
            max_rows: 64,
        };
        let scored = pp
            .score(
                &model,
                &tok,
                None,
                &TEXTS,
                &prompts,
                &ScoringMode::VerdictToken,
                budget,
            )
            .unwrap();
        for s in scored {
            assert_eq!(s.category_scores.len(), policy.category_names().len());
            let total: f64 = s.category_scores.iter().map(|(_, p)| p).sum();
            assert!((total - s.score).abs() < 1e-9, "{total} vs {}", s.score);
            assert!(s.pred_category.is_some());
        }
    }
}
