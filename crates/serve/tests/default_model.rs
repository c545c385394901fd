//! The server on the default model (SmolLM2-135M-Instruct): its scores are the `Scorer`'s, and
//! the category scores follow the model's next-token probabilities.

mod common;

use common::*;
use modrl_model::{next_token_logits, Device, Kind};
use modrl_moderation::prompt::VERDICT_PREFIX;
use modrl_moderation::score::{ScoreConfig, Scorer, ScoringMode};
use serde_json::json;

const TEXTS: [&str; 2] = [
    "People like them are vermin and should be wiped out.",
    "I hope you have a wonderful day, neighbour!",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_match_the_scorer_on_the_default_model() {
    let dir = default_model();
    let s = start(
        &dir,
        &["offensive"],
        opts(|o| o.served_model_name = "smol".into()),
    )
    .await;
    let (model, tok) = modrl_model::load(&dir, Device::Cpu, Kind::Float).unwrap();
    let pol = policy("offensive");

    // Verdict-token: the same P(violating) as the Scorer.
    let scorer = Scorer::new(
        &model,
        &tok,
        &pol,
        ScoreConfig {
            mode: ScoringMode::VerdictToken,
            ..Default::default()
        },
    )
    .unwrap();
    let want = scorer.score_batch(&TEXTS).unwrap();
    let r = s.post("/v1/moderations", &json!({"input": TEXTS})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    for (i, w) in want.iter().enumerate() {
        let got = j["results"][i]["category_scores"]["offensive"]
            .as_f64()
            .unwrap();
        assert!((got - w.score).abs() < 1e-4, "{i}: {got} vs {}", w.score);
        let c = s
            .post("/v1/classify", &json!({"input": TEXTS[i], "model": "smol"}))
            .await
            .json();
        assert!((c["probability"].as_f64().unwrap() - w.score).abs() < 1e-4);
        assert_eq!(c["format_ok"], w.format_ok);
    }

    // Category scores: P(violating) times the category distribution after
    // `{"label": "violating", "category": "`, read here from the model directly at the first
    // token where the category names differ.
    let cats = pol.category_names();
    let base = tok.encode(VERDICT_PREFIX).unwrap();
    let seqs: Vec<Vec<u32>> = cats
        .iter()
        .map(|c| {
            let full = tok
                .encode(&format!(
                    "{VERDICT_PREFIX}violating\", \"category\": \"{c}\""
                ))
                .unwrap();
            full[base.len()..].to_vec()
        })
        .collect();
    let l = (0..)
        .find(|&k| seqs.iter().any(|q| q[k] != seqs[0][k]))
        .unwrap();
    let firsts: Vec<u32> = seqs.iter().map(|q| q[l]).collect();
    let unique: Vec<usize> = (0..cats.len())
        .filter(|&i| firsts.iter().filter(|&&t| t == firsts[i]).count() == 1)
        .collect();
    assert!(
        unique.len() >= 2,
        "categories should mostly differ at their first token"
    );
    let mut prompt = scorer.prompt_ids(TEXTS[0]).unwrap();
    prompt.extend_from_slice(&seqs[0][..l]);
    let lp = next_token_logits(&model, None, &[prompt])
        .unwrap()
        .log_softmax(-1, Kind::Float);
    let cs = &j["results"][0]["category_scores"];
    let (a, b) = (unique[0], unique[1]);
    let want_ratio =
        (lp.double_value(&[0, firsts[a] as i64]) - lp.double_value(&[0, firsts[b] as i64])).exp();
    let got_ratio = cs[&cats[a]].as_f64().unwrap() / cs[&cats[b]].as_f64().unwrap();
    assert!(
        (got_ratio / want_ratio - 1.0).abs() < 1e-3,
        "{} / {}: {got_ratio} vs {want_ratio}",
        cats[a],
        cats[b]
    );

    // Greedy: the same reasoning and score as the Scorer's greedy mode.
    let greedy = Scorer::new(
        &model,
        &tok,
        &pol,
        ScoreConfig {
            mode: ScoringMode::Greedy,
            max_new_tokens: 24,
            ..Default::default()
        },
    )
    .unwrap();
    let want = greedy.score_batch(&TEXTS[..1]).unwrap();
    let r = s
        .post(
            "/v1/classify",
            &json!({"input": TEXTS[0], "scoring": "greedy", "max_tokens": 24, "return_reasoning": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let g = r.json();
    assert_eq!(g["reasoning"].as_str(), want[0].output.as_deref());
    assert!((g["probability"].as_f64().unwrap() - want[0].score).abs() < 1e-9);
    assert_eq!(g["format_ok"], want[0].format_ok);
    s.stop().await.unwrap();
}
