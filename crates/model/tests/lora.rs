//! LoRA: a training step changes only adapter weights, merging gives the same logits as base +
//! adapter, and an adapter we save loads in `peft` with the same logits.

mod common;

use common::*;
use modrl_model::lora::{self, LoraConfig};
use modrl_model::train::{sft_loss, zero_grad, AdamW, AdamWConfig};
use modrl_model::{Device, Kind, Model, Tensor};

fn train_steps(model: &Model, steps: usize) {
    let params = lora::trainable(model);
    let mut opt = AdamW::new(
        &params,
        AdamWConfig {
            lr: 1e-2,
            ..Default::default()
        },
    );
    let p: Vec<&[u32]> = vec![&[1, 10, 11], &[1, 20]];
    let c: Vec<&[u32]> = vec![&[40, 41, 2], &[50, 51, 52, 2]];
    for _ in 0..steps {
        zero_grad(&params);
        sft_loss(model, &p, &c).unwrap().backward();
        opt.step(&params, 1e-2);
    }
}

fn ids() -> Tensor {
    Tensor::from_slice(&[1i64, 10, 11, 40, 41, 7, 9]).unsqueeze(0)
}

#[test]
fn training_changes_only_adapter_weights_and_merge_preserves_logits() {
    let mut model = tiny_model(21);
    let before: Vec<(String, Tensor)> = model
        .named_parameters()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect();
    let cfg = LoraConfig {
        r: 4,
        lora_alpha: 8.0,
        lora_dropout: 0.0,
        target_modules: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()],
    };
    let n = lora::attach(&mut model, &cfg).unwrap();
    assert_eq!(n, 2 * 3);
    let base_logits = tch::no_grad(|| model.forward(&ids()));
    let adapters_before: Vec<Tensor> = lora::trainable(&model).iter().map(|t| t.copy()).collect();
    model.training = true;
    train_steps(&model, 3);
    model.training = false;
    for ((name, after), (_, b)) in model.named_parameters().iter().zip(&before) {
        assert_eq!(max_abs_diff(after, b), 0.0, "base weight {name} changed");
        assert!(
            !after.requires_grad(),
            "base weight {name} should be frozen"
        );
    }
    for (a, b) in lora::trainable(&model).iter().zip(&adapters_before) {
        assert!(max_abs_diff(a, b) > 0.0, "an adapter tensor did not change");
    }
    let adapted = tch::no_grad(|| model.forward(&ids()));
    assert!(
        max_abs_diff(&adapted, &base_logits) > 1e-4,
        "training had no effect on the logits"
    );
    lora::merge(&mut model);
    let merged = tch::no_grad(|| model.forward(&ids()));
    let d = max_abs_diff(&merged, &adapted);
    assert!(d <= 1e-5, "merged vs adapted: {d}");
}

#[test]
fn saved_adapter_loads_in_peft_and_back_with_the_same_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let base_dir = tmp.path().join("base");
    reference(&["tiny", "qwen2", base_dir.to_str().unwrap()]);
    let mut model = Model::load(&base_dir, Device::Cpu, Kind::Float).unwrap();
    let cfg = LoraConfig {
        r: 8,
        lora_alpha: 16.0,
        lora_dropout: 0.1,
        target_modules: vec!["all-linear".into()],
    };
    lora::attach(&mut model, &cfg).unwrap();
    model.training = true;
    train_steps(&model, 2);
    model.training = false;
    let adapter_dir = tmp.path().join("adapter");
    lora::save_adapter(&model, &cfg, &adapter_dir, base_dir.to_str().unwrap()).unwrap();
    let ours = tch::no_grad(|| model.forward(&ids())).squeeze_dim(0);

    let spec = tmp.path().join("ids.json");
    write_json(
        &spec,
        &serde_json::json!({"ids": [[1, 10, 11, 40, 41, 7, 9]]}),
    );
    let out = tmp.path().join("out.json");
    reference(&[
        "peft",
        base_dir.to_str().unwrap(),
        adapter_dir.to_str().unwrap(),
        spec.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    let d = max_abs_diff(&ours, &tensor2(&read_json(&out)["logits"][0]));
    assert!(d <= 1e-4, "ours vs peft: {d}");

    let mut fresh = Model::load(&base_dir, Device::Cpu, Kind::Float).unwrap();
    let loaded_cfg = lora::load_adapter(&mut fresh, &adapter_dir).unwrap();
    assert_eq!(
        (loaded_cfg.r, loaded_cfg.lora_alpha, loaded_cfg.lora_dropout),
        (8, 16.0, 0.1)
    );
    let mut all: Vec<String> = [
        "down_proj",
        "gate_proj",
        "k_proj",
        "o_proj",
        "q_proj",
        "up_proj",
        "v_proj",
    ]
    .map(String::from)
    .to_vec();
    all.sort();
    assert_eq!(loaded_cfg.target_modules, all);
    let back = tch::no_grad(|| fresh.forward(&ids())).squeeze_dim(0);
    assert_eq!(max_abs_diff(&ours, &back), 0.0);
}
