//! `config.json` of an HF model directory, for the Llama family we support:
//! Llama / SmolLM2 (`llama`), Qwen2 / Qwen2.5 (`qwen2`: q/k/v biases) and Qwen3 (`qwen3`: q/k RMSNorm).

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

/// Which of the supported architectures a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }
}

/// RoPE frequency scaling, as `rope_scaling` / `rope_parameters` describe it.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions divided by `factor`.
    Linear {
        factor: f64,
    },
    /// Llama 3.x frequency-dependent scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

/// The fields of `config.json` the model needs, normalised across architectures.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v projections (always for Qwen2; `attention_bias` for Llama).
    pub qkv_bias: bool,
    /// Bias on the output projection (`attention_bias` for Llama only).
    pub o_bias: bool,
    pub mlp_bias: bool,
    /// Qwen3: RMSNorm on each head of q and k before RoPE.
    pub qk_norm: bool,
    pub max_position_embeddings: usize,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: Option<u32>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    architectures: Vec<String>,
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_scaling: Option<Value>,
    rope_parameters: Option<Value>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    hidden_act: Option<String>,
    max_position_embeddings: Option<usize>,
    bos_token_id: Option<Value>,
    eos_token_id: Option<Value>,
    pad_token_id: Option<Value>,
}

fn ids(v: &Option<Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|x| x as u32)
            .collect(),
        _ => vec![],
    }
}

impl ModelConfig {
    /// Read and validate `dir/config.json`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        if !dir.is_dir() {
            bail!("model directory {} does not exist", dir.display());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read the model's config", path.display()))?;
        Self::from_json(&text).with_context(|| format!("{}: invalid model config", path.display()))
    }

    /// Parse the text of a `config.json`.
    pub fn from_json(text: &str) -> Result<Self> {
        let raw: Raw = serde_json::from_str(text)?;
        let model_type = raw.model_type.clone().unwrap_or_default();
        let arch_name = raw.architectures.first().cloned().unwrap_or_default();
        let arch = match (model_type.as_str(), arch_name.as_str()) {
            ("llama", _) | (_, "LlamaForCausalLM") => Arch::Llama,
            ("qwen2", _) | (_, "Qwen2ForCausalLM") => Arch::Qwen2,
            ("qwen3", _) | (_, "Qwen3ForCausalLM") => Arch::Qwen3,
            _ => bail!(
                "unsupported architecture (model_type {model_type:?}, architectures {:?}); \
                 supported: llama (Llama, SmolLM2), qwen2 (Qwen2, Qwen2.5), qwen3",
                raw.architectures
            ),
        };
        if let Some(act) = &raw.hidden_act {
            if act != "silu" {
                bail!("field \"hidden_act\": {act:?} is not supported (only \"silu\")");
            }
        }
        if raw.num_attention_heads == 0 || raw.hidden_size == 0 || raw.num_hidden_layers == 0 {
            bail!("hidden_size, num_attention_heads and num_hidden_layers must be positive");
        }
        let num_key_value_heads = raw.num_key_value_heads.unwrap_or(raw.num_attention_heads);
        if raw.num_attention_heads % num_key_value_heads != 0 {
            bail!(
                "field \"num_key_value_heads\": {num_key_value_heads} does not divide num_attention_heads {}",
                raw.num_attention_heads
            );
        }
        let head_dim = raw
            .head_dim
            .unwrap_or(raw.hidden_size / raw.num_attention_heads);
        if head_dim % 2 != 0 {
            bail!("field \"head_dim\": {head_dim} must be even for rotary embeddings");
        }
        // transformers 5 writes `rope_parameters: {rope_theta, rope_type, ...}`; older files have a
        // top-level `rope_theta` and an optional `rope_scaling`.
        let rope_obj = raw.rope_parameters.as_ref().or(raw.rope_scaling.as_ref());
        let rope_theta = raw
            .rope_theta
            .or_else(|| raw.rope_parameters.as_ref()?.get("rope_theta")?.as_f64())
            .unwrap_or(10_000.0);
        let rope_scaling = match rope_obj {
            None | Some(Value::Null) => RopeScaling::None,
            Some(obj) => {
                let get = |k: &str| obj.get(k).and_then(Value::as_f64);
                let kind = obj
                    .get("rope_type")
                    .or_else(|| obj.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or("default");
                match kind {
                    "default" => RopeScaling::None,
                    "linear" => RopeScaling::Linear {
                        factor: get("factor").context("rope scaling \"linear\" needs \"factor\"")?,
                    },
                    "llama3" => RopeScaling::Llama3 {
                        factor: get("factor").context("rope scaling \"llama3\" needs \"factor\"")?,
                        low_freq_factor: get("low_freq_factor").unwrap_or(1.0),
                        high_freq_factor: get("high_freq_factor").unwrap_or(4.0),
                        original_max_position_embeddings: get("original_max_position_embeddings")
                            .unwrap_or(8192.0),
                    },
                    other => bail!(
                        "field \"rope_scaling\": rope_type {other:?} is not supported (default, linear, llama3)"
                    ),
                }
            }
        };
        let attention_bias = raw.attention_bias.unwrap_or(false);
        let (qkv_bias, o_bias, qk_norm) = match arch {
            Arch::Llama => (attention_bias, attention_bias, false),
            Arch::Qwen2 => (true, false, false),
            Arch::Qwen3 => (attention_bias, attention_bias, true),
        };
        Ok(ModelConfig {
            arch,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            qkv_bias,
            o_bias,
            mlp_bias: raw.mlp_bias.unwrap_or(false),
            qk_norm,
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(4096),
            bos_token_id: ids(&raw.bos_token_id).first().copied(),
            eos_token_ids: ids(&raw.eos_token_id),
            pad_token_id: ids(&raw.pad_token_id).first().copied(),
        })
    }

    /// Expected shape of every weight, by HF name.
    pub fn expected_shapes(&self) -> Vec<(String, Vec<i64>)> {
        let (h, i, v) = (
            self.hidden_size as i64,
            self.intermediate_size as i64,
            self.vocab_size as i64,
        );
        let (nh, kv, d) = (
            self.num_attention_heads as i64,
            self.num_key_value_heads as i64,
            self.head_dim as i64,
        );
        let mut out = vec![("model.embed_tokens.weight".to_string(), vec![v, h])];
        for l in 0..self.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let mut push = |n: &str, s: Vec<i64>| out.push((format!("{p}.{n}"), s));
            push("input_layernorm.weight", vec![h]);
            push("post_attention_layernorm.weight", vec![h]);
            push("self_attn.q_proj.weight", vec![nh * d, h]);
            push("self_attn.k_proj.weight", vec![kv * d, h]);
            push("self_attn.v_proj.weight", vec![kv * d, h]);
            push("self_attn.o_proj.weight", vec![h, nh * d]);
            if self.qkv_bias {
                push("self_attn.q_proj.bias", vec![nh * d]);
                push("self_attn.k_proj.bias", vec![kv * d]);
                push("self_attn.v_proj.bias", vec![kv * d]);
            }
            if self.o_bias {
                push("self_attn.o_proj.bias", vec![h]);
            }
            if self.qk_norm {
                push("self_attn.q_norm.weight", vec![d]);
                push("self_attn.k_norm.weight", vec![d]);
            }
            push("mlp.gate_proj.weight", vec![i, h]);
            push("mlp.up_proj.weight", vec![i, h]);
            push("mlp.down_proj.weight", vec![h, i]);
            if self.mlp_bias {
                push("mlp.gate_proj.bias", vec![i]);
                push("mlp.up_proj.bias", vec![i]);
                push("mlp.down_proj.bias", vec![h]);
            }
        }
        out.push(("model.norm.weight".to_string(), vec![h]));
        if !self.tie_word_embeddings {
            out.push(("lm_head.weight".to_string(), vec![v, h]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOL: &str = r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":49152,
      "hidden_size":576,"intermediate_size":1536,"num_hidden_layers":30,"num_attention_heads":9,
      "num_key_value_heads":3,"rms_norm_eps":1e-5,"rope_parameters":{"rope_theta":100000.0,"rope_type":"default"},
      "tie_word_embeddings":true,"eos_token_id":2,"bos_token_id":1}"#;

    #[test]
    fn reads_transformers5_rope_parameters() {
        let c = ModelConfig::from_json(SMOL).unwrap();
        assert_eq!(c.arch, Arch::Llama);
        assert_eq!(c.rope_theta, 100000.0);
        assert_eq!(c.head_dim, 64);
        assert_eq!(c.rope_scaling, RopeScaling::None);
        assert_eq!(c.eos_token_ids, vec![2]);
        // 30 layers x 9 tensors + embed + norm, tied: no lm_head.
        assert_eq!(c.expected_shapes().len(), 30 * 9 + 2);
    }

    #[test]
    fn reads_llama3_rope_scaling_and_qwen_biases() {
        let j = SMOL.replace(
            r#""rope_parameters":{"rope_theta":100000.0,"rope_type":"default"}"#,
            r#""rope_theta":500000.0,"rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}"#,
        );
        let c = ModelConfig::from_json(&j).unwrap();
        assert_eq!(c.rope_theta, 500000.0);
        assert!(matches!(c.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 8.0));
        let q = ModelConfig::from_json(
            &SMOL
                .replace("\"llama\"", "\"qwen2\"")
                .replace("LlamaForCausalLM", "Qwen2ForCausalLM"),
        )
        .unwrap();
        assert!(q.qkv_bias && !q.o_bias && !q.qk_norm);
        let q3 = ModelConfig::from_json(
            &SMOL
                .replace("\"llama\"", "\"qwen3\"")
                .replace("LlamaForCausalLM", "Qwen3ForCausalLM"),
        )
        .unwrap();
        assert!(q3.qk_norm && !q3.qkv_bias);
    }

    #[test]
    fn rejects_unsupported_architecture_with_names() {
        let j = SMOL
            .replace("\"llama\"", "\"gpt2\"")
            .replace("LlamaForCausalLM", "GPT2LMHeadModel");
        let e = ModelConfig::from_json(&j).unwrap_err().to_string();
        assert!(
            e.contains("unsupported architecture") && e.contains("gpt2"),
            "{e}"
        );
        let bad = SMOL.replace("\"num_key_value_heads\":3", "\"num_key_value_heads\":4");
        let e = ModelConfig::from_json(&bad).unwrap_err().to_string();
        assert!(e.contains("num_key_value_heads"), "{e}");
    }
}
