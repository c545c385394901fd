//! Batched generation behaves like one-at-a-time generation, shares prompts across samples, and
//! reports log-probs that the training forward reproduces.

mod common;

use common::*;
use modrl_model::generate::{generate, FinishReason, SamplingParams};
use modrl_model::train::completion_logprobs;

fn prompts() -> Vec<Vec<u32>> {
    vec![
        vec![1, 5, 9, 33, 70, 4, 8, 21, 99],
        vec![1, 44],
        vec![1, 3, 3, 3, 120, 64],
    ]
}

#[test]
fn batched_greedy_equals_one_at_a_time() {
    let model = tiny_model(7);
    let p = SamplingParams {
        max_new_tokens: 20,
        temperature: 0.0,
        stop_token_ids: vec![127],
        ..Default::default()
    };
    let batched = generate(&model, &prompts(), 1, &p, None).unwrap();
    for (i, prompt) in prompts().iter().enumerate() {
        let alone = generate(&model, std::slice::from_ref(prompt), 1, &p, None).unwrap();
        assert_eq!(batched[i].token_ids, alone[0].token_ids, "prompt {i}");
        for (a, b) in batched[i].logprobs.iter().zip(&alone[0].logprobs) {
            assert!((a - b).abs() < 1e-4, "prompt {i}: logprob {a} vs {b}");
        }
    }
}

#[test]
fn samples_share_the_prompt_and_logprobs_match_training_forward() {
    let model = tiny_model(11);
    let p = SamplingParams {
        max_new_tokens: 16,
        temperature: 0.8,
        top_k: 50,
        top_p: 0.95,
        seed: Some(3),
        ..Default::default()
    };
    let outs = generate(&model, &prompts(), 4, &p, None).unwrap();
    assert_eq!(outs.len(), 12);
    assert_eq!(
        outs.iter().map(|o| o.prompt_index).collect::<Vec<_>>(),
        vec![0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    );
    // Four samples of one prompt at temperature 0.8 over a random model are not all the same.
    let distinct: std::collections::HashSet<_> =
        outs[..4].iter().map(|o| o.token_ids.clone()).collect();
    assert!(distinct.len() > 1, "samples of one prompt should differ");
    // The same seed reproduces the same samples.
    let again = generate(&model, &prompts(), 4, &p, None).unwrap();
    assert_eq!(
        outs.iter().map(|o| &o.token_ids).collect::<Vec<_>>(),
        again.iter().map(|o| &o.token_ids).collect::<Vec<_>>()
    );
    // Training forward (one right-padded batch, no cache) gives the sampler's log-probs.
    let ps: Vec<Vec<u32>> = outs
        .iter()
        .map(|o| prompts()[o.prompt_index].clone())
        .collect();
    let pr: Vec<&[u32]> = ps.iter().map(|p| p.as_slice()).collect();
    let cs: Vec<&[u32]> = outs.iter().map(|o| o.token_ids.as_slice()).collect();
    let r = tch::no_grad(|| completion_logprobs(&model, &pr, &cs, 0.8, true).unwrap());
    for (i, o) in outs.iter().enumerate() {
        let row: Vec<f32> = Vec::try_from(&r.logprobs.get(i as i64)).unwrap();
        for (j, lp) in o.logprobs.iter().enumerate() {
            assert!(
                (row[j] - lp).abs() < 1e-4,
                "sample {i} token {j}: forward {} vs sampler {lp}",
                row[j]
            );
        }
        let m: Vec<f32> = Vec::try_from(&r.mask.get(i as i64)).unwrap();
        assert_eq!(m.iter().filter(|&&x| x == 1.0).count(), o.token_ids.len());
    }
    let ent = r.entropy.unwrap();
    assert!(ent.min().double_value(&[]) >= 0.0);
}

#[test]
fn stops_on_stop_token_and_respects_max_new_tokens() {
    let model = tiny_model(5);
    let greedy = SamplingParams {
        max_new_tokens: 10,
        temperature: 0.0,
        stop_token_ids: vec![127],
        ..Default::default()
    };
    let first = generate(&model, &prompts()[..1], 1, &greedy, None).unwrap();
    assert_eq!(first[0].token_ids.len(), 10);
    assert_eq!(first[0].finish_reason, FinishReason::Length);
    // Make the third greedy token a stop token: generation ends there and keeps it.
    let stop = first[0].token_ids[2];
    let p = SamplingParams {
        stop_token_ids: vec![stop],
        ..greedy
    };
    let o = generate(&model, &prompts()[..1], 1, &p, None).unwrap();
    let cut = first[0].token_ids.iter().position(|&t| t == stop).unwrap();
    assert_eq!(o[0].token_ids, first[0].token_ids[..=cut].to_vec());
    assert_eq!(o[0].finish_reason, FinishReason::Stop);
}

#[test]
fn stop_strings_end_generation_on_the_default_model() {
    let dir = default_model();
    let (model, tok) =
        modrl_model::load(&dir, modrl_model::Device::Cpu, modrl_model::Kind::Float).unwrap();
    let prompt = tok
        .encode_chat(
            &[modrl_model::Message::new(
                "user",
                "Count from 1 to 20, separated by commas.",
            )],
            true,
        )
        .unwrap();
    let p = SamplingParams {
        max_new_tokens: 60,
        temperature: 0.0,
        stop_strings: vec!["5".into()],
        ..Default::default()
    };
    let o = generate(&model, &[prompt], 1, &p, Some(&tok)).unwrap();
    let text = tok.decode(&o[0].token_ids, true).unwrap();
    assert_eq!(o[0].finish_reason, FinishReason::Stop, "{text}");
    assert!(text.contains('5') && !text.contains('6'), "{text}");
}

#[test]
fn shared_prefix_gives_the_same_results_as_full_prompts() {
    use modrl_model::generate::{generate_with_prefix, next_token_logits, PrefixCache};
    let model = tiny_model(13);
    let prefix: Vec<u32> = vec![1, 50, 51, 52, 53, 54, 55, 56, 57];
    let prompts: Vec<Vec<u32>> = vec![
        [prefix.clone(), vec![9, 8, 7]].concat(),
        [prefix.clone(), vec![100]].concat(),
        [prefix[..5].to_vec(), vec![77, 78]].concat(), // shares only part of the prefix
        prefix.clone(),                                // is the prefix itself
    ];
    let pc = PrefixCache::new(&model, &prefix).unwrap();
    let with = next_token_logits(&model, Some(&pc), &prompts).unwrap();
    let without = next_token_logits(&model, None, &prompts).unwrap();
    assert!(max_abs_diff(&with, &without) < 1e-5);
    // Full-prefix rows only (the common shared length is then the whole prefix).
    let full = &prompts[..2];
    let a = next_token_logits(&model, Some(&pc), full).unwrap();
    let b = next_token_logits(&model, None, full).unwrap();
    assert!(max_abs_diff(&a, &b) < 1e-5);
    let p = SamplingParams {
        max_new_tokens: 12,
        temperature: 0.0,
        stop_token_ids: vec![127],
        ..Default::default()
    };
    let g1 = generate_with_prefix(&model, Some(&pc), &prompts, 2, &p, None).unwrap();
    let g2 = generate(&model, &prompts, 2, &p, None).unwrap();
    for (x, y) in g1.iter().zip(&g2) {
        assert_eq!(x.token_ids, y.token_ids);
        for (a, b) in x.logprobs.iter().zip(&y.logprobs) {
            assert!((a - b).abs() < 1e-4);
        }
    }
}

#[test]
fn row_chunked_prefill_gives_the_same_results() {
    use modrl_model::generate::{generate_with_prefix, PrefixCache, PREFILL_SCORE_BUDGET};
    use std::sync::atomic::Ordering;
    let model = tiny_model(17);
    let prefix: Vec<u32> = vec![1, 50, 51, 52, 53];
    let prompts: Vec<Vec<u32>> = vec![
        [prefix.clone(), vec![9, 8, 7]].concat(),
        [prefix.clone(), vec![100]].concat(),
        [prefix.clone(), vec![30, 31, 32, 33, 34]].concat(),
    ];
    let pc = PrefixCache::new(&model, &prefix).unwrap();
    let p = SamplingParams {
        max_new_tokens: 8,
        temperature: 0.0,
        stop_token_ids: vec![127],
        ..Default::default()
    };
    let whole = generate_with_prefix(&model, Some(&pc), &prompts, 2, &p, None).unwrap();
    let before = PREFILL_SCORE_BUDGET.swap(1, Ordering::Relaxed); // one row per prefill forward
    let chunked = generate_with_prefix(&model, Some(&pc), &prompts, 2, &p, None);
    PREFILL_SCORE_BUDGET.store(before, Ordering::Relaxed);
    for (a, b) in whole.iter().zip(&chunked.unwrap()) {
        assert_eq!(a.token_ids, b.token_ids);
        for (x, y) in a.logprobs.iter().zip(&b.logprobs) {
            assert!((x - y).abs() < 1e-5);
        }
    }
}

#[test]
fn automatic_shared_prefix_and_length_sorted_chunks_give_the_same_results() {
    use modrl_model::generate::{next_token_logits, AUTO_PREFIX_MIN_TOKENS, PREFILL_SCORE_BUDGET};
    use std::sync::atomic::Ordering;
    let model = tiny_model(19);
    let start: Vec<u32> = vec![1, 60, 61, 62, 63, 64];
    // Different lengths, not in length order, all starting with `start`.
    let prompts: Vec<Vec<u32>> = vec![
        [start.clone(), vec![9, 8, 7, 6, 5, 4]].concat(),
        [start.clone(), vec![100]].concat(),
        [start.clone(), vec![30, 31, 32]].concat(),
        [start.clone(), vec![40, 41, 42, 43, 44, 45, 46, 47]].concat(),
    ];
    let p = SamplingParams {
        max_new_tokens: 10,
        temperature: 0.0,
        stop_token_ids: vec![127],
        ..Default::default()
    };
    let run = |auto: usize, budget: i64| {
        let (a0, b0) = (
            AUTO_PREFIX_MIN_TOKENS.swap(auto, Ordering::Relaxed),
            PREFILL_SCORE_BUDGET.swap(budget, Ordering::Relaxed),
        );
        let g = generate(&model, &prompts, 2, &p, None).unwrap();
        let l = next_token_logits(&model, None, &prompts).unwrap();
        AUTO_PREFIX_MIN_TOKENS.store(a0, Ordering::Relaxed);
        PREFILL_SCORE_BUDGET.store(b0, Ordering::Relaxed);
        (g, l)
    };
    let (plain, plain_l) = run(usize::MAX, 1 << 28);
    // Each prompt alone: the reference for the batched runs.
    for (i, prompt) in prompts.iter().enumerate() {
        let alone = generate(&model, std::slice::from_ref(prompt), 1, &p, None).unwrap();
        assert_eq!(plain[2 * i].token_ids, alone[0].token_ids, "prompt {i}");
        assert_eq!(plain[2 * i].prompt_index, i);
    }
    for (auto, budget) in [(1, 1 << 28), (usize::MAX, 1), (1, 1)] {
        let (g, l) = run(auto, budget);
        assert!(
            max_abs_diff(&l, &plain_l) < 1e-5,
            "auto {auto}, budget {budget}"
        );
        for (a, b) in g.iter().zip(&plain) {
            assert_eq!(a.prompt_index, b.prompt_index);
            assert_eq!(a.token_ids, b.token_ids, "auto {auto}, budget {budget}");
            for (x, y) in a.logprobs.iter().zip(&b.logprobs) {
                assert!(
                    (x - y).abs() < 1e-4,
                    "auto {auto}, budget {budget}: {x} vs {y}"
                );
            }
        }
    }
}
