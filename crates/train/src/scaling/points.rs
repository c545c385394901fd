//! [`read_points`]: (x, y) pairs from a JSONL file such as a run's `metrics.jsonl`.

use super::*;

/// Read `(x_key, y_key)` pairs from a JSONL file of objects, such as a run's `metrics.jsonl`.
///
/// A key is looked up as written first (`"eval/pr_auc"` is one flat key in metrics.jsonl), then,
/// if absent and it contains `/`, as a path into nested objects (`{"eval": {"pr_auc": ..}}`).
/// Rows missing either key, or holding `null`, are skipped; blank lines are ignored. A line that
/// is not a JSON object, or a present non-null field that is not a number, is an error naming the
/// file, the line number and the field.
pub fn read_points(path: impl AsRef<Path>, x_key: &str, y_key: &str) -> Result<Vec<Point>> {
    let path = path.as_ref();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let v: Value =
            serde_json::from_str(line).map_err(|e| anyhow!("{}: invalid JSON: {e}", at()))?;
        let Value::Object(obj) = v else {
            bail!("{}: expected a JSON object, got {}", at(), type_name(&v));
        };
        let get = |key: &str| -> Result<Option<f64>> {
            match lookup(&obj, key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_f64()),
                Some(other) => bail!(
                    "{}: field \"{key}\" is not a number (got {} {other})",
                    at(),
                    type_name(other)
                ),
            }
        };
        if let (Some(x), Some(y)) = (get(x_key)?, get(y_key)?) {
            out.push(Point { x, y });
        }
    }
    Ok(out)
}

pub(crate) fn lookup<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(key) {
        return Some(v);
    }
    if !key.contains('/') {
        return None;
    }
    let mut parts = key.split('/');
    let mut cur = obj.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
