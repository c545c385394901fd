//! Engine benchmark, our side: generation and full fine-tuning throughput of `modrl_model` on the
//! prompts / token ids written by `bench/engine_peer.py prepare`.
//!
//!   modrl-bench-engine serve   --model DIR --data FILE [--threads T]
//!       one timed run per request line (driven by `bench/engine_peer.py drive`, see `serve`):
//!       generation, full fine-tuning steps, verdict-token scoring and a GEMM peak
//!   modrl-bench-engine profile --model DIR --data FILE --batch B --max-new N [--threads T]
//!       where generation time goes: prefill vs decode steps, with and without the padding mask
//!   modrl-bench-engine gen --model DIR --data FILE --batch B --max-new N [--runs R]
//!       R timed `generate` calls alone (for quick before/after checks, not the benchmark)
//!   modrl-bench-engine score --model DIR --data FILE [--n N] [--batch B] [--runs R] [--cpu-budget E]
//!       R timed scoring passes alone, with the CPU prefill budget set to E score elements
//! Every mode takes --auto-prefix-min N (generate's automatic shared-prefix threshold), --device
//! (cpu, cuda, cuda:N; default cpu) and --dtype (f32, or bf16 on CUDA; default f32). On a GPU every
//! timed run ends with a device synchronisation, so the time covers the kernels, not their launch.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use modrl_model::llama::{AttnMask, KvCache};
use modrl_model::train::{self, AdamW, AdamWConfig};
use modrl_model::generate::{common_start, next_token_logits, PrefixCache};
use modrl_model::{generate, parse_device, parse_kind, Device, Kind, Model, SamplingParams, Tensor};
use serde_json::{json, Value};

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

/// One timed `generate` call: greedy decoding; the only stop token is one that never occurs (the
/// peer sets min_new_tokens = max_new_tokens), so every row makes exactly max_new tokens. The
/// tokens actually generated are counted anyway.
fn gen_once(model: &Model, prompts: &[Vec<u32>], max_new: usize) -> Result<Value> {
    let params = SamplingParams {
        max_new_tokens: max_new,
        temperature: 0.0,
        seed: Some(0),
        stop_token_ids: vec![u32::MAX],
        ..Default::default()
    };
    let t0 = Instant::now();
    let out = generate(model, prompts, 1, &params, None)?;
    let dt = t0.elapsed().as_secs_f64();
    let n: usize = out.iter().map(|c| c.token_ids.len()).sum();
    Ok(json!({"seconds": dt, "tokens": n}))
}

/// The two label tokens verdict-token scoring reads (`label_ids` of the data file).
fn label_ids(data: &Value) -> Result<[i64; 2]> {
    let ids: Vec<i64> = data["label_ids"]
        .as_array()
        .context("data file has no label_ids")?
        .iter()
        .filter_map(|x| x.as_i64())
        .collect();
    match ids[..] {
        [a, b] => Ok([a, b]),
        _ => bail!("data file has {} label_ids, need 2", ids.len()),
    }
}

/// One timed verdict-token scoring pass over the first `n` scoring prompts, `batch` per forward, as
/// `modrl eval` / `modrl serve` score: the prompts' common prefix (instruction + policy) is
/// prefilled once per pass (timed) and every batch attends to it in place. Returns the seconds and
/// P(first label) / (P(first label) + P(second label)) of every item, for the driver to compare
/// with the peer's.
fn score_once(model: &Model, prompts: &[Vec<u32>], labels: [i64; 2], batch: usize) -> Result<Value> {
    let t0 = Instant::now();
    // Every prompt keeps at least its last token of its own (the peer cuts at the same place).
    let lcp = common_start(prompts);
    let prefix = PrefixCache::new(model, &prompts[0][..lcp])?;
    let mut probs = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(batch) {
        let logits = next_token_logits(model, Some(&prefix), chunk)?;
        let two = logits.index_select(1, &Tensor::from_slice(&labels)).softmax(-1, Kind::Float);
        probs.extend(Vec::<f32>::try_from(&two.select(1, 0).contiguous())?);
    }
    let dt = t0.elapsed().as_secs_f64();
    Ok(json!({"seconds": dt, "items": prompts.len(), "prefix_tokens": lcp, "probs": probs}))
}

/// Wait for the device's queued work (a no-op on the CPU), so that a timed run ends when its
/// kernels end.
fn sync(dev: Device) {
    if let Device::Cuda(i) = dev {
        tch::Cuda::synchronize(i as i64);
    }
}

/// A large matrix product (n x n by n x n) in the model's dtype, the device's GEMM peak for these
/// threads.
fn gemm_once(n: i64, dev: Device, kind: Kind) -> Value {
    let a = Tensor::randn([n, n], (kind, dev));
    let b = Tensor::randn([n, n], (kind, dev));
    sync(dev);
    let t0 = Instant::now();
    let c = a.matmul(&b);
    sync(dev);
    let dt = t0.elapsed().as_secs_f64();
    let _ = c.numel();
    json!({"seconds": dt, "flops": 2.0 * (n as f64).powi(3)})
}

/// Memory bandwidth: 4 copies of `mib` MiB of f32 into a buffer already touched (so no page
/// faults are timed); read + write bytes counted.
fn copy_once(mib: i64, dev: Device) -> Value {
    let a = Tensor::randn([mib * (1 << 20) / 4], (Kind::Float, dev));
    let mut b = a.zeros_like();
    sync(dev);
    let t0 = Instant::now();
    for _ in 0..4 {
        b.copy_(&a);
    }
    sync(dev);
    let dt = t0.elapsed().as_secs_f64();
    json!({"seconds": dt, "bytes": 4.0 * 2.0 * (mib as f64) * (1u64 << 20) as f64})
}

/// Full fine-tuning state for the training benchmark.
struct Trainer {
    prompts: Vec<Vec<u32>>,
    completions: Vec<Vec<u32>>,
    params: Vec<Tensor>,
    opt: AdamW,
    lr: f64,
}

impl Trainer {
    fn new(model: &mut Model, data: &Value, batch: usize, seq: usize, lr: f64) -> Result<Trainer> {
        let rows = ids_list(data, "train_ids")?;
        if rows.len() < batch || rows.iter().any(|r| r.len() < seq) {
            bail!("data file's train_ids are smaller than {batch} x {seq}");
        }
        // Next-token loss over every token: "prompt" = the first token, "completion" = the rest.
        // That is the SFT loss path (hidden states -> logits -> log-softmax -> mean NLL), the same
        // loss as transformers' `labels=input_ids`.
        let prompts = rows[..batch].iter().map(|r| r[..1].to_vec()).collect();
        let completions = rows[..batch].iter().map(|r| r[1..seq].to_vec()).collect();
        model.set_base_trainable(true);
        model.training = true;
        let params: Vec<Tensor> = model.named_parameters().into_iter().map(|(_, t)| t).collect();
        let opt = AdamW::new(&params, AdamWConfig { lr, ..Default::default() });
        Ok(Trainer { prompts, completions, params, opt, lr })
    }

    /// zero-grad + forward + loss + backward + AdamW step, timed per phase.
    fn step(&mut self, model: &Model) -> Result<Value> {
        let p: Vec<&[u32]> = self.prompts.iter().map(|x| x.as_slice()).collect();
        let c: Vec<&[u32]> = self.completions.iter().map(|x| x.as_slice()).collect();
        let t0 = Instant::now();
        train::zero_grad(&self.params);
        let loss = train::sft_loss(model, &p, &c)?;
        let loss_v = loss.double_value(&[]);
        let t1 = Instant::now();
        loss.backward();
        sync(model.device);
        let t2 = Instant::now();
        self.opt.step(&self.params, self.lr);
        sync(model.device);
        let t3 = Instant::now();
        Ok(json!({
            "seconds": (t3 - t0).as_secs_f64(), "loss": loss_v,
            "phases": {"forward_loss": (t1 - t0).as_secs_f64(), "backward": (t2 - t1).as_secs_f64(),
                       "optimizer": (t3 - t2).as_secs_f64()},
        }))
    }
}

/// Line protocol for `engine_peer.py drive`, which interleaves our runs with the peer's run by
/// run: one JSON request per stdin line, one JSON answer per stdout line.
///   {"op":"gen","batch":B,"max_new":N}      -> {"seconds":..,"tokens":..}
///   {"op":"train_setup","batch":B,"seq":L,"lr":LR} -> {"ok":true}
///   {"op":"train_step"}                     -> {"seconds":..,"loss":..,"phases":{..}}
///   {"op":"score","batch":B,"n":N}          -> {"seconds":..,"items":N,"probs":[..]}
///   {"op":"gemm","n":N}                     -> {"seconds":..,"flops":..}
///   {"op":"copy","mib":M}                   -> {"seconds":..,"bytes":..}
fn serve(model: &mut Model, data: &Value) -> Result<()> {
    use std::io::{BufRead, Write};
    let prompts = ids_list(data, "prompts")?;
    let scoring = ids_list(data, "score_prompts").unwrap_or_default();
    let mut trainer: Option<Trainer> = None;
    let stdout = std::io::stdout();
    let say = |v: Value| -> Result<()> {
        let mut o = stdout.lock();
        writeln!(o, "{v}")?;
        o.flush()?;
        Ok(())
    };
    say(json!({"ready": true, "threads": tch::get_num_threads(),
               "device": format!("{:?}", model.device), "dtype": format!("{:?}", model.kind)}))?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let req: Value = serde_json::from_str(&line)?;
        let num = |k: &str| req[k].as_f64().with_context(|| format!("request lacks {k}: {line}"));
        let ans = match req["op"].as_str().unwrap_or("") {
            "gen" => {
                let b = num("batch")? as usize;
                if prompts.len() < b {
                    bail!("data file has {} prompts, need {b}", prompts.len());
                }
                gen_once(model, &prompts[..b], num("max_new")? as usize)?
            }
            "train_setup" => {
                let t = Trainer::new(model, data, num("batch")? as usize, num("seq")? as usize, num("lr")?)?;
                trainer = Some(t);
                json!({"ok": true})
            }
            "score" => {
                let n = num("n")? as usize;
                if scoring.len() < n {
                    bail!("data file has {} score_prompts, need {n}", scoring.len());
                }
                score_once(model, &scoring[..n], label_ids(data)?, num("batch")? as usize)?
            }
            "gemm" => gemm_once(num("n")? as i64, model.device, model.kind),
            "copy" => copy_once(num("mib")? as i64, model.device),
            "train_step" => trainer.as_mut().context("train_step before train_setup")?.step(model)?,
            "quit" => break,
            other => bail!("unknown op {other:?}"),
        };
        say(ans)?;
    }
    Ok(())
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
    let dev = model.device;
    let ids = Tensor::from_slice(&ids).view([b, lmax]).to_device(dev);
    let mask = Tensor::from_slice(&mask).view([b, lmax]).to_device(dev);
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
    modrl_model::tune_allocator();
    let args = Args::parse()?;
    let threads: i32 = args.get("threads", Some(2))?;
    tch::set_num_threads(threads);
    // --auto-prefix-min N: generate's automatic shared prefix threshold (default: the engine's).
    if let Some(n) = args.kv.get("auto-prefix-min") {
        let n: usize = n.parse().with_context(|| format!("bad value for --auto-prefix-min: {n}"))?;
        modrl_model::generate::AUTO_PREFIX_MIN_TOKENS.store(n, std::sync::atomic::Ordering::Relaxed);
    }
    let model_dir: PathBuf = args.get("model", None)?;
    let data_path: PathBuf = args.get("data", None)?;
    let data: Value = serde_json::from_str(
        &std::fs::read_to_string(&data_path)
            .with_context(|| format!("cannot read {}", data_path.display()))?,
    )?;
    let device = parse_device(&args.get::<String>("device", Some("cpu".into()))?)?;
    let kind = parse_kind(&args.get::<String>("dtype", Some("f32".into()))?, device)?;
    let mut model = Model::load(&model_dir, device, kind)?;
    let mut out = match args.cmd.as_str() {
        "serve" => return serve(&mut model, &data),
        "profile" => profile_gen(&model, &data, &args)?,
        "score" => {
            let prompts = ids_list(&data, "score_prompts")?;
            let labels = label_ids(&data)?;
            let n: usize = args.get("n", Some(64))?;
            let b: usize = args.get("batch", Some(16))?;
            let runs: usize = args.get("runs", Some(2))?;
            if let Some(budget) = args.kv.get("cpu-budget") {
                let v: i64 = budget.parse().context("bad --cpu-budget")?;
                modrl_model::generate::CPU_PREFILL_SCORE_BUDGET.store(v, std::sync::atomic::Ordering::Relaxed);
            }
            let mut sorted = prompts[..n].to_vec();
            sorted.sort_by_key(|p| p.len());
            let times: Vec<f64> = (0..runs)
                .map(|_| score_once(&model, &sorted, labels, b).map(|v| v["seconds"].as_f64().unwrap()))
                .collect::<Result<_>>()?;
            // The same batches against a prefix built once beforehand (as a server holds it): the
            // prompts' common start (instruction + policy).
            let lcp = common_start(&sorted);
            let pc = PrefixCache::new(&model, &sorted[0][..lcp])?;
            let warm: Vec<f64> = (0..runs)
                .map(|_| -> Result<f64> {
                    let t0 = Instant::now();
                    for chunk in sorted.chunks(b) {
                        let _ = next_token_logits(&model, Some(&pc), chunk)?;
                    }
                    Ok(t0.elapsed().as_secs_f64())
                })
                .collect::<Result<_>>()?;
            json!({"task": "score", "batch": b, "n": n, "seconds": times, "prefix_held": lcp, "seconds_prefix_held": warm})
        }
        "gen" => {
            let prompts = ids_list(&data, "prompts")?;
            let b: usize = args.get("batch", None)?;
            let runs: usize = args.get("runs", Some(3))?;
            let max_new: usize = args.get("max-new", None)?;
            let _ = gen_once(&model, &prompts[..b], max_new)?;
            let times: Vec<Value> = (0..runs)
                .map(|_| gen_once(&model, &prompts[..b], max_new))
                .collect::<Result<_>>()?;
            json!({"task": "gen", "batch": b, "runs": times})
        }
        other => bail!("unknown command {other}: expected serve, profile, score or gen"),
    };
    out["threads"] = json!(tch::get_num_threads());
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
