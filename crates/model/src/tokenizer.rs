//! Tokenizer (`tokenizer.json` through the `tokenizers` crate) and chat template (Jinja from
//! `chat_template.jinja` or `tokenizer_config.json`, rendered with `minijinja` the way
//! `transformers.apply_chat_template` renders it with jinja2).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};
use serde::{Deserialize, Serialize};

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Message {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// A model's tokenizer together with its chat template and special tokens.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    chat_template: Option<String>,
    /// Special tokens as strings (bos_token, eos_token, pad_token, unk_token), passed to templates.
    special: Vec<(String, String)>,
    pub eos_token_id: Option<u32>,
    pub path: PathBuf,
}

fn token_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(String::from),
        _ => None,
    }
}

impl Tokenizer {
    /// Load `tokenizer.json`, `tokenizer_config.json` and `chat_template.jinja` from a model directory.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            bail!(
                "{}: missing (the model directory has no tokenizer)",
                path.display()
            );
        }
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| anyhow!("{}: cannot load tokenizer: {e}", path.display()))?;
        let mut chat_template = None;
        let mut special = Vec::new();
        let cfg_path = dir.join("tokenizer_config.json");
        if cfg_path.exists() {
            let text = std::fs::read_to_string(&cfg_path)
                .with_context(|| format!("{}: cannot read", cfg_path.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: invalid JSON", cfg_path.display()))?;
            for k in ["bos_token", "eos_token", "pad_token", "unk_token"] {
                if let Some(s) = v.get(k).and_then(token_string) {
                    special.push((k.to_string(), s));
                }
            }
            chat_template = match v.get("chat_template") {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                // A list of named templates: take "default".
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                    .and_then(|t| t.get("template")?.as_str().map(String::from)),
                _ => None,
            };
        }
        let jinja = dir.join("chat_template.jinja");
        if jinja.exists() {
            chat_template = Some(
                std::fs::read_to_string(&jinja)
                    .with_context(|| format!("{}: cannot read", jinja.display()))?,
            );
        }
        let eos_token_id = special
            .iter()
            .find(|(k, _)| k == "eos_token")
            .and_then(|(_, s)| inner.token_to_id(s));
        Ok(Tokenizer {
            inner,
            chat_template,
            special,
            eos_token_id,
            path,
        })
    }

    /// Check that this tokenizer fits a model with `vocab_size` embedding rows.
    pub fn check_vocab(&self, vocab_size: usize) -> Result<()> {
        let n = self.inner.get_vocab_size(true);
        if n > vocab_size {
            bail!(
                "{}: tokenizer has {n} tokens but the model's embedding has {vocab_size} rows; \
                 the tokenizer does not belong to this model",
                self.path.display()
            );
        }
        Ok(())
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Encode text without adding special tokens (the chat template already holds them).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| anyhow!("tokenizer: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| anyhow!("tokenizer: {e}"))
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn has_chat_template(&self) -> bool {
        self.chat_template.is_some()
    }

    /// Render messages with the chat template, as `apply_chat_template(..., tokenize=False)` does.
    pub fn apply_chat_template(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let template = self.chat_template.as_deref().with_context(|| {
            format!(
                "{}: the model has no chat template (tokenizer_config.json or chat_template.jinja)",
                self.path.display()
            )
        })?;
        render_chat_template(template, messages, add_generation_prompt, &self.special)
    }

    /// Render and encode a chat prompt.
    pub fn encode_chat(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>> {
        self.encode(&self.apply_chat_template(messages, add_generation_prompt)?)
    }
}

/// Serialise like Python's `json.dumps(x, ensure_ascii=False, indent=indent)` (the `tojson` filter
/// transformers installs), so templates that print JSON match byte for byte.
fn py_json(v: &serde_json::Value, indent: Option<usize>, depth: usize, out: &mut String) {
    use serde_json::Value as J;
    let nl = |out: &mut String, d: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * d));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v {
        J::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                nl(out, depth + 1);
                py_json(x, indent, depth + 1, out);
            }
            nl(out, depth);
            out.push(']');
        }
        J::Object(o) if !o.is_empty() => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                nl(out, depth + 1);
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push_str(": ");
                py_json(x, indent, depth + 1, out);
            }
            nl(out, depth);
            out.push('}');
        }
        J::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap();
            if f.fract() == 0.0 && f.abs() < 1e16 {
                out.push_str(&format!("{f:.1}"));
            } else {
                out.push_str(&n.to_string());
            }
        }
        other => out.push_str(&serde_json::to_string(other).unwrap()),
    }
}

/// Render a Jinja chat template with jinja2's settings as transformers uses them
/// (trim_blocks, lstrip_blocks, loop controls, Python string methods, `raise_exception`,
/// `strftime_now`, Python-style `tojson`).
pub fn render_chat_template(
    template: &str,
    messages: &[Message],
    add_generation_prompt: bool,
    special: &[(String, String)],
) -> Result<String> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<Value, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env.add_function("strftime_now", |fmt: String| -> Result<Value, JinjaError> {
        Ok(Value::from(format_now(&fmt)))
    });
    env.add_filter(
        "tojson",
        |v: Value, indent: Option<usize>| -> Result<String, JinjaError> {
            let j = serde_json::to_value(&v)
                .map_err(|e| JinjaError::new(ErrorKind::InvalidOperation, e.to_string()))?;
            let mut s = String::new();
            py_json(&j, indent, 0, &mut s);
            Ok(s)
        },
    );
    env.add_template("chat", template)
        .map_err(|e| anyhow!("invalid chat template: {e:#}"))?;
    let tmpl = env.get_template("chat").unwrap();
    let mut ctx: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    ctx.insert("messages".into(), serde_json::to_value(messages)?);
    ctx.insert("add_generation_prompt".into(), add_generation_prompt.into());
    for (k, v) in special {
        ctx.insert(k.clone(), v.clone().into());
    }
    tmpl.render(Value::from_serialize(&ctx))
        .map_err(|e| anyhow!("chat template failed: {e:#}"))
}

/// The current UTC time as (year, month, day, seconds into the day). Written by hand (Howard
/// Hinnant's civil-from-days) rather than pulling a date crate for two call sites.
pub fn utc_now() -> (i64, i64, i64, i64) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs.rem_euclid(86_400))
}

/// `strftime` for the few formats chat templates use (`%d %b %Y` and friends), in UTC.
fn format_now(fmt: &str) -> String {
    let (y, m, d, _) = utc_now();
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let month = MONTHS[(m - 1) as usize];
    fmt.replace("%d", &format!("{d:02}"))
        .replace("%m", &format!("{m:02}"))
        .replace("%Y", &y.to_string())
        .replace("%B", month)
        .replace("%b", &month[..3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_chatml_with_jinja_whitespace_rules() {
        let t = "{% for m in messages %}\n  {{- '<|im_start|>' + m['role'] + '\\n' + m['content'].strip() + '<|im_end|>\\n' }}\n{% endfor %}\n{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        let msgs = [
            Message::new("system", "be brief "),
            Message::new("user", "hi"),
        ];
        let s = render_chat_template(t, &msgs, true, &[]).unwrap();
        // What jinja2 (trim_blocks, lstrip_blocks) renders for this template: `{{-` strips the
        // indentation, the newline after `{{ }}` stays.
        assert_eq!(s, "<|im_start|>system\nbe brief<|im_end|>\n\n<|im_start|>user\nhi<|im_end|>\n\n<|im_start|>assistant\n");
    }

    #[test]
    fn raise_exception_surfaces_as_error() {
        let t = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}";
        let e = render_chat_template(t, &[Message::new("assistant", "x")], false, &[]).unwrap_err();
        assert!(
            format!("{e:#}").contains("first message must be from the user"),
            "{e:#}"
        );
    }

    #[test]
    fn tojson_matches_python_json_dumps() {
        let v: serde_json::Value = serde_json::json!({"a": [1, 2.0, "é"], "b": {}});
        let mut s = String::new();
        py_json(&v, None, 0, &mut s);
        assert_eq!(s, r#"{"a": [1, 2.0, "é"], "b": {}}"#);
        let mut s = String::new();
        py_json(&serde_json::json!({"a": [1]}), Some(2), 0, &mut s);
        assert_eq!(s, "{\n  \"a\": [\n    1\n  ]\n}");
    }
}
