//! The Llama-family decoder (Llama / SmolLM2, Qwen2 / Qwen2.5, Qwen3) on libtorch, with HF weight
//! names. The KV cache lives outside the model ([`KvCache`]), so one set of weights serves the policy,
//! a frozen reference and the sampler at once.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::{Device, Kind, Tensor};

use crate::config::{ModelConfig, RopeScaling};
use crate::weights;
use crate::xnn::Packed;

/// Up to this many rows (tokens of the whole batch), [`project`] on CPU computes `(W x^T)^T`.
const FEW_ROWS_MAX: i64 = 8;

/// `x W^T + b` for `x` `[..., in]` and `W` `[out, in]`. A decoding step has few rows (one per
/// sequence) against each weight matrix. For those, libtorch's CPU BLAS runs `x W^T` slowly: one
/// row goes to a matrix-vector product that streams the weights on one core, 2-8 rows to a GEMM
/// that packs all of `W` for every call. With the weight as the left operand (`W x^T`, one row
/// given as two) it runs as a GEMM on every core with the small side packed. The same products,
/// summed in another order (differences ~1e-6). Measured on the 2-core development machine (f32,
/// SmolLM2-135M's 30 layers of seven projections, weights streamed from memory): 1 row 37.1 ->
/// 18.4 ms, 4 rows 47.7 -> 22.2 ms, 8 rows 41.3 -> 37.6 ms, 16 rows equal; its 49152 x 576
/// vocabulary projection: 1 row 10.1 -> 3.1 ms, 8 rows 15.8 -> 7.0 ms.
///
/// With `packed` (the weight's XNNPACK operator, [`crate::xnn`]), up to [`crate::xnn::MAX_ROWS`]
/// rows that need no gradient go through XNNPACK first, which packs the weight once instead of on every call.
fn project(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, packed: Option<&Packed>) -> Tensor {
    let size = x.size();
    let k = *size.last().unwrap_or(&0);
    let rows = if k > 0 { x.numel() as i64 / k } else { 0 };
    let out_size = || {
        let mut out = size.clone();
        *out.last_mut().unwrap() = w.size()[0];
        out
    };
    if let Some(p) = packed.filter(|_| (1..=crate::xnn::MAX_ROWS).contains(&rows)) {
        if let Some(y) = p.project(&x.reshape([rows, k]), w, bias) {
            return y.view(out_size().as_slice());
        }
    }
    if rows == 0
        || rows > FEW_ROWS_MAX
        || x.device() != Device::Cpu
        || x.kind() != Kind::Float
        || w.kind() != Kind::Float
    {
        return x.linear(w, bias);
    }
    let x2 = x.reshape([rows, k]);
    let x2 = if rows == 1 {
        Tensor::cat(&[&x2, &x2], 0)
    } else {
        x2
    };
    let y = w
        .matmul(&x2.transpose(0, 1))
        .transpose(0, 1)
        .narrow(0, 0, rows);
    let y = match bias {
        Some(b) => y + b,
        None => y.contiguous(),
    };
    y.view(out_size().as_slice())
}

/// A linear layer `y = x W^T + b`, with an optional LoRA adapter added on top.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub lora: Option<Lora>,
    /// The weight packed for few-row products without gradients (made on first use).
    pub packed: Packed,
}

impl Linear {
    /// `mode`: whether dropout is active and whether the adapter (if any) is applied.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        let y = project(x, &self.weight, self.bias.as_ref(), Some(&self.packed));
        match &self.lora {
            Some(l) if mode.adapters => y + l.delta(x, mode.train),
            _ => y,
        }
    }
}

/// How a forward pass treats dropout and LoRA adapters.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    pub train: bool,
    pub adapters: bool,
}

fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Tensor {
    let kind = x.kind();
    if kind == Kind::Float && weight.kind() == Kind::Float {
        // f32: libtorch's fused kernel (one pass instead of five ops, with its own backward); the
        // same arithmetic as below up to f32 rounding.
        let d = *x.size().last().unwrap();
        return x.rms_norm([d], Some(weight), eps);
    }
    // Same arithmetic as transformers' LlamaRMSNorm: normalise in f32 (f64 stays f64), scale in the
    // weight's dtype.
    let ck = if kind == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    };
    let xf = x.to_kind(ck);
    let var = xf.pow_tensor_scalar(2).mean_dim(-1, true, ck);
    let normed = (xf * (var + eps).rsqrt()).to_kind(kind);
    weight * normed
}

fn rotate_half(x: &Tensor) -> Tensor {
    let d = *x.size().last().unwrap();
    let x1 = x.narrow(-1, 0, d / 2);
    let x2 = x.narrow(-1, d / 2, d / 2);
    Tensor::cat(&[-x2, x1], -1)
}

/// Attention of queries `q` `[B, H, T, D]` over a prefix shared by every row (`kp`, `vp`:
/// `[1, KV, P, D]`, fully visible) followed by each row's own keys (`ks`, `vs`: `[B, KV, S, D]`,
/// visibility from `mask`). One softmax over both parts, exactly as if the prefix were copied
/// into every row, but the prefix is read once for the whole batch.
fn cascade_attention(
    q: &Tensor,
    kp: &Tensor,
    vp: &Tensor,
    ks: &Tensor,
    vs: &Tensor,
    mask: &AttnMask,
) -> Tensor {
    let (b, h, t, d) = q.size4().unwrap();
    let kv = kp.size()[1];
    let (p, s) = (kp.size()[2], ks.size()[2]);
    let g = h / kv;
    let scale = 1.0 / (d as f64).sqrt();
    let fk = Kind::Float;
    // Rows and query positions become one long query axis per KV head for the shared part.
    let qg = q.contiguous().view([b, kv, g, t, d]);
    let qp = qg.permute([1, 2, 0, 3, 4]).reshape([1, kv, g * b * t, d]);
    let sp = (qp.matmul(&kp.transpose(-1, -2)).to_kind(fk) * scale)
        .view([kv, g, b, t, p])
        .permute([2, 0, 1, 3, 4])
        .reshape([b, h, t, p]);
    let ss = (qg
        .view([b, kv, g * t, d])
        .matmul(&ks.transpose(-1, -2))
        .to_kind(fk)
        * scale)
        .view([b, h, t, s]);
    let ss = match mask {
        AttnMask::All => ss,
        AttnMask::Causal => {
            let m = Tensor::ones([t, s], (Kind::Bool, q.device())).tril(s - t);
            ss.masked_fill(&m.logical_not(), f64::NEG_INFINITY)
        }
        AttnMask::Explicit(m) => ss.masked_fill(&m.logical_not(), f64::NEG_INFINITY),
    };
    let probs = Tensor::cat(&[sp, ss], -1).softmax(-1, fk).to_kind(q.kind());
    let pp = probs
        .narrow(-1, 0, p)
        .view([b, kv, g, t, p])
        .permute([1, 2, 0, 3, 4])
        .reshape([1, kv, g * b * t, p]);
    let op = pp
        .matmul(vp)
        .view([kv, g, b, t, d])
        .permute([2, 0, 1, 3, 4])
        .reshape([b, h, t, d]);
    let ps = probs.narrow(-1, p, s).reshape([b, kv, g * t, s]);
    let os = ps.matmul(vs).view([b, h, t, d]);
    op + os
}

/// One decoder layer's attention.
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub q_norm: Option<Tensor>,
    pub k_norm: Option<Tensor>,
}

/// One decoder layer's gated MLP.
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

pub struct Layer {
    pub input_layernorm: Tensor,
    pub post_attention_layernorm: Tensor,
    pub self_attn: Attention,
    pub mlp: Mlp,
}

/// How queries may attend to keys in one forward call.
pub enum AttnMask {
    /// Plain causal attention over a fresh sequence (no cache offset, no padding).
    Causal,
    /// Every query sees every cached key (one new token per row, no padding anywhere).
    All,
    /// Explicit boolean mask `[B, 1, Tq, Tk]`, true = may attend.
    Explicit(Tensor),
}

/// Keys and values of every layer for a batch of sequences, preallocated to a capacity and
/// written in place. Rows may hold left padding (`key_mask` false there).
pub struct KvCache {
    pub k: Vec<Tensor>,
    pub v: Vec<Tensor>,
    /// Number of filled positions (the same for every row; shorter rows are left-padded).
    pub len: i64,
    /// `[B, cap]` bool: which cached positions are real tokens. `None` = all real.
    pub key_mask: Option<Tensor>,
    /// `[B]` int64: position id of the next token of each row.
    pub next_pos: Tensor,
    /// Keys and values of a prompt prefix that every row shares, stored once (batch 1) and
    /// attended to by all rows ("cascade" attention) instead of being copied into every row.
    pub shared: Option<SharedPrefix>,
}

/// Per-layer keys and values `[1, kv_heads, P, head_dim]` of a prefix shared by all rows of a
/// [`KvCache`]; the rows' own positions come after it.
#[derive(Debug)]
pub struct SharedPrefix {
    pub k: Vec<Tensor>,
    pub v: Vec<Tensor>,
    pub len: i64,
}

impl KvCache {
    pub fn new(cfg: &ModelConfig, batch: i64, cap: i64, kind: Kind, device: Device) -> Self {
        let shape = [
            batch,
            cfg.num_key_value_heads as i64,
            cap,
            cfg.head_dim as i64,
        ];
        let mk = || Tensor::zeros(shape, (kind, device));
        KvCache {
            k: (0..cfg.num_hidden_layers).map(|_| mk()).collect(),
            v: (0..cfg.num_hidden_layers).map(|_| mk()).collect(),
            len: 0,
            key_mask: None,
            next_pos: Tensor::zeros([batch], (Kind::Int64, device)),
            shared: None,
        }
    }

    /// A cache that holds only a prefix shared by `batch` rows; the rows' own keys and values are
    /// not kept (for a training forward over whole sequences after the prefix).
    pub fn shared_only(shared: SharedPrefix, batch: i64, device: Device) -> Self {
        KvCache {
            k: vec![],
            v: vec![],
            len: 0,
            key_mask: None,
            next_pos: Tensor::zeros([batch], (Kind::Int64, device)),
            shared: Some(shared),
        }
    }

    /// A view of rows `start..start + n` sharing this cache's storage: a forward through the view
    /// writes into this cache.
    pub fn rows_view(&self, start: i64, n: i64) -> KvCache {
        let rows = |t: &Tensor| t.narrow(0, start, n);
        KvCache {
            k: self.k.iter().map(rows).collect(),
            v: self.v.iter().map(rows).collect(),
            len: self.len,
            key_mask: self.key_mask.as_ref().map(rows),
            next_pos: rows(&self.next_pos),
            shared: self.shared.as_ref().map(|sp| SharedPrefix {
                k: sp.k.iter().map(|t| t.shallow_clone()).collect(),
                v: sp.v.iter().map(|t| t.shallow_clone()).collect(),
                len: sp.len,
            }),
        }
    }

    pub fn batch(&self) -> i64 {
        self.k[0].size()[0]
    }

    pub fn capacity(&self) -> i64 {
        self.k[0].size()[2]
    }

    /// Make room for `extra` more positions, growing the buffers if needed.
    pub fn reserve(&mut self, extra: i64) {
        if self.k.is_empty() {
            return;
        }
        let need = self.len + extra;
        let cap = self.capacity();
        if need <= cap {
            return;
        }
        let new_cap = need.max(cap * 2);
        let grow = |t: &Tensor| {
            let mut s = t.size();
            s[2] = new_cap - cap;
            Tensor::cat(
                &[t.shallow_clone(), Tensor::zeros(s, (t.kind(), t.device()))],
                2,
            )
        };
        self.k = self.k.iter().map(grow).collect();
        self.v = self.v.iter().map(grow).collect();
        if let Some(m) = &self.key_mask {
            let b = m.size()[0];
            let pad = Tensor::ones([b, new_cap - cap], (Kind::Bool, m.device()));
            self.key_mask = Some(Tensor::cat(&[m.shallow_clone(), pad], 1));
        }
    }

    /// Keep only the given rows (in that order); a row may be repeated, which is how one cached
    /// prompt is shared by G samples without recomputing it.
    pub fn select_rows(&mut self, rows: &Tensor) {
        let sel = |t: &Tensor| t.index_select(0, rows);
        self.k = self.k.iter().map(sel).collect();
        self.v = self.v.iter().map(sel).collect();
        self.key_mask = self.key_mask.as_ref().map(sel);
        self.next_pos = sel(&self.next_pos);
    }
}

/// The decoder-only transformer.
pub struct Model {
    pub config: ModelConfig,
    pub embed_tokens: Tensor,
    pub layers: Vec<Layer>,
    pub norm: Tensor,
    /// `None` when tied to `embed_tokens`.
    pub lm_head: Option<Tensor>,
    /// The vocabulary projection packed for few-row products without gradients.
    head_packed: Packed,
    inv_freq: Tensor,
    /// Multiplier applied to positions (1 / linear rope factor).
    pos_scale: f64,
    pub device: Device,
    pub kind: Kind,
    /// Enables dropout (LoRA dropout) in forward passes.
    pub training: bool,
    /// Applies LoRA adapters (off = the base model, e.g. the frozen reference for a KL term).
    pub adapters_enabled: bool,
}

fn inv_freq(cfg: &ModelConfig, device: Device) -> (Tensor, f64) {
    let d = cfg.head_dim as i64;
    let exps =
        Tensor::arange_start_step(0, d, 2, (Kind::Int64, device)).to_kind(Kind::Float) / d as f64;
    let base = Tensor::from(cfg.rope_theta as f32).to_device(device);
    let inv = base.pow(&exps).reciprocal();
    match cfg.rope_scaling {
        RopeScaling::None => (inv, 1.0),
        RopeScaling::Linear { factor } => (inv, 1.0 / factor),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            // transformers' _compute_llama3_parameters.
            let low_wavelen = original_max_position_embeddings / low_freq_factor;
            let high_wavelen = original_max_position_embeddings / high_freq_factor;
            let wavelen = (&inv).reciprocal() * (2.0 * std::f64::consts::PI);
            let scaled = (&inv / factor).where_self(&wavelen.gt(low_wavelen), &inv);
            let smooth = (wavelen.reciprocal() * original_max_position_embeddings
                - low_freq_factor)
                / (high_freq_factor - low_freq_factor);
            let smoothed = (-&smooth + 1.0) * &scaled / factor + &smooth * &scaled;
            let is_medium = wavelen
                .ge(high_wavelen)
                .logical_and(&wavelen.le(low_wavelen));
            (smoothed.where_self(&is_medium, &scaled), 1.0)
        }
    }
}

impl Model {
    /// Load a model directory (config.json + safetensors) onto `device` in `kind` (f32 or bf16).
    pub fn load(dir: &Path, device: Device, kind: Kind) -> Result<Model> {
        let config = ModelConfig::from_dir(dir)?;
        let files = weights::model_files(dir)?;
        let loaded = weights::read_files(&files, kind, device)?;
        Self::from_loaded(config, loaded, device, kind)
            .with_context(|| format!("loading weights of {}", dir.display()))
    }

    /// Build a model from tensors read from disk, checking every name and shape against the config.
    pub fn from_loaded(
        config: ModelConfig,
        mut loaded: HashMap<String, weights::Loaded>,
        device: Device,
        kind: Kind,
    ) -> Result<Model> {
        let mut t = HashMap::new();
        for (name, shape) in config.expected_shapes() {
            let Some(l) = loaded.remove(&name) else {
                if name == "lm_head.weight" {
                    bail!("missing tensor {name} (config.json says tie_word_embeddings is false)");
                }
                bail!("missing tensor {name}");
            };
            if l.tensor.size() != shape {
                bail!(
                    "{}: tensor {name} has shape {:?}, but config.json implies {:?}",
                    l.file.display(),
                    l.tensor.size(),
                    shape
                );
            }
            t.insert(name, l.tensor);
        }
        // A tied checkpoint may still store lm_head.weight; anything else left over is unexpected.
        loaded.remove("lm_head.weight");
        if let Some(extra) = loaded.keys().find(|k| !k.ends_with("rotary_emb.inv_freq")) {
            let l = &loaded[extra];
            bail!(
                "{}: unexpected tensor {extra} for a {} model",
                l.file.display(),
                config.arch.name()
            );
        }
        Ok(Self::from_tensors(config, t, device, kind))
    }

    /// Build from a complete map of HF-named tensors (already checked).
    pub fn from_tensors(
        config: ModelConfig,
        mut t: HashMap<String, Tensor>,
        device: Device,
        kind: Kind,
    ) -> Model {
        let mut take = |n: &str| t.remove(n).unwrap_or_else(|| panic!("tensor {n} missing"));
        let mut linear = |p: &str, bias: bool| Linear {
            weight: take(&format!("{p}.weight")),
            bias: if bias {
                Some(take(&format!("{p}.bias")))
            } else {
                None
            },
            lora: None,
            packed: Packed::default(),
        };
        let mut layers = Vec::new();
        for l in 0..config.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let self_attn = Attention {
                q_proj: linear(&format!("{p}.self_attn.q_proj"), config.qkv_bias),
                k_proj: linear(&format!("{p}.self_attn.k_proj"), config.qkv_bias),
                v_proj: linear(&format!("{p}.self_attn.v_proj"), config.qkv_bias),
                o_proj: linear(&format!("{p}.self_attn.o_proj"), config.o_bias),
                q_norm: None,
                k_norm: None,
            };
            let mlp = Mlp {
                gate_proj: linear(&format!("{p}.mlp.gate_proj"), config.mlp_bias),
                up_proj: linear(&format!("{p}.mlp.up_proj"), config.mlp_bias),
                down_proj: linear(&format!("{p}.mlp.down_proj"), config.mlp_bias),
            };
            layers.push((p, self_attn, mlp));
        }
        let layers = layers
            .into_iter()
            .map(|(p, mut self_attn, mlp)| {
                if config.qk_norm {
                    self_attn.q_norm = Some(take(&format!("{p}.self_attn.q_norm.weight")));
                    self_attn.k_norm = Some(take(&format!("{p}.self_attn.k_norm.weight")));
                }
                Layer {
                    input_layernorm: take(&format!("{p}.input_layernorm.weight")),
                    post_attention_layernorm: take(&format!("{p}.post_attention_layernorm.weight")),
                    self_attn,
                    mlp,
                }
            })
            .collect();
        let embed_tokens = take("model.embed_tokens.weight");
        let norm = take("model.norm.weight");
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(take("lm_head.weight"))
        };
        let (inv_freq, pos_scale) = inv_freq(&config, device);
        Model {
            config,
            embed_tokens,
            layers,
            norm,
            lm_head,
            head_packed: Packed::default(),
            inv_freq,
            pos_scale,
            device,
            kind,
            training: false,
            adapters_enabled: true,
        }
    }

    /// A randomly initialised model (normal(0, 0.02) weights, unit norms) for tests and benches.
    pub fn random(config: ModelConfig, seed: i64, device: Device) -> Model {
        tch::manual_seed(seed);
        let t = config
            .expected_shapes()
            .into_iter()
            .map(|(name, shape)| {
                let w = if name.ends_with("norm.weight") {
                    Tensor::ones(shape.as_slice(), (Kind::Float, device))
                } else {
                    Tensor::randn(shape.as_slice(), (Kind::Float, device)) * 0.02
                };
                (name, w)
            })
            .collect();
        Self::from_tensors(config, t, device, Kind::Float)
    }

    /// Write the base weights as an HF model directory (config.json from `config_json`, plus
    /// model.safetensors) that `transformers` loads.
    pub fn save_pretrained(&self, dir: &Path, config_json: &str) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tensors: Vec<(String, Tensor)> = self
            .named_parameters()
            .into_iter()
            .map(|(n, t)| (n, t.detach().to_kind(Kind::Float)))
            .collect();
        weights::write_file(&dir.join("model.safetensors"), &tensors)?;
        std::fs::write(dir.join("config.json"), config_json)
            .with_context(|| format!("{}: cannot write", dir.join("config.json").display()))?;
        Ok(())
    }

    /// Every base weight with its HF name (the tied `lm_head` is not listed separately).
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![(
            "model.embed_tokens.weight".to_string(),
            self.embed_tokens.shallow_clone(),
        )];
        for (i, l) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            let mut push = |n: &str, t: &Tensor| out.push((format!("{p}.{n}"), t.shallow_clone()));
            push("input_layernorm.weight", &l.input_layernorm);
            push(
                "post_attention_layernorm.weight",
                &l.post_attention_layernorm,
            );
            for (n, lin) in l.linears() {
                push(&format!("{n}.weight"), &lin.weight);
                if let Some(b) = &lin.bias {
                    push(&format!("{n}.bias"), b);
                }
            }
            if let Some(q) = &l.self_attn.q_norm {
                push("self_attn.q_norm.weight", q);
            }
            if let Some(k) = &l.self_attn.k_norm {
                push("self_attn.k_norm.weight", k);
            }
        }
        out.push(("model.norm.weight".to_string(), self.norm.shallow_clone()));
        if let Some(h) = &self.lm_head {
            out.push(("lm_head.weight".to_string(), h.shallow_clone()));
        }
        out
    }

    /// Total number of base parameters.
    pub fn num_parameters(&self) -> i64 {
        self.named_parameters()
            .iter()
            .map(|(_, t)| t.numel() as i64)
            .sum()
    }

    /// Embeddings -> decoder layers -> final norm. `ids`, `pos`: `[B, T]` int64.
    pub fn forward_hidden(
        &self,
        ids: &Tensor,
        pos: &Tensor,
        mask: &AttnMask,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor {
        let (b, t) = ids.size2().unwrap();
        let mut x = Tensor::embedding(&self.embed_tokens, ids, -1, false, false);
        // RoPE tables for these positions, [B, 1, T, D].
        let freqs = (pos.to_kind(Kind::Float) * self.pos_scale).unsqueeze(-1)
            * self.inv_freq.view([1, 1, -1]);
        let emb = Tensor::cat(&[&freqs, &freqs], -1);
        let cos = emb.cos().to_kind(self.kind).unsqueeze(1);
        let sin = emb.sin().to_kind(self.kind).unsqueeze(1);
        let mode = Mode {
            train: self.training,
            adapters: self.adapters_enabled,
        };
        let offset = cache.as_ref().map_or(0, |c| c.len);
        if let Some(c) = cache.as_deref_mut() {
            c.reserve(t);
        }
        let cfg = &self.config;
        let (nh, kvh, hd) = (
            cfg.num_attention_heads as i64,
            cfg.num_key_value_heads as i64,
            cfg.head_dim as i64,
        );
        for (i, layer) in self.layers.iter().enumerate() {
            let h = rms_norm(&x, &layer.input_layernorm, cfg.rms_norm_eps);
            let a = &layer.self_attn;
            let mut q = a.q_proj.forward(&h, mode).view([b, t, nh, hd]);
            let mut k = a.k_proj.forward(&h, mode).view([b, t, kvh, hd]);
            let v = a
                .v_proj
                .forward(&h, mode)
                .view([b, t, kvh, hd])
                .transpose(1, 2);
            if let (Some(qn), Some(kn)) = (&a.q_norm, &a.k_norm) {
                q = rms_norm(&q, qn, cfg.rms_norm_eps);
                k = rms_norm(&k, kn, cfg.rms_norm_eps);
            }
            let q = q.transpose(1, 2);
            let k = k.transpose(1, 2);
            let q = &q * &cos + rotate_half(&q) * &sin;
            let k = &k * &cos + rotate_half(&k) * &sin;
            let (k, v) = match cache.as_deref_mut() {
                // A cache holding only a shared prefix (training): the rows' keys are used directly.
                Some(c) if c.k.is_empty() => (k, v),
                Some(c) => {
                    c.k[i].narrow(2, offset, t).copy_(&k);
                    c.v[i].narrow(2, offset, t).copy_(&v);
                    (
                        c.k[i].narrow(2, 0, offset + t),
                        c.v[i].narrow(2, 0, offset + t),
                    )
                }
                None => (k, v),
            };
            let shared = cache
                .as_deref()
                .and_then(|c| c.shared.as_ref())
                .filter(|sp| sp.len > 0);
            let o = if let Some(sp) = shared {
                let kp = sp.k[i].narrow(2, 0, sp.len);
                let vp = sp.v[i].narrow(2, 0, sp.len);
                cascade_attention(&q, &kp, &vp, &k, &v, mask)
            } else {
                let (m, causal) = match mask {
                    AttnMask::Causal => (None, true),
                    AttnMask::All => (None, false),
                    AttnMask::Explicit(m) => (Some(m), false),
                };
                Tensor::scaled_dot_product_attention(&q, &k, &v, m, 0.0, causal, None, kvh != nh)
            };
            let o = o.transpose(1, 2).reshape([b, t, nh * hd]);
            x = x + a.o_proj.forward(&o, mode);
            let h = rms_norm(&x, &layer.post_attention_layernorm, cfg.rms_norm_eps);
            let mlp = &layer.mlp;
            let g = mlp.gate_proj.forward(&h, mode).silu() * mlp.up_proj.forward(&h, mode);
            x = x + mlp.down_proj.forward(&g, mode);
        }
        if let Some(c) = cache {
            c.len = offset + t;
        }
        rms_norm(&x, &self.norm, cfg.rms_norm_eps)
    }

    /// Keys and values of `ids` run as one sequence from position 0 (a shared prompt prefix), in a
    /// cache of exactly that length; with gradients where the weights have them and autograd is on.
    pub fn prefix_cache(&self, ids: &[u32]) -> KvCache {
        let n = ids.len() as i64;
        let mut cache = KvCache::new(&self.config, 1, n, self.kind, self.device);
        let t = Tensor::from_slice(&ids.iter().map(|&x| x as i64).collect::<Vec<_>>())
            .view([1, n])
            .to_device(self.device);
        let pos = Tensor::arange(n, (Kind::Int64, self.device)).view([1, n]);
        let _ = self.forward_hidden(&t, &pos, &AttnMask::Causal, Some(&mut cache));
        cache
    }

    /// Project hidden states to vocabulary logits.
    pub fn logits(&self, hidden: &Tensor) -> Tensor {
        project(
            hidden,
            self.lm_head.as_ref().unwrap_or(&self.embed_tokens),
            None,
            Some(&self.head_packed),
        )
    }

    /// Logits `[B, T, V]` for right-padded (or unpadded) token ids `[B, T]`, causal attention.
    pub fn forward(&self, ids: &Tensor) -> Tensor {
        let (b, t) = ids.size2().unwrap();
        let pos = Tensor::arange(t, (Kind::Int64, self.device))
            .unsqueeze(0)
            .expand([b, t], false);
        self.logits(&self.forward_hidden(ids, &pos, &AttnMask::Causal, None))
    }

    /// Set `requires_grad` on every base weight (full fine-tuning) or none (LoRA, inference).
    pub fn set_base_trainable(&mut self, on: bool) {
        for (_, t) in self.named_parameters() {
            let _ = t.set_requires_grad(on);
        }
    }
}

impl Layer {
    /// The seven projection layers with their names relative to the layer.
    pub fn linears(&self) -> [(&'static str, &Linear); 7] {
        [
            ("self_attn.q_proj", &self.self_attn.q_proj),
            ("self_attn.k_proj", &self.self_attn.k_proj),
            ("self_attn.v_proj", &self.self_attn.v_proj),
            ("self_attn.o_proj", &self.self_attn.o_proj),
            ("mlp.gate_proj", &self.mlp.gate_proj),
            ("mlp.up_proj", &self.mlp.up_proj),
            ("mlp.down_proj", &self.mlp.down_proj),
        ]
    }

    pub fn linears_mut(&mut self) -> [(&'static str, &mut Linear); 7] {
        let a = &mut self.self_attn;
        let m = &mut self.mlp;
        [
            ("self_attn.q_proj", &mut a.q_proj),
            ("self_attn.k_proj", &mut a.k_proj),
            ("self_attn.v_proj", &mut a.v_proj),
            ("self_attn.o_proj", &mut a.o_proj),
            ("mlp.gate_proj", &mut m.gate_proj),
            ("mlp.up_proj", &mut m.up_proj),
            ("mlp.down_proj", &mut m.down_proj),
        ]
    }
}

/// One adapter: `delta(x) = dropout(x) A^T B^T * scale`.
pub struct Lora {
    /// `[r, in]`
    pub a: Tensor,
    /// `[out, r]`
    pub b: Tensor,
    pub scale: f64,
    pub dropout: f64,
}

impl Lora {
    pub fn delta(&self, x: &Tensor, train: bool) -> Tensor {
        let x = if train && self.dropout > 0.0 {
            x.dropout(self.dropout, true)
        } else {
            x.shallow_clone()
        };
        x.linear::<Tensor>(&self.a, None)
            .linear::<Tensor>(&self.b, None)
            * self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_row_projection_equals_linear() {
        tch::manual_seed(3);
        let w = Tensor::randn([40, 24], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([40], (Kind::Float, Device::Cpu));
        // 1 row (sent as two), a few rows in [B, T, in], the threshold, and one row past it.
        for shape in [vec![1, 24], vec![3, 1, 24], vec![2, 4, 24], vec![9, 24]] {
            let x = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
            for bias in [None, Some(&b)] {
                let ours = project(&x, &w, bias, None);
                let want = x.linear(&w, bias);
                assert_eq!(ours.size(), want.size());
                let d = (&ours - &want).abs().max().double_value(&[]);
                assert!(d < 1e-5, "{shape:?}: differs by {d}");
            }
        }
    }

    /// The XNNPACK path (up to `xnn::MAX_ROWS` rows, no gradients) gives libtorch's product, notices a weight
    /// changed in place (its version counter), and stays out of the way where gradients flow.
    #[test]
    fn packed_projection_equals_linear_and_follows_the_weight() {
        tch::manual_seed(5);
        let mut w = Tensor::randn([40, 24], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([40], (Kind::Float, Device::Cpu));
        let close = |a: &Tensor, e: &Tensor| (a - e).abs().max().double_value(&[]) < 1e-4;
        for bias in [None, Some(&b)] {
            let packed = Packed::default();
            for shape in [vec![1, 24], vec![4, 1, 24], vec![16, 24], vec![17, 24]] {
                let x = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
                let ours = project(&x, &w, bias, Some(&packed));
                let want = x.linear(&w, bias);
                assert_eq!(ours.size(), want.size());
                assert!(close(&ours, &want), "{shape:?}");
            }
            if crate::xnn::available() {
                assert!(packed.is_packed(), "XNNPACK was available but not used");
            }
            // An in-place change (as an optimizer step makes) must not leave a stale packed copy.
            let x = Tensor::randn([2, 24], (Kind::Float, Device::Cpu));
            let before = project(&x, &w, bias, Some(&packed));
            tch::no_grad(|| {
                let _ = w.g_mul_scalar_(2.0);
            });
            let after = project(&x, &w, bias, Some(&packed));
            assert!(close(&after, &x.linear(&w, bias)));
            assert!(
                !close(&after, &before),
                "the packed weight did not follow the change"
            );
        }
        // Where a gradient flows, libtorch computes it (the packed product has no backward).
        let wg = w.detach().set_requires_grad(true);
        let packed = Packed::default();
        let x = Tensor::randn([3, 24], (Kind::Float, Device::Cpu));
        let y = project(&x, &wg, None, Some(&packed));
        assert!(y.requires_grad());
        assert!(!packed.is_packed());
        y.sum(Kind::Float).backward();
        assert!(wg.grad().defined());
    }
}
