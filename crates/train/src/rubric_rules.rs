//! A deterministic rubric reward: checks of the reasoning that need no judge model, each one
//! verifiable from the completion, the content and the policy alone.
//!
//! | criterion    | applies when                               | passes when                                                   |
//! |--------------|--------------------------------------------|---------------------------------------------------------------|
//! | `category`   | always                                     | violating: the reasoning names the verdict's category; not violating: it names a policy category; and it names no category (a `snake_case` identifier) the policy lacks |
//! | `grounded`   | the reasoning quotes something checkable   | every quote is found in the content (or the policy's wording)  |
//! | `evidence`   | the verdict is violating                   | at least one quote is found in the content                    |
//! | `exclusions` | not violating, and the policy has exclusions | the reasoning mentions an exclusion: the words exclusion / exception / exempt, or two content words (four letters or more) of one exclusion |
//!
//! The reward is the fraction of the applicable criteria that pass, in [0, 1]; a completion
//! without a parseable verdict or without reasoning scores 0 (the format reward covers those).
//! Each criterion's pass rate (over the completions it applies to) and how often it applied are
//! logged per step as `rubric_rules/<criterion>` and `rubric_rules/<criterion>_applies`.
//!
//! The `exclusions` check is a proxy: it sees that an exclusion is addressed, not that it was
//! the right one. What no rule can verify (is the argument sound?) is the LLM judge's job
//! ([`crate::rewards::Rubric`]).

use std::sync::Mutex;

use anyhow::Result;
use modrl_moderation::verdict;
use modrl_moderation::{Label, Policy};

use crate::rewards::{quote_fragments_in, Reward, RewardInput};

/// The criteria, in the order they are logged.
pub const CRITERIA: [&str; 4] = ["category", "grounded", "evidence", "exclusions"];

/// One completion's grades: `None` where a criterion does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuleGrades {
    pub category: Option<bool>,
    pub grounded: Option<bool>,
    pub evidence: Option<bool>,
    pub exclusions: Option<bool>,
}

impl RuleGrades {
    /// The grades in [`CRITERIA`] order.
    pub fn as_array(&self) -> [Option<bool>; 4] {
        [self.category, self.grounded, self.evidence, self.exclusions]
    }

    /// The fraction of applicable criteria that pass (0 when none applies).
    pub fn score(&self) -> f64 {
        let applicable: Vec<bool> = self.as_array().into_iter().flatten().collect();
        if applicable.is_empty() {
            return 0.0;
        }
        applicable.iter().filter(|&&p| p).count() as f64 / applicable.len() as f64
    }
}

/// Words too common to show that a reasoning addresses one exclusion rather than another.
const STOPWORDS: [&str; 16] = [
    "about", "against", "does", "from", "have", "into", "more", "only", "other", "policy", "post",
    "such", "that", "their", "them", "this",
];

fn content_words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 4)
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .collect()
}

/// Category names as a reasoning may write them: `hate_speech`, `hate speech`.
fn names_category(reasoning_lower: &str, name: &str) -> bool {
    let n = name.to_lowercase();
    reasoning_lower.contains(&n) || reasoning_lower.contains(&n.replace('_', " "))
}

/// `snake_case` identifiers in the reasoning that are neither a policy category nor a contract
/// word: categories the model invented.
fn invents_category(reasoning_lower: &str, policy: &Policy) -> bool {
    reasoning_lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map(|w| w.trim_matches('_'))
        .filter(|w| w.contains('_') && w.chars().any(|c| c.is_ascii_alphabetic()))
        .any(|w| w != "non_violating" && !policy.categories.iter().any(|c| c.name == w))
}

/// Grade one completion; `None` when it has no parseable verdict or no reasoning.
pub fn grade(x: &RewardInput) -> Option<RuleGrades> {
    let v = verdict::parse(x.completion, &x.policy.category_names()).ok()?;
    let reasoning = verdict::reasoning_text(x.completion);
    if verdict::word_count(&reasoning) == 0 {
        return None;
    }
    let lower = reasoning.to_lowercase();
    let violating = v.label == Label::Violating;
    let named = if violating {
        v.category
            .as_deref()
            .is_some_and(|c| names_category(&lower, c))
    } else {
        x.policy
            .categories
            .iter()
            .any(|c| names_category(&lower, &c.name))
    };
    let category = Some(named && !invents_category(&lower, x.policy));
    let grounded =
        crate::rewards::quote_hallucination_with_policy(x.completion, x.content, x.policy)
            .map(|invented| !invented);
    let evidence = violating.then(|| quote_fragments_in(x.completion, x.content) > 0);
    let exclusions = (!violating && !x.policy.exclusions.is_empty()).then(|| {
        let mentions = ["exclu", "exception", "exempt"]
            .iter()
            .any(|w| lower.contains(w));
        let words = content_words(&reasoning);
        mentions
            || x.policy.exclusions.iter().any(|e| {
                let mut ex = content_words(e);
                ex.sort();
                ex.dedup();
                ex.iter().filter(|w| words.contains(w)).count() >= 2
            })
    });
    Some(RuleGrades {
        category,
        grounded,
        evidence,
        exclusions,
    })
}

/// The deterministic rubric as a reward (see the module docs).
#[derive(Default)]
pub struct RubricRules {
    /// Per criterion: (completions it applied to, passes) in the last `score` call, and the size
    /// of that batch.
    stats: Mutex<([(usize, usize); 4], usize)>,
}

impl Reward for RubricRules {
    fn name(&self) -> &str {
        "rubric_rules"
    }

    fn score(&self, batch: &[RewardInput]) -> Result<Vec<f64>> {
        let mut counts = [(0usize, 0usize); 4];
        let scores = batch
            .iter()
            .map(|x| match grade(x) {
                Some(g) => {
                    for (c, grade) in counts.iter_mut().zip(g.as_array()) {
                        if let Some(pass) = grade {
                            c.0 += 1;
                            c.1 += pass as usize;
                        }
                    }
                    g.score()
                }
                None => 0.0,
            })
            .collect();
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = (counts, batch.len());
        Ok(scores)
    }

    fn metrics(&self) -> Vec<(String, f64)> {
        let (counts, n) = *self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (name, (applied, passed)) in CRITERIA.iter().zip(counts) {
            out.push((
                format!("rubric_rules/{name}_applies"),
                applied as f64 / n.max(1) as f64,
            ));
            if applied > 0 {
                out.push((
                    format!("rubric_rules/{name}"),
                    passed as f64 / applied as f64,
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        crate::test_util::policy("offensive-compact")
    }

    fn input<'a>(p: &'a Policy, content: &'a str, completion: &'a str) -> RewardInput<'a> {
        RewardInput {
            content,
            label: 1,
            categories: &[],
            completion,
            rationale: None,
            policy: p,
        }
    }

    const VIOLATING: &str =
        r#"{"label": "violating", "category": "offensive_language", "probability": 0.9}"#;
    const BENIGN: &str = r#"{"label": "non_violating", "category": "none", "probability": 0.1}"#;

    fn answer(reasoning: &str, verdict: &str) -> String {
        format!("<reasoning>{reasoning}</reasoning>\n{verdict}")
    }

    #[test]
    fn a_grounded_violating_reasoning_passes_every_applicable_criterion() {
        let p = policy();
        let c = answer(
            "The post calls someone a \"stupid hoe\", an insult under offensive_language.",
            VIOLATING,
        );
        let g = grade(&input(&p, "shut up you stupid hoe", &c)).unwrap();
        assert_eq!(
            g,
            RuleGrades {
                category: Some(true),
                grounded: Some(true),
                evidence: Some(true),
                exclusions: None,
            }
        );
        assert_eq!(g.score(), 1.0);
    }

    #[test]
    fn invented_quotes_and_categories_fail_their_criteria() {
        let p = policy();
        let c = answer(
            "It says \"I will hurt you\", which is violent_threats and offensive language.",
            VIOLATING,
        );
        let g = grade(&input(&p, "shut up you stupid hoe", &c)).unwrap();
        assert_eq!(
            g.category,
            Some(false),
            "violent_threats is not a policy category"
        );
        assert_eq!(g.grounded, Some(false));
        assert_eq!(g.evidence, Some(false));
        assert_eq!(g.score(), 0.0);
    }

    #[test]
    fn a_benign_verdict_must_name_the_policy_and_address_an_exclusion() {
        let p = policy();
        let good = answer(
            "No offensive language: 'damn' here is a mild exclamation aimed at no one.",
            BENIGN,
        );
        let g = grade(&input(&p, "damn this rain", &good)).unwrap();
        assert_eq!(g.category, Some(true));
        assert_eq!(g.grounded, Some(true));
        assert_eq!(g.evidence, None);
        assert_eq!(g.exclusions, Some(true));
        let bare = answer("It is fine.", BENIGN);
        let g = grade(&input(&p, "damn this rain", &bare)).unwrap();
        assert_eq!(
            (g.category, g.grounded, g.exclusions),
            (Some(false), None, Some(false))
        );
        assert_eq!(g.score(), 0.0);
    }

    #[test]
    fn no_verdict_or_no_reasoning_scores_zero_and_metrics_count_per_criterion() {
        let p = policy();
        let r = RubricRules::default();
        let good = answer(
            "The post calls someone a \"stupid hoe\", offensive_language.",
            VIOLATING,
        );
        let batch = [
            input(&p, "you stupid hoe", "no verdict at all"),
            input(&p, "you stupid hoe", VIOLATING),
            input(&p, "you stupid hoe", &good),
        ];
        assert_eq!(r.score(&batch).unwrap(), vec![0.0, 0.0, 1.0]);
        let m: std::collections::HashMap<String, f64> = r.metrics().into_iter().collect();
        assert!((m["rubric_rules/category_applies"] - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(m["rubric_rules/category"], 1.0);
        assert_eq!(m["rubric_rules/exclusions_applies"], 0.0);
        assert!(!m.contains_key("rubric_rules/exclusions"));
    }
}
