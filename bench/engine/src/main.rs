//! Engine benchmark, our side: generation and full fine-tuning throughput of `modrl_model` on the
//! prompts / token ids written by `bench/engine_peer.py prepare`. Prints one JSON object per call.
//!
//!   modrl-bench-engine gen   --model DIR --data FILE --batch B --max-new N [--runs R] [--threads T]
//!   modrl-bench-engine train --model DIR --data FILE --batch B --seq L [--runs R] [--threads T] [--lr LR]
//!
//! Every measurement is preceded by one untimed warm-up of the same shape.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use modrl_model::llama::{AttnMask, KvCache};
use modrl_model::train::{self, AdamW, AdamWConfig};
use modrl_model::{generate, Device, Kind, Model, SamplingParams, Tensor};
use serde_json::{json, Value};

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

struct Args {
    cmd: String,
    kv: HashMap<String, String>,
}

impl Args {
    fn parse() -> Result<Args> {
        let mut it = std::env::args().skip(1);
        let cmd = it.next().context("usage: modrl-bench-engine gen|train --key value ...")?;
        let mut kv = HashMap::new();
        while let Some(k) = it.next() {
            let Some(k) = k.strip_prefix("--") else { bail!("unexpected argument {k}") };
            let v = it.next().with_context(|| format!("--{k} needs a value"))?;
            kv.insert(k.to_string(), v);
        }
        Ok(Args { cmd, kv })
    }
    fn get<T: std::str::FromStr>(&self, k: &str, default: Option<T>) -> Result<T> {
        match self.kv.get(k) {
            Some(v) => v.parse().ok().with_context(|| format!("bad value for --{k}: {v}")),
            None => default.with_context(|| format!("missing --{k}")),
        }
    }
}

fn ids_list(v: &Value, key: &str) -> Result<Vec<Vec<u32>>> {
    v[key]
        .as_array()
        .with_context(|| format!("data file has no {key}"))?
        .iter()
        .map(|row| {
            row.as_array()
                .context("row is not a list")?
                .iter()
                .map(|x| x.as_u64().map(|x| x as u32).context("id is not an integer"))
                .collect()
        })
        .collect()
}

fn bench_gen(model: &Model, data: &Value, args: &Args) -> Result<Value> {
    let batch: usize = args.get("batch", None)?;
    let max_new: usize = args.get("max-new", None)?;
    let runs: usize = args.get("runs", Some(3))?;
    let prompts = ids_list(data, "prompts")?;
    if prompts.len() < batch {
        bail!("data file has {} prompts, need {batch}", prompts.len());
    }
    let prompts = &prompts[..batch];
    // Greedy decoding; the only stop token is one that is never produced (the peer sets
    // min_new_tokens = max_new_tokens), so every row generates exactly max_new tokens. We count
    // the tokens actually generated anyway.
    let params = SamplingParams {
        max_new_tokens: max_new,
        temperature: 0.0,
        seed: Some(0),
        stop_token_ids: vec![u32::MAX],
        ..Default::default()
    };
    let run = || -> Result<(f64, usize)> {
        let t0 = Instant::now();
        let out = generate(model, prompts, 1, &params, None)?;
        let dt = t0.elapsed().as_secs_f64();
        Ok((dt, out.iter().map(|c| c.token_ids.len()).sum()))
    };
    let (warm_s, _) = run()?;
    let mut times = vec![];
    let mut tokens = vec![];
    for _ in 0..runs {
        let (dt, n) = run()?;
        times.push(dt);
        tokens.push(n);
    }
    let tps: Vec<f64> = times.iter().zip(&tokens).map(|(t, &n)| n as f64 / t).collect();
    let plen: Vec<usize> = prompts.iter().map(|p| p.len()).collect();
    Ok(json!({
        "side": "ours", "task": "gen", "batch": batch, "max_new_tokens": max_new,
        "prompt_len_min": plen.iter().min(), "prompt_len_max": plen.iter().max(),
        "warmup_s": warm_s, "times_s": times, "tokens": tokens, "tok_per_s": tps,
        "median_tok_per_s": median(&tps),
    }))
}

fn bench_train(model: &mut Model, data: &Value, args: &Args) -> Result<Value> {
    let batch: usize = args.get("batch", None)?;
    let seq: usize = args.get("seq", None)?;
    let runs: usize = args.get("runs", Some(3))?;
    let lr: f64 = args.get("lr", Some(1e-5))?;
    let rows = ids_list(data, "train_ids")?;
    if rows.len() < batch || rows.iter().any(|r| r.len() < seq) {
        bail!("data file's train_ids are smaller than {batch} x {seq}");
    }
    let rows: Vec<&[u32]> = rows[..batch].iter().map(|r| &r[..seq]).collect();
    // Next-token loss over every token: "prompt" = the first token, "completion" = the rest, which
    // is the SFT loss path (hidden states -> logits -> log-softmax -> mean NLL), the same loss as
    // transformers' `labels=input_ids`.
    let prompts: Vec<&[u32]> = rows.iter().map(|r| &r[..1]).collect();
    let completions: Vec<&[u32]> = rows.iter().map(|r| &r[1..]).collect();
    model.set_base_trainable(true);
    model.training = true;
    let params: Vec<Tensor> = model.named_parameters().into_iter().map(|(_, t)| t).collect();
    let mut opt = AdamW::new(&params, AdamWConfig { lr, ..Default::default() });
    let mut step = |model: &Model| -> Result<(f64, f64, [f64; 3])> {
        let t0 = Instant::now();
        train::zero_grad(&params);
        let loss = train::sft_loss(model, &prompts, &completions)?;
        let loss_v = loss.double_value(&[]);
        let t1 = Instant::now();
        loss.backward();
        let t2 = Instant::now();
        opt.step(&params, lr);
        let t3 = Instant::now();
        let ph = [
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64(),
        ];
        Ok(((t3 - t0).as_secs_f64(), loss_v, ph))
    };
    let (warm_s, loss0, _) = step(model)?;
    let mut times = vec![];
    let mut losses = vec![loss0];
    let mut phases = vec![];
    for _ in 0..runs {
        let (dt, l, ph) = step(model)?;
        times.push(dt);
        losses.push(l);
        phases.push(ph);
    }
    let ntok = (batch * seq) as f64;
    let tps: Vec<f64> = times.iter().map(|t| ntok / t).collect();
    let ph_med: Vec<f64> = (0..3).map(|i| median(&phases.iter().map(|p| p[i]).collect::<Vec<_>>())).collect();
    Ok(json!({
        "side": "ours", "task": "train", "batch": batch, "seq": seq, "lr": lr,
        "warmup_s": warm_s, "times_s": times, "tok_per_s": tps, "median_tok_per_s": median(&tps),
        "losses": losses,
        "median_phase_s": {"forward_loss": ph_med[0], "backward": ph_med[1], "optimizer": ph_med[2]},
    }))
}

/// Where generation time goes: the prefill and the decode steps, timed separately, with the
/// same masks `generate` builds (explicit bool masks when the batch is padded), and the decode
/// step again without a mask (as if no row were padded) to isolate the mask's cost.
fn profile_gen(model: &Model, data: &Value, args: &Args) -> Result<Value> {
    let batch: usize = args.get("batch", None)?;
    let steps: i64 = args.get("max-new", None)?;
    let prompts = ids_list(data, "prompts")?;
    let prompts = &prompts[..batch];
    let b = batch as i64;
    let lmax = prompts.iter().map(|p| p.len()).max().unwrap() as i64;
    let mut ids = vec![0i64; (b * lmax) as usize];
    let mut mask = vec![false; (b * lmax) as usize];
    for (r, p) in prompts.iter().enumerate() {
        let off = r * lmax as usize + (lmax as usize - p.len());
        for (j, &t) in p.iter().enumerate() {
            ids[off + j] = t as i64;
            mask[off + j] = true;
        }
    }
    let dev = Device::Cpu;
    let ids = Tensor::from_slice(&ids).view([b, lmax]);
    let mask = Tensor::from_slice(&mask).view([b, lmax]);
    let cap = lmax + steps;
    let run = |masked: bool| -> (f64, f64, f64) {
        tch::no_grad(|| {
            let mut cache = KvCache::new(&model.config, b, cap, model.kind, dev);
            let pos = (mask.cumsum(1, Kind::Int64) - 1).clamp_min(0);
            let km = Tensor::ones([b, cap], (Kind::Bool, dev));
            km.narrow(1, 0, lmax).copy_(&mask);
            let causal = Tensor::ones([lmax, lmax], (Kind::Bool, dev)).tril(0);
            let eye = Tensor::eye(lmax, (Kind::Bool, dev));
            let m = causal.unsqueeze(0).logical_and(&mask.unsqueeze(1)).logical_or(&eye.unsqueeze(0));
            cache.key_mask = Some(km);
            let t0 = Instant::now();
            let hidden = model.forward_hidden(&ids, &pos, &AttnMask::Explicit(m.unsqueeze(1)), Some(&mut cache));
            let mut logits = model.logits(&hidden.select(1, lmax - 1));
            let _ = logits.sum(Kind::Float).double_value(&[]);
            let prefill = t0.elapsed().as_secs_f64();
            cache.next_pos = mask.sum_dim_intlist(1, false, Kind::Int64);
            let t1 = Instant::now();
            let mut fwd = 0.0;
            for _ in 0..steps {
                let tok = logits.argmax(-1, false);
                let _: Vec<i64> = Vec::try_from(&tok).unwrap();
                let pos = cache.next_pos.view([b, 1]);
                let attn = if masked {
                    AttnMask::Explicit(cache.key_mask.as_ref().unwrap().narrow(1, 0, cache.len + 1).view([b, 1, 1, -1]))
                } else {
                    AttnMask::All
                };
                let tf = Instant::now();
                let hidden = model.forward_hidden(&tok.view([b, 1]), &pos, &attn, Some(&mut cache));
                logits = model.logits(&hidden.squeeze_dim(1));
                let _ = logits.sum(Kind::Float).double_value(&[]);
                fwd += tf.elapsed().as_secs_f64();
                cache.next_pos = &cache.next_pos + 1;
            }
            (prefill, t1.elapsed().as_secs_f64(), fwd)
        })
    };
    let _ = run(true);
    let (p1, d1, f1) = run(true);
    let (p2, d2, f2) = run(false);
    Ok(json!({
        "task": "profile", "batch": batch, "steps": steps, "prompt_len_max": lmax,
        "masked": {"prefill_s": p1, "decode_s": d1, "decode_forward_s": f1, "ms_per_step": 1e3 * d1 / steps as f64},
        "unmasked": {"prefill_s": p2, "decode_s": d2, "decode_forward_s": f2, "ms_per_step": 1e3 * d2 / steps as f64},
    }))
}

fn main() -> Result<()> {
    let args = Args::parse()?;
    let threads: i32 = args.get("threads", Some(2))?;
    tch::set_num_threads(threads);
    let model_dir: PathBuf = args.get("model", None)?;
    let data_path: PathBuf = args.get("data", None)?;
    let data: Value = serde_json::from_str(
        &std::fs::read_to_string(&data_path)
            .with_context(|| format!("cannot read {}", data_path.display()))?,
    )?;
    let mut model = Model::load(&model_dir, Device::Cpu, Kind::Float)?;
    let mut out = match args.cmd.as_str() {
        "gen" => bench_gen(&model, &data, &args)?,
        "train" => bench_train(&mut model, &data, &args)?,
        "profile" => profile_gen(&model, &data, &args)?,
        other => bail!("unknown command {other}: expected gen or train"),
    };
    out["threads"] = json!(tch::get_num_threads());
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
