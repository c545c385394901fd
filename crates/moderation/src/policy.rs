//! Moderation policies: versioned, diffable TOML files.
//!
//! # File format
//!
//! ```toml
//! id = "hate-speech"            # lowercase letters, digits, '-', '_', '.'
//! version = "1.0.0"             # any non-empty string without whitespace; bump on every change
//! task = "hate"                 # the dataset task this policy labels
//! title = "Hate Speech"
//! instruction = """
//! You are a content moderator ... (goes first in the prompt)
//! """
//! exclusions = [                # optional: never violating on their own, for every category
//!   "Counter-speech that quotes hateful content in order to condemn it.",
//! ]
//! output_format = "full"        # optional: "full" (default) or "compact": the answering
//!                               # instructions and output contract in a few lines instead of a
//!                               # paragraph each (a shorter shared prefix; same verdict line)
//!
//! [[categories]]                # at least one
//! name = "dehumanization"       # lowercase snake_case, unique, not "none"; used in verdicts
//! violates = """What violates, as a definition plus concrete forms."""
//! does_not_violate = """Near misses that do not violate."""
//!
//! [[examples]]                  # optional, rendered into the prompt
//! text = "..."
//! label = "violating"           # "violating" or "non_violating"
//! category = "dehumanization"   # required for violating examples; a known category name
//! explanation = "..."           # optional
//! ```
//!
//! Multi-line strings keep one thought per line so that `git diff` between policy versions is
//! readable. Unknown keys are rejected (they are almost always typos). Errors name the file, the
//! line and the field, e.g. `hate-speech.toml:14: field "categories[1].name": duplicate category
//! name "slurs" (first used by categories[0])`.

use crate::verdict::Label;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A validated moderation policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// Stable identifier, e.g. `hate-speech`.
    pub id: String,
    /// Version string; bump it whenever the text changes.
    pub version: String,
    /// The task the policy labels (e.g. `hate`, `offensive`, `prompt-harm`).
    pub task: String,
    /// Human-readable title.
    pub title: String,
    /// The instruction to the moderator model; placed before the policy text in prompts.
    pub instruction: String,
    /// Policy-wide exclusions: content that is never violating on these grounds alone.
    pub exclusions: Vec<String>,
    /// The violation categories, in order.
    pub categories: Vec<Category>,
    /// Worked examples.
    pub examples: Vec<Example>,
    /// How long the prompt's answering instructions and output contract are.
    pub output_format: OutputFormat,
}

/// How the prompt words the answering instructions and the output contract
/// ([`crate::prompt::system_message`]). The verdict line asked for, and so its parser, is the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Each field of the verdict line explained, with an example (about 250 tokens of prefix).
    #[default]
    Full,
    /// The verdict line's shape in one line and the reasoning instruction in one sentence (about
    /// 60 tokens): for short policies whose prefix the contract would otherwise dominate.
    Compact,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "full" => Ok(OutputFormat::Full),
            "compact" => Ok(OutputFormat::Compact),
            other => Err(format!(
                "unknown output format {other:?}: expected full or compact"
            )),
        }
    }
}

/// One violation category of a policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Category {
    /// snake_case name used in verdicts.
    pub name: String,
    /// What violates: definition and concrete forms.
    pub violates: String,
    /// What does not violate although it may look similar.
    pub does_not_violate: String,
}

/// A worked example in a policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    /// The example content.
    pub text: String,
    /// Its label.
    pub label: Label,
    /// The violated category (always set for violating examples). A non-violating example may
    /// name the category it is a near miss for; it is rendered as `none` either way.
    pub category: Option<String>,
    /// Why it gets this label.
    pub explanation: Option<String>,
}

/// A policy file that could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not satisfy the policy format.
    #[error("{0}")]
    Invalid(PolicyIssue),
}

/// Where and why a policy file is invalid.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyIssue {
    /// The file name as given.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field path, e.g. `categories[1].name`, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field \"{field}\"")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl PolicyError {
    /// The location details, for invalid files.
    pub fn issue(&self) -> Option<&PolicyIssue> {
        match self {
            PolicyError::Invalid(issue) => Some(issue),
            PolicyError::Io { .. } => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    id: Spanned<String>,
    version: Spanned<String>,
    task: Spanned<String>,
    title: Spanned<String>,
    instruction: Spanned<String>,
    #[serde(default)]
    exclusions: Vec<Spanned<String>>,
    categories: Spanned<Vec<Spanned<RawCategory>>>,
    #[serde(default)]
    examples: Vec<Spanned<RawExample>>,
    output_format: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    name: Spanned<String>,
    violates: Spanned<String>,
    does_not_violate: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExample {
    text: Spanned<String>,
    label: Spanned<String>,
    category: Option<Spanned<String>>,
    explanation: Option<Spanned<String>>,
}

/// Builds located errors for one source file.
struct Locator<'a> {
    file: &'a str,
    src: &'a str,
}

impl Locator<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.src.len());
        self.src.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn at<T>(&self, spanned: &Spanned<T>, field: impl Into<String>, msg: String) -> PolicyError {
        PolicyError::Invalid(PolicyIssue {
            file: self.file.to_string(),
            line: Some(self.line_of(spanned.span().start)),
            field: Some(field.into()),
            message: msg,
        })
    }

    fn non_empty(&self, value: &Spanned<String>, field: &str) -> Result<String, PolicyError> {
        let text = value.get_ref().trim();
        if text.is_empty() {
            Err(self.at(value, field, "must not be empty".to_string()))
        } else {
            Ok(text.to_string())
        }
    }

    /// Converts a TOML/serde error, recovering the field from the message or the source line.
    fn toml_error(&self, err: &toml::de::Error) -> PolicyError {
        let message = err.message().trim().to_string();
        let offset = err.span().map(|s| s.start);
        let mut field = backticked(&message)
            .filter(|_| {
                message.starts_with("missing field") || message.starts_with("unknown field")
            })
            .map(str::to_string)
            .or_else(|| offset.and_then(|o| key_on_line(self.src, o)));
        if let (Some(f), Some(o)) = (field.as_mut(), offset) {
            if let Some(table) = enclosing_table(self.src, o) {
                *f = format!("{table}.{f}");
            }
        }
        PolicyError::Invalid(PolicyIssue {
            file: self.file.to_string(),
            line: offset.map(|o| self.line_of(o)),
            field,
            message,
        })
    }
}

/// The first `backticked` word of a serde message.
fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// The bare key of a `key = value` line containing `offset`, if the line has one.
fn key_on_line(src: &str, offset: usize) -> Option<String> {
    let offset = floor_char_boundary(src, offset);
    let line_start = src[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = src[line_start..].lines().next().unwrap_or("");
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let is_key = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    is_key.then(|| key.to_string())
}

/// The `[table]` or `[[array]]` header governing `offset`, as `name` or `name[index]`.
fn enclosing_table(src: &str, offset: usize) -> Option<String> {
    let offset = floor_char_boundary(src, offset);
    let mut current: Option<(String, bool)> = None;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for line in src[..offset].lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed
            .strip_prefix("[[")
            .and_then(|r| r.split("]]").next())
        {
            let name = name.trim().to_string();
            *counts.entry(name.clone()).or_insert(0) += 1;
            current = Some((name, true));
        } else if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.split(']').next()) {
            current = Some((name.trim().to_string(), false));
        }
    }
    current.map(|(name, is_array)| {
        if is_array {
            let index = counts[&name] - 1;
            format!("{name}[{index}]")
        } else {
            name
        }
    })
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn valid_id(id: &str) -> bool {
    id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.'
        })
}

fn valid_category_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Policy {
    /// Reads and validates a policy file.
    pub fn load(path: impl AsRef<Path>) -> Result<Policy, PolicyError> {
        let path = path.as_ref();
        let src = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::from_toml_str(&src, &path.display().to_string())
    }

    /// Reads every `*.toml` policy in a directory, sorted by file name.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Vec<Policy>, PolicyError> {
        let dir = dir.as_ref();
        let io = |source| PolicyError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                paths.push(path);
            }
        }
        paths.sort();
        paths.iter().map(Policy::load).collect()
    }

    /// Parses and validates policy TOML; `file` names the source in error messages.
    pub fn from_toml_str(src: &str, file: &str) -> Result<Policy, PolicyError> {
        let loc = Locator { file, src };
        let raw: RawPolicy = toml::from_str(src).map_err(|e| loc.toml_error(&e))?;

        let id = loc.non_empty(&raw.id, "id")?;
        if !valid_id(&id) {
            return Err(loc.at(
                &raw.id,
                "id",
                format!("{id:?} must use lowercase letters, digits, '-', '_' or '.'"),
            ));
        }
        let version = loc.non_empty(&raw.version, "version")?;
        if version.chars().any(char::is_whitespace) {
            return Err(loc.at(
                &raw.version,
                "version",
                format!("{version:?} must not contain whitespace"),
            ));
        }
        let task = loc.non_empty(&raw.task, "task")?;
        let title = loc.non_empty(&raw.title, "title")?;
        let instruction = loc.non_empty(&raw.instruction, "instruction")?;

        let mut exclusions = Vec::new();
        for (i, e) in raw.exclusions.iter().enumerate() {
            exclusions.push(loc.non_empty(e, &format!("exclusions[{i}]"))?);
        }

        if raw.categories.get_ref().is_empty() {
            return Err(loc.at(
                &raw.categories,
                "categories",
                "at least one category is required".to_string(),
            ));
        }
        let mut categories: Vec<Category> = Vec::new();
        for (i, spanned) in raw.categories.get_ref().iter().enumerate() {
            let c = spanned.get_ref();
            let field = |f: &str| format!("categories[{i}].{f}");
            let name = loc.non_empty(&c.name, &field("name"))?;
            if !valid_category_name(&name) || name == "none" {
                return Err(loc.at(
                    &c.name,
                    field("name"),
                    format!("{name:?} must be lowercase snake_case (and not \"none\")"),
                ));
            }
            if let Some(j) = categories.iter().position(|prev| prev.name == name) {
                return Err(loc.at(
                    &c.name,
                    field("name"),
                    format!("duplicate category name {name:?} (first used by categories[{j}])"),
                ));
            }
            categories.push(Category {
                name,
                violates: loc.non_empty(&c.violates, &field("violates"))?,
                does_not_violate: loc.non_empty(&c.does_not_violate, &field("does_not_violate"))?,
            });
        }

        let mut examples = Vec::new();
        for (i, spanned) in raw.examples.iter().enumerate() {
            let e = spanned.get_ref();
            let field = |f: &str| format!("examples[{i}].{f}");
            let text = loc.non_empty(&e.text, &field("text"))?;
            let label: Label = e
                .label
                .get_ref()
                .trim()
                .parse()
                .map_err(|msg| loc.at(&e.label, field("label"), msg))?;
            let category = match &e.category {
                None => None,
                Some(c) => {
                    let name = c.get_ref().trim();
                    if name == "none" {
                        None
                    } else if categories.iter().any(|k| k.name == name) {
                        Some(name.to_string())
                    } else {
                        return Err(loc.at(
                            c,
                            field("category"),
                            format!(
                                "unknown category {name:?}; known: {}",
                                categories
                                    .iter()
                                    .map(|k| k.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
            };
            if label == Label::Violating && category.is_none() {
                return Err(loc.at(
                    spanned,
                    field("category"),
                    "a violating example must name its category".to_string(),
                ));
            }
            let explanation = match &e.explanation {
                None => None,
                Some(x) => Some(loc.non_empty(x, &field("explanation"))?),
            };
            examples.push(Example {
                text,
                label,
                category,
                explanation,
            });
        }

        let output_format = match &raw.output_format {
            None => OutputFormat::Full,
            Some(f) => f
                .get_ref()
                .parse()
                .map_err(|msg| loc.at(f, "output_format", msg))?,
        };

        Ok(Policy {
            id,
            version,
            task,
            title,
            instruction,
            exclusions,
            categories,
            examples,
            output_format,
        })
    }

    /// The category names, in policy order.
    pub fn category_names(&self) -> Vec<String> {
        self.categories.iter().map(|c| c.name.clone()).collect()
    }

    /// The category with this name.
    pub fn category(&self, name: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.name == name)
    }

    /// The policy text block for prompts (everything except the instruction): definitions per
    /// category, policy-wide exclusions, worked examples and the list of allowed category names.
    /// Deterministic: the same policy always renders to the same bytes.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "POLICY: {} (id {}, version {})\n\n",
            self.title, self.id, self.version
        ));
        out.push_str(
            "Content is VIOLATING if it falls under at least one category below, taking the \
             exclusions into account; otherwise it is NON_VIOLATING.\n",
        );
        out.push_str("\nCATEGORIES\n");
        for (i, c) in self.categories.iter().enumerate() {
            out.push_str(&format!("\n{}. {}\n", i + 1, c.name));
            out.push_str("   Violates:\n");
            push_indented(&mut out, &c.violates, "     ");
            out.push_str("   Does not violate:\n");
            push_indented(&mut out, &c.does_not_violate, "     ");
        }
        if !self.exclusions.is_empty() {
            out.push_str("\nEXCLUSIONS (never violating on these grounds alone)\n");
            for e in &self.exclusions {
                push_indented_first(&mut out, e, "- ", "  ");
            }
        }
        if !self.examples.is_empty() {
            out.push_str("\nEXAMPLES\n");
            for (i, e) in self.examples.iter().enumerate() {
                out.push_str(&format!("\nExample {}\n", i + 1));
                push_indented_first(&mut out, &e.text, "Content: ", "  ");
                // The contract says "none" for non-violating verdicts, so examples say so too.
                let category = match e.label {
                    Label::Violating => e.category.as_deref().unwrap_or("none"),
                    Label::NonViolating => "none",
                };
                out.push_str(&format!(
                    "Verdict: {} (category: {category})\n",
                    e.label.as_str()
                ));
                if let Some(x) = &e.explanation {
                    push_indented_first(&mut out, x, "Why: ", "  ");
                }
            }
        }
        out.push_str(&format!(
            "\nAllowed category names: {}; use \"none\" when the content is non_violating.\n",
            self.categories
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out
    }

    /// A stable 64-bit FNV-1a fingerprint (16 hex digits) of the instruction, the rendered policy
    /// and a compact output format, to record exactly which policy text a run used (full-format
    /// policies keep the fingerprints they had before the format existed).
    pub fn fingerprint(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let format: &[u8] = match self.output_format {
            OutputFormat::Full => b"",
            OutputFormat::Compact => b"\0output_format=compact",
        };
        for byte in self
            .instruction
            .bytes()
            .chain([0u8])
            .chain(self.render().bytes())
            .chain(format.iter().copied())
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{hash:016x}")
    }
}

fn push_indented(out: &mut String, text: &str, indent: &str) {
    for line in text.trim().lines() {
        if line.trim().is_empty() {
            out.push('\n');
        } else {
            out.push_str(indent);
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

fn push_indented_first(out: &mut String, text: &str, first: &str, rest: &str) {
    for (i, line) in text.trim().lines().enumerate() {
        out.push_str(if i == 0 { first } else { rest });
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
id = "toy"
version = "1"
task = "toy"
title = "Toy policy"
instruction = "Classify the content."
exclusions = ["Quoting to condemn."]

[[categories]]
name = "insults"
violates = "Insults aimed at a person."
does_not_violate = "Criticism of ideas."

[[categories]]
name = "threats"
violates = """
Threats of violence.
Calls for violence.
"""
does_not_violate = "Hyperbole that is clearly not a threat."

[[examples]]
text = "You are an idiot."
label = "violating"
category = "insults"
explanation = "Direct insult."

[[examples]]
text = "That argument is idiotic."
label = "non_violating"
"#;

    fn err(src: &str) -> PolicyIssue {
        match Policy::from_toml_str(src, "p.toml") {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.issue().expect("invalid, not io").clone(),
        }
    }

    fn policies_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/policies")
    }

    #[test]
    fn parses_minimal_policy() {
        let p = Policy::from_toml_str(MINIMAL, "p.toml").unwrap();
        assert_eq!(p.id, "toy");
        assert_eq!(p.category_names(), vec!["insults", "threats"]);
        assert_eq!(
            p.categories[1].violates,
            "Threats of violence.\nCalls for violence."
        );
        assert_eq!(p.examples.len(), 2);
        assert_eq!(p.examples[1].label, Label::NonViolating);
        assert_eq!(p.examples[1].category, None);
        assert!(p.category("threats").is_some());
    }

    #[test]
    fn render_contains_definitions_and_is_deterministic() {
        let p = Policy::from_toml_str(MINIMAL, "p.toml").unwrap();
        let r = p.render();
        assert!(r.starts_with("POLICY: Toy policy (id toy, version 1)"));
        assert!(r.contains("1. insults\n   Violates:\n     Insults aimed at a person.\n"));
        assert!(r.contains("     Threats of violence.\n     Calls for violence.\n"));
        assert!(r.contains("EXCLUSIONS"));
        assert!(r.contains("- Quoting to condemn.\n"));
        assert!(r.contains("Verdict: violating (category: insults)"));
        assert!(r.contains("Verdict: non_violating (category: none)"));
        assert!(r.contains("Allowed category names: insults, threats;"));
        assert!(
            !r.contains("Classify the content."),
            "instruction is not part of render()"
        );
        assert_eq!(r, p.render());
        let mut changed = p.clone();
        changed.version = "2".into();
        assert_ne!(p.fingerprint(), changed.fingerprint());
        assert_eq!(p.fingerprint().len(), 16);
    }

    #[test]
    fn missing_field_names_field_and_file() {
        let src = MINIMAL.replace("title = \"Toy policy\"\n", "");
        let e = err(&src);
        assert_eq!(e.file, "p.toml");
        assert_eq!(e.field.as_deref(), Some("title"));
        assert!(e.message.contains("missing field"), "{e}");
        assert!(e.to_string().starts_with("p.toml"), "{e}");
    }

    #[test]
    fn empty_field_reports_line() {
        let src = MINIMAL.replace("version = \"1\"", "version = \"  \"");
        let e = err(&src);
        assert_eq!(e.line, Some(3));
        assert_eq!(e.field.as_deref(), Some("version"));
        assert_eq!(
            e.to_string(),
            "p.toml:3: field \"version\": must not be empty"
        );
    }

    #[test]
    fn duplicate_category_is_rejected_with_line() {
        let src = MINIMAL.replace("name = \"threats\"", "name = \"insults\"");
        let e = err(&src);
        assert_eq!(e.field.as_deref(), Some("categories[1].name"));
        assert_eq!(e.line, Some(15));
        assert!(e.message.contains("duplicate category name"), "{e}");
    }

    #[test]
    fn unknown_label_and_category_in_examples() {
        let e = err(&MINIMAL.replace("label = \"violating\"", "label = \"bad\""));
        assert_eq!(e.field.as_deref(), Some("examples[0].label"));
        assert_eq!(e.line, Some(24));
        let e = err(&MINIMAL.replace("category = \"insults\"", "category = \"spam\""));
        assert_eq!(e.field.as_deref(), Some("examples[0].category"));
        assert!(e.message.contains("unknown category \"spam\""), "{e}");
        let e = err(&MINIMAL.replace("category = \"insults\"\n", ""));
        assert_eq!(e.field.as_deref(), Some("examples[0].category"));
    }

    #[test]
    fn bad_names_and_empty_categories() {
        let e = err(&MINIMAL.replace("name = \"insults\"", "name = \"Bad Name\""));
        assert_eq!(e.field.as_deref(), Some("categories[0].name"));
        let e = err(&MINIMAL.replace("name = \"insults\"", "name = \"none\""));
        assert_eq!(e.field.as_deref(), Some("categories[0].name"));
        let e = err(&MINIMAL.replace("id = \"toy\"", "id = \"Toy Policy\""));
        assert_eq!(e.field.as_deref(), Some("id"));
        let head = MINIMAL.split("[[categories]]").next().unwrap();
        let e = err(&format!("{head}categories = []\n"));
        assert_eq!(e.field.as_deref(), Some("categories"));
        assert_eq!(e.line, Some(9));
    }

    #[test]
    fn toml_type_and_unknown_key_errors_are_located() {
        let e = err(&MINIMAL.replace("violates = \"Insults aimed at a person.\"", "violates = 3"));
        assert_eq!(e.line, Some(11), "{e}");
        assert_eq!(e.field.as_deref(), Some("categories[0].violates"), "{e}");
        let e = err(&MINIMAL.replace(
            "does_not_violate = \"Criticism of ideas.\"",
            "does_not_violate = \"x\"\nseverity = 3",
        ));
        assert_eq!(e.field.as_deref(), Some("categories[0].severity"), "{e}");
        assert_eq!(e.line, Some(13), "{e}");
        let e = err("id = \"x\"\nversion = \n");
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn output_format_is_read_checked_and_fingerprinted() {
        let full = Policy::from_toml_str(MINIMAL, "p.toml").unwrap();
        assert_eq!(full.output_format, OutputFormat::Full);
        let src = MINIMAL.replace(
            "title = \"Toy policy\"\n",
            "title = \"Toy policy\"\noutput_format = \"compact\"\n",
        );
        let compact = Policy::from_toml_str(&src, "p.toml").unwrap();
        assert_eq!(compact.output_format, OutputFormat::Compact);
        assert_eq!(compact.render(), full.render());
        assert_ne!(compact.fingerprint(), full.fingerprint());
        let explicit = MINIMAL.replace(
            "title = \"Toy policy\"\n",
            "title = \"Toy policy\"\noutput_format = \"full\"\n",
        );
        let explicit = Policy::from_toml_str(&explicit, "p.toml").unwrap();
        assert_eq!(explicit.fingerprint(), full.fingerprint());
        let e = err(&src.replace("\"compact\"", "\"short\""));
        assert_eq!(e.field.as_deref(), Some("output_format"), "{e}");
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.message.contains("expected full or compact"), "{e}");
    }

    #[test]
    fn io_error_names_path() {
        let e = Policy::load("/nonexistent/policy.toml").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/policy.toml"));
        assert!(e.issue().is_none());
    }

    #[test]
    fn shipped_policies_load() {
        let dir = policies_dir();
        for (file, task) in [
            ("hate-speech.toml", "hate"),
            ("offensive.toml", "offensive"),
            ("prompt-harm.toml", "prompt-harm"),
        ] {
            let p = Policy::load(dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.task, task, "{file}");
            assert_eq!(format!("{}.toml", p.id), file);
            assert!(p.categories.len() >= 3, "{file}");
            assert!(!p.exclusions.is_empty(), "{file}");
            assert!(
                p.examples.iter().any(|e| e.label == Label::Violating)
                    && p.examples.iter().any(|e| e.label == Label::NonViolating),
                "{file} needs both kinds of example"
            );
            let r = p.render();
            for c in &p.categories {
                assert!(r.contains(&c.name));
            }
            for line in r
                .lines()
                .filter(|l| l.starts_with("Verdict: non_violating"))
            {
                assert_eq!(line, "Verdict: non_violating (category: none)", "{file}");
            }
        }
        let all = Policy::load_dir(&dir).unwrap();
        assert!(all.len() >= 3);
    }
}
