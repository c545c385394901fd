//! Scoring content with a model under a policy: the one scoring path of `modrl eval`, the
//! trainer's evaluation, `modrl classify`, the Python package and the server engine.
//!
//! * [`ScoringMode::VerdictToken`]: one forward pass on the no-reasoning prompt, whose assistant
//!   answer already reads `{"label": "`; the score is P(violating) from the next token's logits,
//!   renormalised over the two label words (Llama Guard / ShieldGemma style); optionally with
//!   per-category scores.
//! * [`ScoringMode::MonteCarlo`]: N sampled reasonings at temperature T; each sample's verdict
//!   probability (the probability it reports, or its vote 1/0 when it gives none) is averaged over
//!   the samples that keep the output contract (paper: N = 32, T = 1).
//! * [`ScoringMode::Greedy`]: one greedy reasoning; the score is the probability the model reports
//!   in its verdict.
//! * [`ScoringMode::Reasoned`]: one greedy reasoning, then P(violating) read at the verdict's
//!   label position after that reasoning (the label-token distribution, as in verdict-token
//!   scoring, but conditioned on the model's own reasoning): what a model trained by reasoning RL
//!   actually decides, calibrated, for one generation per item.
//!
//! The instruction + policy prefix is identical for every item, so it is prefilled once
//! ([`PrefixCache`](modrl_model::generate::PrefixCache)) and shared by every item and every sample.
//!
//! Layout: [`prompts`] renders prompts and knows the label and category tokens (tokenizer only,
//! no weights); [`compute`] turns forward passes and samples into [`ItemScore`]s; [`scorer`] is
//! the one-policy, one-model [`Scorer`] of `modrl eval` and the trainer; [`classifier`] the
//! [`TextClassifier`] of `modrl classify` and the Python package. The server engine calls
//! [`PolicyPrompts::score`] with its own per-adapter prefix caches.
//!
//! Labels: [`ItemScore::pred_label`] is the model's own decision (verdict-token: P(violating) >=
//! 0.5; sampled: the majority of the parsed verdicts, ties broken by the mean probability).
//! Flagging at a chosen threshold (`score >= threshold`) is the caller's decision and is applied
//! only to [`ItemScore::score`] (`modrl classify`, the server, the evaluation's threshold metrics).

pub mod classifier;
pub mod compute;
pub mod prompts;
pub mod scorer;

pub use classifier::{Classified, ClassifierOptions, TextClassifier};
pub use compute::{length_groups, mode_of, reasoned_stem, Budget};
pub use prompts::{label_tokens, PolicyPrompts, PromptRenderer};
pub use scorer::Scorer;

use std::str::FromStr;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::prompt::Variant;

/// How a score is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScoringMode {
    VerdictToken,
    MonteCarlo { n: usize, temperature: f64 },
    Greedy,
    Reasoned,
}

impl ScoringMode {
    /// A short description for reports, e.g. `mc N=32 T=1`.
    pub fn describe(&self) -> String {
        match self {
            ScoringMode::VerdictToken => "verdict-token".into(),
            ScoringMode::MonteCarlo { n, temperature } => format!("mc N={n} T={temperature}"),
            ScoringMode::Greedy => "greedy".into(),
            ScoringMode::Reasoned => "reasoned (greedy reasoning, then the label token)".into(),
        }
    }
}

impl FromStr for ScoringMode {
    type Err = anyhow::Error;
    /// `verdict-token`, `greedy`, `reasoned`, `mc` (N = 32, T = 1) or `mc:N` / `mc:N:T`.
    fn from_str(s: &str) -> Result<Self> {
        let mut parts = s.split(':');
        match parts.next().unwrap_or("") {
            "verdict-token" => Ok(ScoringMode::VerdictToken),
            "greedy" => Ok(ScoringMode::Greedy),
            "reasoned" => Ok(ScoringMode::Reasoned),
            "mc" => {
                let n = parts
                    .next()
                    .map(str::parse)
                    .transpose()
                    .context("mc:N needs an integer N")?
                    .unwrap_or(32);
                let temperature = parts
                    .next()
                    .map(str::parse)
                    .transpose()
                    .context("mc:N:T needs a number T")?
                    .unwrap_or(1.0);
                if n == 0 || temperature <= 0.0 {
                    bail!("mc scoring needs N >= 1 and T > 0");
                }
                Ok(ScoringMode::MonteCarlo { n, temperature })
            }
            other => bail!(
                "unknown scoring mode {other:?}: expected verdict-token, reasoned, mc[:N[:T]] or greedy"
            ),
        }
    }
}

/// Scoring settings.
#[derive(Debug, Clone)]
pub struct ScoreConfig {
    pub mode: ScoringMode,
    /// Prompt variant for the reasoning modes (Standard or Reflection); verdict-token always uses
    /// the no-reasoning prompt.
    pub variant: Variant,
    /// Longest reasoning + verdict, in tokens.
    pub max_new_tokens: usize,
    /// Most sequences decoded (or scored) at once.
    pub batch_rows: usize,
    pub seed: u64,
    /// Fold the system message into the user turn (for chat templates without a system role).
    pub no_system_role: bool,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            mode: ScoringMode::VerdictToken,
            variant: Variant::Standard,
            max_new_tokens: 384,
            batch_rows: 32,
            seed: 0,
            no_system_role: false,
        }
    }
}

/// The result for one item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemScore {
    /// P(violating) in [0, 1].
    pub score: f64,
    /// The model's own decision (see the module documentation), `None` when no output parsed.
    pub pred_label: Option<u8>,
    /// Verdict-token with category scores: the category of highest score; sampled modes: the
    /// category most samples name.
    pub pred_category: Option<String>,
    /// `(category, P(violating and category))` for every policy category, in policy order, when
    /// computed (verdict-token with categories, sampled modes of [`PolicyPrompts::score`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category_scores: Vec<(String, f64)>,
    /// The output kept the contract (for MC: at least one sample did).
    pub format_ok: bool,
    /// The parse failure kind of the (first) failing output.
    pub failure: Option<String>,
    /// Words of reasoning (mean over samples).
    pub reasoning_words: Option<usize>,
    pub n_samples: usize,
    /// Share of samples that kept the contract.
    pub format_ok_rate: f64,
    /// The first sample's text (reasoning + verdict), for inspection.
    pub output: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scoring_modes() {
        assert_eq!(
            "verdict-token".parse::<ScoringMode>().unwrap(),
            ScoringMode::VerdictToken
        );
        assert_eq!(
            "greedy".parse::<ScoringMode>().unwrap(),
            ScoringMode::Greedy
        );
        assert_eq!(
            "mc".parse::<ScoringMode>().unwrap(),
            ScoringMode::MonteCarlo {
                n: 32,
                temperature: 1.0
            }
        );
        assert_eq!(
            "mc:8:0.7".parse::<ScoringMode>().unwrap(),
            ScoringMode::MonteCarlo {
                n: 8,
                temperature: 0.7
            }
        );
        assert!("mc:0".parse::<ScoringMode>().is_err());
        assert!("best"
            .parse::<ScoringMode>()
            .unwrap_err()
            .to_string()
            .contains("unknown scoring mode"));
    }
}
