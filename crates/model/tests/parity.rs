//! Parity with `transformers`: logits of tiny random models of every supported architecture, and
//! greedy generation (batched, left-padded on our side) against `generate`.

mod common;

use common::*;
use modrl_model::{generate, Device, Kind, Model, SamplingParams, Tensor};

fn tiny_parity(arch: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(arch);
    reference(&["tiny", arch, dir.to_str().unwrap()]);
    let rows: Vec<Vec<u32>> = vec![
        vec![1, 17, 42, 99, 5, 250, 7, 7, 31, 64, 128, 3],
        vec![1, 200, 13, 77, 45, 9, 101],
        vec![1, 60],
    ];
    let spec = tmp.path().join("ids.json");
    write_json(&spec, &serde_json::json!({"ids": rows, "generate": 12}));
    let out = tmp.path().join("out.json");
    reference(&[
        "logits",
        dir.to_str().unwrap(),
        spec.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    let want = read_json(&out);

    let model = Model::load(&dir, Device::Cpu, Kind::Float).unwrap();
    for (i, row) in rows.iter().enumerate() {
        let ids =
            Tensor::from_slice(&row.iter().map(|&x| x as i64).collect::<Vec<_>>()).unsqueeze(0);
        let ours = tch::no_grad(|| model.forward(&ids)).squeeze_dim(0);
        let theirs = tensor2(&want["logits"][i]);
        let d = max_abs_diff(&ours, &theirs);
        assert!(d <= 1e-4, "{arch} row {i}: max abs logit diff {d}");
    }
    // Our batched generation pads the three prompts to one batch; transformers runs each alone.
    let params = SamplingParams {
        max_new_tokens: 12,
        temperature: 0.0,
        ..Default::default()
    };
    let outs = generate(&model, &rows, 1, &params, None).unwrap();
    for (i, o) in outs.iter().enumerate() {
        let theirs: Vec<u32> = serde_json::from_value(want["generated"][i].clone()).unwrap();
        assert_eq!(
            o.token_ids, theirs,
            "{arch} row {i}: greedy generation differs"
        );
    }
}

#[test]
fn tiny_llama_matches_transformers() {
    tiny_parity("llama");
}

#[test]
fn tiny_llama3_rope_untied_biased_matches_transformers() {
    tiny_parity("llama3");
}

#[test]
fn tiny_qwen2_matches_transformers() {
    tiny_parity("qwen2");
}

#[test]
fn tiny_qwen3_matches_transformers() {
    tiny_parity("qwen3");
}
