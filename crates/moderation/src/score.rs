//! Scoring content with a model under a policy: the three modes of the paper's calibration study.
//!
//! * [`ScoringMode::VerdictToken`]: one forward pass on the no-reasoning prompt, whose assistant
//!   answer already reads `{"label": "`; the score is P(violating) from the next token's logits,
//!   renormalised over the two label words (Llama Guard / ShieldGemma style).
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
//! ([`PrefixCache`]) and shared by every item and every sample.

use std::str::FromStr;

use anyhow::{bail, Context, Result};
use modrl_model::generate::{generate_with_prefix, next_token_logits, PrefixCache, SamplingParams};
use modrl_model::{Kind, Model, Tokenizer};
use serde::{Deserialize, Serialize};

use crate::policy::Policy;
use crate::prompt::{self, Variant, VERDICT_PREFIX};
use crate::verdict::{self, Label};

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
    pub pred_label: Option<u8>,
    pub pred_category: Option<String>,
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

/// Renders prompts of one policy and variant with a model's chat template.
pub struct PromptRenderer<'a> {
    pub tok: &'a Tokenizer,
    pub policy: &'a Policy,
    pub variant: Variant,
    pub no_system_role: bool,
}

impl PromptRenderer<'_> {
    /// Chat template + generation prompt + the variant's assistant prefix.
    pub fn text(&self, content: &str) -> Result<String> {
        let p = prompt::build(self.policy, content, self.variant);
        let msgs = if self.no_system_role {
            p.without_system_role()
        } else {
            p.messages.clone()
        };
        let msgs: Vec<modrl_model::Message> = msgs
            .iter()
            .map(|m| {
                let role = serde_json::to_value(m.role)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                modrl_model::Message::new(&role, m.content.clone())
            })
            .collect();
        Ok(self.tok.apply_chat_template(&msgs, true)? + &p.assistant_prefix)
    }

    pub fn ids(&self, content: &str) -> Result<Vec<u32>> {
        self.tok.encode(&self.text(content)?)
    }

    /// Tokens of the text every prompt shares (instruction + policy + the content header): the
    /// common start of two renderings with different content.
    pub fn prefix_ids(&self) -> Result<Vec<u32>> {
        let a = self.text("A")?;
        let b = self.text("B")?;
        let common: String = a
            .chars()
            .zip(b.chars())
            .take_while(|(x, y)| x == y)
            .map(|(x, _)| x)
            .collect();
        self.tok.encode(&common)
    }
}

/// Scores items of one policy with one model.
pub struct Scorer<'a> {
    pub model: &'a Model,
    pub tok: &'a Tokenizer,
    pub policy: &'a Policy,
    pub cfg: ScoreConfig,
    categories: Vec<String>,
    prefix: PrefixCache,
    /// First token of " violating" / "non_violating" after the verdict prefix.
    label_tokens: (u32, u32),
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
        let mut s = Scorer {
            model,
            tok,
            policy,
            categories: policy.category_names(),
            prefix: PrefixCache::new(model, &[0])?,
            label_tokens: (0, 0),
            cfg,
        };
        // The text every prompt shares: the common start of two renderings with different content.
        let a = s.prompt_text("A")?;
        let b = s.prompt_text("B")?;
        let common: String = a
            .chars()
            .zip(b.chars())
            .take_while(|(x, y)| x == y)
            .map(|(x, _)| x)
            .collect();
        let ids = tok.encode(&common)?;
        s.prefix = PrefixCache::new(model, &ids)?;
        s.label_tokens = label_tokens(tok)?;
        Ok(s)
    }

    /// The full prompt text for one piece of content: chat template + generation prompt +
    /// assistant prefix.
    pub fn prompt_text(&self, content: &str) -> Result<String> {
        self.renderer().text(content)
    }

    pub fn prompt_ids(&self, content: &str) -> Result<Vec<u32>> {
        self.tok.encode(&self.prompt_text(content)?)
    }

    fn renderer(&self) -> PromptRenderer<'_> {
        PromptRenderer {
            tok: self.tok,
            policy: self.policy,
            variant: self.cfg.variant,
            no_system_role: self.cfg.no_system_role,
        }
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

    /// Score a batch of texts.
    pub fn score_batch(&self, texts: &[&str]) -> Result<Vec<ItemScore>> {
        let prompts: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.prompt_ids(t))
            .collect::<Result<_>>()?;
        match self.cfg.mode {
            ScoringMode::VerdictToken => self.verdict_token(&prompts),
            ScoringMode::Greedy => self.sampled(&prompts, 1, 0.0),
            ScoringMode::Reasoned => self.reasoned(texts, &prompts),
            ScoringMode::MonteCarlo { n, temperature } => self.sampled(&prompts, n, temperature),
        }
    }

    fn verdict_token(&self, prompts: &[Vec<u32>]) -> Result<Vec<ItemScore>> {
        // Rows of one forward pass are padded to the longest: run similar lengths together.
        let mut out: Vec<Option<ItemScore>> = vec![None; prompts.len()];
        for group in length_groups(prompts) {
            let sub: Vec<Vec<u32>> = group.iter().map(|&i| prompts[i].clone()).collect();
            for (i, s) in group.into_iter().zip(self.verdict_token_batch(&sub)?) {
                out[i] = Some(s);
            }
        }
        Ok(out
            .into_iter()
            .map(|s| s.expect("every row scored"))
            .collect())
    }

    fn verdict_token_batch(&self, prompts: &[Vec<u32>]) -> Result<Vec<ItemScore>> {
        let logits = next_token_logits(self.model, Some(&self.prefix), prompts)?;
        let lp = logits.to_kind(Kind::Float).log_softmax(-1, Kind::Float);
        let (v, n) = self.label_tokens;
        let pv: Vec<f32> = Vec::try_from(
            &lp.select(1, v as i64)
                .exp()
                .to_device(modrl_model::Device::Cpu),
        )?;
        let pn: Vec<f32> = Vec::try_from(
            &lp.select(1, n as i64)
                .exp()
                .to_device(modrl_model::Device::Cpu),
        )?;
        Ok(pv
            .iter()
            .zip(&pn)
            .map(|(&a, &b)| {
                let (a, b) = (a as f64, b as f64);
                let mass = a + b;
                let score = if mass > 0.0 { a / mass } else { 0.5 };
                // Most of the next-token mass should sit on the two label words.
                let ok = mass >= 0.5;
                ItemScore {
                    score,
                    pred_label: Some(u8::from(score >= 0.5)),
                    pred_category: None,
                    format_ok: ok,
                    failure: (!ok).then(|| "label_mass_below_half".to_string()),
                    reasoning_words: None,
                    n_samples: 1,
                    format_ok_rate: if ok { 1.0 } else { 0.0 },
                    output: None,
                }
            })
            .collect())
    }

    /// One greedy reasoning per item, then the label-token distribution at the verdict after it.
    fn reasoned(&self, texts: &[&str], prompts: &[Vec<u32>]) -> Result<Vec<ItemScore>> {
        let greedy = self.sampled(prompts, 1, 0.0)?;
        let mut continued = Vec::with_capacity(texts.len());
        for (t, g) in texts.iter().zip(&greedy) {
            let answer = g.output.as_deref().unwrap_or("");
            let prompt = format!("{}{}", self.prompt_text(t)?, reasoned_stem(answer));
            continued.push(self.tok.encode(&prompt)?);
        }
        let at_label = self.verdict_token(&continued)?;
        Ok(greedy
            .into_iter()
            .zip(at_label)
            .map(|(g, v)| ItemScore {
                score: v.score,
                pred_label: Some(u8::from(v.score >= 0.5)),
                // The contract counts as kept when the greedy answer parsed and the label
                // position carries the label mass.
                format_ok: g.format_ok && v.format_ok,
                failure: g.failure.or(v.failure),
                ..g
            })
            .collect())
    }

    fn sampled(&self, prompts: &[Vec<u32>], n: usize, temperature: f64) -> Result<Vec<ItemScore>> {
        let params = SamplingParams {
            max_new_tokens: self.cfg.max_new_tokens,
            temperature,
            seed: Some(self.cfg.seed),
            ..Default::default()
        };
        let outs = generate_with_prefix(
            self.model,
            Some(&self.prefix),
            prompts,
            n,
            &params,
            Some(self.tok),
        )?;
        let mut res = Vec::with_capacity(prompts.len());
        for item in outs.chunks(n) {
            let mut probs = vec![];
            let mut words = vec![];
            let mut first_failure = None;
            let mut cats: Vec<String> = vec![];
            let mut votes = 0usize;
            for o in item {
                let text = self.tok.decode(&o.token_ids, true)?;
                words.push(verdict::word_count(&verdict::reasoning_text(&text)));
                match verdict::parse(&text, &self.categories) {
                    Ok(v) => {
                        probs.push(v.probability);
                        votes += usize::from(v.label == Label::Violating);
                        if let Some(c) = v.category {
                            cats.push(c);
                        }
                    }
                    Err(e) => {
                        first_failure.get_or_insert_with(|| e.kind().to_string());
                    }
                }
            }
            let ok = probs.len();
            let score = if ok > 0 {
                probs.iter().sum::<f64>() / ok as f64
            } else {
                0.5
            };
            let pred_category = mode_of(&cats);
            let output = item
                .first()
                .map(|o| self.tok.decode(&o.token_ids, true))
                .transpose()?;
            res.push(ItemScore {
                score,
                pred_label: (ok > 0)
                    .then(|| u8::from(votes * 2 > ok || (votes * 2 == ok && score >= 0.5))),
                pred_category,
                format_ok: ok > 0,
                failure: if ok == item.len() {
                    None
                } else {
                    first_failure
                },
                reasoning_words: Some(words.iter().sum::<usize>() / words.len().max(1)),
                n_samples: item.len(),
                format_ok_rate: ok as f64 / item.len() as f64,
                output,
            });
        }
        Ok(res)
    }
}

/// The first tokens of `violating` and `non_violating` after the verdict prefix: the two tokens
/// verdict-token scoring reads and label-token RL samples.
pub fn label_tokens(tok: &Tokenizer) -> Result<(u32, u32)> {
    let base = tok.encode(VERDICT_PREFIX)?;
    let first = |word: &str| -> Result<u32> {
        let full = tok.encode(&format!("{VERDICT_PREFIX}{word}"))?;
        if full.len() <= base.len() || full[..base.len()] != base[..] {
            bail!("the tokenizer merges the verdict prefix {VERDICT_PREFIX:?} with {word:?}; cannot locate the label token");
        }
        Ok(full[base.len()])
    };
    let t = (first("violating")?, first("non_violating")?);
    if t.0 == t.1 {
        bail!("the tokenizer gives \"violating\" and \"non_violating\" the same first token; verdict-token scoring cannot tell them apart");
    }
    Ok(t)
}

/// The answer up to where its verdict's label word starts, ending with [`VERDICT_PREFIX`]: the
/// reasoning as the model wrote it, then the canonical verdict opening. An answer without a
/// verdict object keeps its reasoning (closed with the closing tag when the model did not close
/// it, e.g. cut at the token limit) and gets the opening appended.
pub fn reasoned_stem(answer: &str) -> String {
    let lower = answer.to_ascii_lowercase();
    let close = lower.rfind(verdict::REASONING_CLOSE);
    let after = close.map_or(0, |i| i + verdict::REASONING_CLOSE.len());
    // The last `{` after the reasoning that opens an object with a "label" key.
    let verdict_start = lower[after..]
        .match_indices('{')
        .map(|(i, _)| after + i)
        .filter(|&i| {
            lower[i + 1..]
                .trim_start()
                .strip_prefix("\"label\"")
                .is_some()
        })
        .last();
    match (verdict_start, close) {
        (Some(i), _) => format!("{}{VERDICT_PREFIX}", &answer[..i]),
        (None, Some(_)) => format!("{}\n{VERDICT_PREFIX}", answer[..after].trim_end()),
        (None, None) => format!(
            "{}\n{}\n{VERDICT_PREFIX}",
            answer.trim_end(),
            verdict::REASONING_CLOSE
        ),
    }
}

/// Indices of `prompts` grouped for batched forward passes: sorted by length, a new group started
/// whenever padding to the group's longest row would waste more than a quarter of its tokens.
pub fn length_groups(prompts: &[Vec<u32>]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..prompts.len()).collect();
    order.sort_by_key(|&i| prompts[i].len());
    let mut groups: Vec<Vec<usize>> = vec![];
    let mut cur: Vec<usize> = vec![];
    let mut sum = 0usize;
    for i in order {
        let len = prompts[i].len();
        // Sorted ascending: the new row is the longest, so the padded size is rows * len.
        if !cur.is_empty() && (cur.len() + 1) * len * 4 > (sum + len) * 5 {
            groups.push(std::mem::take(&mut cur));
            sum = 0;
        }
        cur.push(i);
        sum += len;
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    groups
}

/// The most common string (the last of equally common ones), e.g. the category most samples name.
pub fn mode_of(xs: &[String]) -> Option<String> {
    let mut counts: Vec<(&String, usize)> = vec![];
    for x in xs {
        match counts.iter_mut().find(|(k, _)| *k == x) {
            Some((_, c)) => *c += 1,
            None => counts.push((x, 1)),
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, c)| *c)
        .map(|(k, _)| k.clone())
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

    #[test]
    fn length_groups_cover_every_row_once_and_bound_padding() {
        let lens = [5usize, 300, 6, 7, 290, 5, 1000, 8];
        let prompts: Vec<Vec<u32>> = lens.iter().map(|&n| vec![1; n]).collect();
        let groups = length_groups(&prompts);
        let mut seen: Vec<usize> = groups.concat();
        seen.sort();
        assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>());
        for g in &groups {
            let max = g.iter().map(|&i| lens[i]).max().unwrap();
            let sum: usize = g.iter().map(|&i| lens[i]).sum();
            assert!(g.len() == 1 || g.len() * max * 4 <= sum * 5, "{g:?}");
        }
        // Short rows stay together; the 1000-token row is alone.
        assert!(groups.iter().any(|g| g.len() >= 4));
        assert!(groups.contains(&vec![6]));
        // Equal lengths: one group.
        assert_eq!(length_groups(&vec![vec![1u32; 9]; 5]).len(), 1);
    }

    #[test]
    fn reasoned_stem_cuts_at_the_label_word() {
        let full = "<reasoning>\nIt asks for a weapon.\n</reasoning>\n{\"label\": \"violating\", \"category\": \"x\", \"probability\": 0.9}";
        assert_eq!(
            reasoned_stem(full),
            "<reasoning>\nIt asks for a weapon.\n</reasoning>\n{\"label\": \""
        );
        // Braces inside the reasoning are not the verdict.
        let braces = "<reasoning>the text has {\"label\": 1} in it</reasoning>\n{ \"label\": \"non_violating\"}";
        assert!(reasoned_stem(braces)
            .starts_with("<reasoning>the text has {\"label\": 1} in it</reasoning>\n{"));
        assert!(reasoned_stem(braces).ends_with(VERDICT_PREFIX));
        // Closed reasoning and no verdict; then a reasoning cut at the token limit.
        assert_eq!(
            reasoned_stem("<reasoning>fine</reasoning>  oops"),
            "<reasoning>fine</reasoning>\n{\"label\": \""
        );
        assert_eq!(
            reasoned_stem("<reasoning>it goes on and on"),
            "<reasoning>it goes on and on\n</reasoning>\n{\"label\": \""
        );
        assert_eq!(
            "reasoned".parse::<ScoringMode>().unwrap(),
            ScoringMode::Reasoned
        );
    }

    #[test]
    fn mode_picks_most_common() {
        let xs: Vec<String> = ["a", "b", "b"].map(String::from).to_vec();
        assert_eq!(mode_of(&xs), Some("b".into()));
        assert_eq!(mode_of(&[]), None);
    }
}
