//! Group-relative advantages, as TRL's `GRPOTrainer` computes them.
//!
//! Completions come in groups of `group_size` consecutive samples of the same prompt
//! (`p0s0, p0s1, .., p1s0, ..`, the order `modrl_model::generate` returns). The advantage of a
//! completion is its reward minus the mean reward of its group, optionally divided by a standard
//! deviation plus `1e-4`:
//!
//! * [`ScaleRewards::Group`] — the standard deviation of its group (GRPO, DeepSeekMath);
//! * [`ScaleRewards::Batch`] — the standard deviation of every reward in the batch (PPO-Lite);
//! * [`ScaleRewards::None`] — no scaling (Dr. GRPO: std scaling up-weights too-easy and too-hard
//!   prompts).
//!
//! Standard deviations are unbiased (Bessel's correction, divide by `n - 1`) because TRL uses
//! `torch.Tensor.std()`, whose default is unbiased. A group (or batch) of one sample has standard
//! deviation 0, as in TRL's `num_generations == 1` branch. The mean is always the group's, also
//! with `Batch` scaling.

use serde::{Deserialize, Serialize};

/// Added to the standard deviation before dividing (TRL's constant).
pub const STD_EPS: f64 = 1e-4;

/// A group whose reward standard deviation is at most this is "zero-std": all its completions
/// get advantage 0 and it teaches nothing. `torch.isclose(std, 0)` with its default `atol`.
pub const ZERO_STD_ATOL: f64 = 1e-8;

/// What the centred rewards are divided by (TRL's `scale_rewards`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScaleRewards {
    /// The standard deviation of the completion's group (TRL's default).
    #[default]
    Group,
    /// The standard deviation of the whole batch.
    Batch,
    /// Nothing: advantages are the centred rewards.
    None,
}

fn check(len: usize, group_size: usize) {
    assert!(group_size > 0, "group_size must be positive");
    assert!(
        len.is_multiple_of(group_size),
        "{len} rewards do not split into groups of {group_size}"
    );
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Unbiased standard deviation (divide by `n - 1`); 0 for fewer than two values.
pub fn unbiased_std(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = mean(x);
    let ss: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
    (ss / (x.len() - 1) as f64).sqrt()
}

/// Mean reward of each group.
///
/// # Panics
/// When `group_size` is 0 or does not divide `rewards.len()`.
pub fn group_means(rewards: &[f64], group_size: usize) -> Vec<f64> {
    check(rewards.len(), group_size);
    rewards.chunks(group_size).map(mean).collect()
}

/// Unbiased standard deviation of each group's rewards (TRL's logged `reward_std` is their mean).
///
/// # Panics
/// When `group_size` is 0 or does not divide `rewards.len()`.
pub fn group_stds(rewards: &[f64], group_size: usize) -> Vec<f64> {
    check(rewards.len(), group_size);
    rewards.chunks(group_size).map(unbiased_std).collect()
}

/// Advantages of a batch of rewards in groups of `group_size` (see the module docs).
///
/// # Panics
/// When `group_size` is 0 or does not divide `rewards.len()`.
pub fn advantages(rewards: &[f64], group_size: usize, scale: ScaleRewards) -> Vec<f64> {
    check(rewards.len(), group_size);
    let batch_std = unbiased_std(rewards);
    rewards
        .chunks(group_size)
        .flat_map(|g| {
            let m = mean(g);
            let denom = match scale {
                ScaleRewards::Group => unbiased_std(g) + STD_EPS,
                ScaleRewards::Batch => batch_std + STD_EPS,
                ScaleRewards::None => 1.0,
            };
            g.iter().map(move |r| (r - m) / denom)
        })
        .collect()
}

/// For each group, whether all its rewards are (numerically) equal: such a group has zero
/// advantage everywhere. DAPO's dynamic sampling drops these groups; the fraction of them is TRL's
/// `frac_reward_zero_std` metric.
///
/// # Panics
/// When `group_size` is 0 or does not divide `rewards.len()`.
pub fn zero_std_groups(rewards: &[f64], group_size: usize) -> Vec<bool> {
    group_stds(rewards, group_size)
        .into_iter()
        .map(|s| s <= ZERO_STD_ATOL)
        .collect()
}

/// Fraction of groups whose rewards all agree (0 for an empty batch).
pub fn frac_zero_std(rewards: &[f64], group_size: usize) -> f64 {
    let z = zero_std_groups(rewards, group_size);
    if z.is_empty() {
        return 0.0;
    }
    z.iter().filter(|&&b| b).count() as f64 / z.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < tol, "{a:?} vs {b:?}");
        }
    }

    // Two groups of 4: [1, 0, 0, 1] (mean 0.5, unbiased var = 4 * 0.25 / 3 = 1/3) and
    // [2, 2, 2, 2] (mean 2, std 0).
    const R: [f64; 8] = [1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0];

    #[test]
    fn group_scaling_uses_unbiased_group_std() {
        let s = (1.0f64 / 3.0).sqrt(); // 0.57735...
        let a = 0.5 / (s + 1e-4);
        close(
            &advantages(&R, 4, ScaleRewards::Group),
            &[a, -a, -a, a, 0.0, 0.0, 0.0, 0.0],
            1e-12,
        );
        // Hand value: 0.5 / 0.5774502... = 0.865875...
        assert!((a - 0.865_875).abs() < 1e-5, "{a}");
    }

    #[test]
    fn batch_scaling_uses_the_batch_std_but_group_means() {
        // Batch mean 1.25; squared deviations 0.0625, 1.5625, 1.5625, 0.0625, 0.5625 x4 = 5.5;
        // unbiased var 5.5 / 7.
        let s = (5.5f64 / 7.0).sqrt();
        let a = 0.5 / (s + 1e-4);
        close(
            &advantages(&R, 4, ScaleRewards::Batch),
            &[a, -a, -a, a, 0.0, 0.0, 0.0, 0.0],
            1e-12,
        );
    }

    #[test]
    fn no_scaling_only_centres() {
        close(
            &advantages(&[3.0, 1.0, 5.0, 5.0], 2, ScaleRewards::None),
            &[1.0, -1.0, 0.0, 0.0],
            1e-15,
        );
    }

    #[test]
    fn single_sample_groups_have_zero_std() {
        assert_eq!(
            advantages(&[0.3, 0.9], 1, ScaleRewards::Group),
            vec![0.0, 0.0]
        );
        assert_eq!(group_stds(&[0.3, 0.9], 1), vec![0.0, 0.0]);
        assert_eq!(zero_std_groups(&[0.3, 0.9], 1), vec![true, true]);
    }

    #[test]
    fn zero_std_groups_and_fraction() {
        assert_eq!(zero_std_groups(&R, 4), vec![false, true]);
        assert_eq!(frac_zero_std(&R, 4), 0.5);
        assert_eq!(
            zero_std_groups(&[1.0, 1.0 + 1e-12, 0.0, 1.0], 2),
            vec![true, false]
        );
        assert_eq!(frac_zero_std(&[], 4), 0.0);
        close(&group_means(&R, 4), &[0.5, 2.0], 1e-15);
    }

    #[test]
    #[should_panic(expected = "do not split into groups")]
    fn ragged_batch_panics() {
        advantages(&[1.0, 2.0, 3.0], 2, ScaleRewards::Group);
    }

    #[test]
    fn serde_names_are_lowercase() {
        #[derive(Deserialize)]
        struct C {
            s: ScaleRewards,
        }
        for (t, want) in [
            ("group", ScaleRewards::Group),
            ("batch", ScaleRewards::Batch),
            ("none", ScaleRewards::None),
        ] {
            let c: C = toml::from_str(&format!("s = \"{t}\"")).unwrap();
            assert_eq!(c.s, want);
        }
        assert!(toml::from_str::<C>("s = \"Group\"").is_err());
    }
}
