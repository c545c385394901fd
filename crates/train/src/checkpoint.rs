//! Checkpoints: trainable weights (a PEFT adapter, or full HF weights), optimizer state and the
//! trainer's position, written atomically (a temp folder renamed into place, then a `latest`
//! pointer replaced by rename), so a `kill -9` at any moment leaves the last complete checkpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use modrl_model::train::AdamW;
use modrl_model::{lora, weights, Device, LoraConfig, Model, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::Stage;

/// Where the trainer stands. With it, the data order and every random draw of the following steps
/// are determined (they are seeded by the run seed and the step), so a resumed run follows the
/// same trajectory as an uninterrupted one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    /// Stage being trained.
    pub stage: Stage,
    /// Index of that stage in the recipe.
    pub stage_index: usize,
    /// Optimizer steps completed in this stage.
    pub step: usize,
    /// Steps completed over all stages (the x axis of metrics.jsonl).
    pub global_step: usize,
    /// Training prompts consumed so far in this stage (the data position).
    pub cursor: usize,
    /// Steps skipped for NaN/Inf so far.
    pub nonfinite_steps: usize,
}

const LATEST: &str = "latest";

fn ckpt_root(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// Save a checkpoint of this stage and step; returns its folder.
pub fn save(
    run_dir: &Path,
    model: &Model,
    lora_cfg: Option<&LoraConfig>,
    base_model: &Path,
    opt: &AdamW,
    state: &TrainState,
    keep: usize,
) -> Result<PathBuf> {
    let root = ckpt_root(run_dir);
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let name = format!(
        "stage{}-{:?}-step{:06}",
        state.stage_index, state.stage, state.step
    )
    .to_lowercase();
    let dir = root.join(&name);
    let tmp = root.join(format!("{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    match lora_cfg {
        Some(cfg) => lora::save_adapter(
            model,
            cfg,
            &tmp.join("adapter"),
            &base_model.display().to_string(),
        )?,
        None => save_full(model, base_model, &tmp.join("model"))?,
    }
    weights::write_file(&tmp.join("optimizer.safetensors"), &opt.state())?;
    std::fs::write(tmp.join("state.json"), serde_json::to_string_pretty(state)?)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::rename(&tmp, &dir)
        .with_context(|| format!("cannot move checkpoint into {}", dir.display()))?;
    let ptr_tmp = root.join(format!("{LATEST}.tmp"));
    std::fs::write(&ptr_tmp, &name)?;
    std::fs::rename(&ptr_tmp, root.join(LATEST))?;
    prune(&root, keep, &name)?;
    Ok(dir)
}

/// Full weights as an HF directory: model.safetensors + the base's config and tokenizer files, so
/// transformers (or `--model`) loads the folder as it is.
pub fn save_full(model: &Model, base: &Path, dir: &Path) -> Result<()> {
    let config = std::fs::read_to_string(base.join("config.json"))
        .with_context(|| format!("{}: cannot read", base.join("config.json").display()))?;
    model.save_pretrained(dir, &config)?;
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "generation_config.json",
        "special_tokens_map.json",
    ] {
        if base.join(f).exists() {
            std::fs::copy(base.join(f), dir.join(f))?;
        }
    }
    Ok(())
}

fn prune(root: &Path, keep: usize, newest: &str) -> Result<()> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !p.extension().is_some_and(|e| e == "tmp"))
        .collect();
    dirs.sort();
    let keep = keep.max(1);
    if dirs.len() > keep {
        for d in &dirs[..dirs.len() - keep] {
            if !d.ends_with(newest) {
                std::fs::remove_dir_all(d)?;
            }
        }
    }
    Ok(())
}

/// The newest complete checkpoint of a run, if any.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>> {
    let ptr = ckpt_root(run_dir).join(LATEST);
    if !ptr.exists() {
        return Ok(None);
    }
    let name = std::fs::read_to_string(&ptr)?;
    let dir = ckpt_root(run_dir).join(name.trim());
    if !dir.join("state.json").exists() {
        bail!(
            "{}: points to {}, which is not a complete checkpoint",
            ptr.display(),
            dir.display()
        );
    }
    Ok(Some(dir))
}

pub fn read_state(dir: &Path) -> Result<TrainState> {
    let p = dir.join("state.json");
    let text =
        std::fs::read_to_string(&p).with_context(|| format!("{}: cannot read", p.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid checkpoint state", p.display()))
}

/// Copy a checkpoint's weights and optimizer state into the live model and optimizer (in place,
/// so the optimizer keeps pointing at the same tensors).
pub fn restore(
    dir: &Path,
    model: &Model,
    params: &[(String, Tensor)],
    opt: &mut AdamW,
) -> Result<TrainState> {
    let file = if dir.join("adapter").exists() {
        dir.join("adapter/adapter_model.safetensors")
    } else {
        dir.join("model/model.safetensors")
    };
    let saved: BTreeMap<String, Tensor> = weights::read_map(&file, model.device)?;
    tch::no_grad(|| -> Result<()> {
        for (name, p) in params {
            let src = saved
                .get(name)
                .with_context(|| format!("{}: checkpoint has no tensor {name}", file.display()))?;
            if src.size() != p.size() {
                bail!(
                    "{}: tensor {name} has shape {:?}, the model has {:?}",
                    file.display(),
                    src.size(),
                    p.size()
                );
            }
            p.shallow_clone().copy_(&src.to_kind(p.kind()));
        }
        Ok(())
    })?;
    let opt_state = weights::read_map(&dir.join("optimizer.safetensors"), Device::Cpu)?;
    let opt_state: BTreeMap<String, Tensor> = opt_state
        .into_iter()
        .map(|(k, v)| (k, v.to_device(model.device)))
        .collect();
    opt.load_state(&opt_state)?;
    read_state(dir)
}
