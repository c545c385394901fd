//! Per-step monitors (not rewards): instruction and quote hallucination.

use super::*;

/// Instruction hallucination: the output breaks the contract or the instruction — no verdict or
/// a malformed one, an unknown category, label / probability / category inconsistent, text after
/// the verdict, or no closed reasoning block.
pub fn instruction_hallucination(completion: &str, policy: &Policy) -> bool {
    !check_contract(completion, policy).is_clean()
}

/// [`instruction_hallucination`] under the contract of a prompt variant with or without reasoning
/// ([`check_contract_for`]).
pub fn instruction_hallucination_for(completion: &str, policy: &Policy, reasoning: bool) -> bool {
    !check_contract_for(completion, policy, reasoning).is_clean()
}

pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// Quoted spans of one line: straight and typographic double quotes, and single quotes that
/// open at a word start and close at a word end (so apostrophes in "don't" or "users'" are not
/// taken for quotes).
pub(crate) fn line_quotes(line: &str, out: &mut Vec<String>) {
    let chars: Vec<char> = line.chars().collect();
    // Straight double quotes pair up in order.
    let dq: Vec<usize> = (0..chars.len()).filter(|&i| chars[i] == '"').collect();
    for p in dq.chunks_exact(2) {
        out.push(chars[p[0] + 1..p[1]].iter().collect());
    }
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\u{201C}' {
            if let Some(j) = (i + 1..chars.len()).find(|&j| chars[j] == '\u{201D}') {
                out.push(chars[i + 1..j].iter().collect());
                i = j + 1;
                continue;
            }
        }
        let opens_single = (c == '\'' || c == '\u{2018}')
            && (i == 0 || !is_word_char(chars[i - 1]))
            && chars.get(i + 1).is_some_and(|n| !n.is_whitespace());
        if opens_single {
            let close = (i + 2..chars.len()).find(|&j| {
                (chars[j] == '\'' || chars[j] == '\u{2019}')
                    && !chars[j - 1].is_whitespace()
                    && chars.get(j + 1).is_none_or(|n| !is_word_char(*n))
            });
            if let Some(j) = close {
                out.push(chars[i + 1..j].iter().collect());
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
}

/// Lower case, typographic quotes and apostrophes made plain, whitespace runs collapsed.
pub(crate) fn normalize_text(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' => '\'',
            '\u{201C}' | '\u{201D}' => '"',
            other => other,
        })
        .flat_map(char::to_lowercase)
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Words of the output contract that reasoning often quotes without quoting the content.
pub(crate) const CONTRACT_WORDS: [&str; 9] = [
    "violating",
    "non_violating",
    "non-violating",
    "none",
    "label",
    "category",
    "probability",
    "reasoning",
    "true",
];

pub(crate) const QUOTE_PUNCT: &[char] = &['.', ',', ';', ':', '!', '?', '\u{2026}', ' ', '(', ')'];

/// The pieces of a quote that must be found in the content: elisions (`...`, `…`, `[...]`)
/// split it; surrounding punctuation is dropped; contract words and snake_case identifiers
/// (category names) are not content quotes.
pub(crate) fn quote_fragments(quote: &str) -> Vec<String> {
    let q = normalize_text(quote);
    let q = q.replace("[...]", "\u{2026}").replace("...", "\u{2026}");
    q.split('\u{2026}')
        .map(|f| f.trim_matches(QUOTE_PUNCT).to_string())
        .filter(|f| f.chars().any(char::is_alphanumeric))
        .filter(|f| !CONTRACT_WORDS.contains(&f.as_str()))
        .filter(|f| {
            let identifier = f.contains('_')
                && f.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            !identifier
        })
        .collect()
}

/// Every quoted span in the reasoning of `completion`, as written.
pub fn quoted_spans(completion: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in verdict::reasoning_text(completion).lines() {
        line_quotes(line, &mut out);
    }
    out
}

pub(crate) fn quote_check(completion: &str, sources: &[&str]) -> Option<bool> {
    let sources: Vec<String> = sources.iter().map(|s| normalize_text(s)).collect();
    let mut checked = false;
    for quote in quoted_spans(completion) {
        for frag in quote_fragments(&quote) {
            checked = true;
            if !sources.iter().any(|s| s.contains(&frag)) {
                return Some(true);
            }
        }
    }
    checked.then_some(false)
}

/// How many quoted fragments of the reasoning occur in `content` (the evidence it quotes).
pub fn quote_fragments_in(completion: &str, content: &str) -> usize {
    let content = normalize_text(content);
    quoted_spans(completion)
        .iter()
        .flat_map(|q| quote_fragments(q))
        .filter(|f| content.contains(f.as_str()))
        .count()
}

/// Quote hallucination (the paper's factuality hallucination, detectable without a judge): the
/// reasoning quotes text in `"..."`, `'...'` or typographic quotes that does not occur in the
/// content (case- and whitespace-insensitive; elisions allowed). `None` when the reasoning
/// quotes nothing checkable. Quotes of the policy's own wording count as invented here; use
/// [`quote_hallucination_with_policy`] to allow them.
pub fn quote_hallucination(completion: &str, content: &str) -> Option<bool> {
    quote_check(completion, &[content])
}

/// [`quote_hallucination`], also accepting quotes of the policy's instruction and text.
pub fn quote_hallucination_with_policy(
    completion: &str,
    content: &str,
    policy: &Policy,
) -> Option<bool> {
    let rendered = policy.render();
    quote_check(completion, &[content, &policy.instruction, &rendered])
}
