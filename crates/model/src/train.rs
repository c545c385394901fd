//! Training primitives: per-token log-probs (and entropy) of completions with gradients, AdamW with
//! saveable state, gradient clipping, and a warmup + cosine learning-rate schedule.
//! Gradient accumulation is plain libtorch behaviour: call `backward` several times, then `step`.

use anyhow::{bail, Result};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

use crate::llama::{AttnMask, KvCache, Model, SharedPrefix};

/// Per-token results for a batch of (prompt, completion) pairs, right-padded to the longest completion.
pub struct TokenLogprobs {
    /// `[B, L]` log p(completion token | prefix), 0 at padding.
    pub logprobs: Tensor,
    /// `[B, L]` entropy of the predictive distribution at each completion position (if asked); a
    /// metric, without gradients.
    pub entropy: Option<Tensor>,
    /// `[B, L]` float 1 for real completion tokens, 0 for padding.
    pub mask: Tensor,
}

/// Log-probabilities of each completion token given its prompt and the completion before it, with
/// gradients flowing to whatever requires them. Logits are divided by `temperature` first (as the
/// sampler does), so the values match the sampler's log-probs.
pub fn completion_logprobs(
    model: &Model,
    prompts: &[&[u32]],
    completions: &[&[u32]],
    temperature: f64,
    with_entropy: bool,
) -> Result<TokenLogprobs> {
    completion_logprobs_with_prefix(model, None, prompts, completions, temperature, with_entropy)
}

/// [`completion_logprobs`] computing a prompt prefix shared by the rows once: the prefix runs as
/// one sequence (with gradients), and every row attends to its keys and values (cascade attention)
/// instead of recomputing them. Rows share as many leading tokens with `prefix` as all of them have
/// in common (each keeps at least one prompt token of its own).
pub fn completion_logprobs_with_prefix<'a>(
    model: &Model,
    prefix: impl Into<PrefixArg<'a>>,
    prompts: &[&[u32]],
    completions: &[&[u32]],
    temperature: f64,
    with_entropy: bool,
) -> Result<TokenLogprobs> {
    if prompts.len() != completions.len() || prompts.is_empty() {
        bail!(
            "completion_logprobs needs as many prompts as completions (got {} and {})",
            prompts.len(),
            completions.len()
        );
    }
    if prompts.iter().any(|p| p.is_empty()) {
        bail!("every prompt needs at least one token");
    }
    if temperature <= 0.0 {
        bail!("temperature must be positive");
    }
    let dev = model.device;
    let rows = RowsForward::run(model, prefix.into(), prompts, completions);
    let (hidden, suffixes) = (rows.hidden, rows.suffix_lens);
    let b = prompts.len();
    let l = completions.iter().map(|c| c.len()).max().unwrap().max(1);
    let mut gather_idx = vec![0i64; b * l];
    let mut targets = vec![0i64; b * l];
    let mut mask = vec![0f32; b * l];
    for (r, (&sfx, c)) in suffixes.iter().zip(completions).enumerate() {
        for (j, &x) in c.iter().enumerate() {
            // The hidden state at position (suffix_len - 1 + j) predicts completion token j.
            gather_idx[r * l + j] = (sfx - 1 + j) as i64;
            targets[r * l + j] = x as i64;
            mask[r * l + j] = 1.0;
        }
    }
    let (bi, li) = (b as i64, l as i64);
    let h = hidden.size()[2];
    let gi = Tensor::from_slice(&gather_idx)
        .view([bi, li, 1])
        .to_device(dev)
        .expand([bi, li, h], false);
    let hsel = hidden.gather(1, &gi, false);
    let ck = if model.kind == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    };
    let logits = model.logits(&hsel).to_kind(ck);
    // Dividing by 1 would still cost a pass over the [B, L, V] logits (and one in backward).
    let logits = if temperature == 1.0 {
        logits
    } else {
        logits / temperature
    };
    let logp = logits.log_softmax(-1, ck);
    let targets = Tensor::from_slice(&targets)
        .view([bi, li, 1])
        .to_device(dev);
    let mask = Tensor::from_slice(&mask)
        .view([bi, li])
        .to_device(dev)
        .to_kind(ck);
    let lp = logp.gather(2, &targets, false).squeeze_dim(2) * &mask;
    // A metric, not a loss term: computed outside the graph, so the [B, L, V] tensors it needs
    // are freed at once instead of being kept for a backward pass that never uses them.
    let entropy = with_entropy.then(|| {
        tch::no_grad(|| {
            let logp = logp.detach();
            -(logp.exp() * &logp).sum_dim_intlist(-1, false, ck) * &mask
        })
    });
    Ok(TokenLogprobs {
        logprobs: lp,
        entropy,
        mask,
    })
}

/// Where the rows' shared prefix comes from: `None`, token ids (`Some(&ids)`: run once for the
/// call) or a [`TrainPrefix`] (run once for several calls; after the backward of every one of
/// them, call [`TrainPrefix::backward`] once).
pub enum PrefixArg<'a> {
    None,
    Ids(&'a [u32]),
    Computed(&'a TrainPrefix),
}

impl<'a> From<Option<&'a [u32]>> for PrefixArg<'a> {
    fn from(ids: Option<&'a [u32]>) -> Self {
        ids.map_or(PrefixArg::None, PrefixArg::Ids)
    }
}

impl<'a> From<&'a TrainPrefix> for PrefixArg<'a> {
    fn from(tp: &'a TrainPrefix) -> Self {
        PrefixArg::Computed(tp)
    }
}

/// A prompt prefix's keys and values computed once, with gradients, for all micro-batches of an
/// optimizer step. Each micro-batch attends to them as leaves of its own graph, so its backward
/// leaves its gradient with respect to them here; [`TrainPrefix::backward`] then carries the sum
/// back through the prefix's forward once (the chain rule: `sum(kv * dL/dkv)` has the same
/// gradient with respect to the weights). Exactly the gradients of recomputing the prefix for every
/// micro-batch, at one prefix forward and backward per step.
pub struct TrainPrefix {
    ids: Vec<u32>,
    /// Per layer, keys and values as the prefix's forward computed them.
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    /// The same values, detached, as the leaves the micro-batches read.
    k_leaf: Vec<Tensor>,
    v_leaf: Vec<Tensor>,
}

impl TrainPrefix {
    pub fn new(model: &Model, ids: &[u32]) -> TrainPrefix {
        let (k, v) = if ids.is_empty() {
            (vec![], vec![])
        } else {
            let sp = prefix_kv(model, ids);
            (sp.k, sp.v)
        };
        let leaf = |t: &Tensor| t.detach().set_requires_grad(t.requires_grad());
        TrainPrefix {
            ids: ids.to_vec(),
            k_leaf: k.iter().map(leaf).collect(),
            v_leaf: v.iter().map(leaf).collect(),
            k,
            v,
        }
    }

    /// Backpropagate the gradients the micro-batches left on the prefix's keys and values through
    /// its forward (into the weights' `.grad`). Call once, after every micro-batch's backward.
    pub fn backward(&self) {
        let terms: Vec<Tensor> = self
            .k
            .iter()
            .zip(&self.k_leaf)
            .chain(self.v.iter().zip(&self.v_leaf))
            .filter(|(out, _)| out.requires_grad())
            .filter_map(|(out, leaf)| {
                let g = leaf.grad();
                g.defined().then(|| (out * g).sum(Kind::Float))
            })
            .collect();
        if !terms.is_empty() {
            Tensor::stack(&terms, 0).sum(Kind::Float).backward();
        }
    }

    /// The first `p` positions, as the rows' shared prefix.
    fn shared(&self, p: i64) -> SharedPrefix {
        let first = |t: &Tensor| t.narrow(2, 0, p);
        SharedPrefix {
            k: self.k_leaf.iter().map(first).collect(),
            v: self.v_leaf.iter().map(first).collect(),
            len: p,
        }
    }
}

/// Keys and values of `ids` run as one sequence (with gradients where the weights have them).
fn prefix_kv(model: &Model, ids: &[u32]) -> SharedPrefix {
    let pc = model.prefix_cache(ids);
    SharedPrefix {
        k: pc.k,
        v: pc.v,
        len: ids.len() as i64,
    }
}

/// The hidden states of rows `prompt ++ completion`, the leading tokens they share with `prefix`
/// computed once (cascade attention), right-padded; with gradients.
struct RowsForward {
    /// `[B, T, H]`.
    hidden: Tensor,
    /// Prompt tokens of each row after the shared prefix.
    suffix_lens: Vec<usize>,
}

impl RowsForward {
    fn run(
        model: &Model,
        prefix: PrefixArg,
        prompts: &[&[u32]],
        completions: &[&[u32]],
    ) -> RowsForward {
        let dev = model.device;
        let pre_ids = match &prefix {
            PrefixArg::None => None,
            PrefixArg::Ids(ids) => Some(*ids),
            PrefixArg::Computed(tp) => Some(tp.ids.as_slice()),
        };
        let p = match pre_ids {
            Some(pre) => prompts
                .iter()
                .map(|x| {
                    pre.iter()
                        .zip(x.iter())
                        .take_while(|(a, b)| a == b)
                        .count()
                        .min(x.len() - 1)
                })
                .min()
                .unwrap_or(0),
            None => 0,
        };
        let suffixes: Vec<&[u32]> = prompts.iter().map(|x| &x[p..]).collect();
        let b = prompts.len();
        let t = suffixes
            .iter()
            .zip(completions)
            .map(|(p, c)| p.len() + c.len())
            .max()
            .unwrap();
        let mut ids = vec![0i64; b * t];
        for (r, (sfx, c)) in suffixes.iter().zip(completions).enumerate() {
            for (j, &x) in sfx.iter().chain(c.iter()).enumerate() {
                ids[r * t + j] = x as i64;
            }
        }
        let (bi, ti, pi) = (b as i64, t as i64, p as i64);
        let ids = Tensor::from_slice(&ids).view([bi, ti]).to_device(dev);
        let pos = (Tensor::arange(ti, (Kind::Int64, dev)) + pi)
            .unsqueeze(0)
            .expand([bi, ti], false);
        // Right padding: causal attention never lets a real token see the padding after it.
        let hidden = if p > 0 {
            // Causal attention: the first p positions' keys and values do not depend on what
            // follows, so a longer computed prefix serves rows that share only p tokens of it.
            let shared = match prefix {
                PrefixArg::Computed(tp) => tp.shared(pi),
                _ => prefix_kv(model, &prompts[0][..p]),
            };
            let mut cache = KvCache::shared_only(shared, bi, dev);
            model.forward_hidden(&ids, &pos, &AttnMask::Causal, Some(&mut cache))
        } else {
            model.forward_hidden(&ids, &pos, &AttnMask::Causal, None)
        };
        RowsForward {
            hidden,
            suffix_lens: suffixes.iter().map(|s| s.len()).collect(),
        }
    }
}

/// Log-probabilities of `tokens` (e.g. the two label words) as the next token after each prompt,
/// under the whole vocabulary (`[B, tokens.len()]`; `log_softmax(-1)` of it renormalises over
/// `tokens`), with gradients: the policy of label-token RL, and what verdict-token scoring reads.
pub fn next_token_logprobs_at(
    model: &Model,
    prefix: Option<&[u32]>,
    prompts: &[&[u32]],
    tokens: &[u32],
) -> Result<Tensor> {
    if prompts.is_empty() || prompts.iter().any(|p| p.is_empty()) || tokens.len() < 2 {
        bail!("next_token_logprobs_at needs non-empty prompts and at least two tokens");
    }
    let dev = model.device;
    let empty: Vec<&[u32]> = vec![&[]; prompts.len()];
    let rows = RowsForward::run(model, prefix.into(), prompts, &empty);
    let b = prompts.len() as i64;
    let h = rows.hidden.size()[2];
    let last: Vec<i64> = rows.suffix_lens.iter().map(|&n| n as i64 - 1).collect();
    let gi = Tensor::from_slice(&last)
        .view([b, 1, 1])
        .to_device(dev)
        .expand([b, 1, h], false);
    let hsel = rows.hidden.gather(1, &gi, false).squeeze_dim(1);
    let logits = model.logits(&hsel).to_kind(Kind::Float);
    let idx =
        Tensor::from_slice(&tokens.iter().map(|&t| t as i64).collect::<Vec<_>>()).to_device(dev);
    Ok(logits.log_softmax(-1, Kind::Float).index_select(1, &idx))
}

/// Mean negative log-likelihood of the completion tokens (the SFT loss).
pub fn sft_loss(model: &Model, prompts: &[&[u32]], completions: &[&[u32]]) -> Result<Tensor> {
    let r = completion_logprobs(model, prompts, completions, 1.0, false)?;
    let k = r.logprobs.kind();
    Ok(-(r.logprobs.sum(k)) / r.mask.sum(k).clamp_min(1.0))
}

/// AdamW hyper-parameters (PyTorch's defaults except `weight_decay`, which follows TRL: 0).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-5,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// AdamW (decoupled weight decay), the same update as `torch.optim.AdamW`, with state that can be
/// saved and restored for exact resumption.
pub struct AdamW {
    pub cfg: AdamWConfig,
    pub step: i64,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl AdamW {
    pub fn new(params: &[Tensor], cfg: AdamWConfig) -> Self {
        let z = |p: &Tensor| p.zeros_like().to_kind(Kind::Float);
        AdamW {
            cfg,
            step: 0,
            m: params.iter().map(z).collect(),
            v: params.iter().map(z).collect(),
        }
    }

    /// One update of every parameter that has a gradient, at learning rate `lr`.
    pub fn step(&mut self, params: &[Tensor], lr: f64) {
        self.step += 1;
        let c = self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2_sqrt = (1.0 - c.beta2.powi(self.step as i32)).sqrt();
        tch::no_grad(|| {
            for ((p, m), v) in params.iter().zip(&mut self.m).zip(&mut self.v) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let g = g.to_kind(Kind::Float);
                let mut p = p.shallow_clone();
                if c.weight_decay != 0.0 {
                    let _ = p.g_mul_scalar_(1.0 - lr * c.weight_decay);
                }
                let _ = m.lerp_(&g, 1.0 - c.beta1);
                let _ = v
                    .g_mul_scalar_(c.beta2)
                    .addcmul_(&g, &(g.shallow_clone() * (1.0 - c.beta2)));
                let denom = (v.sqrt() / bc2_sqrt) + c.eps;
                let upd = (&*m / denom) * (-lr / bc1);
                let _ = p.g_add_(&upd.to_kind(p.kind()));
            }
        });
    }

    /// Optimizer state as named tensors (for checkpoints).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("step".to_string(), Tensor::from(self.step))];
        for (i, (m, v)) in self.m.iter().zip(&self.v).enumerate() {
            out.push((format!("m.{i}"), m.shallow_clone()));
            out.push((format!("v.{i}"), v.shallow_clone()));
        }
        out
    }

    /// Restore state written by [`AdamW::state`].
    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        let get = |k: &str| {
            state
                .get(k)
                .ok_or_else(|| anyhow::anyhow!("optimizer state has no tensor {k}"))
        };
        self.step = get("step")?.int64_value(&[]);
        for i in 0..self.m.len() {
            for (name, dst) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let src = get(&format!("{name}.{i}"))?;
                if src.size() != dst.size() {
                    bail!(
                        "optimizer state {name}.{i} has shape {:?}, expected {:?}",
                        src.size(),
                        dst.size()
                    );
                }
                tch::no_grad(|| dst.copy_(src));
            }
        }
        Ok(())
    }
}

/// Zero every parameter's gradient.
pub fn zero_grad(params: &[Tensor]) {
    for p in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
}

/// Scale gradients so their global L2 norm is at most `max_norm`; returns the norm before clipping
/// (NaN or infinite if any gradient is).
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> f64 {
    tch::no_grad(|| {
        let grads: Vec<Tensor> = params
            .iter()
            .map(|p| p.grad())
            .filter(|g| g.defined())
            .collect();
        if grads.is_empty() {
            return 0.0;
        }
        let sq: Vec<Tensor> = grads
            .iter()
            .map(|g| g.to_kind(Kind::Float).pow_tensor_scalar(2).sum(Kind::Float))
            .collect();
        let total = Tensor::stack(&sq, 0)
            .sum(Kind::Float)
            .sqrt()
            .double_value(&[]);
        if total.is_finite() && max_norm > 0.0 && total > max_norm {
            let s = max_norm / (total + 1e-6);
            for mut g in grads {
                let _ = g.g_mul_scalar_(s);
            }
        }
        total
    })
}

/// Linear warmup then cosine decay to `min_lr_ratio * lr` at `total_steps`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub lr: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
    pub min_lr_ratio: f64,
}

impl Schedule {
    /// Learning rate for 0-based optimizer step `step`.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / span as f64).min(1.0);
        let cos = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays() {
        let s = Schedule {
            lr: 1.0,
            warmup_steps: 4,
            total_steps: 14,
            min_lr_ratio: 0.1,
        };
        assert!((s.lr_at(0) - 0.25).abs() < 1e-12);
        assert!((s.lr_at(3) - 1.0).abs() < 1e-12);
        assert!((s.lr_at(4) - 1.0).abs() < 1e-12);
        assert!((s.lr_at(9) - 0.55).abs() < 1e-12);
        assert!((s.lr_at(14) - 0.1).abs() < 1e-12);
        assert!((s.lr_at(100) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn adamw_matches_hand_computed_update() {
        // One step from zero state: m = (1-b1) g, v = (1-b2) g^2, update = -lr * g/|g| (eps aside).
        let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let loss = (&p * Tensor::from_slice(&[3.0f32, 0.5])).sum(Kind::Float);
        loss.backward();
        let cfg = AdamWConfig {
            lr: 0.1,
            weight_decay: 0.5,
            ..Default::default()
        };
        let mut opt = AdamW::new(std::slice::from_ref(&p), cfg);
        opt.step(std::slice::from_ref(&p), 0.1);
        let got: Vec<f32> = Vec::try_from(&p.detach()).unwrap();
        // decay: p * (1 - 0.05); then minus lr * sign(g)
        let want = [1.0 * 0.95 - 0.1, -2.0 * 0.95 - 0.1];
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn clip_grad_norm_scales_to_max() {
        let p = Tensor::from_slice(&[0.0f32, 0.0]).set_requires_grad(true);
        (&p * Tensor::from_slice(&[3.0f32, 4.0]))
            .sum(Kind::Float)
            .backward();
        let n = clip_grad_norm(std::slice::from_ref(&p), 1.0);
        assert!((n - 5.0).abs() < 1e-6);
        let g: Vec<f32> = Vec::try_from(&p.grad()).unwrap();
        assert!(
            (g[0] - 0.6).abs() < 1e-5 && (g[1] - 0.8).abs() < 1e-5,
            "{g:?}"
        );
    }
}
