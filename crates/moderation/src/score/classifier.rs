//! Classify lists of texts under one policy with one scoring mode: the code behind `modrl
//! classify` (its batch jobs) and the Python package (`import modrl`), so both give the
//! same scores for the same texts.

use anyhow::{bail, Result};
use modrl_model::generate::PrefixCache;
use modrl_model::{Model, Tokenizer};

use super::{Budget, PolicyPrompts, ScoringMode};
use crate::policy::Policy;
use crate::prompt::Variant;

/// Settings of a [`TextClassifier`].
#[derive(Debug, Clone)]
pub struct ClassifierOptions {
    pub mode: ScoringMode,
    /// Label 1 when P(violating) >= this.
    pub threshold: f64,
    /// Output tokens of the reasoning modes (greedy, mc).
    pub max_new_tokens: usize,
    /// Most sequences per forward pass / decode.
    pub batch_rows: usize,
    pub seed: u64,
    /// Prompt variant of the reasoning modes: standard or reflection.
    pub reasoning_variant: Variant,
    pub no_system_role: bool,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        ClassifierOptions {
            mode: ScoringMode::VerdictToken,
            threshold: 0.5,
            max_new_tokens: 384,
            batch_rows: 32,
            seed: 0,
            reasoning_variant: Variant::Standard,
            no_system_role: false,
        }
    }
}

/// One text's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// 1 when `score >= threshold`.
    pub label: u8,
    /// P(violating).
    pub score: f64,
    /// The predicted category; `none` when not flagged.
    pub category: String,
    /// The first sample's reasoning and verdict (greedy and mc only).
    pub reasoning: Option<String>,
}

/// A policy's prompts and shared-prefix cache for one model, ready to classify texts.
pub struct TextClassifier {
    pp: PolicyPrompts,
    variant: Variant,
    prefix: PrefixCache,
    opts: ClassifierOptions,
    /// Prompt tokens around the content, plus a margin.
    overhead: usize,
    /// Output tokens the mode needs after the prompt.
    extra: usize,
}

impl TextClassifier {
    pub fn new(
        model: &Model,
        tok: &Tokenizer,
        policy: Policy,
        opts: ClassifierOptions,
    ) -> Result<Self> {
        if !(0.0..=1.0).contains(&opts.threshold) {
            bail!("the threshold must be in [0, 1], got {}", opts.threshold);
        }
        let pp = PolicyPrompts::new(policy, tok, opts.reasoning_variant, opts.no_system_role)?;
        let variant = pp.variant(&opts.mode);
        let overhead = pp.prompt_ids(tok, "", variant)?.len() + 8;
        let extra = match opts.mode {
            ScoringMode::VerdictToken => 16,
            _ => opts.max_new_tokens,
        };
        let prefix = pp.prefix_cache(model, variant)?;
        Ok(TextClassifier {
            pp,
            variant,
            prefix,
            opts,
            overhead,
            extra,
        })
    }

    pub fn options(&self) -> &ClassifierOptions {
        &self.opts
    }

    /// Texts per scoring call that fill `batch_rows` sequences.
    pub fn items_per_batch(&self) -> usize {
        match self.opts.mode {
            ScoringMode::VerdictToken => (self.opts.batch_rows / self.pp.rows_per_item()).max(1),
            ScoringMode::MonteCarlo { n, .. } => (self.opts.batch_rows / n.max(1)).max(1),
            _ => self.opts.batch_rows.max(1),
        }
    }

    /// Why a text cannot be classified with this model (it does not fit the context), if so.
    pub fn too_long(&self, model: &Model, tok: &Tokenizer, text: &str) -> Result<Option<String>> {
        let n = tok.encode(text)?.len();
        let max_pos = model.config.max_position_embeddings;
        Ok((self.overhead + n + self.extra > max_pos).then(|| {
            format!(
                "the text has {n} tokens; with the policy prompt and {} output tokens it does not fit the model's context of {max_pos}",
                self.extra
            )
        }))
    }

    /// Classify texts (any number; scored `items_per_batch` at a time). A text that does not fit
    /// the context is an error naming its index; check with [`Self::too_long`] first to skip such
    /// texts instead (then call [`Self::classify_fitting`], which does not check again).
    pub fn classify(
        &self,
        model: &Model,
        tok: &Tokenizer,
        texts: &[&str],
    ) -> Result<Vec<Classified>> {
        for (i, t) in texts.iter().enumerate() {
            if let Some(why) = self.too_long(model, tok, t)? {
                bail!("text {i}: {why}");
            }
        }
        self.classify_fitting(model, tok, texts)
    }

    /// [`Self::classify`] for texts already checked with [`Self::too_long`].
    pub fn classify_fitting(
        &self,
        model: &Model,
        tok: &Tokenizer,
        texts: &[&str],
    ) -> Result<Vec<Classified>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.items_per_batch()) {
            let prompts: Vec<Vec<u32>> = chunk
                .iter()
                .map(|t| self.pp.prompt_ids(tok, t, self.variant))
                .collect::<Result<_>>()?;
            let o = &self.opts;
            let budget = Budget {
                max_new_tokens: o.max_new_tokens,
                seed: o.seed,
                max_rows: o.batch_rows.max(1),
            };
            let scored = self.pp.score(
                model,
                tok,
                Some(&self.prefix),
                chunk,
                &prompts,
                &o.mode,
                budget,
            )?;
            for s in scored {
                let hit = s.score >= o.threshold;
                out.push(Classified {
                    label: u8::from(hit),
                    score: s.score,
                    category: match (hit, s.pred_category) {
                        (true, Some(c)) => c,
                        _ => "none".into(),
                    },
                    reasoning: s.output,
                });
            }
        }
        Ok(out)
    }
}
