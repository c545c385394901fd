//! Training: every parameter gets a gradient that agrees with finite differences, a few AdamW
//! steps overfit a fixed batch, gradient accumulation equals one big batch, and saved weights load
//! in `transformers` with the same logits.

mod common;

use common::*;
use modrl_model::train::{
    clip_grad_norm, completion_logprobs, sft_loss, zero_grad, AdamW, AdamWConfig,
};
use modrl_model::{Device, Kind, Model, Tensor};

/// The gradient of every parameter, in `named_parameters` order.
fn param_grads(model: &Model) -> Vec<Tensor> {
    model
        .named_parameters()
        .iter()
        .map(|(_, t)| t.grad().copy())
        .collect()
}

/// Every parameter's gradient equal within 1e-4, relative to its largest entry (at least 1e-3).
fn assert_same_grads(g1: &[Tensor], g2: &[Tensor]) {
    for (a, b) in g1.iter().zip(g2) {
        let scale = a.abs().max().double_value(&[]).max(1e-3);
        assert!(
            max_abs_diff(a, b) / scale < 1e-4,
            "gradient differs: {}",
            max_abs_diff(a, b)
        );
    }
}

fn batch() -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    (
        vec![vec![1, 10, 11, 12], vec![1, 20, 21], vec![1, 30]],
        vec![
            vec![40, 41, 42, 2],
            vec![50, 51, 2],
            vec![60, 61, 62, 63, 2],
        ],
    )
}

fn loss(model: &Model) -> Tensor {
    let (p, c) = batch();
    let pr: Vec<&[u32]> = p.iter().map(|x| x.as_slice()).collect();
    let cr: Vec<&[u32]> = c.iter().map(|x| x.as_slice()).collect();
    sft_loss(model, &pr, &cr).unwrap()
}

#[test]
fn every_parameter_gets_a_gradient_matching_finite_differences() {
    let mut model = tiny_model(1);
    model.kind = Kind::Float;
    model.set_base_trainable(true);
    let params = model.named_parameters();
    loss(&model).backward();
    for (name, p) in &params {
        let g = p.grad();
        assert!(
            g.defined() && g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "{name} got no gradient"
        );
    }
    // Central differences on a few coordinates of a few tensors, in double precision.
    let model64 = {
        let cfg = model.config.clone();
        let t = params
            .iter()
            .map(|(n, p)| (n.clone(), p.detach().to_kind(Kind::Double)))
            .collect();
        Model::from_tensors(cfg, t, Device::Cpu, Kind::Double)
    };
    for (name, p) in &params {
        if !(name.contains("layers.1.self_attn.k_proj")
            || name.contains("embed")
            || name.contains("layers.0.mlp.down"))
        {
            continue;
        }
        let g = p.grad().view([-1]);
        let p64 = model64
            .named_parameters()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1;
        let flat = p64.view([-1]);
        for idx in [0i64, 7, 31] {
            let orig = flat.double_value(&[idx]);
            let eps = 1e-6;
            let f = |x: f64| {
                let _ = tch::no_grad(|| flat.get(idx).fill_(x));
                loss(&model64).double_value(&[])
            };
            let num = (f(orig + eps) - f(orig - eps)) / (2.0 * eps);
            f(orig);
            let ana = g.double_value(&[idx]);
            assert!(
                (num - ana).abs() <= 1e-4 + 1e-3 * num.abs(),
                "{name}[{idx}]: numeric {num} vs autograd {ana}"
            );
        }
    }
}

#[test]
fn adamw_overfits_a_fixed_batch() {
    let mut model = tiny_model(2);
    model.set_base_trainable(true);
    let params: Vec<Tensor> = model
        .named_parameters()
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let mut opt = AdamW::new(
        &params,
        AdamWConfig {
            lr: 1e-2,
            ..Default::default()
        },
    );
    let first = loss(&model).double_value(&[]);
    let mut last = first;
    for _ in 0..40 {
        zero_grad(&params);
        let l = loss(&model);
        l.backward();
        let n = clip_grad_norm(&params, 1.0);
        assert!(n.is_finite());
        opt.step(&params, 1e-2);
        last = l.double_value(&[]);
    }
    assert!(last < 0.3 * first, "loss went from {first} to {last}");
}

#[test]
fn gradient_accumulation_equals_the_full_batch() {
    let (p, c) = batch();
    let grads = |chunks: &[std::ops::Range<usize>]| {
        let mut model = tiny_model(3);
        model.set_base_trainable(true);
        let params: Vec<Tensor> = model
            .named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        let total_tokens: usize = c.iter().map(|x| x.len()).sum();
        for r in chunks {
            let pr: Vec<&[u32]> = p[r.clone()].iter().map(|x| x.as_slice()).collect();
            let cr: Vec<&[u32]> = c[r.clone()].iter().map(|x| x.as_slice()).collect();
            let lp = completion_logprobs(&model, &pr, &cr, 1.0, false).unwrap();
            (-lp.logprobs.sum(Kind::Float) / total_tokens as f64).backward();
        }
        params.iter().map(|t| t.grad().copy()).collect::<Vec<_>>()
    };
    let full = grads(&[0..3]);
    let acc = grads(&[0..1, 1..3]);
    for (a, b) in full.iter().zip(&acc) {
        assert!(max_abs_diff(a, b) < 1e-6);
    }
}

#[test]
fn saved_weights_load_in_transformers_with_the_same_logits() {
    let model = tiny_model(4);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    model.save_pretrained(&dir, TINY_LLAMA).unwrap();
    let row: Vec<u32> = vec![1, 9, 8, 7, 100, 2];
    let spec = tmp.path().join("ids.json");
    write_json(&spec, &serde_json::json!({"ids": [row]}));
    let out = tmp.path().join("out.json");
    reference(&[
        "logits",
        dir.to_str().unwrap(),
        spec.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    let ids = Tensor::from_slice(&row.iter().map(|&x| x as i64).collect::<Vec<_>>()).unsqueeze(0);
    let ours = tch::no_grad(|| model.forward(&ids)).squeeze_dim(0);
    let d = max_abs_diff(&ours, &tensor2(&read_json(&out)["logits"][0]));
    assert!(d <= 1e-5, "max abs diff {d}");
    // And they load back into our model identically.
    let back = Model::load(&dir, Device::Cpu, Kind::Float).unwrap();
    let again = tch::no_grad(|| back.forward(&ids)).squeeze_dim(0);
    assert_eq!(max_abs_diff(&ours, &again), 0.0);
}

/// A shared prefix and three (prompt, completion) rows that start with all of it.
fn prefixed_rows() -> (Vec<u32>, Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let prefix: Vec<u32> = vec![1, 70, 71, 72, 73, 74, 75];
    let prompts: Vec<Vec<u32>> = vec![
        [prefix.clone(), vec![10, 11]].concat(),
        [prefix.clone(), vec![20]].concat(),
        [prefix.clone(), vec![30, 31, 32]].concat(),
    ];
    let comps: Vec<Vec<u32>> = vec![vec![40, 41, 2], vec![50, 2], vec![60, 61, 62, 2]];
    (prefix, prompts, comps)
}

#[test]
fn shared_prefix_training_forward_matches_unshared_loss_and_gradients() {
    use modrl_model::train::completion_logprobs_with_prefix;
    let (prefix, prompts, comps) = prefixed_rows();
    let run = |shared: bool| {
        let mut model = tiny_model(9);
        model.set_base_trainable(true);
        let pr: Vec<&[u32]> = prompts.iter().map(|x| x.as_slice()).collect();
        let cr: Vec<&[u32]> = comps.iter().map(|x| x.as_slice()).collect();
        let pre = shared.then_some(prefix.as_slice());
        let r = completion_logprobs_with_prefix(&model, pre, &pr, &cr, 0.9, true).unwrap();
        let ent = r.entropy.unwrap();
        // The entropy is a metric, outside the graph.
        assert!(!ent.requires_grad());
        let loss = -(r.logprobs.sum(Kind::Float));
        loss.backward();
        let grads = param_grads(&model);
        (loss.double_value(&[]), r.logprobs.detach(), grads, ent)
    };
    let (l1, lp1, g1, e1) = run(false);
    let (l2, lp2, g2, e2) = run(true);
    assert!((l1 - l2).abs() < 1e-4, "loss {l1} vs {l2}");
    assert!(max_abs_diff(&lp1, &lp2) < 1e-5);
    assert!(max_abs_diff(&e1, &e2) < 1e-4);
    assert_same_grads(&g1, &g2);
}

#[test]
fn prefix_run_once_for_several_micro_batches_gives_the_same_gradients() {
    use modrl_model::train::{completion_logprobs_with_prefix, TrainPrefix};
    let (prefix, mut prompts, mut comps) = prefixed_rows();
    // A fourth row shares only the first four tokens of the prefix: its micro-batch reads part of it.
    prompts.push([prefix[..4].to_vec(), vec![33, 34]].concat());
    comps.push(vec![63, 2]);
    // once: the prefix runs once (else in every micro-batch); carry: its gradient is carried back.
    let run = |once: bool, carry: bool| {
        let mut model = tiny_model(9);
        model.set_base_trainable(true);
        let tp = once.then(|| TrainPrefix::new(&model, &prefix));
        let mut total = 0.0;
        for r in [0..2, 2..4] {
            let pr: Vec<&[u32]> = prompts[r.clone()].iter().map(|x| x.as_slice()).collect();
            let cr: Vec<&[u32]> = comps[r].iter().map(|x| x.as_slice()).collect();
            let out = match &tp {
                Some(tp) => completion_logprobs_with_prefix(&model, tp, &pr, &cr, 0.9, false),
                None => {
                    completion_logprobs_with_prefix(&model, Some(&prefix[..]), &pr, &cr, 0.9, false)
                }
            }
            .unwrap();
            let loss = -(out.logprobs.sum(Kind::Float));
            loss.backward();
            total += loss.double_value(&[]);
        }
        if let Some(tp) = tp.as_ref().filter(|_| carry) {
            tp.backward();
        }
        let grads = param_grads(&model);
        (total, grads)
    };
    let (l1, g1) = run(false, true);
    let (l2, g2) = run(true, true);
    assert!((l1 - l2).abs() < 1e-4, "loss {l1} vs {l2}");
    assert_same_grads(&g1, &g2);
    // Without carrying the prefix's gradient back, the weights miss its share: the check can fail.
    let (_, g3) = run(true, false);
    assert!(g1.iter().zip(&g3).any(|(a, b)| max_abs_diff(a, b) > 1e-3));
}
