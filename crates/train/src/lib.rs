//! Training of policy-aligned moderation classifiers: GRPO-family RL with shaped rewards, SFT,
//! checkpoints and logging, and the sigmoid scaling-law fit of RL runs ([`scaling`]).
pub mod advantage;
pub mod checkpoint;
pub mod config;
pub mod judge;
pub mod label_rl;
pub mod logging;
pub mod loss;
pub mod openai;
pub mod plots;
pub mod rewards;
mod rl_step;
pub mod rubric_rules;
pub mod scaling;
pub mod sft_targets;
pub mod tensorboard;
pub mod trainer;
