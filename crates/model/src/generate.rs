//! Batched sampling with a KV cache: many prompts of different lengths at once (left padding), G
//! samples per prompt from one prefill of that prompt, temperature / top-k / top-p, seeds, EOS and
//! stop strings, and the log-probability of every sampled token.

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::llama::{AttnMask, KvCache, Model, SharedPrefix};
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
    /// Seed of this call's sampler (None: a random seed).
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
/// Sampling draws one uniform number per row from `rng` (inverse-CDF sampling), so a seeded call
/// is reproducible whatever else uses libtorch's global generator at the same time.
pub fn sample(logits: &Tensor, p: &SamplingParams, rng: &mut StdRng) -> (Tensor, Tensor) {
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
    let probs = filtered.softmax(-1, Kind::Float);
    let cdf = probs.cumsum(-1, Kind::Float);
    let rows = cdf.size()[0];
    let u: Vec<f32> = (0..rows).map(|_| rng.random::<f32>()).collect();
    let total = cdf.narrow(1, vocab - 1, 1);
    let target = Tensor::from_slice(&u)
        .view([rows, 1])
        .to_device(cdf.device())
        * total;
    // First token whose cumulative probability exceeds the target: never a zero-probability one.
    let tok = target
        .searchsorted(&cdf, false, true, "right", None::<Tensor>)
        .clamp_max(vocab - 1)
        .squeeze_dim(1);
    let lp = logp.gather(1, &tok.unsqueeze(1), false).squeeze_dim(1);
    (tok, lp)
}

/// A prompt prefix shared by many prompts (e.g. instruction + policy), prefilled once. Prompts that
/// start with these tokens reuse its keys and values instead of recomputing them.
pub struct PrefixCache {
    pub ids: Vec<u32>,
    cache: KvCache,
}

impl PrefixCache {
    pub fn new(model: &Model, ids: &[u32]) -> Result<Self> {
        if ids.is_empty() {
            bail!("a shared prefix needs at least one token");
        }
        let cache = tch::no_grad(|| model.prefix_cache(ids));
        Ok(PrefixCache {
            ids: ids.to_vec(),
            cache,
        })
    }

    /// How many leading tokens every prompt shares with this prefix (each prompt keeps at least
    /// one token of its own, so its next-token logits come from the batch forward).
    fn shared_len(&self, prompts: &[Vec<u32>]) -> usize {
        prompts
            .iter()
            .map(|p| {
                let lcp = self.ids.iter().zip(p).take_while(|(a, b)| a == b).count();
                lcp.min(p.len().saturating_sub(1))
            })
            .min()
            .unwrap_or(0)
    }
}

/// Most attention-score elements one prefill forward may materialise (default 2^28, 1 GiB in f32);
/// larger batches are prefilled in row chunks.
pub static PREFILL_SCORE_BUDGET: std::sync::atomic::AtomicI64 =
    std::sync::atomic::AtomicI64::new(1 << 28);

/// The same budget on CPU (at most; `PREFILL_SCORE_BUDGET` still caps it): 2^20 elements, 4 MiB of
/// f32 scores, so that the softmax, concatenation and copies of the attention scores stay in cache.
/// Measured with the default model, 64 tweets under a 511-token shared prefix, one thread: 64 rows
/// per forward took 96 s, 4 rows 31 s; the scores' passes through memory were most of the difference.
pub static CPU_PREFILL_SCORE_BUDGET: std::sync::atomic::AtomicI64 =
    std::sync::atomic::AtomicI64::new(1 << 20);

/// When no prefix cache is given, prompts that all start with at least this many identical tokens
/// (a system prompt, an instruction + policy) get one built for the call: the common start is
/// computed once and attended to in place by every row. `usize::MAX` turns this off.
pub static AUTO_PREFIX_MIN_TOKENS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(16);

/// Length of the common start of all prompts, leaving every prompt at least one token of its own
/// (0 for no prompts).
pub fn common_start(prompts: &[Vec<u32>]) -> usize {
    let Some(first) = prompts.first() else {
        return 0;
    };
    let shortest = prompts.iter().map(|p| p.len()).min().unwrap_or(1);
    prompts[1..]
        .iter()
        .fold(shortest.saturating_sub(1), |n, p| {
            n.min(first.iter().zip(p).take_while(|(a, b)| a == b).count())
        })
}

/// The prompts' rows in prefill order: by suffix length, so that each row chunk is padded only to
/// its own longest suffix. `order[i]` is the prompt in cache row `i`.
fn prefill_order(prompts: &[Vec<u32>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..prompts.len()).collect();
    order.sort_by_key(|&i| prompts[i].len());
    order
}

/// Run the prompts through the model into a fresh cache with room for `extra` more tokens, reusing
/// the shared prefix where the prompts start with it (or, without one, the prompts' own common
/// start when it reaches [`AUTO_PREFIX_MIN_TOKENS`]). Returns the cache, the logits `[B, V]` of
/// every row's last prompt token, and the row order ([`prefill_order`]): cache row and logits row
/// `i` hold prompt `order[i]`.
fn prefill(
    model: &Model,
    prefix: Option<&PrefixCache>,
    prompts: &[Vec<u32>],
    extra: i64,
) -> (KvCache, Tensor, Vec<usize>) {
    let dev = model.device;
    let auto;
    let prefix = match prefix {
        Some(pc) => Some(pc),
        None if prompts.len() > 1 => {
            let n = common_start(prompts);
            let min = AUTO_PREFIX_MIN_TOKENS.load(std::sync::atomic::Ordering::Relaxed);
            auto = (n >= min.max(1))
                .then(|| PrefixCache::new(model, &prompts[0][..n]).ok())
                .flatten();
            auto.as_ref()
        }
        None => None,
    };
    let p = prefix.map_or(0, |pc| pc.shared_len(prompts));
    let order = prefill_order(prompts);
    let suffixes: Vec<&[u32]> = order.iter().map(|&i| &prompts[i][p..]).collect();
    let b0 = prompts.len() as i64;
    let lmax = suffixes.iter().map(|x| x.len()).max().unwrap() as i64;
    // Left-pad the suffixes so that every row's last token sits at the same position.
    let mut ids = vec![0i64; (b0 * lmax) as usize];
    let mut mask = vec![false; (b0 * lmax) as usize];
    for (r, sfx) in suffixes.iter().enumerate() {
        let off = r * lmax as usize + (lmax as usize - sfx.len());
        for (j, &t) in sfx.iter().enumerate() {
            ids[off + j] = t as i64;
            mask[off + j] = true;
        }
    }
    let padded = suffixes.iter().any(|x| x.len() as i64 != lmax);
    let ids = Tensor::from_slice(&ids).view([b0, lmax]).to_device(dev);
    let mask = Tensor::from_slice(&mask).view([b0, lmax]).to_device(dev);
    let (p, cap) = (p as i64, lmax + extra);
    // Zero-filled: a chunk's rows leave the positions before their own longest suffix unwritten
    // (masked, but read as values, where 0 x garbage could be NaN).
    let mut cache = KvCache::new(&model.config, b0, cap, model.kind, dev);
    if let (Some(pc), true) = (prefix, p > 0) {
        // The rows attend to the prefix's keys and values in place (batch 1), not to copies.
        cache.shared = Some(SharedPrefix {
            k: pc.cache.k.iter().map(|t| t.narrow(2, 0, p)).collect(),
            v: pc.cache.v.iter().map(|t| t.narrow(2, 0, p)).collect(),
            len: p,
        });
    }
    let pos = (mask.cumsum(1, Kind::Int64) - 1).clamp_min(0) + p;
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
    // Prefill in row chunks so that the attention scores of one forward ([rows, heads, T, P + T])
    // stay within a memory budget however many rows and prompt tokens there are.
    let mut budget = PREFILL_SCORE_BUDGET.load(std::sync::atomic::Ordering::Relaxed);
    if dev == tch::Device::Cpu {
        budget = budget.min(CPU_PREFILL_SCORE_BUDGET.load(std::sync::atomic::Ordering::Relaxed));
    }
    // A chunk's scores are [rows, heads, t, p + lmax] with t its own longest suffix (the last
    // row: rows are sorted by length), so short rows go many to a chunk even when one long row in
    // the batch needs a chunk of its own.
    let heads = model.config.num_attention_heads as i64;
    let lens: Vec<i64> = suffixes.iter().map(|x| x.len() as i64).collect();
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < b0 {
        let mut end = start + 1;
        while end < b0 && (end + 1 - start) * heads * lens[end as usize] * (p + lmax) <= budget {
            end += 1;
        }
        chunks.push((start, end - start));
        start = end;
    }
    let mut last = Vec::new();
    for (start, n) in chunks {
        // Only the chunk's own longest suffix is computed: its queries are the last `t` positions,
        // written at offset lmax - t; the keys before them stay masked.
        let t = lens[(start + n - 1) as usize];
        let skip = lmax - t;
        let mut sub = cache.rows_view(start, n);
        sub.len = skip;
        let m = match &attn {
            AttnMask::Explicit(m) => AttnMask::Explicit(m.narrow(0, start, n).narrow(2, skip, t)),
            AttnMask::Causal => AttnMask::Causal,
            AttnMask::All => AttnMask::All,
        };
        let hidden = model.forward_hidden(
            &ids.narrow(0, start, n).narrow(1, skip, t),
            &pos.narrow(0, start, n).narrow(1, skip, t),
            &m,
            Some(&mut sub),
        );
        last.push(hidden.select(1, t - 1));
    }
    cache.len = lmax;
    cache.next_pos = mask.sum_dim_intlist(1, false, Kind::Int64) + p;
    let logits = model.logits(&Tensor::cat(&last, 0));
    (cache, logits, order)
}

/// Logits `[B, V]` of the token after each prompt (one forward pass; the verdict-token scorer's
/// primitive), reusing a shared prefix when given.
pub fn next_token_logits(
    model: &Model,
    prefix: Option<&PrefixCache>,
    prompts: &[Vec<u32>],
) -> Result<Tensor> {
    if prompts.is_empty() || prompts.iter().any(|p| p.is_empty()) {
        bail!("next_token_logits needs non-empty prompts");
    }
    let (_, logits, order) = tch::no_grad(|| prefill(model, prefix, prompts, 0));
    let mut back = vec![0i64; order.len()];
    for (row, &i) in order.iter().enumerate() {
        back[i] = row as i64;
    }
    Ok(logits.index_select(0, &Tensor::from_slice(&back).to_device(logits.device())))
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
    generate_with_prefix(model, None, prompts, n, params, tokenizer)
}

/// [`generate`], reusing the keys and values of a shared prompt prefix.
pub fn generate_with_prefix(
    model: &Model,
    prefix: Option<&PrefixCache>,
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
    let mut rng = match params.seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_rng(&mut rand::rng()),
    };
    let stop_ids: Vec<i64> = if params.stop_token_ids.is_empty() {
        model
            .config
            .eos_token_ids
            .iter()
            .map(|&x| x as i64)
            .collect()
    } else {
        params.stop_token_ids.iter().map(|&x| x as i64).collect()
    };
    let dev = model.device;
    tch::no_grad(|| {
        let (mut cache, mut logits, order) =
            prefill(model, prefix, prompts, params.max_new_tokens as i64);
        // Share each prompt's cache among its n samples. Cache row i holds prompt order[i]; the
        // outputs stay prompt-major.
        let rows: Vec<usize> = order
            .iter()
            .flat_map(|&p| std::iter::repeat_n(p, n))
            .collect();
        if n > 1 {
            let idx: Vec<i64> = (0..prompts.len() as i64)
                .flat_map(|r| std::iter::repeat_n(r, n))
                .collect();
            let idx = Tensor::from_slice(&idx).to_device(dev);
            cache.select_rows(&idx);
            logits = logits.index_select(0, &idx);
        }
        let mut outs: Vec<Completion> = (0..prompts.len() * n)
            .map(|o| Completion {
                prompt_index: o / n,
                token_ids: vec![],
                logprobs: vec![],
                finish_reason: FinishReason::Length,
            })
            .collect();
        // active[i] = which output the i-th cache row feeds (its prompt's sample s).
        let mut active: Vec<usize> = rows
            .iter()
            .enumerate()
            .map(|(i, &p)| p * n + i % n)
            .collect();
        for step in 0..params.max_new_tokens {
            let (tok, lp) = sample(&logits, params, &mut rng);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(probs: &[f64], p: &SamplingParams, n: usize) -> Vec<usize> {
        let logits = Tensor::from_slice(&probs.iter().map(|&x| x.ln() as f32).collect::<Vec<_>>())
            .view([1, -1])
            .repeat([n as i64, 1]);
        let mut rng = StdRng::seed_from_u64(1);
        let (tok, _) = sample(&logits, p, &mut rng);
        let mut counts = vec![0usize; probs.len()];
        for t in Vec::<i64>::try_from(&tok).unwrap() {
            counts[t as usize] += 1;
        }
        counts
    }

    #[test]
    fn sampling_follows_the_distribution_and_never_picks_zero_probability() {
        let probs = [0.1, 0.0, 0.6, 0.3];
        let p = SamplingParams {
            temperature: 1.0,
            ..Default::default()
        };
        let c = draw(&probs, &p, 20_000);
        assert_eq!(c[1], 0);
        for (i, &q) in probs.iter().enumerate() {
            let f = c[i] as f64 / 20_000.0;
            assert!((f - q).abs() < 0.015, "token {i}: {f} vs {q}");
        }
    }

    #[test]
    fn top_k_and_top_p_truncate() {
        let probs = [0.5, 0.3, 0.15, 0.05];
        let k2 = draw(
            &probs,
            &SamplingParams {
                top_k: 2,
                ..Default::default()
            },
            5000,
        );
        assert_eq!(k2[2] + k2[3], 0);
        assert!((k2[0] as f64 / 5000.0 - 0.625).abs() < 0.03);
        // top_p 0.7: 0.5 alone is below 0.7, so 0.3 stays; 0.15 and 0.05 go.
        let p7 = draw(
            &probs,
            &SamplingParams {
                top_p: 0.7,
                ..Default::default()
            },
            5000,
        );
        assert_eq!(p7[2] + p7[3], 0);
        assert!(p7[1] > 0);
    }
}
