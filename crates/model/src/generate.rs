//! Batched sampling with a KV cache: many prompts of different lengths at once (left padding), G
//! samples per prompt from one prefill of that prompt, temperature / top-k / top-p, seeds, EOS and
//! stop strings, and the log-probability of every sampled token.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::llama::{AttnMask, KvCache, Model};
use crate::tokenizer::Tokenizer;

/// How to sample. `temperature == 0` is greedy decoding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SamplingParams {
    pub max_new_tokens: usize,
    pub temperature: f64,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `top_p` (1 = off).
    pub top_p: f64,
    /// Keep only the `top_k` most likely tokens (0 = off).
    pub top_k: usize,
    /// Seed of libtorch's generator for this call (None: continue the current stream).
    pub seed: Option<u64>,
    /// Token ids that end a sequence (kept in the output). Empty: the model's EOS ids.
    pub stop_token_ids: Vec<u32>,
    /// Strings that end a sequence once the decoded completion contains them.
    pub stop_strings: Vec<String>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            max_new_tokens: 256,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            seed: None,
            stop_token_ids: vec![],
            stop_strings: vec![],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An EOS / stop token or a stop string ended the sequence.
    Stop,
    /// `max_new_tokens` was reached.
    Length,
}

/// One sampled completion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Completion {
    /// Index of the prompt it continues.
    pub prompt_index: usize,
    /// Generated token ids (a final stop token included).
    pub token_ids: Vec<u32>,
    /// Log-probability of each generated token under the temperature-scaled distribution (before
    /// top-k / top-p truncation; the raw distribution for greedy decoding): what RL needs.
    pub logprobs: Vec<f32>,
    pub finish_reason: FinishReason,
}

/// Pick the next token of every row of `logits` `[B, V]`; returns (tokens `[B]`, log-probs `[B]`).
pub fn sample(logits: &Tensor, p: &SamplingParams) -> (Tensor, Tensor) {
    let logits = logits.to_kind(Kind::Float);
    if p.temperature <= 0.0 {
        let tok = logits.argmax(-1, false);
        let lp = logits
            .log_softmax(-1, Kind::Float)
            .gather(1, &tok.unsqueeze(1), false)
            .squeeze_dim(1);
        return (tok, lp);
    }
    let scaled = logits / p.temperature;
    let logp = scaled.log_softmax(-1, Kind::Float);
    let vocab = *scaled.size().last().unwrap();
    let mut filtered = scaled.shallow_clone();
    if p.top_k > 0 && (p.top_k as i64) < vocab {
        let (vals, _) = filtered.topk(p.top_k as i64, -1, true, true);
        let kth = vals.narrow(1, p.top_k as i64 - 1, 1);
        filtered = filtered.masked_fill(&filtered.lt_tensor(&kth), f64::NEG_INFINITY);
    }
    if p.top_p < 1.0 {
        let (sorted, idx) = filtered.sort(-1, true);
        let probs = sorted.softmax(-1, Kind::Float);
        let cum = probs.cumsum(-1, Kind::Float);
        // Drop a token when the mass before it already reaches top_p (the first token always stays).
        let drop_sorted = (cum - &probs).gt(p.top_p);
        let drop = drop_sorted.scatter(1, &idx, &drop_sorted);
        filtered = filtered.masked_fill(&drop, f64::NEG_INFINITY);
    }
    let tok = filtered
        .softmax(-1, Kind::Float)
        .multinomial(1, false)
        .squeeze_dim(1);
    let lp = logp.gather(1, &tok.unsqueeze(1), false).squeeze_dim(1);
    (tok, lp)
}

/// Generate `n` completions for each prompt. Each distinct prompt is prefilled once and its cache
/// rows are shared by its `n` samples. Output order: prompt-major (`p0s0, p0s1, .., p1s0, ..`).
pub fn generate(
    model: &Model,
    prompts: &[Vec<u32>],
    n: usize,
    params: &SamplingParams,
    tokenizer: Option<&Tokenizer>,
) -> Result<Vec<Completion>> {
    if prompts.is_empty() || n == 0 {
        return Ok(vec![]);
    }
    if prompts.iter().any(|p| p.is_empty()) {
        bail!("cannot generate from an empty prompt");
    }
    if !params.stop_strings.is_empty() && tokenizer.is_none() {
        bail!("stop strings need a tokenizer");
    }
    if let Some(s) = params.seed {
        tch::manual_seed(s as i64);
    }
    let cfg = &model.config;
    let stop_ids: Vec<i64> = if params.stop_token_ids.is_empty() {
        cfg.eos_token_ids.iter().map(|&x| x as i64).collect()
    } else {
        params.stop_token_ids.iter().map(|&x| x as i64).collect()
    };
    let dev = model.device;
    tch::no_grad(|| {
        let b0 = prompts.len() as i64;
        let lmax = prompts.iter().map(|p| p.len()).max().unwrap() as i64;
        // Left-pad so that every row's last prompt token sits at the same position.
        let mut ids = vec![0i64; (b0 * lmax) as usize];
        let mut mask = vec![false; (b0 * lmax) as usize];
        for (r, p) in prompts.iter().enumerate() {
            let off = r * lmax as usize + (lmax as usize - p.len());
            for (j, &t) in p.iter().enumerate() {
                ids[off + j] = t as i64;
                mask[off + j] = true;
            }
        }
        let padded = prompts.iter().any(|p| p.len() as i64 != lmax);
        let ids = Tensor::from_slice(&ids).view([b0, lmax]).to_device(dev);
        let mask = Tensor::from_slice(&mask).view([b0, lmax]).to_device(dev);
        let cap = lmax + params.max_new_tokens as i64;
        let mut cache = KvCache::new(cfg, b0, cap, model.kind, dev);
        let pos = (mask.cumsum(1, Kind::Int64) - 1).clamp_min(0);
        let attn = if padded {
            let km = Tensor::ones([b0, cap], (Kind::Bool, dev));
            km.narrow(1, 0, lmax).copy_(&mask);
            let causal = Tensor::ones([lmax, lmax], (Kind::Bool, dev)).tril(0);
            // A pad query sees only itself (its output is never used), so no row is empty.
            let eye = Tensor::eye(lmax, (Kind::Bool, dev));
            let m = causal
                .unsqueeze(0)
                .logical_and(&mask.unsqueeze(1))
                .logical_or(&eye.unsqueeze(0));
            cache.key_mask = Some(km);
            AttnMask::Explicit(m.unsqueeze(1))
        } else {
            AttnMask::Causal
        };
        let hidden = model.forward_hidden(&ids, &pos, &attn, Some(&mut cache));
        cache.next_pos = mask.sum_dim_intlist(1, false, Kind::Int64);
        let mut logits = model.logits(&hidden.select(1, lmax - 1));
        // Share each prompt's cache among its n samples.
        let rows: Vec<usize> = (0..prompts.len())
            .flat_map(|p| std::iter::repeat_n(p, n))
            .collect();
        if n > 1 {
            let idx = Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>())
                .to_device(dev);
            cache.select_rows(&idx);
            logits = logits.index_select(0, &idx);
        }
        let mut outs: Vec<Completion> = rows
            .iter()
            .map(|&p| Completion {
                prompt_index: p,
                token_ids: vec![],
                logprobs: vec![],
                finish_reason: FinishReason::Length,
            })
            .collect();
        // active[i] = which output the i-th cache row feeds.
        let mut active: Vec<usize> = (0..outs.len()).collect();
        for step in 0..params.max_new_tokens {
            let (tok, lp) = sample(&logits, params);
            let toks: Vec<i64> = Vec::<i64>::try_from(&tok.to_device(tch::Device::Cpu))?;
            let lps: Vec<f32> =
                Vec::<f32>::try_from(&lp.to_device(tch::Device::Cpu).to_kind(Kind::Float))?;
            let mut keep = Vec::with_capacity(active.len());
            for (i, &o) in active.iter().enumerate() {
                let out = &mut outs[o];
                out.token_ids.push(toks[i] as u32);
                out.logprobs.push(lps[i]);
                let mut done = stop_ids.contains(&toks[i]);
                if !done && !params.stop_strings.is_empty() {
                    let text = tokenizer.unwrap().decode(&out.token_ids, false)?;
                    done = params
                        .stop_strings
                        .iter()
                        .any(|s| text.contains(s.as_str()));
                }
                if done {
                    out.finish_reason = FinishReason::Stop;
                } else {
                    keep.push(i);
                }
            }
            if keep.is_empty() || step + 1 == params.max_new_tokens {
                break;
            }
            let mut tok = tok;
            if keep.len() < active.len() {
                let idx = Tensor::from_slice(&keep.iter().map(|&i| i as i64).collect::<Vec<_>>())
                    .to_device(dev);
                cache.select_rows(&idx);
                tok = tok.index_select(0, &idx);
                active = keep.iter().map(|&i| active[i]).collect();
            }
            let b = active.len() as i64;
            let pos = cache.next_pos.view([b, 1]);
            let attn = match &cache.key_mask {
                Some(km) => AttnMask::Explicit(km.narrow(1, 0, cache.len + 1).view([b, 1, 1, -1])),
                None => AttnMask::All,
            };
            let hidden = model.forward_hidden(&tok.view([b, 1]), &pos, &attn, Some(&mut cache));
            cache.next_pos = &cache.next_pos + 1;
            logits = model.logits(&hidden.squeeze_dim(1));
        }
        Ok(outs)
    })
}
