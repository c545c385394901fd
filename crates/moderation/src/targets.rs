//! SFT targets: what the model is taught to answer for a labelled record (the output contract of
//! [`crate::verdict`] with a reasoning and the verdict line, or the verdict line alone), worded from
//! the policy's own category definitions.

use crate::prompt::VERDICT_PREFIX;
use crate::verdict::{self, Label, Verdict};
use crate::{Policy, Record};

/// The SFT target (the end-of-turn token is appended by the caller): the record's own `target`
/// when it has one (a self-generated reasoning, see `modrl data self-reason`), else the output
/// contract with a reasoning (the human rationale where the data has one, else a short templated
/// justification of the label built from the policy's own category definition) and the verdict
/// line.
pub fn sft_target(r: &Record, policy: &Policy) -> String {
    if let Some(t) = r.target.as_deref().filter(|t| !t.trim().is_empty()) {
        return t.to_string();
    }
    let v = gold_verdict(r, policy);
    verdict::format_output(&templated_reasoning(r, policy, &v), &v)
}

/// The verdict-only SFT target: the rest of the verdict line after the no-reasoning prompt's
/// assistant prefix (`{"label": "`), so that the next token is the label token that verdict-token
/// scoring reads.
pub fn sft_target_verdict_only(r: &Record, policy: &Policy) -> String {
    let line = gold_verdict(r, policy).to_json_line();
    line.strip_prefix(VERDICT_PREFIX)
        .unwrap_or(&line)
        .to_string()
}

/// The verdict a labelled record is taught: its label, the category (the record's own when the
/// policy has it, a one-category policy's only category), and P(violating) from the soft label
/// when it agrees with the label, else 0.9 / 0.1.
pub fn gold_verdict(r: &Record, policy: &Policy) -> Verdict {
    let cats = policy.category_names();
    let violating = r.label == 1;
    let category = if violating {
        r.categories
            .iter()
            .find(|c| cats.contains(c))
            .cloned()
            .or_else(|| (cats.len() == 1).then(|| cats[0].clone()))
    } else {
        None
    };
    let p = match r.soft_label {
        Some(s) if (s >= 0.5) == violating => s.clamp(0.02, 0.98),
        _ if violating => 0.9,
        _ => 0.1,
    };
    Verdict {
        label: if violating {
            Label::Violating
        } else {
            Label::NonViolating
        },
        category,
        probability: (p * 100.0).round() / 100.0,
    }
}

/// The templated reasoning for a record and its gold verdict: the human rationale quoted where the
/// data has one, then the policy's own definition of the verdict's category.
fn templated_reasoning(r: &Record, policy: &Policy, v: &Verdict) -> String {
    let mut reasoning = String::new();
    if let Some(rat) = r.rationale.as_deref().filter(|s| !s.trim().is_empty()) {
        reasoning.push_str(&format!(
            "The words that carry the meaning here are: \"{}\". ",
            rat.trim()
        ));
    }
    match &v.category {
        Some(c) => {
            let def = policy
                .category(c)
                .map(|k| first_sentence(&k.violates))
                .unwrap_or_default();
            reasoning.push_str(&format!(
                "The content matches the policy's definition of {c} ({def}), and none of the exclusions applies, so it violates the policy."
            ));
        }
        None if v.label == Label::Violating => reasoning.push_str(
            "The content matches one of the policy's categories of violating content, and none of the exclusions applies, so it violates the policy.",
        ),
        None => reasoning.push_str(&format!(
            "The content does not match any category the policy defines ({}), or one of the exclusions applies, so it does not violate the policy.",
            policy.category_names().join(", ")
        )),
    }
    reasoning
}

/// The first sentence (or line) of a definition, without its final period, for templated reasons.
fn first_sentence(text: &str) -> String {
    let t = text.trim().trim_start_matches("- ");
    let end = t.find(['\n', '.', ':']).unwrap_or(t.len());
    t[..end].trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn policy(name: &str) -> Policy {
        Policy::load(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../../configs/policies/{name}.toml")),
        )
        .unwrap()
    }

    fn record(label: u8, categories: &[&str], rationale: Option<&str>) -> Record {
        serde_json::from_value(json!({
            "id": "x", "text": "some text", "label": label,
            "categories": categories, "rationale": rationale,
        }))
        .unwrap()
    }

    #[test]
    fn sft_targets_keep_the_contract_and_use_the_policy_wording() {
        // One-category policy: a violating record without categories gets that category.
        let p = policy("prompt-harm-compact");
        let t = sft_target(&record(1, &[], None), &p);
        let v = verdict::parse(&t, &p.category_names()).unwrap();
        assert_eq!(v.label, Label::Violating);
        assert_eq!(v.category.as_deref(), Some("harmful_request"));
        assert!(
            t.contains("Asking for help to hurt people or animals"),
            "{t}"
        );
        assert!(!t.contains("protected characteristic"), "{t}");
        let t = sft_target(&record(0, &[], None), &p);
        let v = verdict::parse(&t, &p.category_names()).unwrap();
        assert_eq!(v.label, Label::NonViolating);
        assert!(v.probability < 0.5);
        // Multi-category policy: the record's own category, and its rationale quoted.
        let p = policy("prompt-harm");
        let cat = p.category_names()[1].clone();
        let t = sft_target(&record(1, &[cat.as_str()], Some("hack the server")), &p);
        let v = verdict::parse(&t, &p.category_names()).unwrap();
        assert_eq!(v.category.as_deref(), Some(cat.as_str()));
        assert!(t.contains("\"hack the server\""), "{t}");
        // Unknown category on a multi-category policy: violating, no invented category.
        let t = sft_target(&record(1, &["other"], None), &p);
        assert_eq!(
            verdict::parse(&t, &p.category_names()).unwrap().category,
            None
        );
    }

    #[test]
    fn a_record_target_is_taught_verbatim_with_reasoning_only() {
        let p = policy("prompt-harm-compact");
        let mut r = record(1, &[], None);
        let own = "<reasoning>\nMy own words.\n</reasoning>\n{\"label\": \"violating\", \"category\": \"harmful_request\", \"probability\": 0.7}";
        let templated_short = sft_target_verdict_only(&r, &p);
        r.target = Some(own.to_string());
        assert_eq!(sft_target(&r, &p), own);
        // The verdict-only target does not read it.
        assert_eq!(sft_target_verdict_only(&r, &p), templated_short);
        // A blank target is no target.
        r.target = Some("  ".into());
        assert_ne!(sft_target(&r, &p), "  ");
    }

    #[test]
    fn verdict_only_targets_continue_the_verdict_prefix() {
        let p = policy("prompt-harm-compact");
        for label in [0u8, 1] {
            let full = sft_target(&record(label, &[], None), &p);
            let short = sft_target_verdict_only(&record(label, &[], None), &p);
            // Prefix + short target is exactly the verdict line of the full target.
            let line = format!("{VERDICT_PREFIX}{short}");
            assert!(full.ends_with(&line), "{full:?} vs {line:?}");
            let v = verdict::parse(&line, &p.category_names()).unwrap();
            assert_eq!(v.label == Label::Violating, label == 1);
            let first = if label == 1 {
                "violating\""
            } else {
                "non_violating\""
            };
            assert!(short.starts_with(first), "{short:?}");
        }
    }

    #[test]
    fn first_sentence_stops_at_a_period_colon_or_line() {
        assert_eq!(first_sentence("\n- Asking for x. More."), "Asking for x");
        assert_eq!(
            first_sentence("Requests that help: a, b"),
            "Requests that help"
        );
        assert_eq!(first_sentence("one line\nsecond"), "one line");
    }
}
