//! Training of policy-aligned moderation classifiers: GRPO-family RL with shaped rewards, SFT,
//! checkpoints and logging.
