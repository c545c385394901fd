//! Rewards computed outside the trainer: a command ([`External`]) or an HTTP service ([`Http`]).

use super::*;

/// How an input is sent to [`External`] and [`Http`] rewards: one JSON object with `content`,
/// `label`, `categories`, `completion`, `rationale` (or null), `policy_id` and `policy_version`.
pub fn input_json(x: &RewardInput) -> Value {
    json!({
        "content": x.content,
        "label": x.label,
        "categories": x.categories,
        "completion": x.completion,
        "rationale": x.rationale,
        "policy_id": x.policy.id,
        "policy_version": x.policy.version,
    })
}

/// Read the numbers an external reward returned.
pub(crate) fn parse_number(v: &Value) -> Option<f64> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }?;
    x.is_finite().then_some(x)
}

/// A reward computed by a command. For each batch it starts `command` (program and arguments,
/// no shell), writes one JSON line per input ([`input_json`]) to its stdin, closes stdin, and
/// reads one number per line from its stdout, in order. A non-zero exit, a wrong count, a line
/// that is not a finite number, or running past `timeout` is an error naming the command.
pub struct External {
    pub name: String,
    pub command: Vec<String>,
    pub timeout: Duration,
}

impl External {
    pub(crate) fn cmd(&self) -> String {
        self.command.join(" ")
    }

    pub(crate) fn run(&self, input: String) -> Result<(String, String)> {
        let (name, cmd) = (&self.name, self.cmd());
        let program = self
            .command
            .first()
            .with_context(|| format!("reward {name}: empty command"))?;
        let mut child = Command::new(program)
            .args(&self.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("reward {name}: cannot start `{cmd}`"))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            stdout.read_to_string(&mut s).map(|_| s)
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stderr.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        });
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            if let Some(st) = child
                .try_wait()
                .with_context(|| format!("reward {name}: waiting for `{cmd}`"))?
            {
                break st;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "reward {name}: `{cmd}` did not finish within {:.1}s",
                    self.timeout.as_secs_f64()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stderr_text = err_reader.join().unwrap_or_default();
        let stdout_text = out_reader
            .join()
            .map_err(|_| anyhow::anyhow!("reward {name}: stdout reader panicked"))?
            .with_context(|| format!("reward {name}: `{cmd}` wrote output that is not UTF-8"))?;
        match writer.join() {
            Ok(Err(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                bail!("reward {name}: cannot write the inputs to `{cmd}`: {e}")
            }
            _ => {}
        }
        if !status.success() {
            let tail: String = {
                let t = stderr_text.trim();
                let skip = t.chars().count().saturating_sub(1000);
                t.chars().skip(skip).collect()
            };
            bail!("reward {name}: `{cmd}` failed ({status}): {tail}");
        }
        Ok((stdout_text, stderr_text))
    }
}

impl Reward for External {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, batch: &[RewardInput]) -> Result<Vec<f64>> {
        if batch.is_empty() {
            return Ok(vec![]);
        }
        let mut input = String::new();
        for x in batch {
            input.push_str(&input_json(x).to_string());
            input.push('\n');
        }
        let (out, _) = self.run(input)?;
        let (name, cmd) = (&self.name, self.cmd());
        let scores = out
            .lines()
            .enumerate()
            .map(|(i, line)| {
                parse_number(&Value::String(line.to_string())).with_context(|| {
                    format!(
                        "reward {name}: `{cmd}` output line {} is not a finite number: {line:?}",
                        i + 1
                    )
                })
            })
            .collect::<Result<Vec<f64>>>()?;
        if scores.len() != batch.len() {
            bail!(
                "reward {name}: `{cmd}` printed {} numbers for {} inputs",
                scores.len(),
                batch.len()
            );
        }
        Ok(scores)
    }
}

/// A reward computed by an HTTP service: POSTs `{"inputs": [input_json, ..]}` to `url` and
/// expects `{"scores": [number, ..]}` with one finite number per input.
pub struct Http {
    pub name: String,
    pub url: String,
    pub(crate) http: reqwest::blocking::Client,
}

impl Http {
    pub fn new(name: &str, url: &str, timeout: Duration) -> Result<Self> {
        Ok(Http {
            name: name.to_string(),
            url: url.to_string(),
            http: crate::openai::http_client(timeout)?,
        })
    }
}

impl Reward for Http {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, batch: &[RewardInput]) -> Result<Vec<f64>> {
        if batch.is_empty() {
            return Ok(vec![]);
        }
        let (name, url) = (&self.name, &self.url);
        let body = json!({"inputs": batch.iter().map(input_json).collect::<Vec<_>>()});
        let v = crate::openai::post_json(&self.http, url, None, &body)
            .with_context(|| format!("reward {name}"))?;
        let arr = v
            .get("scores")
            .and_then(Value::as_array)
            .with_context(|| format!("reward {name}: {url} answered without a \"scores\" array"))?;
        if arr.len() != batch.len() {
            bail!(
                "reward {name}: {url} returned {} scores for {} inputs",
                arr.len(),
                batch.len()
            );
        }
        arr.iter()
            .enumerate()
            .map(|(i, s)| {
                parse_number(s).with_context(|| {
                    format!("reward {name}: {url} score {i} is not a finite number: {s}")
                })
            })
            .collect()
    }
}
