//! The model output contract and its parser.
//!
//! # Contract
//!
//! A moderation model reads a policy and one piece of content and answers with
//!
//! 1. optional reasoning, preferably inside `<reasoning>` … `</reasoning>` (plain text is accepted
//!    too), then
//! 2. exactly one final JSON object on its own line, with nothing after it:
//!
//! ```text
//! <reasoning>
//! The post calls an ethnic group "vermin" and says they should be removed ...
//! </reasoning>
//! {"label": "violating", "category": "dehumanization", "probability": 0.93}
//! ```
//!
//! * `label` — `"violating"` or `"non_violating"`;
//! * `category` — the name of the violated policy category, or `"none"`;
//! * `probability` — the model's probability **that the content violates the policy** (not its
//!   confidence in the label it chose), a number in `[0, 1]`. This is the score used for
//!   PR-AUC/ROC-AUC and calibration.
//!
//! [`CONTRACT_TEXT`] is the wording of this contract that goes into prompts.
//!
//! # Parsing
//!
//! [`parse`] never panics. It is tolerant in ways that do not change meaning:
//!
//! * the verdict is the **last** JSON object in the text that has a `label` key; code fences,
//!   text before it and trailing text after it are ignored;
//! * when a `</reasoning>` closing tag is present, only the text after the last closing tag is
//!   searched, so a JSON example quoted inside the reasoning is never taken as the verdict; when
//!   there is no closing tag the whole text is searched;
//! * keys are matched case-insensitively;
//! * labels accept synonyms case-insensitively (`safe`/`unsafe`, `yes`/`no`, `harmful`, `benign`,
//!   `true`/`false`, `0`/`1`, `non-violating`, ...), and JSON booleans and `0`/`1`;
//! * categories are matched case-insensitively with `-` and spaces treated as `_`; `none`, `null`,
//!   `n/a`, an empty string or a missing key mean "no category";
//! * the probability may be a number, a numeric string, or a percentage string such as `"87%"`.
//!   A bare number outside `[0, 1]` (e.g. `87`) is rejected rather than guessed at.
//!
//! Anything else is a typed [`ParseFailure`], so format failures can be counted and penalised.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// The output contract as it is written into prompts (see the module docs).
pub const CONTRACT_TEXT: &str = "\
OUTPUT FORMAT
End your reply with exactly one JSON object on its own line, and write nothing after it:
{\"label\": \"violating\" or \"non_violating\", \"category\": \"<category name>\" or \"none\", \"probability\": <number from 0 to 1>}
- \"label\": \"violating\" if the content violates the policy, otherwise \"non_violating\".
- \"category\": the name of the policy category that is violated, spelled exactly as in the policy (if several apply, the most severe one); \"none\" when the label is \"non_violating\".
- \"probability\": your probability that the content violates the policy (not your confidence in the label you chose), as a decimal number such as 0.87. It should be above 0.5 exactly when the label is \"violating\".
Example of a final line: {\"label\": \"non_violating\", \"category\": \"none\", \"probability\": 0.06}";

/// The same contract in one line, for policies with `output_format = "compact"`.
pub const CONTRACT_TEXT_COMPACT: &str = "\
OUTPUT FORMAT
End with one JSON line: {\"label\": \"violating\" or \"non_violating\", \"category\": \"<category name>\" or \"none\", \"probability\": <probability of violating, 0 to 1>}";

/// Opening tag of the reasoning block.
pub const REASONING_OPEN: &str = "<reasoning>";
/// Closing tag of the reasoning block.
pub const REASONING_CLOSE: &str = "</reasoning>";

/// How many `{` positions, from the end of the text, the parser tries before giving up. Bounds the
/// work on pathological inputs full of braces.
const MAX_CANDIDATES: usize = 512;

/// A binary moderation label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// The content does not violate the policy (dataset label 0).
    NonViolating,
    /// The content violates the policy (dataset label 1).
    Violating,
}

impl Label {
    /// The canonical contract word: `"violating"` or `"non_violating"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Violating => "violating",
            Label::NonViolating => "non_violating",
        }
    }

    /// 1 for [`Label::Violating`], 0 for [`Label::NonViolating`].
    pub fn as_u8(self) -> u8 {
        match self {
            Label::Violating => 1,
            Label::NonViolating => 0,
        }
    }

    /// The label for a 0/1 dataset label; `None` for any other value.
    pub fn from_u8(value: u8) -> Option<Label> {
        match value {
            1 => Some(Label::Violating),
            0 => Some(Label::NonViolating),
            _ => None,
        }
    }

    /// Lenient parse used on model output: trims, ignores case, treats `-` and spaces as `_`, and
    /// accepts the synonyms listed in the module docs.
    pub fn parse_lenient(word: &str) -> Option<Label> {
        let norm = normalize_name(word);
        match norm.as_str() {
            "violating" | "violation" | "violates" | "violative" | "unsafe" | "harmful" | "yes"
            | "true" | "1" | "positive" | "flagged" | "flag" => Some(Label::Violating),
            "non_violating" | "nonviolating" | "not_violating" | "no_violation"
            | "non_violation" | "non_violative" | "safe" | "harmless" | "benign" | "no"
            | "false" | "0" | "negative" | "ok" | "acceptable" | "allowed" => {
                Some(Label::NonViolating)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Label {
    type Err = String;

    /// Strict parse: only the canonical words `violating` and `non_violating`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "violating" => Ok(Label::Violating),
            "non_violating" => Ok(Label::NonViolating),
            other => Err(format!(
                "unknown label {other:?}; expected \"violating\" or \"non_violating\""
            )),
        }
    }
}

/// A parsed model verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The decision.
    pub label: Label,
    /// The violated category, canonicalised to the policy's spelling; `None` for "none".
    pub category: Option<String>,
    /// Probability that the content violates the policy, in `[0, 1]`.
    pub probability: f64,
}

impl Verdict {
    /// The verdict as the single-line JSON object of the contract, keys in contract order.
    pub fn to_json_line(&self) -> String {
        let category = self.category.as_deref().unwrap_or("none");
        format!(
            "{{\"label\": {}, \"category\": {}, \"probability\": {}}}",
            Value::String(self.label.as_str().to_string()),
            Value::String(category.to_string()),
            format_probability(self.probability),
        )
    }

    /// True when the label agrees with the probability (violating ⇔ probability ≥ 0.5).
    pub fn is_consistent(&self) -> bool {
        (self.label == Label::Violating) == (self.probability >= 0.5)
    }
}

/// Formats a probability the way JSON would (shortest representation that round-trips).
fn format_probability(p: f64) -> String {
    match serde_json::Number::from_f64(p) {
        Some(n) => n.to_string(),
        None => "null".to_string(),
    }
}

/// A complete model-style answer: the reasoning in tags, then the verdict line. Useful for
/// building supervised targets and for tests.
pub fn format_output(reasoning: &str, verdict: &Verdict) -> String {
    format!(
        "{REASONING_OPEN}\n{}\n{REASONING_CLOSE}\n{}",
        reasoning.trim(),
        verdict.to_json_line()
    )
}

/// Why a model output could not be turned into a [`Verdict`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseFailure {
    /// No JSON object with a `label` key (and no malformed attempt at one) was found.
    #[error("no verdict JSON object found")]
    NoVerdict,
    /// Something that looks like the verdict object (it mentions `label`) is not valid JSON.
    #[error("malformed verdict JSON: {error} (near {snippet:?})")]
    BadJson {
        /// The start of the malformed object, at most 120 characters.
        snippet: String,
        /// The JSON parser's message.
        error: String,
    },
    /// The label is not one of the accepted words.
    #[error("unknown label {label:?}")]
    UnknownLabel {
        /// The label as written by the model.
        label: String,
    },
    /// The category is not one of the policy's categories.
    #[error("unknown category {category:?} (allowed: {})", allowed.join(", "))]
    UnknownCategory {
        /// The category as written by the model.
        category: String,
        /// The policy's category names.
        allowed: Vec<String>,
    },
    /// The probability is not a finite number in `[0, 1]`.
    #[error("probability {value} is outside [0, 1]")]
    ProbabilityOutOfRange {
        /// The value as parsed.
        value: f64,
    },
    /// A required field (`label` or `probability`) is missing or null.
    #[error("verdict is missing field {field:?}")]
    MissingField {
        /// The missing field's name.
        field: String,
    },
    /// A field has a JSON type that cannot be interpreted (e.g. an array as the probability).
    #[error("field {field:?} has an unusable value: {found}")]
    WrongType {
        /// The field's name.
        field: String,
        /// The offending value, as JSON.
        found: String,
    },
}

impl ParseFailure {
    /// A short stable name for the failure kind, for counting failures in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            ParseFailure::NoVerdict => "no_verdict",
            ParseFailure::BadJson { .. } => "bad_json",
            ParseFailure::UnknownLabel { .. } => "unknown_label",
            ParseFailure::UnknownCategory { .. } => "unknown_category",
            ParseFailure::ProbabilityOutOfRange { .. } => "probability_out_of_range",
            ParseFailure::MissingField { .. } => "missing_field",
            ParseFailure::WrongType { .. } => "wrong_type",
        }
    }
}

/// Parses a model output into a [`Verdict`], checking the category against `categories` (the
/// policy's category names). With an empty `categories` any category string is accepted as
/// written (trimmed). Never panics.
pub fn parse<S: AsRef<str>>(text: &str, categories: &[S]) -> Result<Verdict, ParseFailure> {
    let (_, _, object) = locate_verdict(text)?;
    let fields: Vec<(String, &Value)> = object
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v))
        .collect();
    let get = |names: &[&str]| -> Option<&Value> {
        names.iter().find_map(|name| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| *v)
                .filter(|v| !v.is_null())
        })
    };

    let label = match get(&["label", "verdict"]) {
        None => return Err(missing("label")),
        Some(value) => parse_label(value)?,
    };
    let probability = match get(&["probability", "prob", "p_violating"]) {
        None => return Err(missing("probability")),
        Some(value) => parse_probability(value)?,
    };
    let category = match get(&["category"]) {
        None => None,
        Some(value) => parse_category(value, categories)?,
    };
    Ok(Verdict {
        label,
        category,
        probability,
    })
}

fn missing(field: &str) -> ParseFailure {
    ParseFailure::MissingField {
        field: field.to_string(),
    }
}

fn parse_label(value: &Value) -> Result<Label, ParseFailure> {
    let parsed = match value {
        Value::String(s) => Label::parse_lenient(s),
        Value::Bool(b) => Some(if *b {
            Label::Violating
        } else {
            Label::NonViolating
        }),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => Some(Label::Violating),
            Some(0.0) => Some(Label::NonViolating),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| ParseFailure::UnknownLabel {
        label: match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    })
}

fn parse_probability(value: &Value) -> Result<f64, ParseFailure> {
    let wrong = || ParseFailure::WrongType {
        field: "probability".to_string(),
        found: value.to_string(),
    };
    let p = match value {
        Value::Number(n) => n.as_f64().ok_or_else(wrong)?,
        Value::String(s) => {
            let s = s.trim();
            match s.strip_suffix('%') {
                Some(pct) => pct.trim().parse::<f64>().map_err(|_| wrong())? / 100.0,
                None => s.parse::<f64>().map_err(|_| wrong())?,
            }
        }
        _ => return Err(wrong()),
    };
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(ParseFailure::ProbabilityOutOfRange { value: p })
    }
}

fn parse_category<S: AsRef<str>>(
    value: &Value,
    categories: &[S],
) -> Result<Option<String>, ParseFailure> {
    let raw = match value {
        Value::String(s) => s.trim(),
        other => {
            return Err(ParseFailure::WrongType {
                field: "category".to_string(),
                found: other.to_string(),
            })
        }
    };
    let norm = normalize_name(raw);
    if matches!(
        norm.as_str(),
        "" | "none" | "null" | "n/a" | "na" | "no_category" | "not_applicable"
    ) {
        return Ok(None);
    }
    if categories.is_empty() {
        return Ok(Some(raw.to_string()));
    }
    categories
        .iter()
        .find(|c| normalize_name(c.as_ref()) == norm)
        .map(|c| Some(c.as_ref().to_string()))
        .ok_or_else(|| ParseFailure::UnknownCategory {
            category: raw.to_string(),
            allowed: categories.iter().map(|c| c.as_ref().to_string()).collect(),
        })
}

/// Lower-cases, trims, and maps `-` and whitespace runs to `_`.
fn normalize_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_sep = false;
    for ch in s.trim().chars() {
        if ch == '-' || ch == '_' || ch.is_whitespace() {
            pending_sep = true;
            continue;
        }
        if pending_sep && !out.is_empty() {
            out.push('_');
        }
        pending_sep = false;
        out.extend(ch.to_lowercase());
    }
    out
}

/// Byte offset just past the last `</reasoning>` (ASCII case-insensitive), if any.
fn after_last_close(text: &str) -> Option<usize> {
    rfind_ascii_ci(text, REASONING_CLOSE).map(|i| i + REASONING_CLOSE.len())
}

fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    // ASCII lower-casing keeps byte offsets, so positions are valid in the original text.
    haystack.to_ascii_lowercase().find(needle)
}

fn rfind_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack.to_ascii_lowercase().rfind(needle)
}

/// Where the verdict object sits in `text` (the object [`parse`] reads: the last JSON object with
/// a `label` or `verdict` key after the last `</reasoning>`), as a byte range.
pub fn verdict_span(text: &str) -> Option<(usize, usize)> {
    locate_verdict(text)
        .ok()
        .map(|(start, end, _)| (start, end))
}

/// Finds the verdict object: returns its byte range in `text` and the object.
fn locate_verdict(text: &str) -> Result<(usize, usize, Map<String, Value>), ParseFailure> {
    let base = after_last_close(text).unwrap_or(0);
    let region = &text[base..];
    let mut bad_json: Option<ParseFailure> = None;
    let mut saw_object = false;
    let starts = region
        .char_indices()
        .filter(|&(_, c)| c == '{')
        .map(|(i, _)| i)
        .collect::<Vec<_>>();
    for &start in starts.iter().rev().take(MAX_CANDIDATES) {
        let candidate = &region[start..];
        let mut stream = serde_json::Deserializer::from_str(candidate).into_iter::<Value>();
        match stream.next() {
            Some(Ok(Value::Object(map))) => {
                if map
                    .keys()
                    .any(|k| matches!(k.trim().to_ascii_lowercase().as_str(), "label" | "verdict"))
                {
                    let end = base + start + stream.byte_offset();
                    return Ok((base + start, end, map));
                }
                saw_object = true;
            }
            Some(Ok(_)) | None => {}
            Some(Err(err)) => {
                if bad_json.is_none() && looks_like_verdict(candidate) {
                    bad_json = Some(ParseFailure::BadJson {
                        snippet: candidate.chars().take(120).collect(),
                        error: err.to_string(),
                    });
                }
            }
        }
    }
    match bad_json {
        Some(failure) => Err(failure),
        None if saw_object => Err(missing("label")),
        None => Err(ParseFailure::NoVerdict),
    }
}

/// Whether a malformed `{...` fragment was probably meant as the verdict: it mentions `label`
/// before the next closing brace (or within its first 200 characters).
fn looks_like_verdict(candidate: &str) -> bool {
    let head: String = candidate.chars().take(200).collect();
    let head = match head.find('}') {
        Some(end) => &head[..end],
        None => head.as_str(),
    };
    head.to_ascii_lowercase().contains("label")
}

/// The model's reasoning, trimmed.
///
/// * With `<reasoning>` tags: the text of all blocks, joined by a blank line; an unclosed block
///   (e.g. a truncated generation) runs to the end of the text.
/// * With only a closing tag: the text before it.
/// * Without tags: the text before the verdict object (minus a dangling code-fence opener), or
///   the whole text when there is no verdict.
pub fn reasoning_text(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if lower.contains(REASONING_OPEN) {
        let mut blocks = Vec::new();
        let mut pos = 0;
        while let Some(open) = lower[pos..].find(REASONING_OPEN) {
            let body_start = pos + open + REASONING_OPEN.len();
            match lower[body_start..].find(REASONING_CLOSE) {
                Some(close) => {
                    blocks.push(text[body_start..body_start + close].trim());
                    pos = body_start + close + REASONING_CLOSE.len();
                }
                None => {
                    blocks.push(text[body_start..].trim());
                    break;
                }
            }
        }
        return blocks
            .into_iter()
            .filter(|b| !b.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n");
    }
    if let Some(close) = find_ascii_ci(text, REASONING_CLOSE) {
        return text[..close].trim().to_string();
    }
    let before = match locate_verdict(text) {
        Ok((start, _, _)) => &text[..start],
        Err(_) => text,
    };
    let mut before = before.trim_end();
    for fence in ["```json", "```JSON", "```"] {
        if let Some(stripped) = before.strip_suffix(fence) {
            before = stripped.trim_end();
            break;
        }
    }
    before.trim().to_string()
}

/// Number of whitespace-separated words in `text`.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CATS: [&str; 3] = ["slurs", "dehumanization", "violent_threats"];

    fn ok(text: &str) -> Verdict {
        parse(text, &CATS).unwrap_or_else(|e| panic!("{text:?} failed: {e}"))
    }

    #[test]
    fn parses_canonical_output() {
        let text = "<reasoning>\nIt calls a group vermin.\n</reasoning>\n{\"label\": \"violating\", \"category\": \"dehumanization\", \"probability\": 0.93}";
        let v = ok(text);
        assert_eq!(v.label, Label::Violating);
        assert_eq!(v.category.as_deref(), Some("dehumanization"));
        assert_eq!(v.probability, 0.93);
        assert!(v.is_consistent());
        assert_eq!(reasoning_text(text), "It calls a group vermin.");
    }

    #[test]
    fn takes_last_object_and_ignores_fences_and_trailing_text() {
        let text = "Thinking {\"label\": \"violating\", \"probability\": 0.9} was my first idea.\n\
                    ```json\n{\"label\": \"non_violating\", \"category\": \"none\", \"probability\": 0.1}\n```\nDone.";
        let v = ok(text);
        assert_eq!(v.label, Label::NonViolating);
        assert_eq!(v.category, None);
        assert_eq!(v.probability, 0.1);
        assert_eq!(
            reasoning_text("Because X.\n```json\n{\"label\": \"safe\", \"probability\": 0.2}\n```"),
            "Because X."
        );
    }

    #[test]
    fn ignores_json_inside_closed_reasoning() {
        let text = "<reasoning>The format is {\"label\": \"violating\", \"probability\": 1}</reasoning>\nno verdict";
        assert_eq!(parse(text, &CATS), Err(ParseFailure::NoVerdict));
        // Without a closing tag the whole text is searched.
        let v = ok("<reasoning>truncated {\"label\": \"unsafe\", \"probability\": 0.7}");
        assert_eq!(v.label, Label::Violating);
    }

    #[test]
    fn label_synonyms_case_insensitive() {
        for (word, expected) in [
            ("\"Safe\"", Label::NonViolating),
            ("\"UNSAFE\"", Label::Violating),
            ("\"yes\"", Label::Violating),
            ("\"No\"", Label::NonViolating),
            ("\"non-violating\"", Label::NonViolating),
            ("\"Non Violating\"", Label::NonViolating),
            ("\"harmful\"", Label::Violating),
            ("true", Label::Violating),
            ("0", Label::NonViolating),
        ] {
            let text = format!("{{\"label\": {word}, \"probability\": 0.5}}");
            assert_eq!(ok(&text).label, expected, "{word}");
        }
        assert_eq!(
            parse("{\"label\": \"maybe\", \"probability\": 0.5}", &CATS),
            Err(ParseFailure::UnknownLabel {
                label: "maybe".into()
            })
        );
        assert_eq!(
            parse("{\"label\": 2, \"probability\": 0.5}", &CATS),
            Err(ParseFailure::UnknownLabel { label: "2".into() })
        );
    }

    #[test]
    fn keys_case_insensitive_and_category_normalised() {
        let v = ok("{\"Label\": \"violating\", \"Category\": \"Violent Threats\", \"PROBABILITY\": \"87%\"}");
        assert_eq!(v.category.as_deref(), Some("violent_threats"));
        assert!((v.probability - 0.87).abs() < 1e-12);
        let v = ok("{\"label\": \"violating\", \"category\": \"SLURS\", \"probability\": \"0.6\"}");
        assert_eq!(v.category.as_deref(), Some("slurs"));
        let v = ok("{\"label\": \"violating\", \"category\": null, \"probability\": 0.6}");
        assert_eq!(v.category, None);
    }

    #[test]
    fn typed_failures() {
        assert_eq!(parse("", &CATS), Err(ParseFailure::NoVerdict));
        assert_eq!(
            parse("I think it is fine.", &CATS),
            Err(ParseFailure::NoVerdict)
        );
        assert_eq!(
            parse("{\"decision\": \"violating\"}", &CATS),
            Err(missing("label"))
        );
        assert_eq!(
            parse("{\"label\": \"violating\"}", &CATS),
            Err(missing("probability"))
        );
        assert_eq!(
            parse("{\"label\": \"violating\", \"probability\": null}", &CATS),
            Err(missing("probability"))
        );
        assert_eq!(
            parse("{\"label\": \"violating\", \"probability\": 87}", &CATS),
            Err(ParseFailure::ProbabilityOutOfRange { value: 87.0 })
        );
        assert_eq!(
            parse("{\"label\": \"violating\", \"probability\": -0.1}", &CATS),
            Err(ParseFailure::ProbabilityOutOfRange { value: -0.1 })
        );
        assert!(matches!(
            parse("{\"label\": \"violating\", \"probability\": [1]}", &CATS),
            Err(ParseFailure::WrongType { field, .. }) if field == "probability"
        ));
        assert!(matches!(
            parse("{\"label\": \"violating\", \"probability\": \"high\"}", &CATS),
            Err(ParseFailure::WrongType { field, .. }) if field == "probability"
        ));
        assert_eq!(
            parse(
                "{\"label\": \"violating\", \"category\": \"spam\", \"probability\": 0.9}",
                &CATS
            ),
            Err(ParseFailure::UnknownCategory {
                category: "spam".into(),
                allowed: CATS.iter().map(|s| s.to_string()).collect(),
            })
        );
        let bad = parse(
            "reasoning\n{\"label\": \"violating\", \"probability\": 0.9",
            &CATS,
        );
        assert!(
            matches!(&bad, Err(ParseFailure::BadJson { snippet, .. }) if snippet.starts_with("{\"label\"")),
            "{bad:?}"
        );
        assert_eq!(bad.unwrap_err().kind(), "bad_json");
    }

    #[test]
    fn empty_category_list_accepts_any_category() {
        let none: [&str; 0] = [];
        let v = parse(
            "{\"label\": \"violating\", \"category\": \" Spam \", \"probability\": 0.9}",
            &none,
        )
        .unwrap();
        assert_eq!(v.category.as_deref(), Some("Spam"));
    }

    #[test]
    fn nested_objects_are_handled() {
        let v = ok("{\"label\": \"violating\", \"probability\": 0.8, \"extra\": {\"a\": 1}}");
        assert_eq!(v.label, Label::Violating);
        let v = ok("{\"verdict\": {\"label\": \"safe\", \"probability\": 0.1}}");
        assert_eq!(v.label, Label::NonViolating);
    }

    #[test]
    fn reasoning_text_variants() {
        assert_eq!(
            reasoning_text("<reasoning> a </reasoning><REASONING>b</reasoning>{}"),
            "a\n\nb"
        );
        assert_eq!(reasoning_text("<reasoning>cut off here"), "cut off here");
        assert_eq!(
            reasoning_text("only close </reasoning> {\"label\":1}"),
            "only close"
        );
        assert_eq!(reasoning_text("no verdict at all"), "no verdict at all");
        assert_eq!(
            word_count(reasoning_text("<reasoning>one two\nthree</reasoning>").as_str()),
            3
        );
        assert_eq!(word_count("  "), 0);
    }

    #[test]
    fn label_helpers() {
        assert_eq!(Label::from_u8(1), Some(Label::Violating));
        assert_eq!(Label::from_u8(2), None);
        assert_eq!(Label::NonViolating.as_u8(), 0);
        assert_eq!("violating".parse::<Label>(), Ok(Label::Violating));
        assert!("safe".parse::<Label>().is_err());
        assert_eq!(Label::NonViolating.to_string(), "non_violating");
    }

    fn arb_verdict() -> impl Strategy<Value = Verdict> {
        (
            any::<bool>(),
            prop::option::of(prop::sample::select(CATS.to_vec())),
            0.0f64..=1.0,
        )
            .prop_map(|(v, c, p)| Verdict {
                label: if v {
                    Label::Violating
                } else {
                    Label::NonViolating
                },
                category: c.map(str::to_string),
                probability: p,
            })
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_strings(s in ".*") {
            let _ = parse(&s, &CATS);
            let _ = reasoning_text(&s);
            let _ = word_count(&s);
        }

        #[test]
        fn never_panics_on_arbitrary_unicode(s in any::<String>()) {
            let _ = parse(&s, &CATS);
            let _ = reasoning_text(&s);
        }

        #[test]
        fn never_panics_on_json_like_noise(s in "[{}\\[\\]\":,a-z0-9 .<>/\\\\-]{0,200}") {
            let _ = parse(&s, &CATS);
            let _ = reasoning_text(&s);
        }

        #[test]
        fn round_trip(v in arb_verdict(), reasoning in "[a-zA-Z ,.\n]{0,80}") {
            let text = format_output(&reasoning, &v);
            prop_assert_eq!(parse(&text, &CATS).unwrap(), v.clone());
            prop_assert_eq!(reasoning_text(&text), reasoning.trim().to_string());
            prop_assert_eq!(parse(&v.to_json_line(), &CATS).unwrap(), v);
        }

        #[test]
        fn truncated_valid_output_never_panics(v in arb_verdict(), cut in 0usize..400) {
            let text = format_output("The content quotes a slur to condemn it.", &v);
            let mut end = cut.min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let truncated = &text[..end];
            let result = parse(truncated, &CATS);
            if end == text.len() {
                prop_assert_eq!(result.unwrap(), v);
            } else {
                // A strict prefix lacks the closing brace, so it must be a typed failure.
                prop_assert!(result.is_err(), "{:?} parsed from {:?}", result, truncated);
            }
            let _ = reasoning_text(truncated);
        }
    }
}
