//! Policy-grounded scoring shared by the HTTP server and `modrl classify`.
//!
//! The numbers are those of [`modrl_moderation::score::Scorer`] (same prompts, same label tokens,
//! same aggregation of sampled verdicts), but the pieces are split so that a server can keep one
//! [`PrefixCache`] per (adapter, policy, prompt variant) while it swaps LoRA adapters in and out
//! of a single model: the `Scorer` borrows its model for its whole life, and a prefix computed with
//! one adapter is wrong for another.
//!
//! Verdict-token scoring also yields per-category scores: `P(violating and category c)` =
//! `P(violating) * P(c | violating)`, where `P(c | violating)` comes from the next-token
//! probabilities after `{"label": "violating", "category": "` at the points where the category
//! names' tokenizations diverge (one extra row per item for most policies; the tokens after a
//! divergence point are taken as certain), renormalised over the policy's categories.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use modrl_model::generate::{generate_with_prefix, next_token_logits, PrefixCache, SamplingParams};
use modrl_model::{Device, Kind, Model, Tensor, Tokenizer};
use modrl_moderation::prompt::{Variant, VERDICT_PREFIX};
use modrl_moderation::score::{length_groups, mode_of, PromptRenderer, ScoringMode};
use modrl_moderation::verdict::{self, Label};
use modrl_moderation::Policy;

/// The result of scoring one piece of content.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// P(violating) in [0, 1].
    pub score: f64,
    /// The most likely violated category (verdict-token: argmax of `category_scores`; sampled:
    /// the most common category among the verdicts). `None` when the policy output named none.
    pub category: Option<String>,
    /// `(category, P(violating and category))` for every policy category, in policy order.
    pub category_scores: Vec<(String, f64)>,
    /// The output kept the contract (verdict-token: most next-token mass on the two label words;
    /// sampled: at least one sample parsed).
    pub format_ok: bool,
    /// The first sample's text (reasoning + verdict); sampled modes only.
    pub reasoning: Option<String>,
    /// Number of samples drawn (1 for verdict-token and greedy).
    pub n_samples: usize,
}

/// A category-name divergence point: the tokens after the verdict prefix that lead to it, and the
/// categories behind each possible next token.
#[derive(Debug, Clone)]
struct BranchNode {
    path: Vec<u32>,
    children: Vec<(u32, Vec<usize>)>,
}

/// Everything about a policy's prompts that depends on the tokenizer but not on the weights.
pub struct PolicyPrompts {
    pub policy: Policy,
    pub categories: Vec<String>,
    /// Prompt variant of the reasoning modes (greedy, mc).
    pub reasoning_variant: Variant,
    no_system_role: bool,
    label_tokens: (u32, u32),
    branches: Vec<BranchNode>,
    prefix_ids: HashMap<Variant, Vec<u32>>,
}

impl PolicyPrompts {
    pub fn new(
        policy: Policy,
        tok: &Tokenizer,
        reasoning_variant: Variant,
        no_system_role: bool,
    ) -> Result<Self> {
        if reasoning_variant == Variant::NoReasoning {
            bail!("the reasoning variant must be standard or reflection");
        }
        let categories = policy.category_names();
        let mut p = PolicyPrompts {
            policy,
            categories,
            reasoning_variant,
            no_system_role,
            label_tokens: (0, 0),
            branches: vec![],
            prefix_ids: HashMap::new(),
        };
        let base = tok.encode(VERDICT_PREFIX)?;
        let after_prefix = |text: &str| -> Result<Vec<u32>> {
            let full = tok.encode(&format!("{VERDICT_PREFIX}{text}"))?;
            if full.len() <= base.len() || full[..base.len()] != base[..] {
                bail!("the tokenizer merges the verdict prefix {VERDICT_PREFIX:?} with {text:?}; cannot locate the label token");
            }
            Ok(full[base.len()..].to_vec())
        };
        p.label_tokens = (
            after_prefix("violating")?[0],
            after_prefix("non_violating")?[0],
        );
        if p.label_tokens.0 == p.label_tokens.1 {
            bail!("the tokenizer gives \"violating\" and \"non_violating\" the same first token; verdict-token scoring cannot tell them apart");
        }
        let seqs: Vec<Vec<u32>> = p
            .categories
            .iter()
            .map(|c| after_prefix(&format!("violating\", \"category\": \"{c}\"")))
            .collect::<Result<_>>()?;
        p.branches = branch_nodes(&seqs);
        for v in [Variant::NoReasoning, reasoning_variant] {
            let ids = p.renderer(tok, v).prefix_ids()?;
            if ids.is_empty() {
                bail!("policy {}: the prompts share no prefix", p.policy.id);
            }
            p.prefix_ids.insert(v, ids);
        }
        Ok(p)
    }

    /// The prompt variant a scoring mode uses.
    pub fn variant(&self, mode: &ScoringMode) -> Variant {
        match mode {
            ScoringMode::VerdictToken => Variant::NoReasoning,
            _ => self.reasoning_variant,
        }
    }

    /// The full prompt text for one piece of content: chat template + generation prompt +
    /// assistant prefix (as `Scorer::prompt_text`).
    pub fn prompt_text(&self, tok: &Tokenizer, content: &str, variant: Variant) -> Result<String> {
        self.renderer(tok, variant).text(content)
    }

    fn renderer<'a>(&'a self, tok: &'a Tokenizer, variant: Variant) -> PromptRenderer<'a> {
        PromptRenderer {
            tok,
            policy: &self.policy,
            variant,
            no_system_role: self.no_system_role,
        }
    }

    pub fn prompt_ids(&self, tok: &Tokenizer, content: &str, variant: Variant) -> Result<Vec<u32>> {
        tok.encode(&self.prompt_text(tok, content, variant)?)
    }

    /// Token ids of the text every prompt of this variant starts with (prefilled once).
    pub fn prefix_ids(&self, variant: Variant) -> &[u32] {
        &self.prefix_ids[&variant]
    }

    /// Build the shared-prefix cache of one variant for `model`.
    pub fn prefix_cache(&self, model: &Model, variant: Variant) -> Result<PrefixCache> {
        PrefixCache::new(model, self.prefix_ids(variant))
    }

    /// Rows of the verdict-token forward per item (the label row plus one per category
    /// divergence point).
    pub fn rows_per_item(&self) -> usize {
        1 + self.branches.len()
    }

    /// Verdict-token scores with category scores, at most `max_rows` sequences per forward pass.
    pub fn verdict_token(
        &self,
        model: &Model,
        prefix: Option<&PrefixCache>,
        prompts: &[Vec<u32>],
        max_rows: usize,
    ) -> Result<Vec<Scored>> {
        let per_item = self.rows_per_item();
        let items_per_call = (max_rows / per_item).max(1);
        let mut out: Vec<Option<Scored>> = (0..prompts.len()).map(|_| None).collect();
        // Rows of one forward pass are padded to the longest: run similar lengths together.
        let calls: Vec<Vec<usize>> = length_groups(prompts)
            .into_iter()
            .flat_map(|g| {
                g.chunks(items_per_call)
                    .map(|c| c.to_vec())
                    .collect::<Vec<_>>()
            })
            .collect();
        for idxs in calls {
            let mut rows: Vec<Vec<u32>> = Vec::with_capacity(idxs.len() * per_item);
            // Columns to read from each row's log-probs.
            let mut cols: Vec<Vec<u32>> = Vec::with_capacity(rows.capacity());
            for p in idxs.iter().map(|&i| &prompts[i]) {
                rows.push(p.clone());
                cols.push(vec![self.label_tokens.0, self.label_tokens.1]);
                for b in &self.branches {
                    let mut r = p.clone();
                    r.extend_from_slice(&b.path);
                    rows.push(r);
                    cols.push(b.children.iter().map(|(t, _)| *t).collect());
                }
            }
            let lp = gather_logprobs(model, prefix, &rows, &cols)?;
            for (&i, item) in idxs.iter().zip(lp.chunks(per_item)) {
                let (pv, pn) = (item[0][0].exp(), item[0][1].exp());
                let mass = pv + pn;
                let score = if mass > 0.0 { pv / mass } else { 0.5 };
                // P(category | violating) from the divergence points.
                let mut lw = vec![0f64; self.categories.len()];
                for (b, lps) in self.branches.iter().zip(&item[1..]) {
                    for ((_, cats), &l) in b.children.iter().zip(lps) {
                        for &c in cats {
                            lw[c] += l;
                        }
                    }
                }
                let m = lw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = lw.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = w.iter().sum();
                let category_scores: Vec<(String, f64)> = self
                    .categories
                    .iter()
                    .zip(&w)
                    .map(|(c, x)| (c.clone(), score * x / z))
                    .collect();
                let category = category_scores
                    .iter()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(c, _)| c.clone());
                out[i] = Some(Scored {
                    score,
                    category,
                    category_scores,
                    format_ok: mass >= 0.5,
                    reasoning: None,
                    n_samples: 1,
                });
            }
        }
        Ok(out
            .into_iter()
            .map(|s| s.expect("every item scored"))
            .collect())
    }

    /// Greedy (`n = 1`, `temperature = 0`) or Monte-Carlo scores from sampled reasonings, at most
    /// `max_rows` sequences decoded at once. Aggregation as `Scorer`: the mean reported
    /// probability over the samples that keep the contract (0.5 when none does), the most common
    /// category.
    #[allow(clippy::too_many_arguments)]
    pub fn sampled(
        &self,
        model: &Model,
        tok: &Tokenizer,
        prefix: Option<&PrefixCache>,
        prompts: &[Vec<u32>],
        n: usize,
        temperature: f64,
        max_new_tokens: usize,
        seed: u64,
        max_rows: usize,
    ) -> Result<Vec<Scored>> {
        let params = SamplingParams {
            max_new_tokens,
            temperature,
            seed: Some(seed),
            ..Default::default()
        };
        let n = n.max(1);
        let mut res = Vec::with_capacity(prompts.len());
        for chunk in prompts.chunks((max_rows / n).max(1)) {
            let outs = generate_with_prefix(model, prefix, chunk, n, &params, Some(tok))?;
            for item in outs.chunks(n) {
                let mut probs = vec![];
                let mut cats: Vec<String> = vec![];
                let mut cat_mass = vec![0f64; self.categories.len()];
                for o in item {
                    let text = tok.decode(&o.token_ids, true)?;
                    if let Ok(v) = verdict::parse(&text, &self.categories) {
                        probs.push(v.probability);
                        if let Some(c) = v.category {
                            if let Some(i) = self.categories.iter().position(|x| *x == c) {
                                if v.label == Label::Violating {
                                    cat_mass[i] += v.probability;
                                }
                            }
                            cats.push(c);
                        }
                    }
                }
                let ok = probs.len();
                let score = if ok > 0 {
                    probs.iter().sum::<f64>() / ok as f64
                } else {
                    0.5
                };
                let reasoning = item
                    .first()
                    .map(|o| tok.decode(&o.token_ids, true))
                    .transpose()?;
                res.push(Scored {
                    score,
                    category: mode_of(&cats),
                    category_scores: self
                        .categories
                        .iter()
                        .zip(&cat_mass)
                        .map(|(c, m)| (c.clone(), if ok > 0 { m / ok as f64 } else { 0.0 }))
                        .collect(),
                    format_ok: ok > 0,
                    reasoning,
                    n_samples: item.len(),
                });
            }
        }
        Ok(res)
    }

    /// Score with any mode.
    #[allow(clippy::too_many_arguments)]
    pub fn score(
        &self,
        model: &Model,
        tok: &Tokenizer,
        prefix: Option<&PrefixCache>,
        prompts: &[Vec<u32>],
        mode: &ScoringMode,
        max_new_tokens: usize,
        seed: u64,
        max_rows: usize,
    ) -> Result<Vec<Scored>> {
        match *mode {
            ScoringMode::Reasoned => anyhow::bail!(
                "reasoned scoring is available in `modrl eval`, not in serve or classify yet; use verdict-token, greedy or mc"
            ),
            ScoringMode::VerdictToken => self.verdict_token(model, prefix, prompts, max_rows),
            ScoringMode::Greedy => self.sampled(
                model,
                tok,
                prefix,
                prompts,
                1,
                0.0,
                max_new_tokens,
                seed,
                max_rows,
            ),
            ScoringMode::MonteCarlo { n, temperature } => self.sampled(
                model,
                tok,
                prefix,
                prompts,
                n,
                temperature,
                max_new_tokens,
                seed,
                max_rows,
            ),
        }
    }
}

/// The divergence points of a set of token sequences, none a prefix of another.
fn branch_nodes(seqs: &[Vec<u32>]) -> Vec<BranchNode> {
    let mut out = vec![];
    let mut stack: Vec<(usize, Vec<usize>)> = vec![(0, (0..seqs.len()).collect())];
    while let Some((depth, cats)) = stack.pop() {
        if cats.len() < 2 {
            continue;
        }
        let first = &seqs[cats[0]];
        // First position where the sequences of `cats` differ.
        let mut d = depth;
        while cats
            .iter()
            .all(|&c| seqs[c].len() > d && seqs[c][d] == first[d])
        {
            d += 1;
        }
        let mut children: Vec<(u32, Vec<usize>)> = vec![];
        for &c in &cats {
            // No category's tokens are a prefix of another's (each ends with the closing quote).
            let Some(&t) = seqs[c].get(d) else { continue };
            match children.iter_mut().find(|(x, _)| *x == t) {
                Some((_, v)) => v.push(c),
                None => children.push((t, vec![c])),
            }
        }
        for (_, v) in children.iter().rev() {
            stack.push((d + 1, v.clone()));
        }
        out.push(BranchNode {
            path: first[..d].to_vec(),
            children,
        });
    }
    out
}

/// Next-token log-probs of each row at the given columns.
fn gather_logprobs(
    model: &Model,
    prefix: Option<&PrefixCache>,
    rows: &[Vec<u32>],
    cols: &[Vec<u32>],
) -> Result<Vec<Vec<f64>>> {
    let k = cols.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let logits = next_token_logits(model, prefix, rows)?;
    let lp = logits.to_kind(Kind::Float).log_softmax(-1, Kind::Float);
    let flat: Vec<i64> = cols
        .iter()
        .flat_map(|c| (0..k).map(move |j| c.get(j).copied().unwrap_or(0) as i64))
        .collect();
    let idx = Tensor::from_slice(&flat)
        .view([rows.len() as i64, k as i64])
        .to_device(lp.device());
    let got: Vec<f32> = Vec::try_from(
        &lp.gather(1, &idx, false)
            .to_device(Device::Cpu)
            .reshape([-1]),
    )
    .context("reading log-probs")?;
    Ok(cols
        .iter()
        .enumerate()
        .map(|(r, c)| (0..c.len()).map(|j| got[r * k + j] as f64).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_nodes_split_where_sequences_diverge() {
        // a: 1 2 3 9, b: 1 2 4 9, c: 1 5 9 -> root after [1] splits {a,b} vs {c}; [1,2] splits a/b.
        let seqs = vec![vec![1, 2, 3, 9], vec![1, 2, 4, 9], vec![1, 5, 9]];
        let nodes = branch_nodes(&seqs);
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].path, vec![1]);
        assert_eq!(nodes[0].children, vec![(2, vec![0, 1]), (5, vec![2])]);
        assert_eq!(nodes[1].path, vec![1, 2]);
        assert_eq!(nodes[1].children, vec![(3, vec![0]), (4, vec![1])]);
        assert!(branch_nodes(&[vec![1, 2]]).is_empty());
    }

    #[test]
    fn mode_picks_the_most_common_like_scorer() {
        let xs: Vec<String> = ["b", "a", "a", "b", "c", "c", "c"]
            .map(String::from)
            .to_vec();
        assert_eq!(mode_of(&xs), Some("c".into()));
        let tie: Vec<String> = ["b", "a", "a", "b"].map(String::from).to_vec();
        assert_eq!(mode_of(&tie), Some("a".into()));
        assert_eq!(mode_of(&[]), None);
    }
}
