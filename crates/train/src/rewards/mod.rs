//! Rewards for RL on moderation outputs, and the per-step hallucination monitors.
//!
//! Each reward is a small type with one job, scoring a batch of completions ([`Reward`]). The
//! trainer combines them as a weighted sum ([`build_rewards`] from a [`RewardsConfig`]):
//!
//! | name       | what it scores                                                      | range        |
//! |------------|---------------------------------------------------------------------|--------------|
//! | `accuracy` | the verdict's label against the dataset label ([`Accuracy`])         | {-cost, 0, 1} |
//! | `format`   | keeping the output contract ([`Format`])                            | [0, 1]       |
//! | `length`   | reasoning length inside a word band ([`Length`])                    | [0, 1]       |
//! | `rubric`   | an LLM judge's rubric grade of the reasoning ([`Rubric`])           | [0, 1]       |
//! | `rubric_rules` | deterministic rubric checks of the reasoning ([`crate::rubric_rules`]) | [0, 1] |
//! | external   | a command ([`External`]) or an HTTP service ([`Http`])              | any number   |
//!
//! Monitors (not rewards; logged per step): [`instruction_hallucination`] (the output contract
//! or the instruction is broken) and [`quote_hallucination`] (the reasoning quotes text that is
//! not in the content — an invented justification).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use modrl_moderation::verdict::{self, ParseFailure, Verdict};
use modrl_moderation::{Label, Policy};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::judge::{build_judge, Judge, JudgeConfig, JudgeItem, JudgeScore};

/// One completion to score, with what the rewards may need to know about its item.
#[derive(Debug, Clone, Copy)]
pub struct RewardInput<'a> {
    /// The moderated content.
    pub content: &'a str,
    /// The dataset label: 1 violating, 0 non-violating.
    pub label: u8,
    /// The dataset's violated categories (may be empty).
    pub categories: &'a [String],
    /// The model's full answer (reasoning and verdict line; include any assistant prefix).
    pub completion: &'a str,
    /// The dataset's human rationale, when it has one.
    pub rationale: Option<&'a str>,
    /// The policy the model applied.
    pub policy: &'a Policy,
}

/// A reward function over a batch of completions: one finite number per input, in order.
pub trait Reward: Send + Sync {
    /// The name under which the reward is configured and logged.
    fn name(&self) -> &str;
    fn score(&self, batch: &[RewardInput]) -> Result<Vec<f64>>;
    /// Metrics of the last `score` call, logged with the step (e.g. `judge/parsed_fraction`).
    fn metrics(&self) -> Vec<(String, f64)> {
        vec![]
    }
}

mod builtin;
mod config;
mod contract;
mod external;
mod monitors;
#[cfg(test)]
mod tests;

pub use builtin::*;
pub use config::*;
pub use contract::*;
pub use external::*;
pub use monitors::*;
