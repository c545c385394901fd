//! Self-generated reasoning for SFT (rejection sampling, as in STaR / expert iteration): sample K
//! reasonings per labelled item from the current model, keep those after which the model's own
//! verdict matches the gold label and whose quotes are all found in the content, and write them as
//! SFT targets (`Record::target`). SFT on them teaches the model the output contract with
//! reasoning that is its own, long enough for RL to shape, instead of a templated sentence.
//!
//! The verdict after a reasoning is read the way `--scoring reasoned` reads it (P(violating) at the
//! label position after the reasoning, the model's own verdict line cut off), so a model that never
//! writes the verdict line itself (the 135M base model) still yields usable samples. The kept
//! target's verdict line is the gold label with the model's probability.

use anyhow::Result;
use modrl_model::{Model, Tokenizer};
use modrl_moderation::prompt::Variant;
use modrl_moderation::score::{Budget, PolicyPrompts};
use modrl_moderation::verdict::{self, Label};
use modrl_moderation::{Policy, Record};
use serde::Serialize;

use crate::rewards::RewardInput;
use crate::rubric_rules;

/// How to sample and what to keep.
#[derive(Debug, Clone)]
pub struct SelfReasonOptions {
    /// Samples per item.
    pub k: usize,
    pub temperature: f64,
    pub max_new_tokens: usize,
    /// Fewest words of reasoning a kept sample has.
    pub min_words: usize,
    /// Most kept samples per item (the most confident correct ones).
    pub keep_per_item: usize,
    /// Most sequences decoded at once.
    pub max_rows: usize,
    pub seed: u64,
}

impl Default for SelfReasonOptions {
    fn default() -> Self {
        SelfReasonOptions {
            k: 4,
            temperature: 1.0,
            max_new_tokens: 128,
            min_words: 8,
            keep_per_item: 1,
            max_rows: 32,
            seed: 0,
        }
    }
}

/// What was sampled and kept, per reason of rejection.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SelfReasonStats {
    pub items: usize,
    pub samples: usize,
    /// Samples rejected for a reasoning shorter than `min_words`.
    pub too_short: usize,
    /// Samples rejected for a degenerate reasoning: JSON or a code fence inside it, or text that
    /// repeats itself (under 60 % distinct word trigrams).
    pub degenerate: usize,
    /// Samples whose verdict after the reasoning contradicts the label.
    pub wrong_verdict: usize,
    /// Samples with the right verdict but a quote not found in the content.
    pub ungrounded: usize,
    /// Samples that passed every check (before the per-item cap).
    pub correct: usize,
    /// Targets written.
    pub kept: usize,
    /// Items with at least one target, by label: `[non-violating, violating]`.
    pub items_kept_by_label: [usize; 2],
    pub items_by_label: [usize; 2],
    /// Mean words of reasoning of the written targets.
    pub mean_words_kept: f64,
}

impl SelfReasonStats {
    /// Share of samples that passed every check.
    pub fn kept_fraction(&self) -> f64 {
        self.correct as f64 / self.samples.max(1) as f64
    }
}

/// One sample's verdict: why it is rejected, or its target and P(gold label).
enum Judged {
    TooShort,
    Degenerate,
    Wrong,
    Ungrounded,
    Kept {
        target: String,
        p_gold: f64,
        words: usize,
    },
}

fn judge(r: &Record, policy: &Policy, sample: &str, p_violating: f64, min_words: usize) -> Judged {
    let reasoning = verdict::reasoning_text(sample);
    let words = verdict::word_count(&reasoning);
    if words < min_words {
        return Judged::TooShort;
    }
    if degenerate(&reasoning) {
        return Judged::Degenerate;
    }
    let p_gold = if r.label == 1 {
        p_violating
    } else {
        1.0 - p_violating
    };
    if p_gold < 0.5 {
        return Judged::Wrong;
    }
    let mut v = modrl_moderation::targets::gold_verdict(r, policy);
    debug_assert_eq!(v.label == Label::Violating, r.label == 1);
    v.probability = (p_violating * 100.0).round() / 100.0;
    let target = verdict::format_output(&reasoning, &v);
    let grades = rubric_rules::grade(&RewardInput {
        content: &r.text,
        label: r.label,
        categories: &r.categories,
        completion: &target,
        rationale: r.rationale.as_deref(),
        policy,
    });
    if grades.is_some_and(|g| g.grounded == Some(false)) {
        return Judged::Ungrounded;
    }
    Judged::Kept {
        target,
        p_gold,
        words,
    }
}

/// A reasoning not worth teaching: it holds JSON or a code fence (the verdict leaking into the
/// reasoning, or the model writing something else), or it repeats itself (under 60 % of its word
/// trigrams distinct: small models at T = 1 loop on a sentence).
fn degenerate(reasoning: &str) -> bool {
    let lower = reasoning.to_lowercase();
    if ['{', '}'].iter().any(|c| lower.contains(*c))
        || lower.contains("```")
        || lower.contains("json")
    {
        return true;
    }
    let words: Vec<&str> = lower.split_whitespace().collect();
    if words.len() < 12 {
        return false;
    }
    let trigrams: Vec<_> = words.windows(3).collect();
    let distinct: std::collections::HashSet<_> = trigrams.iter().collect();
    (distinct.len() as f64) < 0.6 * trigrams.len() as f64
}

/// Sample, judge and keep for `records` (in chunks that fit `max_rows`); `progress` is called with
/// the number of items done after each chunk. Returns the records that got a target (one copy per
/// kept sample, in input order) and the counts.
pub fn self_reason(
    model: &Model,
    tok: &Tokenizer,
    prompts: &PolicyPrompts,
    records: &[Record],
    opts: &SelfReasonOptions,
    mut progress: impl FnMut(usize),
) -> Result<(Vec<Record>, SelfReasonStats)> {
    let variant = Variant::Standard;
    let prefix = prompts.prefix_cache(model, variant)?;
    let k = opts.k.max(1);
    let budget = Budget {
        max_new_tokens: opts.max_new_tokens,
        seed: opts.seed,
        max_rows: opts.max_rows,
    };
    let mut out = vec![];
    let mut st = SelfReasonStats::default();
    let mut words_kept = 0usize;
    let per_chunk = (opts.max_rows / k).max(1);
    for (c, chunk) in records.chunks(per_chunk).enumerate() {
        let ids = chunk
            .iter()
            .map(|r| prompts.prompt_ids(tok, &r.text, variant))
            .collect::<Result<Vec<_>>>()?;
        // A different seed per chunk: chunks do not repeat each other's random draws.
        let budget = Budget {
            seed: opts.seed.wrapping_add(c as u64),
            ..budget
        };
        // Both calls run without gradients (the model crate's generation and prefill).
        let samples =
            prompts.sample_texts(model, tok, Some(&prefix), &ids, k, opts.temperature, budget)?;
        let contents: Vec<&str> = chunk
            .iter()
            .flat_map(|r| std::iter::repeat_n(r.text.as_str(), k))
            .collect();
        let answers: Vec<&str> = samples.iter().flatten().map(String::as_str).collect();
        let after = prompts.verdict_after(
            model,
            tok,
            Some(&prefix),
            &contents,
            &answers,
            variant,
            opts.max_rows,
        )?;
        for (i, r) in chunk.iter().enumerate() {
            st.items += 1;
            st.items_by_label[usize::from(r.label == 1)] += 1;
            let mut kept = vec![];
            for (s, v) in samples[i].iter().zip(&after[i * k..(i + 1) * k]) {
                st.samples += 1;
                match judge(r, &prompts.policy, s, v.score, opts.min_words) {
                    Judged::TooShort => st.too_short += 1,
                    Judged::Degenerate => st.degenerate += 1,
                    Judged::Wrong => st.wrong_verdict += 1,
                    Judged::Ungrounded => st.ungrounded += 1,
                    Judged::Kept {
                        target,
                        p_gold,
                        words,
                    } => {
                        st.correct += 1;
                        kept.push((p_gold, words, target));
                    }
                }
            }
            // The most confident correct samples first (stable: ties keep sampling order).
            kept.sort_by(|a, b| b.0.total_cmp(&a.0));
            kept.truncate(opts.keep_per_item);
            if !kept.is_empty() {
                st.items_kept_by_label[usize::from(r.label == 1)] += 1;
            }
            for (_, words, target) in kept {
                st.kept += 1;
                words_kept += words;
                out.push(Record {
                    target: Some(target),
                    ..r.clone()
                });
            }
        }
        progress(st.items);
    }
    st.mean_words_kept = words_kept as f64 / st.kept.max(1) as f64;
    Ok((out, st))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        crate::test_util::policy("offensive-compact")
    }

    fn record(label: u8, text: &str) -> Record {
        Record::new("x", text, label)
    }

    #[test]
    fn judge_keeps_long_grounded_reasoning_with_the_right_verdict() {
        let p = policy();
        let r = record(1, "you are a total idiot and everyone knows it");
        let s = "The tweet calls the reader \"a total idiot\", an insult aimed at a person, which the policy treats as offensive language.";
        match judge(&r, &p, s, 0.8, 8) {
            Judged::Kept {
                target,
                p_gold,
                words,
            } => {
                assert!((p_gold - 0.8).abs() < 1e-12);
                assert!(words >= 8);
                // The target keeps the contract: the reasoning, then the gold verdict with the
                // model's probability.
                let v = verdict::parse(&target, &p.category_names()).unwrap();
                assert_eq!(v.label, Label::Violating);
                assert!((v.probability - 0.8).abs() < 1e-9);
                assert!(target.contains("\"a total idiot\""), "{target}");
            }
            _ => panic!("not kept"),
        }
        // The same reasoning with the wrong verdict, too short, or quoting what is not there.
        assert!(matches!(judge(&r, &p, s, 0.3, 8), Judged::Wrong));
        assert!(matches!(
            judge(&r, &p, "It is rude.", 0.9, 8),
            Judged::TooShort
        ));
        let made_up = "The tweet says \"go back to your country\", which attacks people for where they come from, so it is offensive.";
        assert!(matches!(judge(&r, &p, made_up, 0.9, 8), Judged::Ungrounded));
        // Degenerate: a loop, or JSON inside the reasoning.
        let looped = "The content is not offensive language. ".repeat(5);
        assert!(matches!(judge(&r, &p, &looped, 0.9, 8), Judged::Degenerate));
        let leaked = "Here is the JSON line you asked for about the tweet: {\"label\": \"violating\"} and more words";
        assert!(matches!(judge(&r, &p, leaked, 0.9, 8), Judged::Degenerate));
        // Non-violating: P(gold) = 1 - P(violating); the target's verdict is non-violating.
        let r0 = record(0, "what a lovely day at the beach with friends");
        let s0 = "The tweet describes a pleasant day with friends and contains no insult, slur or attack on anyone at all.";
        match judge(&r0, &p, s0, 0.2, 8) {
            Judged::Kept { target, p_gold, .. } => {
                assert!((p_gold - 0.8).abs() < 1e-12);
                let v = verdict::parse(&target, &p.category_names()).unwrap();
                assert_eq!(v.label, Label::NonViolating);
            }
            _ => panic!("not kept"),
        }
    }
}
