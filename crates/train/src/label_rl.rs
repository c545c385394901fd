//! Label-token RL (`rl.action = "label"`, with `data.variant = "no_reasoning"`): the policy is the
//! model's next-token distribution over the two label words after the verdict prefix
//! (`{"label": "`), renormalised over them: exactly what verdict-token scoring reads. Each prompt
//! gets G sampled labels (temperature `rl.temperature`), rewarded for accuracy (a missed violation
//! costs `rewards.fn_cost`, a false alarm `rewards.fp_cost`), with group-relative advantages as in
//! GRPO. The update is on-policy (one update per batch, so the clipped ratio is 1 and the loss is
//! the plain policy gradient `-mean(A * log pi(a))`).
//!
//! With `rl.label_estimator = "exact"` the two labels are enumerated instead of sampled: each
//! gets the weight `pi(a) * (r(a) - E[r])` (the baseline is the expected reward under the
//! policy), which is what the sampled weights average to as G grows. Same objective, same
//! scale of update, no sampling noise; with `scale_rewards = "group"` the divisor is the
//! reward's standard deviation under the policy, `sqrt(p (1 - p)) |r_v - r_s|`.
//!
//! The label words' share of the next-token distribution (`m`) is outside that renormalised
//! policy, so nothing above keeps it: RL from the base model drove it below one half for most
//! prompts (no valid verdict when decoding; `label_mass_below_half` in verdict-token scoring).
//! With `rewards.format` > 0 the loss adds `-format * log m` per prompt, the likelihood that the
//! next token is a label word at all (label-agnostic: no gold label enters it).
//!
//! With `rl.beta > 0` the loss adds `beta * KL(pi || pi_ref)` per prompt, computed exactly over
//! the two labels (the reference: the model without its adapters, or a frozen copy). Without it,
//! RL from the base model collapses onto one label within ten steps (docs/results/scaling.md):
//! the accuracy gradient of a prompt is `p (1 - p) (r_v - r_s)`, which vanishes as the policy
//! grows certain, so once a shared shift has pushed every prompt towards one label nothing pulls
//! it back; the KL's gradient `p (1 - p) (z - z_ref)` on the label logit `z` does, and under
//! Adam's normalised steps a consistent pull is enough.
//!
//! Why: sampled verdict lines from a 135M base model almost never parse (no reward signal), and
//! decoding them costs a generation per sample; here every sample is a valid label and the G
//! samples of a prompt cost nothing beyond one forward pass of the prompt. Compared with SFT's
//! cross-entropy, whose gradient on the label logit is `(1 - p)` for a gold-label probability
//! `p`, the expected GRPO gradient is `sqrt(p (1 - p))`: it fades on items the model is confidently
//! wrong about (often label noise) instead of pushing hardest on them.

use anyhow::{bail, Result};
use modrl_model::train::next_token_logprobs_at;
use modrl_model::{Kind, Model, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::advantage::{advantages, frac_zero_std, unbiased_std, ScaleRewards, STD_EPS};
use crate::config::LabelEstimator;

/// What one label-token RL step needs besides the model.
pub struct LabelStep<'a> {
    /// Prompt prefix shared by every prompt (computed once per micro-batch).
    pub prefix: &'a [u32],
    /// Prompts ending with the verdict prefix.
    pub prompts: &'a [&'a [u32]],
    /// Gold labels (1 violating).
    pub labels: &'a [u8],
    /// First tokens of `violating` and `non_violating` after the verdict prefix.
    pub label_tokens: (u32, u32),
    /// G.
    pub num_generations: usize,
    pub temperature: f64,
    pub fn_cost: f64,
    pub fp_cost: f64,
    pub scale_rewards: ScaleRewards,
    /// Sampled (G labels per prompt) or exact (both labels, probability-weighted).
    pub estimator: LabelEstimator,
    /// Prompts per forward/backward.
    pub micro_batch_size: usize,
    pub seed: u64,
    /// Weight of the format term (`rewards.format`): `-format * log m` per prompt, `m` the
    /// next-token probability of the two label words; 0 = off.
    pub format_weight: f64,
    /// KL coefficient (`rl.beta`) and the reference's label log-probs, `[prompts, 2]` from
    /// [`label_logprobs`] at the same temperature; `None` when `beta` is 0.
    pub kl: Option<(f64, &'a Tensor)>,
}

/// The policy's log-probs over the two labels, `[prompts, 2]` (violating first), at `temperature`
/// (renormalised over the two words), and the log of the next-token mass on them, `[prompts]`
/// (at temperature 1, under the whole vocabulary).
pub fn label_logprobs(
    model: &Model,
    prefix: &[u32],
    prompts: &[&[u32]],
    label_tokens: (u32, u32),
    temperature: f64,
) -> Result<(Tensor, Tensor)> {
    let tokens = [label_tokens.0, label_tokens.1];
    let full = next_token_logprobs_at(model, Some(prefix), prompts, &tokens)?;
    let log_mass = full.logsumexp([-1].as_slice(), false);
    Ok(((full / temperature).log_softmax(-1, Kind::Float), log_mass))
}

/// Exact `KL(pi || pi_ref)` per row of two log-prob rows, `[rows]`.
pub fn label_kl(logp: &Tensor, ref_logp: &Tensor) -> Tensor {
    (logp.exp() * (logp - ref_logp)).sum_dim_intlist(-1, false, Kind::Float)
}

/// The sampled labels and their rewards (no model needed): `p_violating[i]` is the policy's
/// probability for prompt `i`; returns the actions (1 = violating) prompt-major, G per prompt.
pub fn sample_and_reward(
    p_violating: &[f64],
    labels: &[u8],
    g: usize,
    fn_cost: f64,
    fp_cost: f64,
    seed: u64,
) -> (Vec<u8>, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut actions = Vec::with_capacity(p_violating.len() * g);
    let mut rewards = Vec::with_capacity(p_violating.len() * g);
    for (&p, &y) in p_violating.iter().zip(labels) {
        for _ in 0..g {
            let a = u8::from(rng.random::<f64>() < p);
            actions.push(a);
            rewards.push(reward(a, y, fn_cost, fp_cost));
        }
    }
    (actions, rewards)
}

/// The reward of answering `a` (1 = violating) when the gold label is `y`.
fn reward(a: u8, y: u8, fn_cost: f64, fp_cost: f64) -> f64 {
    crate::rewards::label_reward(a == 1, y == 1, fn_cost, fp_cost)
}

/// What the exact estimator computes per prompt (no model needed).
#[derive(Debug, Clone, PartialEq)]
pub struct ExactWeights {
    /// Per prompt `[w_violating, w_non_violating]`, row-major: the loss is
    /// `-sum(w * log pi) / n`.
    pub weights: Vec<f64>,
    /// Expected reward of each prompt under the policy.
    pub expected_reward: Vec<f64>,
    /// Reward standard deviation of each prompt under the policy.
    pub reward_std: Vec<f64>,
}

/// Exact expected-reward policy-gradient weights for the two labels: `pi(a) (r(a) - E[r]) / s`
/// with `s` from `scale` (group: the prompt's reward std under the policy; batch: the std of
/// the reward over the whole batch's mixture; none: 1), plus `STD_EPS` as in the sampled case.
pub fn exact_weights(
    p_violating: &[f64],
    labels: &[u8],
    fn_cost: f64,
    fp_cost: f64,
    scale: ScaleRewards,
) -> ExactWeights {
    let n = p_violating.len();
    let mut out = ExactWeights {
        weights: Vec::with_capacity(n * 2),
        expected_reward: Vec::with_capacity(n),
        reward_std: Vec::with_capacity(n),
    };
    let mut second_moment = 0.0;
    for (&p, &y) in p_violating.iter().zip(labels) {
        let (rv, rs) = (
            reward(1, y, fn_cost, fp_cost),
            reward(0, y, fn_cost, fp_cost),
        );
        let mean = p * rv + (1.0 - p) * rs;
        out.expected_reward.push(mean);
        out.reward_std
            .push((p * (1.0 - p)).max(0.0).sqrt() * (rv - rs).abs());
        out.weights.push(p * (rv - mean));
        out.weights.push((1.0 - p) * (rs - mean));
        second_moment += p * rv * rv + (1.0 - p) * rs * rs;
    }
    let batch_std = if n == 0 {
        0.0
    } else {
        let m = out.expected_reward.iter().sum::<f64>() / n as f64;
        (second_moment / n as f64 - m * m).max(0.0).sqrt()
    };
    for i in 0..n {
        let s = match scale {
            ScaleRewards::None => 1.0,
            ScaleRewards::Group => out.reward_std[i] + STD_EPS,
            ScaleRewards::Batch => batch_std + STD_EPS,
        };
        out.weights[2 * i] /= s;
        out.weights[2 * i + 1] /= s;
    }
    out
}

/// One step: sample, reward, advantages, and the policy-gradient loss backward (gradients
/// accumulate in the model; the caller clips and steps). Returns the loss and fills `metrics`
/// with TRL's names where they apply.
pub fn step(model: &Model, s: &LabelStep, metrics: &mut Map<String, Value>) -> Result<f64> {
    let n = s.prompts.len();
    let g = s.num_generations;
    if n == 0 || n != s.labels.len() || g < 2 || s.temperature <= 0.0 {
        bail!("label-token RL needs prompts with labels, G >= 2 and a positive temperature");
    }
    if let Some((beta, r)) = s.kl {
        if beta < 0.0 || r.size() != [n as i64, 2] {
            bail!(
                "label-token RL: the KL term needs beta >= 0 and reference log-probs [prompts, 2]"
            );
        }
    }
    let chunks: Vec<std::ops::Range<usize>> = (0..n)
        .step_by(s.micro_batch_size.max(1))
        .map(|a| a..(a + s.micro_batch_size.max(1)).min(n))
        .collect();
    // The policy over the two labels, with gradients kept per micro-batch for the loss.
    let mut logps: Vec<Tensor> = Vec::with_capacity(chunks.len());
    let mut log_masses: Vec<Tensor> = Vec::with_capacity(chunks.len());
    let mut mass: Vec<f64> = Vec::with_capacity(n);
    let mut p_v: Vec<f64> = Vec::with_capacity(n);
    for r in &chunks {
        let (lp, log_mass) = label_logprobs(
            model,
            s.prefix,
            &s.prompts[r.clone()],
            s.label_tokens,
            s.temperature,
        )?;
        let m: Vec<f32> =
            Vec::try_from(&log_mass.detach().exp().to_device(modrl_model::Device::Cpu))?;
        mass.extend(m.iter().map(|&x| x as f64));
        log_masses.push(log_mass);
        let pv: Vec<f32> = Vec::try_from(
            &lp.select(1, 0)
                .exp()
                .detach()
                .to_device(modrl_model::Device::Cpu),
        )?;
        p_v.extend(pv.iter().map(|&x| x as f64));
        logps.push(lp);
    }
    let p_gold: Vec<f64> = p_v
        .iter()
        .zip(s.labels)
        .map(|(&p, &y)| if y == 1 { p } else { 1.0 - p })
        .collect();
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len().max(1) as f64;
    let put = |m: &mut Map<String, Value>, k: &str, v: f64| {
        m.insert(k.into(), json!(v));
    };
    // Per prompt, the weight of each action: loss = -sum W * log pi.
    let w: Vec<f32> = match s.estimator {
        LabelEstimator::Sampled => {
            let (actions, rewards) =
                sample_and_reward(&p_v, s.labels, g, s.fn_cost, s.fp_cost, s.seed);
            let adv = advantages(&rewards, g, s.scale_rewards);
            let mut w = vec![0f32; n * 2];
            for (i, (&a, &x)) in actions.iter().zip(&adv).enumerate() {
                let col = if a == 1 { 0 } else { 1 };
                w[(i / g) * 2 + col] += (x / (n * g) as f64) as f32;
            }
            let acc: Vec<f64> = actions
                .iter()
                .enumerate()
                .map(|(i, &a)| f64::from(u8::from(a == s.labels[i / g])))
                .collect();
            put(metrics, "reward", mean(&rewards));
            put(metrics, "reward_std", unbiased_std(&rewards));
            put(metrics, "rewards/accuracy/mean", mean(&acc));
            put(metrics, "rewards/accuracy/std", unbiased_std(&acc));
            put(metrics, "frac_reward_zero_std", frac_zero_std(&rewards, g));
            let rate: Vec<f64> = actions.iter().map(|&a| f64::from(a)).collect();
            put(metrics, "label/sampled_violating_rate", mean(&rate));
            w
        }
        LabelEstimator::Exact => {
            let e = exact_weights(&p_v, s.labels, s.fn_cost, s.fp_cost, s.scale_rewards);
            // Expected values under the policy, under the names the sampled estimator logs.
            put(metrics, "reward", mean(&e.expected_reward));
            put(metrics, "reward_std", mean(&e.reward_std));
            put(metrics, "rewards/accuracy/mean", mean(&p_gold));
            let zero = e.reward_std.iter().filter(|&&x| x <= 1e-8).count();
            put(metrics, "frac_reward_zero_std", zero as f64 / n as f64);
            e.weights.iter().map(|&x| (x / n as f64) as f32).collect()
        }
    };
    let mut loss_total = 0.0;
    let mut entropy = 0.0;
    let mut kl_total = 0.0;
    for ((r, lp), log_mass) in chunks.iter().zip(&logps).zip(&log_masses) {
        let wt = Tensor::from_slice(&w[r.start * 2..r.end * 2])
            .view([r.len() as i64, 2])
            .to_device(lp.device());
        let mut loss = -(&wt * lp).sum(Kind::Float);
        if let Some((beta, reference)) = s.kl {
            let rows = reference
                .narrow(0, r.start as i64, r.len() as i64)
                .to_device(lp.device());
            let kl = label_kl(lp, &rows).sum(Kind::Float);
            kl_total += kl.detach().double_value(&[]);
            loss = loss + kl * (beta / n as f64);
        }
        if s.format_weight != 0.0 {
            loss = loss - log_mass.sum(Kind::Float) * (s.format_weight / n as f64);
        }
        loss.backward();
        loss_total += loss.double_value(&[]);
        entropy += -(lp.exp() * lp).sum(Kind::Float).detach().double_value(&[]);
    }
    put(metrics, "entropy", entropy / n as f64);
    // The format reward's expectation: a sampled next token is a label word with probability m.
    put(metrics, "rewards/format/mean", mean(&mass));
    put(
        metrics,
        "label/mass_below_half",
        mean(
            &mass
                .iter()
                .map(|&m| f64::from(u8::from(m < 0.5)))
                .collect::<Vec<_>>(),
        ),
    );
    if s.kl.is_some() {
        put(metrics, "kl", kl_total / n as f64);
    }
    put(metrics, "label/p_gold_mean", mean(&p_gold));
    put(metrics, "label/p_violating_mean", mean(&p_v));
    Ok(loss_total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_follow_the_policy_and_rewards_carry_the_costs() {
        let (a, r) = sample_and_reward(&[0.0, 1.0], &[1, 1], 4, 2.0, 0.5, 1);
        // p = 0 never samples violating: a missed violation each time; p = 1 always right.
        assert_eq!(a, vec![0, 0, 0, 0, 1, 1, 1, 1]);
        assert_eq!(r, vec![-2.0, -2.0, -2.0, -2.0, 1.0, 1.0, 1.0, 1.0]);
        let (_, r) = sample_and_reward(&[1.0], &[0], 3, 2.0, 0.5, 1);
        assert_eq!(r, vec![-0.5; 3]);
        // Frequencies match the probability; the same seed gives the same draws.
        let (a, _) = sample_and_reward(&[0.3], &[1], 20_000, 0.0, 0.0, 9);
        let share = a.iter().map(|&x| x as f64).sum::<f64>() / a.len() as f64;
        assert!((share - 0.3).abs() < 0.015, "{share}");
        assert_eq!(a, sample_and_reward(&[0.3], &[1], 20_000, 0.0, 0.0, 9).0);
    }

    /// The weights the sampled estimator puts on each action, averaged over prompts' samples.
    fn sampled_weights(p: f64, y: u8, g: usize, seed: u64) -> [f64; 2] {
        let (a, r) = sample_and_reward(&[p], &[y], g, 2.0, 0.5, seed);
        let adv = advantages(&r, g, ScaleRewards::None);
        let mut w = [0.0; 2];
        for (&a, &x) in a.iter().zip(&adv) {
            w[usize::from(a == 0)] += x / g as f64;
        }
        w
    }

    #[test]
    fn exact_weights_are_what_sampled_weights_average_to() {
        for (p, y) in [(0.3, 1u8), (0.8, 0), (0.5, 1)] {
            let e = exact_weights(&[p], &[y], 2.0, 0.5, ScaleRewards::None);
            let s = sampled_weights(p, y, 200_000, 7);
            for k in 0..2 {
                assert!(
                    (e.weights[k] - s[k]).abs() < 0.01,
                    "p {p} y {y}: {e:?} vs {s:?}"
                );
            }
        }
    }

    #[test]
    fn exact_weights_give_the_gradient_of_the_expected_reward() {
        // d/dz of w_v log sigma(z) + w_s log(1 - sigma(z)) = w_v (1 - p) - w_s p must equal
        // dE[r]/dz = p (1 - p) (r_v - r_s).
        for (p, y, rv, rs) in [(0.2, 1u8, 1.0, -2.0), (0.7, 0, -0.5, 1.0)] {
            let e = exact_weights(&[p], &[y], 2.0, 0.5, ScaleRewards::None);
            let g = e.weights[0] * (1.0 - p) - e.weights[1] * p;
            assert!((g - p * (1.0 - p) * (rv - rs)).abs() < 1e-12, "{g}");
            assert!((e.expected_reward[0] - (p * rv + (1.0 - p) * rs)).abs() < 1e-12);
        }
    }

    #[test]
    fn the_kl_term_is_the_bernoulli_kl_and_pulls_the_label_logit_back() {
        // Policy p = sigmoid(z) against a reference q: KL = p ln(p/q) + (1-p) ln((1-p)/(1-q)),
        // and dKL/dz = p (1 - p) (z - z_ref) with z the log-odds.
        let (p, q) = (0.9f64, 0.4f64);
        let z = Tensor::from_slice(&[(p / (1.0 - p)).ln() as f32, 0.0])
            .view([1, 2])
            .set_requires_grad(true);
        let lp = z.log_softmax(-1, Kind::Float);
        let rf = Tensor::from_slice(&[q.ln() as f32, (1.0 - q).ln() as f32]).view([1, 2]);
        let kl = label_kl(&lp, &rf);
        let want = p * (p / q).ln() + (1.0 - p) * ((1.0 - p) / (1.0 - q)).ln();
        assert!(
            (kl.double_value(&[0]) - want).abs() < 1e-5,
            "{kl:?} vs {want}"
        );
        kl.sum(Kind::Float).backward();
        let dz = z.grad().double_value(&[0, 0]);
        let want = p * (1.0 - p) * ((p / (1.0 - p)).ln() - (q / (1.0 - q)).ln());
        assert!(dz > 0.0 && (dz - want).abs() < 1e-5, "{dz} vs {want}");
        // No divergence from itself.
        assert!(label_kl(&rf, &rf).double_value(&[0]).abs() < 1e-7);
    }

    fn tiny_lora_model() -> Model {
        let cfg = modrl_model::ModelConfig::from_json(
            r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":64,
              "hidden_size":16,"intermediate_size":32,"num_hidden_layers":1,"num_attention_heads":2,
              "num_key_value_heads":1,"rms_norm_eps":1e-6,"rope_theta":10000.0,"tie_word_embeddings":true,
              "bos_token_id":1,"eos_token_id":2,"max_position_embeddings":128}"#,
        )
        .unwrap();
        let mut model = Model::random(cfg, 3, modrl_model::Device::Cpu);
        let lora = modrl_model::LoraConfig {
            lora_dropout: 0.0,
            ..Default::default()
        };
        modrl_model::lora::attach(&mut model, &lora).unwrap();
        model
    }

    /// Mean log next-token mass on the label words.
    fn mean_log_mass(model: &Model, prompts: &[&[u32]]) -> f64 {
        tch::no_grad(|| {
            let (_, lm) = label_logprobs(model, &[5, 6], prompts, (10, 11), 1.0).unwrap();
            lm.mean(Kind::Float).double_value(&[])
        })
    }

    #[test]
    fn the_format_term_raises_the_label_words_share_of_the_next_token() {
        let mut model = tiny_lora_model();
        model.training = true;
        let params = modrl_model::lora::trainable(&model);
        let prompts: Vec<&[u32]> = vec![&[7, 8, 9], &[12, 13], &[20, 21, 22], &[30]];
        let labels = [1u8, 0, 1, 0];
        let grads = |model: &Model, format_weight: f64| -> Vec<Tensor> {
            modrl_model::train::zero_grad(&params);
            let mut m = Map::new();
            let s = LabelStep {
                prefix: &[5, 6],
                prompts: &prompts,
                labels: &labels,
                label_tokens: (10, 11),
                num_generations: 2,
                temperature: 1.0,
                fn_cost: 0.0,
                fp_cost: 0.0,
                scale_rewards: ScaleRewards::None,
                estimator: LabelEstimator::Exact,
                micro_batch_size: 2,
                seed: 0,
                format_weight,
                kl: None,
            };
            step(model, &s, &mut m).unwrap();
            let logged = m["rewards/format/mean"].as_f64().unwrap();
            assert!(logged > 0.0 && logged < 0.2, "{logged}");
            params.iter().map(|p| p.grad().copy()).collect()
        };
        let (g0, g1) = (grads(&model, 0.0), grads(&model, 1.0));
        // The difference is the format term's gradient alone: a small step against it raises the
        // mass; a step along it lowers it.
        let before = mean_log_mass(&model, &prompts);
        let moved = |sign: f64| {
            tch::no_grad(|| {
                for ((p, a), b) in params.iter().zip(&g1).zip(&g0) {
                    let _ = p.shallow_clone().g_add_(&((a - b) * (-0.5 * sign)));
                }
            });
            let m = mean_log_mass(&model, &prompts);
            tch::no_grad(|| {
                for ((p, a), b) in params.iter().zip(&g1).zip(&g0) {
                    let _ = p.shallow_clone().g_add_(&((a - b) * (0.5 * sign)));
                }
            });
            m
        };
        assert!(g1
            .iter()
            .zip(&g0)
            .any(|(a, b)| (a - b).abs().max().double_value(&[]) > 0.0));
        let (up, down) = (moved(1.0), moved(-1.0));
        assert!(up > before && down < before, "{down} < {before} < {up}");
    }

    #[test]
    fn exact_weights_scale_and_vanish_where_the_policy_is_certain() {
        let e = exact_weights(&[0.0, 1.0], &[1, 1], 1.0, 1.0, ScaleRewards::Group);
        assert!(e.weights.iter().all(|&w| w == 0.0), "{e:?}");
        assert_eq!(e.reward_std, vec![0.0, 0.0]);
        let none = exact_weights(&[0.25], &[1], 1.0, 1.0, ScaleRewards::None);
        let group = exact_weights(&[0.25], &[1], 1.0, 1.0, ScaleRewards::Group);
        let std = (0.25f64 * 0.75).sqrt() * 2.0;
        assert!((group.reward_std[0] - std).abs() < 1e-12);
        assert!((group.weights[0] - none.weights[0] / (std + STD_EPS)).abs() < 1e-12);
        // Batch: the std of the reward over the two prompts' mixture.
        let b = exact_weights(&[0.5, 0.5], &[1, 0], 1.0, 1.0, ScaleRewards::Batch);
        assert!(
            (b.weights[0] - 0.5 / (1.0 + STD_EPS)).abs() < 1e-12,
            "{b:?}"
        );
    }
}
