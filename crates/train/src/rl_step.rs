//! One RL step, split as TRL splits it: rollouts (generation and rewards), their metrics, then
//! the policy update. `rl_step` is the GRPO-family step over whole completions;
//! `label_rl_step` the label-token step (`rl.action = "label"`, [`crate::label_rl`]).

use std::time::Instant;

use anyhow::{Context, Result};
use modrl_model::generate::{generate_with_prefix, PrefixCache, SamplingParams};
use modrl_model::train::{
    clip_grad_norm, completion_logprobs_with_prefix, zero_grad, AdamW, PrefixArg, TrainPrefix,
};
use modrl_model::{Kind, Tensor};
use modrl_moderation::prompt::VERDICT_PREFIX;
use modrl_moderation::verdict;
use modrl_moderation::Record;
use serde_json::{json, Map, Value};

use crate::advantage::{advantages, frac_zero_std, zero_std_groups};
use crate::checkpoint::TrainState;
use crate::config::LabelEstimator;
use crate::length_monitor::LengthMonitor;
use crate::loss::{policy_loss_accumulated, Accumulation};
use crate::rewards::{self, Reward, RewardInput};
use crate::trainer::{balanced_at, f, record_at, Ctx};

/// One GRPO-family step: rollouts, metrics, advantages, update. Returns the loss and the
/// number of completion tokens.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rl_step(
    ctx: &mut Ctx,
    prompt_ids: &[Vec<u32>],
    prefix_ids: &[u32],
    params: &[Tensor],
    rewards_fns: &[(f64, Box<dyn Reward>)],
    state: &mut TrainState,
    step_seed: u64,
    metrics: &mut Map<String, Value>,
    length_monitor: &mut LengthMonitor,
    opt: &mut AdamW,
    lr_now: f64,
) -> Result<(f64, usize)> {
    let ro = collect_rollouts(
        ctx,
        prompt_ids,
        prefix_ids,
        rewards_fns,
        state,
        step_seed,
        metrics,
    )?;
    log_completions(ctx, &ro, state.step + 1)?;
    let rl = &ctx.cfg.rl;
    let adv = advantages(&ro.total_r, rl.num_generations, rl.scale_rewards);
    rollout_metrics(ctx, &ro, rewards_fns, length_monitor, state.step, metrics);
    policy_update(ctx, &ro, &adv, prefix_ids, params, opt, lr_now, metrics)
}

/// A step's rollouts: G completions per kept prompt, prompt-major, with their rewards.
struct Rollouts {
    /// The kept prompts' records.
    recs: Vec<Record>,
    /// Prompt token ids, one per completion.
    prompts: Vec<Vec<u32>>,
    comps: Vec<modrl_model::Completion>,
    /// The whole answers (assistant prefix + completion).
    texts: Vec<String>,
    /// Per reward function, the score of every completion.
    per_fn: Vec<Vec<f64>>,
    /// Weighted total reward of every completion.
    total_r: Vec<f64>,
    /// Rollout rounds (more than one with dynamic sampling).
    rounds: usize,
    all_groups: usize,
    zero_groups: usize,
    /// Seconds spent sampling the completions, and scoring them with the reward functions.
    gen_time: f64,
    reward_time: f64,
}

impl Rollouts {
    fn lengths(&self) -> Vec<f64> {
        self.comps
            .iter()
            .map(|c| c.token_ids.len() as f64)
            .collect()
    }

    /// Prompt and completion token ids of the completions in `r`.
    fn rows(&self, r: std::ops::Range<usize>) -> (Vec<&[u32]>, Vec<&[u32]>) {
        let pr = self.prompts[r.clone()]
            .iter()
            .map(|x| x.as_slice())
            .collect();
        let cr = self.comps[r]
            .iter()
            .map(|c| c.token_ids.as_slice())
            .collect();
        (pr, cr)
    }

    /// Completions cut at `rl.max_completion_length`.
    fn truncated(&self) -> Vec<bool> {
        self.comps
            .iter()
            .map(|c| c.finish_reason == modrl_model::FinishReason::Length)
            .collect()
    }
}

/// Phase 1: sample G completions for each of `rl.prompts_per_step` prompts (locally with the
/// policy prefix prefilled once, or on the remote engine after syncing the adapter) and score them
/// with every reward function; DAPO dynamic sampling draws more prompts while groups have zero
/// reward variance.
#[allow(clippy::too_many_arguments)]
fn collect_rollouts(
    ctx: &mut Ctx,
    prompt_ids: &[Vec<u32>],
    prefix_ids: &[u32],
    rewards_fns: &[(f64, Box<dyn Reward>)],
    state: &mut TrainState,
    step_seed: u64,
    metrics: &mut Map<String, Value>,
) -> Result<Rollouts> {
    let cfg = ctx.cfg;
    let rl = &cfg.rl;
    let g = rl.num_generations;
    // Rollouts (no dropout), the policy prefix prefilled once for all prompts and samples; or on
    // a remote engine, after giving it the current adapter.
    ctx.model.training = false;
    let prefix = match &mut ctx.rollout {
        None => Some(PrefixCache::new(&ctx.model, prefix_ids)?),
        Some(r) => {
            let t = Instant::now();
            let lcfg = ctx
                .lora
                .as_ref()
                .context("remote rollouts need a LoRA adapter")?;
            r.sync(&ctx.model, lcfg, &cfg.model.path.display().to_string())?;
            metrics.insert("timing/weight_sync".into(), f(t.elapsed().as_secs_f64()));
            None
        }
    };
    let params_s = SamplingParams {
        max_new_tokens: rl.max_completion_length,
        temperature: rl.temperature,
        top_p: rl.top_p,
        ..Default::default()
    };
    let reasoning = ctx.variant.has_reasoning();
    let answer_prefix = if reasoning { "" } else { VERDICT_PREFIX };
    let mut recs: Vec<Record> = vec![];
    let mut prompts: Vec<Vec<u32>> = vec![];
    let mut comps: Vec<modrl_model::Completion> = vec![];
    let mut texts: Vec<String> = vec![];
    let mut per_fn: Vec<Vec<f64>> = vec![vec![]; rewards_fns.len()];
    let mut total_r: Vec<f64> = vec![];
    let mut rounds = 0;
    let mut all_groups = 0usize;
    let mut zero_groups = 0usize;
    let (mut gen_time, mut reward_time) = (0.0, 0.0);
    loop {
        let need = rl.prompts_per_step - recs.len();
        let idx: Vec<usize> = (0..need)
            .map(|_| {
                let i = record_at(ctx.train.len(), cfg.run.seed, state.cursor);
                state.cursor += 1;
                i
            })
            .collect();
        let batch: Vec<Record> = idx.iter().map(|&i| ctx.train[i].clone()).collect();
        let p_ids: Vec<Vec<u32>> = idx.iter().map(|&i| prompt_ids[i].clone()).collect();
        let sp = SamplingParams {
            seed: Some(step_seed.wrapping_add(rounds as u64 * 7919)),
            ..params_s.clone()
        };
        let t_gen = Instant::now();
        let outs = match &ctx.rollout {
            None => {
                generate_with_prefix(&ctx.model, prefix.as_ref(), &p_ids, g, &sp, Some(&ctx.tok))?
            }
            Some(r) => {
                let sp = SamplingParams {
                    // The stop ids local generation uses.
                    stop_token_ids: ctx.model.config.eos_token_ids.clone(),
                    ..sp
                };
                // Whole prompts (the server finds the shared prefix itself, or not).
                r.client.completions_tokens(&r.model, &p_ids, g, &sp)?
            }
        };
        gen_time += t_gen.elapsed().as_secs_f64();
        let t_reward = Instant::now();
        // The whole answer: the prompt's assistant prefix (the verdict prefix in the
        // no-reasoning variant) and what was sampled after it.
        let out_texts: Vec<String> = outs
            .iter()
            .map(|o| {
                Ok(format!(
                    "{answer_prefix}{}",
                    ctx.tok.decode(&o.token_ids, true)?
                ))
            })
            .collect::<Result<_>>()?;
        let inputs: Vec<RewardInput> = outs
            .iter()
            .zip(&out_texts)
            .map(|(o, t)| {
                let r = &batch[o.prompt_index];
                RewardInput {
                    content: &r.text,
                    label: r.label,
                    categories: &r.categories,
                    completion: t,
                    rationale: r.rationale.as_deref(),
                    policy: &ctx.policy,
                }
            })
            .collect();
        let mut fn_scores = vec![];
        for (_, rf) in rewards_fns {
            fn_scores.push(rf.score(&inputs)?);
        }
        let totals: Vec<f64> = (0..outs.len())
            .map(|i| {
                rewards_fns
                    .iter()
                    .zip(&fn_scores)
                    .map(|((w, _), s)| w * s[i])
                    .sum()
            })
            .collect();
        reward_time += t_reward.elapsed().as_secs_f64();
        let zero = zero_std_groups(&totals, g);
        all_groups += zero.len();
        zero_groups += zero.iter().filter(|&&z| z).count();
        rounds += 1;
        let last_round = !rl.dynamic_sampling || rounds > rl.max_resample_rounds;
        for (gi, r) in batch.iter().enumerate() {
            if rl.dynamic_sampling && zero[gi] && !last_round {
                continue; // no learning signal in this group: draw another prompt instead
            }
            recs.push(r.clone());
            for k in 0..g {
                let i = gi * g + k;
                prompts.push(p_ids[gi].clone());
                comps.push(outs[i].clone());
                texts.push(out_texts[i].clone());
                total_r.push(totals[i]);
                for (j, s) in fn_scores.iter().enumerate() {
                    per_fn[j].push(s[i]);
                }
            }
            if recs.len() == rl.prompts_per_step {
                break;
            }
        }
        if recs.len() >= rl.prompts_per_step || last_round {
            break;
        }
    }
    Ok(Rollouts {
        recs,
        prompts,
        comps,
        texts,
        per_fn,
        total_r,
        rounds,
        all_groups,
        zero_groups,
        gen_time,
        reward_time,
    })
}

/// Append the first `rl.log_completions` completions of the step to `<run>/completions.jsonl`.
fn log_completions(ctx: &Ctx, ro: &Rollouts, step: usize) -> Result<()> {
    let rl = &ctx.cfg.rl;
    let g = rl.num_generations;
    let (recs, texts, total_r) = (&ro.recs, &ro.texts, &ro.total_r);
    if rl.log_completions > 0 {
        use std::io::Write;
        let path = ctx.run_dir.join("completions.jsonl");
        let mut w = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        for (i, t) in texts.iter().enumerate().take(rl.log_completions) {
            let r = &recs[i / g];
            let row = json!({"step": step, "id": r.id, "label": r.label,
                             "reward": total_r[i], "completion": t});
            writeln!(w, "{row}")?;
        }
    }
    Ok(())
}

/// Phase 2: the step's metrics, named as TRL names them, and the failure-mode monitors
/// (reasoning length, instruction and factuality hallucination).
fn rollout_metrics(
    ctx: &Ctx,
    ro: &Rollouts,
    rewards_fns: &[(f64, Box<dyn Reward>)],
    length_monitor: &mut LengthMonitor,
    step: usize,
    metrics: &mut Map<String, Value>,
) {
    let g = ctx.cfg.rl.num_generations;
    let reasoning = ctx.variant.has_reasoning();
    let (recs, prompts, comps, texts) = (&ro.recs, &ro.prompts, &ro.comps, &ro.texts);
    let (per_fn, total_r) = (&ro.per_fn, &ro.total_r);
    let n = comps.len();
    // Metrics named as TRL names them.
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len().max(1) as f64;
    let std = |x: &[f64]| crate::advantage::unbiased_std(x);
    metrics.insert("reward".into(), f(mean(total_r)));
    metrics.insert("reward_std".into(), f(std(total_r)));
    for ((_, rf), s) in rewards_fns.iter().zip(per_fn.iter()) {
        metrics.insert(format!("rewards/{}/mean", rf.name()), f(mean(s)));
        metrics.insert(format!("rewards/{}/std", rf.name()), f(std(s)));
        for (k, v) in rf.metrics() {
            metrics.insert(k, f(v));
        }
    }
    metrics.insert(
        "frac_reward_zero_std".into(),
        f(ro.zero_groups as f64 / ro.all_groups.max(1) as f64),
    );
    metrics.insert(
        "frac_reward_zero_std_batch".into(),
        f(frac_zero_std(total_r, g)),
    );
    metrics.insert("dynamic_sampling/rounds".into(), json!(ro.rounds));
    let lens = ro.lengths();
    let truncated = ro.truncated();
    let term: Vec<f64> = lens
        .iter()
        .zip(&truncated)
        .filter(|(_, &t)| !t)
        .map(|(l, _)| *l)
        .collect();
    metrics.insert("completions/mean_length".into(), f(mean(&lens)));
    metrics.insert(
        "completions/min_length".into(),
        f(lens.iter().cloned().fold(f64::INFINITY, f64::min)),
    );
    metrics.insert(
        "completions/max_length".into(),
        f(lens.iter().cloned().fold(0.0, f64::max)),
    );
    metrics.insert(
        "completions/clipped_ratio".into(),
        f(truncated.iter().filter(|&&t| t).count() as f64 / n as f64),
    );
    metrics.insert(
        "completions/mean_terminated_length".into(),
        f(if term.is_empty() { 0.0 } else { mean(&term) }),
    );
    // Failure-mode monitors: reasoning length (collapse), instruction and factuality hallucination.
    let words: Vec<f64> = texts
        .iter()
        .map(|t| verdict::word_count(&verdict::reasoning_text(t)) as f64)
        .collect();
    let mean_words = mean(&words);
    metrics.insert("monitors/reasoning_words".into(), f(mean_words));
    let trend = length_monitor.push(step as u64, mean_words);
    for (k, v) in trend.to_metrics() {
        metrics.insert(k, f(v));
    }
    let instr = texts
        .iter()
        .filter(|t| rewards::instruction_hallucination_for(t, &ctx.policy, reasoning))
        .count();
    metrics.insert(
        "monitors/instruction_hallucination_rate".into(),
        f(instr as f64 / n as f64),
    );
    let quotes: Vec<bool> = texts
        .iter()
        .zip(prompts.iter())
        .enumerate()
        .filter_map(|(i, (t, _))| {
            let r = &recs[i / g];
            rewards::quote_hallucination(t, &r.text)
        })
        .collect();
    if !quotes.is_empty() {
        metrics.insert(
            "monitors/factuality_hallucination_rate".into(),
            f(quotes.iter().filter(|&&q| q).count() as f64 / quotes.len() as f64),
        );
    }
    metrics.insert(
        "monitors/quoting_rate".into(),
        f(quotes.len() as f64 / n as f64),
    );
    metrics.insert("timing/generation".into(), f(ro.gen_time));
    metrics.insert("timing/rewards".into(), f(ro.reward_time));
}

/// Phase 3: the policy-gradient update over all completions (micro-batched, gradients
/// accumulate; with `num_iterations > 1` the earlier updates happen here, the last one in the
/// caller). Returns the loss and the completion tokens.
#[allow(clippy::too_many_arguments)]
fn policy_update(
    ctx: &mut Ctx,
    ro: &Rollouts,
    adv: &[f64],
    prefix_ids: &[u32],
    params: &[Tensor],
    opt: &mut AdamW,
    lr_now: f64,
    metrics: &mut Map<String, Value>,
) -> Result<(f64, usize)> {
    let rl = &ctx.cfg.rl;
    let comps = &ro.comps;
    let n = comps.len();
    let lens = ro.lengths();
    let truncated = ro.truncated();
    ctx.model.training = true;
    let loss_cfg = rl.loss_config();
    let dev = ctx.model.device;
    let mask_row = |i: usize| {
        if rl.mask_truncated_completions && truncated[i] {
            0.0
        } else {
            1.0
        }
    };
    let total_tokens: f64 = comps
        .iter()
        .enumerate()
        .map(|(i, c)| c.token_ids.len() as f64 * mask_row(i))
        .sum();
    let chunks: Vec<std::ops::Range<usize>> = (0..n)
        .step_by(rl.micro_batch_size)
        .map(|s| s..(s + rl.micro_batch_size).min(n))
        .collect();
    let t_fb = Instant::now();
    let mut old: Vec<Option<Tensor>> = (0..chunks.len()).map(|_| None).collect();
    if rl.num_iterations > 1 {
        ctx.model.training = false;
        for (ci, r) in chunks.iter().enumerate() {
            let (pr, cr) = ro.rows(r.clone());
            old[ci] = Some(
                tch::no_grad(|| {
                    completion_logprobs_with_prefix(
                        &ctx.model,
                        Some(prefix_ids),
                        &pr,
                        &cr,
                        rl.temperature,
                        false,
                    )
                })?
                .logprobs,
            );
        }
        ctx.model.training = true;
    }
    let mut loss_total = 0.0;
    let (mut ent_sum, mut clip_low, mut clip_high, mut clip_region, mut kl_sum) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
    // Sampler vs trainer log-probs: |difference| and importance ratio exp(trainer - sampler).
    let (mut lp_diff, mut lp_diff_max, mut is_sum) = (0.0f64, 0.0f64, 0.0f64);
    let (mut is_min, mut is_max) = (f64::INFINITY, 0.0f64);
    for it in 0..rl.num_iterations {
        if it > 0 {
            // Several updates per batch of rollouts: the previous iteration's update happens here,
            // the last one in the caller.
            if clip_grad_norm(params, rl.max_grad_norm).is_finite() {
                opt.step(params, lr_now);
            }
            zero_grad(params);
        }
        // With several micro-batches, the shared prefix runs once per update with gradients and
        // its backward once after theirs (the same gradients as running it in each of them).
        let train_prefix = (chunks.len() > 1 && !prefix_ids.is_empty())
            .then(|| TrainPrefix::new(&ctx.model, prefix_ids));
        for (ci, r) in chunks.iter().enumerate() {
            let (pr, cr) = ro.rows(r.clone());
            let prefix = match &train_prefix {
                Some(tp) => PrefixArg::from(tp),
                None => PrefixArg::from(Some(prefix_ids)),
            };
            let lp = completion_logprobs_with_prefix(
                &ctx.model,
                prefix,
                &pr,
                &cr,
                rl.temperature,
                true,
            )?;
            let rows = r.len() as i64;
            let row_mask: Vec<f32> = r.clone().map(|i| mask_row(i) as f32).collect();
            let mask = &lp.mask * Tensor::from_slice(&row_mask).view([rows, 1]).to_device(dev);
            let a =
                Tensor::from_slice(&adv[r.clone()].iter().map(|&x| x as f32).collect::<Vec<_>>())
                    .to_device(dev);
            let old_lp = old[ci]
                .as_ref()
                .map(|t| t.shallow_clone())
                .unwrap_or_else(|| lp.logprobs.detach());
            let ref_lp = if rl.beta > 0.0 {
                Some(reference_logprobs(ctx, prefix_ids, &pr, &cr)?)
            } else {
                None
            };
            let out = policy_loss_accumulated(
                &loss_cfg,
                &lp.logprobs,
                &old_lp,
                ref_lp.as_ref(),
                &a,
                &mask,
                Accumulation {
                    steps: chunks.len(),
                    active_tokens: Some(total_tokens.max(1.0)),
                },
            )?;
            out.loss.backward();
            let w = r.len() as f64 / n as f64;
            loss_total += out.loss.double_value(&[]);
            ent_sum += (lp.entropy.as_ref().unwrap() * &lp.mask)
                .sum(Kind::Float)
                .double_value(&[]);
            clip_low += out.clip_ratio_low_mean * w;
            clip_high += out.clip_ratio_high_mean * w;
            clip_region += out.clip_ratio_region_mean * w;
            kl_sum += out.kl_mean.unwrap_or(0.0) * w;
            if it == 0 {
                // Sampler vs trainer log-probs (they differ only by numerics when both are local).
                for (k, i) in r.clone().enumerate() {
                    let row: Vec<f32> = Vec::try_from(
                        &lp.logprobs
                            .get(k as i64)
                            .detach()
                            .to_kind(Kind::Float)
                            .to_device(modrl_model::Device::Cpu),
                    )?;
                    for (j, s) in comps[i].logprobs.iter().enumerate() {
                        let d = (row[j] - s) as f64;
                        lp_diff += d.abs();
                        lp_diff_max = lp_diff_max.max(d.abs());
                        let ratio = d.exp();
                        is_sum += ratio;
                        is_min = is_min.min(ratio);
                        is_max = is_max.max(ratio);
                    }
                }
            }
        }
        if let Some(tp) = &train_prefix {
            tp.backward();
        }
    }
    // The reference's and old policy's log-probs included, and with `num_iterations > 1` the
    // updates before the last one.
    metrics.insert(
        "timing/forward_backward".into(),
        f(t_fb.elapsed().as_secs_f64()),
    );
    let all_tok: f64 = lens.iter().sum();
    metrics.insert(
        "entropy".into(),
        f(ent_sum / all_tok.max(1.0) / rl.num_iterations as f64),
    );
    metrics.insert(
        "clip_ratio/low_mean".into(),
        f(clip_low / rl.num_iterations as f64),
    );
    metrics.insert(
        "clip_ratio/high_mean".into(),
        f(clip_high / rl.num_iterations as f64),
    );
    metrics.insert(
        "clip_ratio/region_mean".into(),
        f(clip_region / rl.num_iterations as f64),
    );
    if rl.beta > 0.0 {
        metrics.insert("kl".into(), f(kl_sum / rl.num_iterations as f64));
    }
    // TRL's names (vLLM rollouts): the sampler's log-probs against the trainer's recomputation.
    metrics.insert(
        "sampling/sampling_logp_difference/mean".into(),
        f(lp_diff / all_tok.max(1.0)),
    );
    metrics.insert(
        "sampling/sampling_logp_difference/max".into(),
        f(lp_diff_max),
    );
    if all_tok > 0.0 {
        metrics.insert("sampling/importance_sampling_ratio/min".into(), f(is_min));
        metrics.insert(
            "sampling/importance_sampling_ratio/mean".into(),
            f(is_sum / all_tok),
        );
        metrics.insert("sampling/importance_sampling_ratio/max".into(), f(is_max));
    }
    ctx.model.training = false;
    Ok((loss_total / rl.num_iterations as f64, all_tok as usize))
}

/// One label-token RL step (`rl.action = "label"`, [`crate::label_rl`]).
pub(crate) fn label_rl_step(
    ctx: &mut Ctx,
    prompt_ids: &[Vec<u32>],
    prefix_ids: &[u32],
    state: &mut TrainState,
    step_seed: u64,
    metrics: &mut Map<String, Value>,
) -> Result<(f64, usize)> {
    let cfg = ctx.cfg;
    let n = cfg.rl.prompts_per_step;
    let idx: Vec<usize> = if cfg.rl.balance_labels {
        let labels: Vec<u8> = ctx.train.iter().map(|r| r.label).collect();
        let idx = balanced_at(&labels, cfg.run.seed, state.cursor, n)?;
        state.cursor += n;
        idx
    } else {
        (0..n)
            .map(|_| {
                let i = record_at(ctx.train.len(), cfg.run.seed, state.cursor);
                state.cursor += 1;
                i
            })
            .collect()
    };
    let prompts: Vec<&[u32]> = idx.iter().map(|&i| prompt_ids[i].as_slice()).collect();
    let labels: Vec<u8> = idx.iter().map(|&i| ctx.train[i].label).collect();
    let label_tokens = modrl_moderation::score::label_tokens(&ctx.tok)?;
    let t = Instant::now();
    let reference = if cfg.rl.beta > 0.0 {
        Some(label_reference(ctx, prefix_ids, &prompts, label_tokens)?)
    } else {
        None
    };
    ctx.model.training = true;
    let loss = crate::label_rl::step(
        &ctx.model,
        &crate::label_rl::LabelStep {
            prefix: prefix_ids,
            prompts: &prompts,
            labels: &labels,
            label_tokens,
            num_generations: cfg.rl.num_generations,
            temperature: cfg.rl.temperature,
            fn_cost: cfg.rewards.fn_cost,
            fp_cost: cfg.rewards.fp_cost,
            scale_rewards: cfg.rl.scale_rewards,
            estimator: cfg.rl.label_estimator,
            micro_batch_size: cfg.rl.micro_batch_size,
            seed: step_seed,
            format_weight: cfg.rewards.format,
            kl: reference.as_ref().map(|r| (cfg.rl.beta, r)),
        },
        metrics,
    )?;
    metrics.insert(
        "timing/forward_backward".into(),
        f(t.elapsed().as_secs_f64()),
    );
    ctx.model.training = false;
    // Rollout tokens: one label token per sample (the exact estimator scores both labels).
    let per_prompt = match cfg.rl.label_estimator {
        LabelEstimator::Sampled => cfg.rl.num_generations,
        LabelEstimator::Exact => 2,
    };
    Ok((loss, prompts.len() * per_prompt))
}

/// `f` on the frozen reference, without gradients: the base model without its adapters (LoRA),
/// or the second copy of the base (full fine-tuning).
fn on_reference<T>(ctx: &mut Ctx, f: impl Fn(&modrl_model::Model) -> Result<T>) -> Result<T> {
    tch::no_grad(|| match &ctx.ref_model {
        Some(m) => f(m),
        None => {
            ctx.model.adapters_enabled = false;
            let r = f(&ctx.model);
            ctx.model.adapters_enabled = true;
            r
        }
    })
}

/// The reference's log-probs over the two labels, `[prompts, 2]`, by micro-batch.
fn label_reference(
    ctx: &mut Ctx,
    prefix_ids: &[u32],
    prompts: &[&[u32]],
    label_tokens: (u32, u32),
) -> Result<Tensor> {
    let (t, mb) = (ctx.cfg.rl.temperature, ctx.cfg.rl.micro_batch_size.max(1));
    let mut rows = Vec::new();
    for chunk in prompts.chunks(mb) {
        rows.push(on_reference(ctx, |m| {
            Ok(crate::label_rl::label_logprobs(m, prefix_ids, chunk, label_tokens, t)?.0)
        })?);
    }
    Ok(Tensor::cat(&rows, 0))
}

/// Log-probs of the completions under the frozen reference.
fn reference_logprobs(
    ctx: &mut Ctx,
    prefix_ids: &[u32],
    pr: &[&[u32]],
    cr: &[&[u32]],
) -> Result<Tensor> {
    let t = ctx.cfg.rl.temperature;
    on_reference(ctx, |m| {
        Ok(completion_logprobs_with_prefix(m, Some(prefix_ids), pr, cr, t, false)?.logprobs)
    })
}
