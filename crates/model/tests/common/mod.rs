//! Helpers shared by the model crate's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use modrl_model::{Kind, Tensor};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The project venv's Python (made by scripts/setup.sh).
pub fn python() -> PathBuf {
    let p = root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh first",
        p.display()
    );
    p
}

/// The default model directory (made by scripts/setup.sh).
pub fn default_model() -> PathBuf {
    let p = root().join("models/smollm2-135m-instruct");
    assert!(
        p.join("model.safetensors").exists(),
        "{} is missing: run scripts/setup.sh first",
        p.display()
    );
    p
}

/// Run tests/reference.py with the given arguments; panics with its stderr on failure.
pub fn reference(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference.py");
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .output()
        .expect("cannot run python");
    assert!(
        out.status.success(),
        "reference.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

pub fn write_json(p: &Path, v: &serde_json::Value) {
    std::fs::write(p, serde_json::to_string(v).unwrap()).unwrap();
}

/// `[T, V]` nested JSON array as a tensor.
pub fn tensor2(v: &serde_json::Value) -> Tensor {
    let rows: Vec<Vec<f32>> = serde_json::from_value(v.clone()).unwrap();
    let t = rows.len() as i64;
    let flat: Vec<f32> = rows.into_iter().flatten().collect();
    Tensor::from_slice(&flat).view([t, -1])
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Float) - b.to_kind(Kind::Float))
        .abs()
        .max()
        .double_value(&[])
}

/// A tiny random Llama-style config (built in the test, no Python needed).
pub const TINY_LLAMA: &str = r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":128,
  "hidden_size":32,"intermediate_size":48,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,
  "rms_norm_eps":1e-6,"rope_theta":10000.0,"tie_word_embeddings":true,"bos_token_id":1,"eos_token_id":2,
  "max_position_embeddings":256}"#;

pub fn tiny_model(seed: i64) -> modrl_model::Model {
    let cfg = modrl_model::ModelConfig::from_json(TINY_LLAMA).unwrap();
    modrl_model::Model::random(cfg, seed, modrl_model::Device::Cpu)
}
