//! Training of policy-aligned moderation classifiers: GRPO-family RL with shaped rewards, SFT,
//! checkpoints and logging, self-generated reasoning for SFT ([`self_reason`]), grading given
//! answers with the rewards ([`grade`]), and the sigmoid scaling-law fit of RL runs ([`scaling`]).
pub mod advantage;
pub mod checkpoint;
pub mod config;
pub mod grade;
pub mod judge;
pub mod label_rl;
pub mod length_monitor;
pub mod logging;
pub mod loss;
pub mod openai;
pub mod plots;
pub mod rewards;
mod rl_step;
pub mod rubric_rules;
pub mod scaling;
pub mod self_reason;
pub mod tensorboard;
pub mod trainer;

/// Test helpers shared by the crate's unit tests.
#[cfg(test)]
pub(crate) mod test_util {
    /// A policy of configs/policies by file stem, e.g. `offensive-compact`.
    pub fn policy(name: &str) -> modrl_moderation::Policy {
        modrl_moderation::Policy::load(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../../configs/policies/{name}.toml")),
        )
        .unwrap()
    }
}
