//! Output contract checks: how a completion fares against the contract of
//! `modrl_moderation::verdict` (used by the format reward and the instruction-hallucination monitor).

use super::*;

/// How a completion fares against the output contract (`modrl_moderation::verdict`).
#[derive(Debug, Clone, PartialEq)]
pub struct ContractCheck {
    /// The parsed verdict, or why it could not be parsed (unknown categories included).
    pub verdict: Result<Verdict, ParseFailure>,
    /// A non-empty `<reasoning>` block that is closed before the verdict.
    pub reasoning_closed: bool,
    /// Nothing but whitespace follows the verdict object.
    pub verdict_last: bool,
    /// The verdict is self-consistent: `violating` exactly when the probability is at least 0.5,
    /// and a category exactly when violating. False when it does not parse.
    pub consistent: bool,
}

impl ContractCheck {
    /// Every rule of the contract holds.
    pub fn is_clean(&self) -> bool {
        self.verdict.is_ok() && self.reasoning_closed && self.verdict_last && self.consistent
    }
}

/// Check `completion` against the output contract for `policy` (reasoning, then the verdict).
pub fn check_contract(completion: &str, policy: &Policy) -> ContractCheck {
    check_contract_for(completion, policy, true)
}

/// Check `completion` against the output contract of a prompt variant: with `reasoning`, a
/// closed `<reasoning>` block before the verdict; without (the `no_reasoning` variant, whose
/// answer is the verdict line alone), nothing but whitespace before the verdict object.
/// `reasoning_closed` then reports that rule.
pub fn check_contract_for(completion: &str, policy: &Policy, reasoning: bool) -> ContractCheck {
    let mut c = check_reasoned_contract(completion, policy);
    if !reasoning {
        c.reasoning_closed = c.verdict.is_ok()
            && verdict::verdict_span(completion)
                .is_some_and(|(s, _)| completion[..s].trim().is_empty());
    }
    c
}

pub(crate) fn check_reasoned_contract(completion: &str, policy: &Policy) -> ContractCheck {
    let verdict = verdict::parse(completion, &policy.category_names());
    let lower = completion.to_ascii_lowercase();
    let open = lower.find(verdict::REASONING_OPEN);
    let close = lower.rfind(verdict::REASONING_CLOSE);
    let span = verdict::verdict_span(completion);
    let reasoning_closed = match (open, close) {
        (Some(o), Some(c)) => {
            o < c
                && span.is_none_or(|(s, _)| s >= c)
                && verdict::word_count(&verdict::reasoning_text(completion)) > 0
        }
        _ => false,
    };
    let verdict_last =
        verdict.is_ok() && span.is_some_and(|(_, end)| completion[end..].trim().is_empty());
    let consistent = verdict
        .as_ref()
        .is_ok_and(|v| v.is_consistent() && (v.label == Label::Violating) == v.category.is_some());
    ContractCheck {
        verdict,
        reasoning_closed,
        verdict_last,
        consistent,
    }
}
