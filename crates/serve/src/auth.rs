//! API keys.
//!
//! Keys come from a file (`--api-keys FILE`) and/or the `MODRL_API_KEYS` environment variable.
//! Only SHA-256 hashes are kept in memory. Each entry (a line of the file; a comma- or
//! whitespace-separated item of the variable) is one of
//!
//! * `sha256:<64 hex digits>` — the SHA-256 of a key (`printf %s KEY | sha256sum`);
//! * bare 64 hex digits — also taken as a SHA-256 hash (so `sha256sum` output works once the
//!   trailing ` -` is cut; to use a 64-hex-digit string as a plaintext key, write `plain:KEY`);
//! * `plain:<key>` or any other string — a plaintext key, hashed at load.
//!
//! In the file, blank lines and lines starting with `#` are ignored. Clients send
//! `Authorization: Bearer <key>`.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// SHA-256 of a key, lowercase hex.
pub fn hash_key(key: &str) -> String {
    let d = Sha256::digest(key.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The hash an entry stands for.
pub fn parse_entry(entry: &str) -> Result<String> {
    let e = entry.trim();
    if e.is_empty() {
        bail!("empty API key");
    }
    if let Some(h) = e.strip_prefix("sha256:") {
        if !is_hex64(h) {
            bail!("\"sha256:\" must be followed by 64 hex digits");
        }
        return Ok(h.to_ascii_lowercase());
    }
    if let Some(k) = e.strip_prefix("plain:") {
        if k.is_empty() {
            bail!("empty API key after \"plain:\"");
        }
        return Ok(hash_key(k));
    }
    if is_hex64(e) {
        return Ok(e.to_ascii_lowercase());
    }
    Ok(hash_key(e))
}

/// Key hashes from a file (see the module docs); errors name the file and line.
pub fn load_file(path: &Path) -> Result<HashSet<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read API key file", path.display()))?;
    let mut out = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        out.insert(parse_entry(l).with_context(|| format!("{}:{}", path.display(), i + 1))?);
    }
    if out.is_empty() {
        bail!("{}: no API keys in the file", path.display());
    }
    Ok(out)
}

/// Key hashes from the value of `MODRL_API_KEYS` (comma- or whitespace-separated entries).
pub fn parse_env(value: &str) -> Result<HashSet<String>> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| parse_entry(s).context("MODRL_API_KEYS"))
        .collect()
}

/// The configured keys: the file's and the environment variable's together; `None` when neither
/// is set (the server then runs without authentication).
pub fn configured_keys(file: Option<&Path>, env: Option<&str>) -> Result<Option<HashSet<String>>> {
    let mut keys = HashSet::new();
    let mut any = false;
    if let Some(f) = file {
        keys.extend(load_file(f)?);
        any = true;
    }
    if let Some(v) = env.filter(|v| !v.trim().is_empty()) {
        keys.extend(parse_env(v)?);
        any = true;
    }
    Ok(any.then_some(keys))
}

/// Whether an `Authorization` header value carries one of the keys.
pub fn authorized(keys: &HashSet<String>, header: Option<&str>) -> bool {
    let Some(h) = header else { return false };
    let mut parts = h.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or("");
    let token = parts.next().unwrap_or("").trim();
    scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && keys.contains(&hash_key(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_hash_or_pass_through() {
        // sha256("secret")
        let h = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
        assert_eq!(hash_key("secret"), h);
        assert_eq!(parse_entry("secret").unwrap(), h);
        assert_eq!(parse_entry(h).unwrap(), h);
        assert_eq!(
            parse_entry(&format!("sha256:{}", h.to_uppercase())).unwrap(),
            h
        );
        assert_eq!(parse_entry(&format!("plain:{h}")).unwrap(), hash_key(h));
        assert!(parse_entry("sha256:abc").is_err());
        let keys: HashSet<String> = [h.to_string()].into();
        assert!(authorized(&keys, Some("Bearer secret")));
        assert!(authorized(&keys, Some("bearer  secret ")));
        assert!(!authorized(&keys, Some("Bearer other")));
        assert!(!authorized(&keys, Some("secret")));
        assert!(!authorized(&keys, None));
    }

    #[test]
    fn file_and_env_combine_with_line_numbers_in_errors() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("keys");
        std::fs::write(&f, "# ops keys\n\nalpha\nsha256:zz\n").unwrap();
        let e = format!("{:#}", load_file(&f).unwrap_err());
        assert!(e.contains("keys:4"), "{e}");
        std::fs::write(&f, "# ops keys\n\nalpha\n").unwrap();
        let k = configured_keys(Some(&f), Some("beta, gamma"))
            .unwrap()
            .unwrap();
        assert_eq!(k.len(), 3);
        assert!(k.contains(&hash_key("gamma")));
        assert!(configured_keys(None, Some("  ")).unwrap().is_none());
        assert!(configured_keys(None, None).unwrap().is_none());
    }
}
