//! Bad model directories give one clear message that names the file.

mod common;

use common::*;
use modrl_model::{load, Device, Kind, Model};

fn err(dir: &std::path::Path) -> String {
    match load(dir, Device::Cpu, Kind::Float) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

fn tiny_dir(tmp: &std::path::Path) -> std::path::PathBuf {
    let dir = tmp.join("tiny");
    tiny_model(1).save_pretrained(&dir, TINY_LLAMA).unwrap();
    dir
}

#[test]
fn missing_directory_and_missing_config() {
    let tmp = tempfile::tempdir().unwrap();
    let e = err(&tmp.path().join("nope"));
    assert!(e.contains("does not exist") && e.contains("nope"), "{e}");
    let e = err(tmp.path());
    assert!(e.contains("config.json"), "{e}");
}

#[test]
fn malformed_config_and_unsupported_architecture() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny_dir(tmp.path());
    std::fs::write(dir.join("config.json"), "{\"model_type\": \"llama\", ").unwrap();
    let e = err(&dir);
    assert!(e.contains("config.json") && e.contains("invalid"), "{e}");
    std::fs::write(
        dir.join("config.json"),
        TINY_LLAMA
            .replace("\"llama\"", "\"mamba\"")
            .replace("LlamaForCausalLM", "MambaForCausalLM"),
    )
    .unwrap();
    let e = err(&dir);
    assert!(
        e.contains("config.json") && e.contains("unsupported architecture") && e.contains("mamba"),
        "{e}"
    );
}

#[test]
fn checkpoint_shape_mismatch_names_the_tensor_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny_dir(tmp.path());
    std::fs::write(
        dir.join("config.json"),
        TINY_LLAMA.replace("\"intermediate_size\":48", "\"intermediate_size\":64"),
    )
    .unwrap();
    let e = format!(
        "{:#}",
        Model::load(&dir, Device::Cpu, Kind::Float).err().unwrap()
    );
    assert!(
        e.contains("model.safetensors")
            && e.contains("mlp.gate_proj.weight")
            && e.contains("[48, 32]"),
        "{e}"
    );
    std::fs::write(dir.join("model.safetensors"), b"not a safetensors file").unwrap();
    let e = format!(
        "{:#}",
        Model::load(&dir, Device::Cpu, Kind::Float).err().unwrap()
    );
    assert!(
        e.contains("model.safetensors") && e.contains("not a valid safetensors"),
        "{e}"
    );
}

#[test]
fn tokenizer_that_does_not_match_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny_dir(tmp.path());
    let e = err(&dir);
    assert!(e.contains("tokenizer.json") && e.contains("missing"), "{e}");
    // The default model's 49,152-token tokenizer next to a 128-row embedding.
    std::fs::copy(
        default_model().join("tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();
    let e = err(&dir);
    assert!(
        e.contains("tokenizer.json") && e.contains("does not belong"),
        "{e}"
    );
}
