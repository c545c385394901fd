//! Everything about a policy's prompts that depends on the tokenizer but not on the weights:
//! rendering with the chat template ([`PromptRenderer`]), the shared prefix every prompt of a
//! variant starts with, the label tokens verdict-token scoring reads ([`label_tokens`]) and the
//! points where the category names' tokenizations diverge ([`PolicyPrompts`]).
//!
//! Per-category scores: `P(violating and category c)` = `P(violating) * P(c | violating)`, where
//! `P(c | violating)` comes from the next-token probabilities after
//! `{"label": "violating", "category": "` at the points where the category names' tokenizations
//! diverge (one extra row per item for most policies; the tokens after a divergence point are
//! taken as certain), renormalised over the policy's categories. A server keeps one prefix cache
//! per (adapter, policy, variant) while it swaps LoRA adapters, so the cache is not held here.

use std::collections::HashMap;

use anyhow::{bail, Result};
use modrl_model::generate::PrefixCache;
use modrl_model::{Model, Tokenizer};

use super::ScoringMode;
use crate::policy::Policy;
use crate::prompt::{self, Variant, VERDICT_PREFIX};

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

/// A category-name divergence point: the tokens after the verdict prefix that lead to it, and the
/// categories behind each possible next token.
#[derive(Debug, Clone)]
pub(crate) struct BranchNode {
    pub(crate) path: Vec<u32>,
    pub(crate) children: Vec<(u32, Vec<usize>)>,
}

/// Everything about a policy's prompts that depends on the tokenizer but not on the weights.
pub struct PolicyPrompts {
    pub policy: Policy,
    pub categories: Vec<String>,
    /// Prompt variant of the reasoning modes (greedy, mc).
    pub reasoning_variant: Variant,
    no_system_role: bool,
    pub(crate) label_tokens: (u32, u32),
    pub(crate) branches: Vec<BranchNode>,
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
        p.label_tokens = label_tokens(tok)?;
        let seqs: Vec<Vec<u32>> = p
            .categories
            .iter()
            .map(|c| after_verdict_prefix(tok, &format!("violating\", \"category\": \"{c}\"")))
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
    /// assistant prefix (as [`super::Scorer::prompt_text`]).
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
}

/// The first tokens of `violating` and `non_violating` after the verdict prefix: the two tokens
/// verdict-token scoring reads and label-token RL samples.
pub fn label_tokens(tok: &Tokenizer) -> Result<(u32, u32)> {
    let t = (
        after_verdict_prefix(tok, "violating")?[0],
        after_verdict_prefix(tok, "non_violating")?[0],
    );
    if t.0 == t.1 {
        bail!("the tokenizer gives \"violating\" and \"non_violating\" the same first token; verdict-token scoring cannot tell them apart");
    }
    Ok(t)
}

/// The tokens of `text` when it follows [`VERDICT_PREFIX`] (an error when the tokenizer merges the
/// two, so that no label token can be located).
fn after_verdict_prefix(tok: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    let base = tok.encode(VERDICT_PREFIX)?;
    let full = tok.encode(&format!("{VERDICT_PREFIX}{text}"))?;
    if full.len() <= base.len() || full[..base.len()] != base[..] {
        bail!("the tokenizer merges the verdict prefix {VERDICT_PREFIX:?} with {text:?}; cannot locate the label token");
    }
    Ok(full[base.len()..].to_vec())
}

/// The divergence points of a set of token sequences, none a prefix of another.
pub(crate) fn branch_nodes(seqs: &[Vec<u32>]) -> Vec<BranchNode> {
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
}
