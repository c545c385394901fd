//! LoRA adapters (Hu et al. 2021) in PEFT's on-disk format: `adapter_config.json` plus
//! `adapter_model.safetensors` with keys like
//! `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

pub use crate::llama::Lora;
use crate::llama::Model;
use crate::weights;

/// LoRA hyper-parameters (PEFT's `LoraConfig` names).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoraConfig {
    /// Rank of the update.
    pub r: usize,
    /// Scaling numerator: the update is multiplied by `lora_alpha / r`.
    pub lora_alpha: f64,
    /// Dropout on the adapter's input during training.
    #[serde(default)]
    pub lora_dropout: f64,
    /// Projection names to adapt, e.g. `q_proj`, `v_proj`, or `all-linear`.
    pub target_modules: Vec<String>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            r: 16,
            lora_alpha: 32.0,
            lora_dropout: 0.05,
            target_modules: [
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl LoraConfig {
    fn targets(&self, name: &str) -> bool {
        let short = name.rsplit('.').next().unwrap_or(name);
        self.target_modules
            .iter()
            .any(|t| t == "all-linear" || t == short)
    }
}

/// Attach fresh adapters (A: Kaiming-uniform as PEFT does, B: zeros, so the model is unchanged) to
/// every targeted projection, freeze the base weights, and return how many were attached.
pub fn attach(model: &mut Model, cfg: &LoraConfig) -> Result<usize> {
    if cfg.r == 0 {
        bail!("LoRA rank r must be positive");
    }
    model.set_base_trainable(false);
    let (device, kind) = (model.device, model.kind);
    let scale = cfg.lora_alpha / cfg.r as f64;
    let mut n = 0;
    for layer in &mut model.layers {
        for (name, lin) in layer.linears_mut() {
            if !cfg.targets(name) {
                continue;
            }
            let (out_f, in_f) = lin.weight.size2()?;
            // kaiming_uniform_(a=sqrt(5)) on [r, in] gives U(-1/sqrt(in), 1/sqrt(in)).
            let bound = 1.0 / (in_f as f64).sqrt();
            let a = Tensor::empty([cfg.r as i64, in_f], (kind, device)).uniform_(-bound, bound);
            let b = Tensor::zeros([out_f, cfg.r as i64], (kind, device));
            lin.lora = Some(Lora {
                a: a.set_requires_grad(true),
                b: b.set_requires_grad(true),
                scale,
                dropout: cfg.lora_dropout,
            });
            n += 1;
        }
    }
    if n == 0 {
        bail!(
            "LoRA target_modules {:?} match no projection of this model",
            cfg.target_modules
        );
    }
    Ok(n)
}

/// The adapter tensors with PEFT key names.
pub fn adapter_tensors(model: &Model) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        for (name, lin) in layer.linears() {
            if let Some(l) = &lin.lora {
                let p = format!("base_model.model.model.layers.{i}.{name}");
                out.push((format!("{p}.lora_A.weight"), l.a.shallow_clone()));
                out.push((format!("{p}.lora_B.weight"), l.b.shallow_clone()));
            }
        }
    }
    out
}

/// Save the attached adapters as a PEFT adapter directory.
pub fn save_adapter(model: &Model, cfg: &LoraConfig, dir: &Path, base_model: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tensors = adapter_tensors(model);
    if tensors.is_empty() {
        bail!("the model has no LoRA adapter to save");
    }
    weights::write_file(&dir.join("adapter_model.safetensors"), &tensors)?;
    // PEFT stores the resolved module names (it does not accept "all-linear" inside a list).
    let mut targets: Vec<String> = tensors
        .iter()
        .filter_map(|(k, _)| {
            k.strip_suffix(".lora_A.weight")?
                .rsplit('.')
                .next()
                .map(String::from)
        })
        .collect();
    targets.sort();
    targets.dedup();
    let conf = serde_json::json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": cfg.r,
        "lora_alpha": cfg.lora_alpha,
        "lora_dropout": cfg.lora_dropout,
        "target_modules": targets,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "use_rslora": false,
        "use_dora": false,
        "modules_to_save": null,
        "layers_to_transform": null,
        "revision": null,
    });
    let path = dir.join("adapter_config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&conf)?)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}

/// Load a PEFT LoRA adapter directory onto a model (replacing any adapter it had).
pub fn load_adapter(model: &mut Model, dir: &Path) -> Result<LoraConfig> {
    let cpath = dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&cpath)
        .with_context(|| format!("{}: cannot read", cpath.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid JSON", cpath.display()))?;
    let field = |k: &str| {
        v.get(k)
            .with_context(|| format!("{}: missing field \"{k}\"", cpath.display()))
    };
    if let Some(t) = v.get("peft_type").and_then(|t| t.as_str()) {
        if t != "LORA" {
            bail!(
                "{}: field \"peft_type\": {t:?} is not supported (only LORA)",
                cpath.display()
            );
        }
    }
    for k in ["use_dora", "use_rslora"] {
        if v.get(k).and_then(|x| x.as_bool()) == Some(true) {
            bail!("{}: field \"{k}\": true is not supported", cpath.display());
        }
    }
    let targets = match field("target_modules")? {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => bail!(
            "{}: field \"target_modules\": expected a list of names",
            cpath.display()
        ),
    };
    let cfg = LoraConfig {
        r: field("r")?
            .as_u64()
            .with_context(|| format!("{}: field \"r\": expected an integer", cpath.display()))?
            as usize,
        lora_alpha: field("lora_alpha")?.as_f64().with_context(|| {
            format!(
                "{}: field \"lora_alpha\": expected a number",
                cpath.display()
            )
        })?,
        lora_dropout: v
            .get("lora_dropout")
            .and_then(|x| x.as_f64())
            .unwrap_or(0.0),
        target_modules: targets,
    };
    let wpath = dir.join("adapter_model.safetensors");
    let mut tensors: BTreeMap<String, Tensor> = weights::read_map(&wpath, model.device)?;
    let scale = cfg.lora_alpha / cfg.r as f64;
    let kind = model.kind;
    let mut n = 0;
    for (i, layer) in model.layers.iter_mut().enumerate() {
        for (name, lin) in layer.linears_mut() {
            let p = format!("base_model.model.model.layers.{i}.{name}");
            // PEFT may keep the adapter name in keys (`lora_A.default.weight`); accept both.
            let take = |t: &mut BTreeMap<String, Tensor>, ab: &str| {
                t.remove(&format!("{p}.{ab}.weight"))
                    .or_else(|| t.remove(&format!("{p}.{ab}.default.weight")))
            };
            match (take(&mut tensors, "lora_A"), take(&mut tensors, "lora_B")) {
                (Some(a), Some(b)) => {
                    let (out_f, in_f) = lin.weight.size2()?;
                    if a.size() != [cfg.r as i64, in_f] || b.size() != [out_f, cfg.r as i64] {
                        bail!(
                            "{}: adapter for {p} has shapes A {:?}, B {:?}; the model and r = {} imply A [{}, {in_f}], B [{out_f}, {}]",
                            wpath.display(), a.size(), b.size(), cfg.r, cfg.r, cfg.r
                        );
                    }
                    lin.lora = Some(Lora {
                        a: a.to_kind(kind),
                        b: b.to_kind(kind),
                        scale,
                        dropout: cfg.lora_dropout,
                    });
                    n += 1;
                }
                (None, None) => lin.lora = None,
                _ => bail!(
                    "{}: adapter for {p} has only one of lora_A / lora_B",
                    wpath.display()
                ),
            }
        }
    }
    if let Some(k) = tensors.keys().next() {
        bail!(
            "{}: tensor {k} matches no projection of this model",
            wpath.display()
        );
    }
    if n == 0 {
        bail!("{}: no LoRA tensors found", wpath.display());
    }
    Ok(cfg)
}

/// The trainable adapter tensors (A and B of every adapted projection).
pub fn trainable(model: &Model) -> Vec<Tensor> {
    adapter_tensors(model).into_iter().map(|(_, t)| t).collect()
}

/// Fold every adapter into its base weight (`W += scale * B A`) and remove the adapters.
pub fn merge(model: &mut Model) {
    tch::no_grad(|| {
        for layer in &mut model.layers {
            for (_, lin) in layer.linears_mut() {
                if let Some(l) = lin.lora.take() {
                    let delta =
                        l.b.to_kind(Kind::Float).matmul(&l.a.to_kind(Kind::Float)) * l.scale;
                    let w = (lin.weight.to_kind(Kind::Float) + delta).to_kind(lin.weight.kind());
                    lin.weight = w.detach();
                }
            }
        }
    });
}
