//! [`Scorer`]: one policy, one model, one scoring mode, the prefix prefilled once; what `modrl
//! eval` and the trainer's evaluation score items with.

use anyhow::Result;
use modrl_model::generate::PrefixCache;
use modrl_model::{Model, Tokenizer};

use super::{Budget, ItemScore, PolicyPrompts, ScoreConfig, ScoringMode};
use crate::policy::Policy;
use crate::prompt::Variant;

/// Scores items of one policy with one model.
pub struct Scorer<'a> {
    pub model: &'a Model,
    pub tok: &'a Tokenizer,
    pub policy: &'a Policy,
    pub cfg: ScoreConfig,
    prompts: PolicyPrompts,
    prefix: PrefixCache,
}

impl<'a> Scorer<'a> {
    pub fn new(
        model: &'a Model,
        tok: &'a Tokenizer,
        policy: &'a Policy,
        cfg: ScoreConfig,
    ) -> Result<Self> {
        let variant = match cfg.mode {
            ScoringMode::VerdictToken => Variant::NoReasoning,
            _ => cfg.variant,
        };
        let cfg = ScoreConfig { variant, ..cfg };
        // The reasoning variant of the prompts is only used by the reasoning modes, which render
        // with `cfg.variant` below; verdict-token scoring keeps the default one.
        let reasoning_variant = match cfg.variant {
            Variant::NoReasoning => Variant::Standard,
            v => v,
        };
        let prompts =
            PolicyPrompts::new(policy.clone(), tok, reasoning_variant, cfg.no_system_role)?;
        // `PolicyPrompts` holds the shared prefix of both the no-reasoning variant and the
        // reasoning one, so `cfg.variant` is always there.
        let prefix = prompts.prefix_cache(model, cfg.variant)?;
        Ok(Scorer {
            model,
            tok,
            policy,
            cfg,
            prompts,
            prefix,
        })
    }

    /// The full prompt text for one piece of content: chat template + generation prompt +
    /// assistant prefix.
    pub fn prompt_text(&self, content: &str) -> Result<String> {
        self.prompts
            .prompt_text(self.tok, content, self.cfg.variant)
    }

    pub fn prompt_ids(&self, content: &str) -> Result<Vec<u32>> {
        self.tok.encode(&self.prompt_text(content)?)
    }

    /// Number of prompt tokens shared by every item (prefilled once).
    pub fn prefix_len(&self) -> usize {
        self.prefix.ids.len()
    }

    /// Items per call of [`Scorer::score_batch`] that fit `batch_rows`.
    pub fn items_per_batch(&self) -> usize {
        match self.cfg.mode {
            ScoringMode::MonteCarlo { n, .. } => (self.cfg.batch_rows / n).max(1),
            _ => self.cfg.batch_rows.max(1),
        }
    }

    /// Score a batch of texts (all of them in one call of the model: pass at most
    /// [`Scorer::items_per_batch`]). Verdict-token scoring reads no category scores here.
    pub fn score_batch(&self, texts: &[&str]) -> Result<Vec<ItemScore>> {
        let prompts: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.prompt_ids(t))
            .collect::<Result<_>>()?;
        let c = &self.cfg;
        // The caller sized the batch: no further split.
        let budget = Budget {
            max_new_tokens: c.max_new_tokens,
            seed: c.seed,
            max_rows: usize::MAX,
        };
        let (p, model, tok, prefix) = (&self.prompts, self.model, self.tok, Some(&self.prefix));
        match c.mode {
            // No category scores here: eval reads P(violating) only.
            ScoringMode::VerdictToken => {
                p.verdict_token(model, prefix, &prompts, usize::MAX, false)
            }
            ScoringMode::Reasoned => {
                p.reasoned(model, tok, prefix, texts, &prompts, c.variant, budget)
            }
            mode => p.score(model, tok, prefix, texts, &prompts, &mode, budget),
        }
    }
}
