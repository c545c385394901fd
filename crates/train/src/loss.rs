//! The clipped policy-gradient loss of the GRPO family, with TRL's definitions
//! (`GRPOTrainer._compute_loss`, TRL >= 0.22).
//!
//! For completion `i` with advantage `A_i` and token `t`:
//!
//! * importance ratio, token level: `r_it = exp(logp_it - old_it)`;
//!   sequence level (GSPO): `r_i = exp(mean_t (logp_it - old_it))` over the completion's real
//!   tokens, the same for all its tokens;
//! * per-token loss: `l_it = -min(r A_i, clamp(r, 1 - epsilon, 1 + epsilon_high) A_i)
//!   + beta * k3_it`, with the k3 estimator of KL(pi || pi_ref)
//!   `k3_it = exp(ref_it - logp_it) - (ref_it - logp_it) - 1`;
//! * aggregation over the real (mask = 1) tokens:
//!   * `grpo`: mean over completions of each completion's token mean (length-biased);
//!   * `bnpo`: sum over the micro-batch / its number of real tokens;
//!   * `dr_grpo`: sum / (completions × `max_completion_length`) (Dr. GRPO, a constant);
//!   * `dapo`: sum / real tokens of the whole accumulated batch (TRL's `num_items_in_batch`).
//!
//! With gradient accumulation ([`Accumulation`]) `grpo`, `bnpo` and `dr_grpo` are divided by the
//! number of micro-batches, and `dapo` divides by the real tokens of all micro-batches, so the
//! summed gradients equal those of one big batch, as in TRL. Without accumulation `dapo` and
//! `bnpo` coincide.
//!
//! `old_logprobs` are the sampling policy's log-probs (no gradient). On-policy (one optimisation
//! step per generation) pass `logprobs.detach()`: the ratio is 1 and the gradient of the loss
//! with respect to each real token's log-prob is `-A_i / normaliser`.

use anyhow::{bail, Result};
use modrl_model::{Kind, Tensor};
use serde::{Deserialize, Serialize};

/// How per-token losses are aggregated (TRL's `loss_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    /// Mean over completions of the per-completion token mean.
    Grpo,
    /// Token sum over the accumulated batch / its real tokens (TRL's default).
    #[default]
    Dapo,
    /// Token sum / (completions × `max_completion_length`).
    DrGrpo,
    /// Token sum over the micro-batch / its real tokens.
    Bnpo,
}

/// Where the importance ratio lives (TRL's `importance_sampling_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceSamplingLevel {
    /// One ratio per token (GRPO, DAPO).
    #[default]
    Token,
    /// One ratio per completion: the exponentiated mean token log-ratio (GSPO).
    Sequence,
}

/// Loss hyper-parameters. In TOML every field is optional; `epsilon_high` defaults to `epsilon`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "LossConfigToml")]
pub struct LossConfig {
    /// Aggregation of per-token losses. Default `dapo` (TRL's default; no length bias).
    pub loss_type: LossType,
    /// Token-level ratios (default) or sequence-level ones (GSPO).
    pub importance_sampling_level: ImportanceSamplingLevel,
    /// Lower clip: ratios below `1 - epsilon` stop pushing down negative-advantage tokens.
    /// Default 0.2 (PPO, GRPO).
    pub epsilon: f64,
    /// Upper clip: ratios above `1 + epsilon_high` stop pushing up positive-advantage tokens.
    /// Default `epsilon`; DAPO's clip-higher uses 0.28 to keep exploration (entropy) alive.
    pub epsilon_high: f64,
    /// KL coefficient against the reference policy. Default 0 (the paper, DAPO, Dr. GRPO): no
    /// reference model is needed.
    pub beta: f64,
    /// Two-sided clipping (INTELLECT-2, TRL's `delta`): ratios are also capped at `delta` before
    /// multiplying negative advantages. Default off; use a value above `1 + epsilon_high`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    /// The `dr_grpo` normaliser: the generation's `max_new_tokens`. Default 512.
    pub max_completion_length: usize,
}

/// Default clip range.
pub const DEFAULT_EPSILON: f64 = 0.2;
/// Default `dr_grpo` normaliser.
pub const DEFAULT_MAX_COMPLETION_LENGTH: usize = 512;

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            loss_type: LossType::default(),
            importance_sampling_level: ImportanceSamplingLevel::default(),
            epsilon: DEFAULT_EPSILON,
            epsilon_high: DEFAULT_EPSILON,
            beta: 0.0,
            delta: None,
            max_completion_length: DEFAULT_MAX_COMPLETION_LENGTH,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LossConfigToml {
    #[serde(default)]
    loss_type: LossType,
    #[serde(default)]
    importance_sampling_level: ImportanceSamplingLevel,
    #[serde(default = "default_epsilon")]
    epsilon: f64,
    #[serde(default)]
    epsilon_high: Option<f64>,
    #[serde(default)]
    beta: f64,
    #[serde(default)]
    delta: Option<f64>,
    #[serde(default = "default_max_completion_length")]
    max_completion_length: usize,
}

fn default_epsilon() -> f64 {
    DEFAULT_EPSILON
}

fn default_max_completion_length() -> usize {
    DEFAULT_MAX_COMPLETION_LENGTH
}

impl From<LossConfigToml> for LossConfig {
    fn from(t: LossConfigToml) -> Self {
        LossConfig {
            loss_type: t.loss_type,
            importance_sampling_level: t.importance_sampling_level,
            epsilon: t.epsilon,
            epsilon_high: t.epsilon_high.unwrap_or(t.epsilon),
            beta: t.beta,
            delta: t.delta,
            max_completion_length: t.max_completion_length,
        }
    }
}

impl LossConfig {
    /// Check the values make sense (clip ranges in [0, 1) and above, positive normaliser...).
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.epsilon) {
            bail!("loss epsilon must be in [0, 1), got {}", self.epsilon);
        }
        if !(self.epsilon_high >= 0.0 && self.epsilon_high.is_finite()) {
            bail!(
                "loss epsilon_high must be a non-negative number, got {}",
                self.epsilon_high
            );
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            bail!("loss beta must be a non-negative number, got {}", self.beta);
        }
        if let Some(d) = self.delta {
            if !(d > 1.0 && d.is_finite()) {
                bail!("loss delta must be a number above 1, got {d}");
            }
        }
        if self.max_completion_length == 0 {
            bail!("loss max_completion_length must be positive");
        }
        Ok(())
    }
}

/// How the current micro-batch relates to its optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accumulation {
    /// Micro-batches whose gradients are summed before one optimizer step; `grpo`, `bnpo` and
    /// `dr_grpo` divide their loss by it.
    pub steps: usize,
    /// Real completion tokens in all micro-batches of the optimizer step (TRL's
    /// `num_items_in_batch`): the `dapo` normaliser. `None`: this micro-batch's real tokens.
    pub active_tokens: Option<f64>,
}

impl Default for Accumulation {
    fn default() -> Self {
        Accumulation {
            steps: 1,
            active_tokens: None,
        }
    }
}

/// The loss and the statistics TRL logs with it.
pub struct LossOutput {
    /// Scalar loss with gradients flowing to `logprobs`.
    pub loss: Tensor,
    /// Fraction of real tokens (of completions, at sequence level) whose ratio fell below
    /// `1 - epsilon` with a negative advantage (`clip_ratio/low_mean`).
    pub clip_ratio_low_mean: f64,
    /// Fraction whose ratio rose above `1 + epsilon_high` with a positive advantage
    /// (`clip_ratio/high_mean`).
    pub clip_ratio_high_mean: f64,
    /// Fraction clipped either way (`clip_ratio/region_mean`).
    pub clip_ratio_region_mean: f64,
    /// Mean k3 KL to the reference over real tokens, when reference log-probs were given.
    pub kl_mean: Option<f64>,
}

/// [`policy_loss_accumulated`] for a batch that is its own optimizer step.
pub fn policy_loss(
    cfg: &LossConfig,
    logprobs: &Tensor,
    old_logprobs: &Tensor,
    ref_logprobs: Option<&Tensor>,
    advantages: &Tensor,
    mask: &Tensor,
) -> Result<LossOutput> {
    policy_loss_accumulated(
        cfg,
        logprobs,
        old_logprobs,
        ref_logprobs,
        advantages,
        mask,
        Accumulation::default(),
    )
}

/// The policy loss of one micro-batch (see the module docs).
///
/// * `logprobs` `[B, L]`: current policy log-probs of the completion tokens, with gradients;
/// * `old_logprobs` `[B, L]`: the sampling policy's (gradients are ignored);
/// * `ref_logprobs` `[B, L]`: the reference policy's; required when `beta > 0`, otherwise only
///   used for `kl_mean`;
/// * `advantages` `[B]`; `mask` `[B, L]`, 1 for real completion tokens, 0 for padding.
///
/// Padding positions never contribute, even when their log-probs are not finite.
#[allow(clippy::too_many_arguments)]
pub fn policy_loss_accumulated(
    cfg: &LossConfig,
    logprobs: &Tensor,
    old_logprobs: &Tensor,
    ref_logprobs: Option<&Tensor>,
    advantages: &Tensor,
    mask: &Tensor,
    acc: Accumulation,
) -> Result<LossOutput> {
    cfg.validate()?;
    let size = logprobs.size();
    if size.len() != 2 {
        bail!("logprobs must be [B, L], got shape {size:?}");
    }
    let (b, l) = (size[0], size[1]);
    for (name, t) in [("old_logprobs", Some(old_logprobs)), ("mask", Some(mask))]
        .into_iter()
        .chain([("ref_logprobs", ref_logprobs)])
    {
        if let Some(t) = t {
            if t.size() != size {
                bail!("{name} has shape {:?} but logprobs has {size:?}", t.size());
            }
        }
    }
    if advantages.size() != [b] {
        bail!(
            "advantages must have shape [{b}], got {:?}",
            advantages.size()
        );
    }
    if cfg.beta != 0.0 && ref_logprobs.is_none() {
        bail!("beta = {} needs reference log-probs", cfg.beta);
    }
    if acc.steps == 0 {
        bail!("gradient accumulation steps must be positive");
    }
    if b == 0 || l == 0 {
        bail!("empty batch: logprobs has shape {size:?}");
    }

    let kind = match logprobs.kind() {
        Kind::Double => Kind::Double,
        _ => Kind::Float,
    };
    let dev = logprobs.device();
    let logp = logprobs.to_kind(kind);
    let maskf = mask.to_device(dev).to_kind(kind);
    let valid = maskf.gt(0.0);
    let old = old_logprobs.to_device(dev).to_kind(kind).detach();
    let adv = advantages
        .to_device(dev)
        .to_kind(kind)
        .detach()
        .unsqueeze(1);

    // Padding is zeroed before exp so that junk there can never turn into inf * 0 = NaN.
    let log_ratio = (&logp - &old).masked_fill(&valid.logical_not(), 0.0);
    let per_seq_tokens = maskf.sum_dim_intlist(-1, false, kind).clamp_min(1.0);
    let log_w = match cfg.importance_sampling_level {
        ImportanceSamplingLevel::Token => log_ratio,
        ImportanceSamplingLevel::Sequence => {
            ((&log_ratio * &maskf).sum_dim_intlist(-1, false, kind) / &per_seq_tokens).unsqueeze(1)
        }
    };
    // [B, L] at token level, [B, 1] at sequence level.
    let mut coef1 = log_w.exp();
    let coef2 = coef1.clamp(1.0 - cfg.epsilon, 1.0 + cfg.epsilon_high);
    if let Some(d) = cfg.delta {
        coef1 = coef1.clamp_max(d);
    }
    let surrogate = (&coef1 * &adv).min_other(&(&coef2 * &adv));
    let per_token = -surrogate.expand([b, l], false);

    let kl = ref_logprobs.map(|r| {
        let d = (r.to_device(dev).to_kind(kind).detach() - &logp)
            .masked_fill(&valid.logical_not(), 0.0);
        d.exp() - &d - 1.0
    });
    // Out of place: `per_token` may still be needed by autograd as it is.
    let per_token = match &kl {
        Some(k) if cfg.beta != 0.0 => per_token + k * cfg.beta,
        _ => per_token,
    };
    let masked_sum = (&per_token * &maskf).sum(kind);
    let active = maskf.sum(kind).clamp_min(1.0);
    let steps = acc.steps as f64;
    let loss = match cfg.loss_type {
        LossType::Grpo => {
            ((&per_token * &maskf).sum_dim_intlist(-1, false, kind) / &per_seq_tokens).mean(kind)
                / steps
        }
        LossType::Bnpo => masked_sum / &active / steps,
        LossType::DrGrpo => masked_sum / (b as f64 * cfg.max_completion_length as f64) / steps,
        LossType::Dapo => match acc.active_tokens {
            Some(n) => {
                if n.is_nan() || n <= 0.0 {
                    bail!("accumulated active token count must be positive, got {n}");
                }
                masked_sum / n
            }
            None => masked_sum / &active,
        },
    };

    // Statistics, without gradients.
    let n_active = active.double_value(&[]);
    let batch_mean = |x: &Tensor| -> f64 {
        let x = x.detach().to_kind(kind);
        if x.size()[1] == 1 {
            x.mean(kind).double_value(&[])
        } else {
            (x * &maskf).sum(kind).double_value(&[]) / n_active
        }
    };
    let c1 = coef1.detach();
    let low = c1.lt(1.0 - cfg.epsilon).logical_and(&adv.lt(0.0));
    let high = c1.gt(1.0 + cfg.epsilon_high).logical_and(&adv.gt(0.0));
    let region = low.logical_or(&high);
    let kl_mean = kl.as_ref().map(batch_mean);
    Ok(LossOutput {
        loss,
        clip_ratio_low_mean: batch_mean(&low),
        clip_ratio_high_mean: batch_mean(&high),
        clip_ratio_region_mean: batch_mean(&region),
        kl_mean,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: i64 = 2;
    const L: i64 = 3;
    const MASK: [f64; 6] = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0];

    fn t(v: &[f64]) -> Tensor {
        Tensor::from_slice(v).view([B, L])
    }

    /// old log-probs; current = old + delta where exp(delta) are the token ratios below.
    fn fixture() -> (Tensor, Tensor, Tensor, Tensor) {
        let old = [-1.0, -2.0, -0.5, -1.5, -0.7, 0.0];
        // Row 0 ratios 1.5, 0.9, 1.0; row 1 ratios 0.5, 1.1 and padding (junk: ratio 3).
        let ratios = [1.5f64, 0.9, 1.0, 0.5, 1.1, 3.0];
        let cur: Vec<f64> = old.iter().zip(ratios).map(|(o, r)| o + r.ln()).collect();
        let logp = t(&cur).set_requires_grad(true);
        let adv = Tensor::from_slice(&[1.0f64, -0.5]);
        (logp, t(&old), adv, t(&MASK))
    }

    fn cfg(loss_type: LossType) -> LossConfig {
        LossConfig {
            loss_type,
            max_completion_length: 4,
            ..Default::default()
        }
    }

    fn grad_of(out: &LossOutput, logp: &Tensor) -> Vec<f64> {
        out.loss.backward();
        Vec::<f64>::try_from(&logp.grad().view([-1])).unwrap()
    }

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() < tol, "{a} vs {b}");
    }

    fn close_v(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < tol, "{a:?} vs {b:?}");
        }
    }

    // Per-token losses, eps 0.2:
    //   row 0 (A = 1):    ratio 1.5 -> clipped to 1.2 -> -1.2; 0.9 -> -0.9; 1.0 -> -1.0
    //   row 1 (A = -0.5): ratio 0.5 -> min(-0.25, 0.8 * -0.5 = -0.4) -> +0.4; 1.1 -> +0.55
    // Row sums -3.1 and 0.95; 5 real tokens.
    // d loss_t / d logp_t = -A * ratio where unclipped, 0 where clipped:
    //   row 0: [0, -0.9, -1.0]; row 1: [0, 0.55, 0 (padding)].
    const RAW_GRAD: [f64; 6] = [0.0, -0.9, -1.0, 0.0, 0.55, 0.0];

    #[test]
    fn grpo_matches_hand_computation() {
        let (logp, old, adv, mask) = fixture();
        let out = policy_loss(&cfg(LossType::Grpo), &logp, &old, None, &adv, &mask).unwrap();
        // ((-3.1 / 3) + (0.95 / 2)) / 2
        close(out.loss.double_value(&[]), -0.279_166_666_666_666_7, 1e-12);
        close(out.clip_ratio_low_mean, 0.2, 1e-12);
        close(out.clip_ratio_high_mean, 0.2, 1e-12);
        close(out.clip_ratio_region_mean, 0.4, 1e-12);
        assert!(out.kl_mean.is_none());
        let g = grad_of(&out, &logp);
        let norm = [6.0, 6.0, 6.0, 4.0, 4.0, 4.0]; // B * tokens of the row
        let want: Vec<f64> = RAW_GRAD.iter().zip(norm).map(|(g, n)| g / n).collect();
        close_v(&g, &want, 1e-12);
    }

    #[test]
    fn dapo_and_bnpo_divide_by_real_tokens() {
        for lt in [LossType::Dapo, LossType::Bnpo] {
            let (logp, old, adv, mask) = fixture();
            let out = policy_loss(&cfg(lt), &logp, &old, None, &adv, &mask).unwrap();
            close(out.loss.double_value(&[]), -2.15 / 5.0, 1e-12);
            let g = grad_of(&out, &logp);
            let want: Vec<f64> = RAW_GRAD.iter().map(|g| g / 5.0).collect();
            close_v(&g, &want, 1e-12);
        }
    }

    #[test]
    fn dr_grpo_divides_by_batch_times_max_length() {
        let (logp, old, adv, mask) = fixture();
        let out = policy_loss(&cfg(LossType::DrGrpo), &logp, &old, None, &adv, &mask).unwrap();
        close(out.loss.double_value(&[]), -2.15 / 8.0, 1e-12);
        let g = grad_of(&out, &logp);
        let want: Vec<f64> = RAW_GRAD.iter().map(|g| g / 8.0).collect();
        close_v(&g, &want, 1e-12);
    }

    #[test]
    fn accumulation_scales_like_trl() {
        let acc = Accumulation {
            steps: 4,
            active_tokens: Some(20.0),
        };
        let expect = [
            (LossType::Grpo, -0.279_166_666_666_666_7 / 4.0),
            (LossType::Bnpo, -2.15 / 5.0 / 4.0),
            (LossType::DrGrpo, -2.15 / 8.0 / 4.0),
            // dapo ignores `steps` and divides by the accumulated token count.
            (LossType::Dapo, -2.15 / 20.0),
        ];
        for (lt, want) in expect {
            let (logp, old, adv, mask) = fixture();
            let out =
                policy_loss_accumulated(&cfg(lt), &logp, &old, None, &adv, &mask, acc).unwrap();
            close(out.loss.double_value(&[]), want, 1e-12);
        }
    }

    #[test]
    fn clip_higher_lets_positive_tokens_rise_further() {
        let (logp, old, adv, mask) = fixture();
        let c = LossConfig {
            epsilon_high: 0.28,
            ..cfg(LossType::Dapo)
        };
        let out = policy_loss(&c, &logp, &old, None, &adv, &mask).unwrap();
        // Ratio 1.5 is now clipped at 1.28: row 0 sums to -1.28 - 0.9 - 1.0.
        close(out.loss.double_value(&[]), (-3.18 + 0.95) / 5.0, 1e-12);
        close(out.clip_ratio_high_mean, 0.2, 1e-12);
        // A ratio of 1.25 is clipped at eps_high 0.2 but not at 0.28.
        let old = Tensor::from_slice(&[0.0f64, 0.0]).view([1, 2]);
        let cur = Tensor::from_slice(&[1.25f64.ln(), 0.0])
            .view([1, 2])
            .set_requires_grad(true);
        let m = Tensor::from_slice(&[1.0f64, 1.0]).view([1, 2]);
        let a = Tensor::from_slice(&[2.0f64]);
        // bnpo over 2 tokens with A = 2: (-(2 * clipped ratio) - 2) / 2.
        for (eh, want_loss, want_high) in [(0.2, -(1.2 + 1.0), 0.5), (0.28, -(1.25 + 1.0), 0.0)] {
            let c = LossConfig {
                epsilon_high: eh,
                ..cfg(LossType::Bnpo)
            };
            let out = policy_loss(&c, &cur, &old, None, &a, &m).unwrap();
            close(out.loss.double_value(&[]), want_loss, 1e-12);
            close(out.clip_ratio_high_mean, want_high, 1e-12);
        }
    }

    #[test]
    fn sequence_level_uses_the_mean_log_ratio() {
        let (logp, old, adv, mask) = fixture();
        let c = LossConfig {
            importance_sampling_level: ImportanceSamplingLevel::Sequence,
            ..cfg(LossType::Grpo)
        };
        let out = policy_loss(&c, &logp, &old, None, &adv, &mask).unwrap();
        // Row 0: ratio (1.5 * 0.9 * 1.0)^(1/3) = 1.35^(1/3) = 1.105209..., unclipped, A = 1.
        // Row 1: ratio (0.5 * 1.1)^(1/2) = 0.741620..., below 0.8 with A < 0: loss 0.4.
        let r0 = 1.35f64.powf(1.0 / 3.0);
        close(out.loss.double_value(&[]), (-r0 + 0.4) / 2.0, 1e-12);
        // Sequence level: the clip fractions are over completions.
        close(out.clip_ratio_low_mean, 0.5, 1e-12);
        close(out.clip_ratio_high_mean, 0.0, 1e-12);
        close(out.clip_ratio_region_mean, 0.5, 1e-12);
        // d/d logp_0t of -r0 / 2 = -r0 / (3 * 2); row 1 is clipped: no gradient.
        let g = grad_of(&out, &logp);
        let a = -r0 / 6.0;
        close_v(&g, &[a, a, a, 0.0, 0.0, 0.0], 1e-12);
    }

    #[test]
    fn k3_kl_term_and_its_mean() {
        let (logp, old, adv, mask) = fixture();
        // ref - logp = ln 2 on every real token: k3 = 2 - ln 2 - 1 = 0.306852...
        let reference = (logp.detach() + 2f64.ln()) * t(&MASK);
        let k3 = 1.0 - 2f64.ln();
        let c = LossConfig {
            beta: 0.1,
            ..cfg(LossType::Bnpo)
        };
        let out = policy_loss(&c, &logp, &old, Some(&reference), &adv, &mask).unwrap();
        close(out.kl_mean.unwrap(), k3, 1e-12);
        close(
            out.loss.double_value(&[]),
            (-2.15 + 5.0 * 0.1 * k3) / 5.0,
            1e-12,
        );
        // d k3 / d logp = 1 - exp(ref - logp) = -1 per real token, times beta / 5.
        let g = grad_of(&out, &logp);
        let want: Vec<f64> = RAW_GRAD
            .iter()
            .zip(MASK)
            .map(|(g, m)| (g - 0.1 * m) / 5.0)
            .collect();
        close_v(&g, &want, 1e-12);
        // With beta = 0 the reference is only monitored.
        let (logp, old, adv, mask) = fixture();
        let out = policy_loss(
            &cfg(LossType::Bnpo),
            &logp,
            &old,
            Some(&reference),
            &adv,
            &mask,
        )
        .unwrap();
        close(out.kl_mean.unwrap(), k3, 1e-12);
        close(out.loss.double_value(&[]), -2.15 / 5.0, 1e-12);
    }

    #[test]
    fn on_policy_gradient_is_minus_advantage_over_normaliser() {
        let adv_v = [0.7f64, -1.3];
        for level in [
            ImportanceSamplingLevel::Token,
            ImportanceSamplingLevel::Sequence,
        ] {
            for (lt, norm) in [
                (LossType::Grpo, [6.0, 6.0, 6.0, 4.0, 4.0, 4.0]),
                (LossType::Dapo, [5.0; 6]),
                (LossType::Bnpo, [5.0; 6]),
                (LossType::DrGrpo, [8.0; 6]),
            ] {
                let logp = t(&[-1.0, -2.0, -0.5, -1.5, -0.7, -9.0]).set_requires_grad(true);
                let c = LossConfig {
                    importance_sampling_level: level,
                    ..cfg(lt)
                };
                let adv = Tensor::from_slice(&adv_v);
                let out = policy_loss(&c, &logp, &logp.detach(), None, &adv, &t(&MASK)).unwrap();
                assert_eq!(out.clip_ratio_region_mean, 0.0);
                let g = grad_of(&out, &logp);
                let want: Vec<f64> = (0..6).map(|i| -adv_v[i / 3] * MASK[i] / norm[i]).collect();
                close_v(&g, &want, 1e-12);
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        // Off-policy ratios near the clip boundaries, a reference for the KL term, two-sided
        // clipping, every aggregation and both ratio levels.
        let old = [-1.0, -2.0, -0.5, -1.5, -0.7, 0.0];
        let cur = [-0.8, -2.3, -0.45, -1.9, -0.2, 0.0];
        let refp = [-1.1, -1.8, -0.6, -1.4, -0.9, 0.0];
        let adv = Tensor::from_slice(&[0.9f64, -1.2]);
        for level in [
            ImportanceSamplingLevel::Token,
            ImportanceSamplingLevel::Sequence,
        ] {
            for lt in [
                LossType::Grpo,
                LossType::Dapo,
                LossType::DrGrpo,
                LossType::Bnpo,
            ] {
                let c = LossConfig {
                    loss_type: lt,
                    importance_sampling_level: level,
                    epsilon: 0.2,
                    epsilon_high: 0.28,
                    beta: 0.05,
                    delta: Some(1.5),
                    max_completion_length: 4,
                };
                let value = |x: &[f64]| {
                    policy_loss(&c, &t(x), &t(&old), Some(&t(&refp)), &adv, &t(&MASK))
                        .unwrap()
                        .loss
                        .double_value(&[])
                };
                let logp = t(&cur).set_requires_grad(true);
                let out =
                    policy_loss(&c, &logp, &t(&old), Some(&t(&refp)), &adv, &t(&MASK)).unwrap();
                let g = grad_of(&out, &logp);
                let h = 1e-6;
                for i in 0..6 {
                    let mut up = cur;
                    let mut dn = cur;
                    up[i] += h;
                    dn[i] -= h;
                    let fd = (value(&up) - value(&dn)) / (2.0 * h);
                    assert!(
                        (fd - g[i]).abs() < 1e-6,
                        "{lt:?} {level:?} token {i}: autograd {} vs finite difference {fd}",
                        g[i]
                    );
                }
                // The padding token never gets a gradient.
                assert_eq!(g[5], 0.0);
            }
        }
    }

    #[test]
    fn padding_junk_cannot_poison_the_loss() {
        let (logp, old, adv, mask) = fixture();
        let junk_old = old.copy();
        let _ = junk_old.view([-1]).get(5).fill_(f64::NEG_INFINITY);
        let out = policy_loss(&cfg(LossType::Grpo), &logp, &junk_old, None, &adv, &mask).unwrap();
        close(out.loss.double_value(&[]), -0.279_166_666_666_666_7, 1e-12);
        let g = grad_of(&out, &logp);
        assert!(g.iter().all(|x| x.is_finite()), "{g:?}");
    }

    #[test]
    fn rejects_bad_shapes_and_missing_reference() {
        let (logp, old, adv, mask) = fixture();
        let e = policy_loss(
            &cfg(LossType::Grpo),
            &logp,
            &old,
            None,
            &adv.narrow(0, 0, 1),
            &mask,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("advantages"), "{e}");
        let e = policy_loss(
            &cfg(LossType::Grpo),
            &logp,
            &old.narrow(1, 0, 2),
            None,
            &adv,
            &mask,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("old_logprobs"), "{e}");
        let c = LossConfig {
            beta: 0.1,
            ..cfg(LossType::Grpo)
        };
        let e = policy_loss(&c, &logp, &old, None, &adv, &mask)
            .err()
            .unwrap();
        assert!(e.to_string().contains("reference"), "{e}");
    }

    #[test]
    fn float32_inputs_work() {
        let (logp, old, adv, mask) = fixture();
        let lp = logp.detach().to_kind(Kind::Float).set_requires_grad(true);
        let out = policy_loss(
            &cfg(LossType::Grpo),
            &lp,
            &old.to_kind(Kind::Float),
            None,
            &adv.to_kind(Kind::Float),
            &mask.to_kind(Kind::Float),
        )
        .unwrap();
        assert_eq!(out.loss.kind(), Kind::Float);
        close(out.loss.double_value(&[]), -0.279_166_666, 1e-6);
    }

    #[test]
    fn toml_defaults_and_epsilon_high_follows_epsilon() {
        let c: LossConfig = toml::from_str("").unwrap();
        assert_eq!(c, LossConfig::default());
        assert_eq!(c.loss_type, LossType::Dapo);
        let c: LossConfig = toml::from_str("epsilon = 0.1\nloss_type = \"dr_grpo\"").unwrap();
        assert_eq!(c.epsilon_high, 0.1);
        assert_eq!(c.loss_type, LossType::DrGrpo);
        let c: LossConfig = toml::from_str(
            "epsilon_high = 0.28\nimportance_sampling_level = \"sequence\"\nloss_type = \"bnpo\"",
        )
        .unwrap();
        assert_eq!(c.epsilon, 0.2);
        assert_eq!(c.epsilon_high, 0.28);
        assert_eq!(
            c.importance_sampling_level,
            ImportanceSamplingLevel::Sequence
        );
        let c: LossConfig = toml::from_str("loss_type = \"grpo\"").unwrap();
        assert_eq!(c.loss_type, LossType::Grpo);
        assert!(toml::from_str::<LossConfig>("epsilon_hi = 0.3").is_err());
        // Serialising and reading back keeps the values.
        let back: LossConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert!(LossConfig {
            epsilon: 1.5,
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
