//! Rewards for RL on moderation outputs, and the per-step hallucination monitors.
//!
//! Each reward is a small type with one job, scoring a batch of completions ([`Reward`]). The
//! trainer combines them as a weighted sum ([`build_rewards`] from a [`RewardsConfig`]):
//!
//! | name       | what it scores                                                      | range        |
//! |------------|---------------------------------------------------------------------|--------------|
//! | `accuracy` | the verdict's label against the dataset label ([`Accuracy`])         | {-cost, 0, 1} |
//! | `format`   | keeping the output contract ([`Format`])                            | [0, 1]       |
//! | `length`   | reasoning length inside a word band ([`Length`])                    | [0, 1]       |
//! | `rubric`   | an LLM judge's rubric grade of the reasoning ([`Rubric`])           | [0, 1]       |
//! | `rubric_rules` | deterministic rubric checks of the reasoning ([`crate::rubric_rules`]) | [0, 1] |
//! | external   | a command ([`External`]) or an HTTP service ([`Http`])              | any number   |
//!
//! Monitors (not rewards; logged per step): [`instruction_hallucination`] (the output contract
//! or the instruction is broken) and [`quote_hallucination`] (the reasoning quotes text that is
//! not in the content — an invented justification).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use modrl_moderation::verdict::{self, ParseFailure, Verdict};
use modrl_moderation::{Label, Policy};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::judge::{build_judge, Judge, JudgeConfig, JudgeItem, JudgeScore};

/// One completion to score, with what the rewards may need to know about its item.
#[derive(Debug, Clone, Copy)]
pub struct RewardInput<'a> {
    /// The moderated content.
    pub content: &'a str,
    /// The dataset label: 1 violating, 0 non-violating.
    pub label: u8,
    /// The dataset's violated categories (may be empty).
    pub categories: &'a [String],
    /// The model's full answer (reasoning and verdict line; include any assistant prefix).
    pub completion: &'a str,
    /// The dataset's human rationale, when it has one.
    pub rationale: Option<&'a str>,
    /// The policy the model applied.
    pub policy: &'a Policy,
}

/// A reward function over a batch of completions: one finite number per input, in order.
pub trait Reward: Send + Sync {
    /// The name under which the reward is configured and logged.
    fn name(&self) -> &str;
    fn score(&self, batch: &[RewardInput]) -> Result<Vec<f64>>;
    /// Metrics of the last `score` call, logged with the step (e.g. `judge/parsed_fraction`).
    fn metrics(&self) -> Vec<(String, f64)> {
        vec![]
    }
}

// ---------------------------------------------------------------------------------------------
// Output contract checks.

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

fn check_reasoned_contract(completion: &str, policy: &Policy) -> ContractCheck {
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

// ---------------------------------------------------------------------------------------------
// Rewards.

/// Correctness of the verdict's label: 1 when it matches the dataset label; a false negative
/// (violating content called non-violating) gets `-fn_cost`, a false positive `-fp_cost`; an
/// output whose verdict does not parse (including an unknown category) gets 0.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Accuracy {
    /// Penalty for a missed violation. Default 0: plain 0/1 accuracy, as in the paper.
    pub fn_cost: f64,
    /// Penalty for a false alarm. Default 0.
    pub fp_cost: f64,
}

impl Reward for Accuracy {
    fn name(&self) -> &str {
        "accuracy"
    }

    fn score(&self, batch: &[RewardInput]) -> Result<Vec<f64>> {
        batch
            .iter()
            .map(|x| {
                let gold = Label::from_u8(x.label)
                    .with_context(|| format!("dataset label {} is not 0 or 1", x.label))?;
                Ok(
                    match verdict::parse(x.completion, &x.policy.category_names()) {
                        Err(_) => 0.0,
                        Ok(v) => label_reward(
                            v.label == Label::Violating,
                            gold == Label::Violating,
                            self.fn_cost,
                            self.fp_cost,
                        ),
                    },
                )
            })
            .collect()
    }
}

/// Keeping the output contract. 1 when every rule holds; 0 when there is no verdict at all;
/// otherwise partial credit, summed:
///
/// * 0.40 — the verdict parses (valid JSON, known label and category, probability in [0, 1]);
/// * 0.30 — a non-empty `<reasoning>` block is closed before the verdict;
/// * 0.15 — the verdict is the last thing in the output (parsed verdicts only);
/// * 0.15 — label, probability and category agree (parsed verdicts only).
///
/// So a malformed verdict after good reasoning earns 0.3, a bare well-formed verdict 0.7.
/// In the `no_reasoning` variant (`reasoning: false`) the 0.30 goes to "nothing precedes the
/// verdict", so a bare well-formed verdict earns 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// The prompt asked for reasoning before the verdict.
    pub reasoning: bool,
}

impl Default for Format {
    fn default() -> Self {
        Format { reasoning: true }
    }
}

/// Partial credits of [`Format`].
pub const FORMAT_PARSES: f64 = 0.40;
pub const FORMAT_REASONING: f64 = 0.30;
pub const FORMAT_LAST: f64 = 0.15;
pub const FORMAT_CONSISTENT: f64 = 0.15;

impl Format {
    /// The format score of one completion.
    pub fn score_one(completion: &str, policy: &Policy) -> f64 {
        Format::default().score_text(completion, policy)
    }

    /// The format score of one completion under this contract.
    pub fn score_text(&self, completion: &str, policy: &Policy) -> f64 {
        let c = check_contract_for(completion, policy, self.reasoning);
        if c.verdict == Err(ParseFailure::NoVerdict) {
            return 0.0;
        }
        let credit = |ok: bool, w: f64| if ok { w } else { 0.0 };
        credit(c.verdict.is_ok(), FORMAT_PARSES)
            + credit(c.reasoning_closed, FORMAT_REASONING)
            + credit(c.verdict_last, FORMAT_LAST)
            + credit(c.consistent, FORMAT_CONSISTENT)
    }
}

impl Reward for Format {
    fn name(&self) -> &str {
        "format"
    }

    fn score(&self, batch: &[RewardInput]) -> Result<Vec<f64>> {
        Ok(batch
            .iter()
            .map(|x| self.score_text(x.completion, x.policy))
            .collect())
    }
}

/// Reasoning length in words (`verdict::reasoning_text`): 1 inside `[min_words, max_words]`,
/// falling linearly to 0 at 0 words and at `2 * max_words`. Guards against the collapse of the
/// reasoning (about 220 to about 40 words) that the paper reports under accuracy-only rewards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Length {
    /// Default 120.
    pub min_words: usize,
    /// Default 320.
    pub max_words: usize,
}

impl Default for Length {
    fn default() -> Self {
        Length {
            min_words: 120,
            max_words: 320,
        }
    }
}

impl Length {
    /// The reward for a reasoning of `words` words.
    pub fn of_words(&self, words: usize) -> f64 {
        let (w, lo, hi) = (words as f64, self.min_words as f64, self.max_words as f64);
        if w < lo {
            w / lo
        } else if w <= hi {
            1.0
        } else {
            ((2.0 * hi - w) / hi).max(0.0)
        }
    }
}

impl Reward for Length {
    fn name(&self) -> &str {
        "length"
    }

    fn score(&self, batch: &[RewardInput]) -> Result<Vec<f64>> {
        Ok(batch
            .iter()
            .map(|x| self.of_words(verdict::word_count(&verdict::reasoning_text(x.completion))))
            .collect())
    }
}

/// The accuracy reward of a valid answer: 1 when it matches the gold label, `-fn_cost` for a
/// missed violation, `-fp_cost` for a false alarm ([`Accuracy`], and label-token RL's actions).
pub fn label_reward(
    answer_violating: bool,
    gold_violating: bool,
    fn_cost: f64,
    fp_cost: f64,
) -> f64 {
    match (answer_violating, gold_violating) {
        (a, g) if a == g => 1.0,
        (false, _) => -fn_cost,
        _ => -fp_cost,
    }
}

/// An LLM judge's rubric grade of the reasoning (see `crate::judge`), in [0, 1]. Completions
/// without a parseable verdict or without reasoning score 0 and are not sent to the judge.
pub struct Rubric {
    pub judge: Box<dyn Judge>,
    /// Stop with an error after this many `score` calls in a row in which the judge was asked
    /// and parsed none of its answers (0: never). A judge that scores nothing must be loud.
    pub max_unparsed_calls: usize,
    stats: std::sync::Mutex<JudgeStats>,
}

/// What the judge did in the last call, and how many calls in a row it parsed nothing.
#[derive(Debug, Default, Clone, Copy)]
struct JudgeStats {
    asked: usize,
    parsed: usize,
    unparsed_streak: usize,
}

impl Rubric {
    pub fn new(judge: Box<dyn Judge>) -> Self {
        Rubric::with_limit(judge, 3)
    }

    pub fn with_limit(judge: Box<dyn Judge>, max_unparsed_calls: usize) -> Self {
        Rubric {
            judge,
            max_unparsed_calls,
            stats: Default::default(),
        }
    }

    /// The judge's full grades (`None` where nothing was judged), e.g. to log `invented_facts`.
    pub fn judge_batch(&self, batch: &[RewardInput]) -> Result<Vec<Option<JudgeScore>>> {
        let mut rendered: Vec<(*const Policy, String)> = Vec::new();
        let mut items = Vec::new();
        let mut slots = Vec::new();
        for (i, x) in batch.iter().enumerate() {
            let Ok(v) = verdict::parse(x.completion, &x.policy.category_names()) else {
                continue;
            };
            let reasoning = verdict::reasoning_text(x.completion);
            if verdict::word_count(&reasoning) == 0 {
                continue;
            }
            let key = x.policy as *const Policy;
            let policy_text = match rendered.iter().find(|(k, _)| *k == key) {
                Some((_, t)) => t.clone(),
                None => {
                    let t = x.policy.render();
                    rendered.push((key, t.clone()));
                    t
                }
            };
            items.push(JudgeItem {
                policy_text,
                content: x.content.to_string(),
                reasoning,
                verdict_label: v.label,
            });
            slots.push(i);
        }
        let mut out = vec![None; batch.len()];
        if items.is_empty() {
            return Ok(out);
        }
        let scores = self.judge.score(&items).context("rubric judge failed")?;
        if scores.len() != items.len() {
            bail!(
                "rubric judge returned {} scores for {} items",
                scores.len(),
                items.len()
            );
        }
        for (slot, s) in slots.into_iter().zip(scores) {
            out[slot] = Some(s);
        }
        Ok(out)
    }
}

impl Reward for Rubric {
    fn name(&self) -> &str {
        "rubric"
    }

    fn score(&self, batch: &[RewardInput]) -> Result<Vec<f64>> {
        let grades = self.judge_batch(batch)?;
        let asked = grades.iter().filter(|g| g.is_some()).count();
        let parsed = grades.iter().flatten().filter(|g| g.parsed).count();
        let streak = {
            let mut st = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            st.asked = asked;
            st.parsed = parsed;
            if asked > 0 {
                st.unparsed_streak = if parsed == 0 {
                    st.unparsed_streak + 1
                } else {
                    0
                };
            }
            st.unparsed_streak
        };
        if self.max_unparsed_calls > 0 && streak >= self.max_unparsed_calls {
            bail!(
                "the rubric judge parsed none of its answers in {streak} reward calls in a row \
                 (judge/parsed_fraction 0; its last call judged {asked} completions): it scores \
                 nothing, so the rubric reward is 0 for every completion. Check the judge model \
                 or server and its answer format, or raise rewards.judge.max_unparsed_steps \
                 (0 = never stop)"
            );
        }
        Ok(grades
            .into_iter()
            .map(|s| s.map_or(0.0, |s| s.score.clamp(0.0, 1.0)))
            .collect())
    }

    fn metrics(&self) -> Vec<(String, f64)> {
        let st = *self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = vec![("judge/judged".to_string(), st.asked as f64)];
        if st.asked > 0 {
            out.push((
                "judge/parsed_fraction".to_string(),
                st.parsed as f64 / st.asked as f64,
            ));
        }
        out
    }
}

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
fn parse_number(v: &Value) -> Option<f64> {
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
    fn cmd(&self) -> String {
        self.command.join(" ")
    }

    fn run(&self, input: String) -> Result<(String, String)> {
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
    http: reqwest::blocking::Client,
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

// ---------------------------------------------------------------------------------------------
// Configuration.

/// Which rewards to use and how to weight them (TOML, e.g. a `[rewards]` table). Every field is
/// optional. The total reward is `sum(weight * reward)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardsConfig {
    /// Weight of [`Accuracy`]. Default 1: classification correctness is the objective.
    pub accuracy: f64,
    /// Weight of [`Format`]. Default 0.2: enough to keep outputs parseable and the reasoning
    /// tagged without outweighing a correct answer. With `rl.action = "label"`: the weight of
    /// `-log m`, `m` the next-token probability of the two label words.
    pub format: f64,
    /// Weight of [`Length`]. Default 0 (off); turn it on (e.g. 0.1) when the reasoning shrinks.
    pub length: f64,
    /// Weight of [`Rubric`]. Default 0: a judge costs a generation per completion; needs `judge`.
    pub rubric: f64,
    /// Weight of the deterministic rubric ([`crate::rubric_rules`]: the reasoning names a policy
    /// category that agrees with the verdict, quotes only the content, quotes evidence for a
    /// violation, addresses the exclusions of a benign verdict). Default 0; built (and logged)
    /// whenever the prompt variant has reasoning.
    pub rubric_rules: f64,
    /// `[min_words, max_words]` of [`Length`]. Default `[120, 320]`, around the ~220-word
    /// reasoning of the paper's starting models.
    pub length_band: (usize, usize),
    /// [`Accuracy`]'s penalty for a missed violation. Default 0 (plain accuracy); raise it when
    /// recall matters more than precision.
    pub fn_cost: f64,
    /// [`Accuracy`]'s penalty for a false alarm. Default 0.
    pub fp_cost: f64,
    /// The rubric judge. Default none. When set, the rubric reward is built even at weight 0, so
    /// that its scores are logged.
    pub judge: Option<JudgeConfig>,
    /// Extra rewards from commands or HTTP services (`[[rewards.external]]`). Default none.
    pub external: Vec<ExternalRewardConfig>,
}

impl Default for RewardsConfig {
    fn default() -> Self {
        RewardsConfig {
            accuracy: 1.0,
            format: 0.2,
            length: 0.0,
            rubric: 0.0,
            rubric_rules: 0.0,
            length_band: (120, 320),
            fn_cost: 0.0,
            fp_cost: 0.0,
            judge: None,
            external: vec![],
        }
    }
}

/// One external reward: exactly one of `command` and `url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalRewardConfig {
    /// Name for logs; unique, and not one of the built-in reward names.
    pub name: String,
    /// Weight in the total reward. Default 1.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Program and arguments of an [`External`] reward.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Endpoint of an [`Http`] reward.
    #[serde(default)]
    pub url: Option<String>,
    /// Seconds one batch may take. Default 300.
    #[serde(default = "default_external_timeout_s")]
    pub timeout_s: f64,
}

fn default_weight() -> f64 {
    1.0
}

fn default_external_timeout_s() -> f64 {
    300.0
}

/// Names of the built-in rewards.
pub const BUILTIN_REWARDS: [&str; 5] = ["accuracy", "format", "length", "rubric", "rubric_rules"];

/// A weighted list of rewards.
pub type WeightedRewards = Vec<(f64, Box<dyn Reward>)>;

/// Build the configured rewards: accuracy, format and length always (cheap, and logged even at
/// weight 0), the rubric when its weight is non-zero or a judge is configured, then the external
/// ones in order.
/// `reasoning`: whether the prompt variant asks for reasoning before the verdict (the format
/// reward checks the contract of that variant).
pub fn build_rewards(cfg: &RewardsConfig, reasoning: bool) -> Result<WeightedRewards> {
    for (name, w) in [
        ("accuracy", cfg.accuracy),
        ("format", cfg.format),
        ("length", cfg.length),
        ("rubric", cfg.rubric),
        ("rubric_rules", cfg.rubric_rules),
    ] {
        if !w.is_finite() {
            bail!("rewards.{name}: weight must be a finite number, got {w}");
        }
    }
    for (name, c) in [("fn_cost", cfg.fn_cost), ("fp_cost", cfg.fp_cost)] {
        if !(c.is_finite() && c >= 0.0) {
            bail!("rewards.{name} must be a non-negative number, got {c}");
        }
    }
    let (lo, hi) = cfg.length_band;
    if hi == 0 || lo > hi {
        bail!("rewards.length_band must be [min, max] with 0 <= min <= max and max > 0, got [{lo}, {hi}]");
    }
    let mut out: WeightedRewards = vec![
        (
            cfg.accuracy,
            Box::new(Accuracy {
                fn_cost: cfg.fn_cost,
                fp_cost: cfg.fp_cost,
            }),
        ),
        (cfg.format, Box::new(Format { reasoning })),
        (
            cfg.length,
            Box::new(Length {
                min_words: lo,
                max_words: hi,
            }),
        ),
    ];
    if reasoning {
        out.push((
            cfg.rubric_rules,
            Box::new(crate::rubric_rules::RubricRules::default()),
        ));
    } else if cfg.rubric_rules != 0.0 {
        bail!(
            "rewards.rubric_rules = {} grades the reasoning, but the prompt variant has none \
             (data.variant = \"no_reasoning\"); set it to 0 or use a reasoning variant",
            cfg.rubric_rules
        );
    }
    match &cfg.judge {
        Some(j) => out.push((
            cfg.rubric,
            Box::new(Rubric::with_limit(build_judge(j)?, j.max_unparsed_steps)),
        )),
        None if cfg.rubric != 0.0 => {
            bail!(
                "rewards.rubric = {} needs a [rewards.judge] table",
                cfg.rubric
            )
        }
        None => {}
    }
    let mut names: HashSet<&str> = BUILTIN_REWARDS.into_iter().collect();
    for (i, e) in cfg.external.iter().enumerate() {
        let at = format!("rewards.external[{i}]");
        if e.name.trim().is_empty() {
            bail!("{at}: name must not be empty");
        }
        if !names.insert(e.name.as_str()) {
            bail!("{at}: reward name {:?} is already used", e.name);
        }
        if !e.weight.is_finite() {
            bail!("{at} ({}): weight must be a finite number", e.name);
        }
        if !(e.timeout_s > 0.0 && e.timeout_s.is_finite()) {
            bail!("{at} ({}): timeout_s must be positive", e.name);
        }
        let timeout = Duration::from_secs_f64(e.timeout_s);
        let reward: Box<dyn Reward> = match (&e.command, &e.url) {
            (Some(cmd), None) => {
                if cmd.is_empty() || cmd[0].trim().is_empty() {
                    bail!("{at} ({}): command must name a program", e.name);
                }
                Box::new(External {
                    name: e.name.clone(),
                    command: cmd.clone(),
                    timeout,
                })
            }
            (None, Some(url)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    bail!("{at} ({}): url must start with http:// or https://", e.name);
                }
                Box::new(Http::new(&e.name, url, timeout)?)
            }
            _ => bail!("{at} ({}): give exactly one of command and url", e.name),
        };
        out.push((e.weight, reward));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Monitors.

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

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// Quoted spans of one line: straight and typographic double quotes, and single quotes that
/// open at a word start and close at a word end (so apostrophes in "don't" or "users'" are not
/// taken for quotes).
fn line_quotes(line: &str, out: &mut Vec<String>) {
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
fn normalize_text(s: &str) -> String {
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
const CONTRACT_WORDS: [&str; 9] = [
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

const QUOTE_PUNCT: &[char] = &['.', ',', ';', ':', '!', '?', '\u{2026}', ' ', '(', ')'];

/// The pieces of a quote that must be found in the content: elisions (`...`, `…`, `[...]`)
/// split it; surrounding punctuation is dropped; contract words and snake_case identifiers
/// (category names) are not content quotes.
fn quote_fragments(quote: &str) -> Vec<String> {
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

fn quote_check(completion: &str, sources: &[&str]) -> Option<bool> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::fake_server::start;
    use modrl_moderation::verdict::format_output;
    use std::path::Path;
    use std::sync::Mutex;

    fn policy() -> Policy {
        Policy::load(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/policies/hate-speech.toml"),
        )
        .unwrap()
    }

    fn v(label: Label, category: Option<&str>, p: f64) -> Verdict {
        Verdict {
            label,
            category: category.map(String::from),
            probability: p,
        }
    }

    fn words(n: usize) -> String {
        vec!["word"; n].join(" ")
    }

    const CONTENT: &str = "Those people are vermin and should be removed from our city.";

    fn input<'a>(completion: &'a str, label: u8, policy: &'a Policy) -> RewardInput<'a> {
        RewardInput {
            content: CONTENT,
            label,
            categories: &[],
            completion,
            rationale: None,
            policy,
        }
    }

    fn good_violating() -> String {
        format_output(
            "The post calls a group \"vermin\", which is dehumanization.",
            &v(Label::Violating, Some("dehumanization"), 0.93),
        )
    }

    #[test]
    fn accuracy_rewards_correct_labels_and_charges_errors() {
        let p = policy();
        let viol = good_violating();
        let safe = format_output("Nothing hateful.", &v(Label::NonViolating, None, 0.1));
        let junk = "I refuse to answer.";
        let bad_cat = "<reasoning>x</reasoning>\n{\"label\": \"violating\", \"category\": \"spam\", \"probability\": 0.9}";
        let r = Accuracy {
            fn_cost: 2.0,
            fp_cost: 0.5,
        };
        let batch = [
            input(&viol, 1, &p),   // true positive
            input(&safe, 0, &p),   // true negative
            input(&safe, 1, &p),   // false negative
            input(&viol, 0, &p),   // false positive
            input(junk, 1, &p),    // no verdict
            input(bad_cat, 1, &p), // unknown category: does not parse
        ];
        assert_eq!(r.score(&batch).unwrap(), [1.0, 1.0, -2.0, -0.5, 0.0, 0.0]);
        assert_eq!(
            Accuracy::default().score(&batch).unwrap(),
            [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert!(r.score(&[input(&viol, 2, &p)]).is_err());
    }

    #[test]
    fn format_gives_full_and_partial_credit() {
        let p = policy();
        let cases: Vec<(String, f64)> = vec![
            (good_violating(), 1.0),
            ("no verdict here".into(), 0.0),
            // Bare verdict: parses, last, consistent; no reasoning.
            (
                v(Label::NonViolating, None, 0.2).to_json_line(),
                FORMAT_PARSES + FORMAT_LAST + FORMAT_CONSISTENT,
            ),
            // Text after the verdict.
            (format!("{}\nHope this helps!", good_violating()), 0.85),
            // Inconsistent: violating with probability 0.3.
            (
                format_output("It is hateful.", &v(Label::Violating, Some("slurs"), 0.3)),
                0.85,
            ),
            // Violating without a category.
            (
                format_output("It is hateful.", &v(Label::Violating, None, 0.8)),
                0.85,
            ),
            // Unclosed reasoning (truncated), verdict inside it.
            (
                "<reasoning>It is hateful. {\"label\": \"violating\", \"category\": \"slurs\", \"probability\": 0.9}"
                    .into(),
                FORMAT_PARSES + FORMAT_LAST + FORMAT_CONSISTENT,
            ),
            // Empty reasoning block.
            (
                format!(
                    "<reasoning> </reasoning>\n{}",
                    v(Label::NonViolating, None, 0.1).to_json_line()
                ),
                0.7,
            ),
            // Good reasoning, malformed verdict.
            (
                "<reasoning>Fine.</reasoning>\n{\"label\": \"violating\", \"probability\": 0.9".into(),
                FORMAT_REASONING,
            ),
        ];
        for (text, want) in &cases {
            let got = Format::score_one(text, &p);
            assert!((got - want).abs() < 1e-12, "{text:?}: {got} vs {want}");
        }
        let batch: Vec<RewardInput> = cases.iter().map(|(t, _)| input(t, 1, &p)).collect();
        assert_eq!(Format::default().score(&batch).unwrap().len(), cases.len());
    }

    #[test]
    fn format_without_reasoning_wants_the_bare_verdict() {
        let p = policy();
        let f = Format { reasoning: false };
        let line = v(Label::Violating, Some(p.category_names()[0].as_str()), 0.9).to_json_line();
        assert!((f.score_text(&line, &p) - 1.0).abs() < 1e-12, "{line}");
        assert!(!instruction_hallucination_for(&line, &p, false));
        assert!(instruction_hallucination_for(&line, &p, true));
        // Text before the verdict loses the 0.30; a broken verdict earns nothing for it.
        let chatty = format!("Sure! {line}");
        assert!((f.score_text(&chatty, &p) - (1.0 - FORMAT_REASONING)).abs() < 1e-12);
        assert_eq!(f.score_text("{\"label\": \"maybe", &p), 0.0);
        // The reasoned contract is unchanged.
        assert!((Format::default().score_text(&line, &p) - 0.7).abs() < 1e-12);
    }

    #[test]
    fn length_band_and_falloff() {
        let l = Length::default();
        assert_eq!(l.of_words(0), 0.0);
        assert_eq!(l.of_words(60), 0.5);
        assert_eq!(l.of_words(120), 1.0);
        assert_eq!(l.of_words(320), 1.0);
        assert_eq!(l.of_words(480), 0.5);
        assert_eq!(l.of_words(640), 0.0);
        assert_eq!(l.of_words(5000), 0.0);
        let p = policy();
        let verdict_line = v(Label::NonViolating, None, 0.1);
        let c40 = format_output(&words(40), &verdict_line);
        let c200 = format_output(&words(200), &verdict_line);
        let got = l.score(&[input(&c40, 0, &p), input(&c200, 0, &p)]).unwrap();
        assert!((got[0] - 40.0 / 120.0).abs() < 1e-12, "{got:?}");
        assert_eq!(got[1], 1.0);
    }

    /// A judge that grades by reasoning length and records what it was asked.
    struct FakeJudge {
        seen: Mutex<Vec<JudgeItem>>,
    }

    impl Judge for FakeJudge {
        fn score(&self, items: &[JudgeItem]) -> Result<Vec<JudgeScore>> {
            self.seen.lock().unwrap().extend(items.iter().cloned());
            Ok(items
                .iter()
                .map(|it| JudgeScore {
                    score: (verdict::word_count(&it.reasoning) as f64 / 10.0).min(1.0),
                    invented_facts: Some(false),
                    parsed: true,
                    raw: String::new(),
                })
                .collect())
        }
    }

    #[test]
    fn rubric_sends_only_judgeable_items_and_keeps_order() {
        let p = policy();
        let judge = std::sync::Arc::new(FakeJudge {
            seen: Mutex::new(vec![]),
        });
        struct Shared(std::sync::Arc<FakeJudge>);
        impl Judge for Shared {
            fn score(&self, items: &[JudgeItem]) -> Result<Vec<JudgeScore>> {
                self.0.score(items)
            }
        }
        let r = Rubric::new(Box::new(Shared(judge.clone())));
        let five = format_output(&words(5), &v(Label::NonViolating, None, 0.1));
        let bare = v(Label::NonViolating, None, 0.1).to_json_line();
        let junk = "<reasoning>long reasoning here</reasoning> but no verdict";
        let twenty = format_output(&words(20), &v(Label::Violating, Some("slurs"), 0.9));
        let batch = [
            input(&five, 0, &p),
            input(&bare, 0, &p),
            input(junk, 0, &p),
            input(&twenty, 1, &p),
        ];
        assert_eq!(r.score(&batch).unwrap(), [0.5, 0.0, 0.0, 1.0]);
        let seen = judge.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].reasoning, words(5));
        assert_eq!(seen[0].content, CONTENT);
        assert_eq!(seen[0].verdict_label, Label::NonViolating);
        assert_eq!(seen[1].verdict_label, Label::Violating);
        assert_eq!(seen[0].policy_text, p.render());
    }

    #[test]
    fn a_judge_that_parses_nothing_is_logged_and_stops_the_run() {
        /// Parses its answers only while `parse` is set.
        struct Flaky(std::sync::atomic::AtomicBool);
        impl Judge for Flaky {
            fn score(&self, items: &[JudgeItem]) -> Result<Vec<JudgeScore>> {
                let parsed = self.0.load(std::sync::atomic::Ordering::SeqCst);
                Ok(items
                    .iter()
                    .map(|_| JudgeScore {
                        score: if parsed { 0.8 } else { 0.0 },
                        invented_facts: None,
                        parsed,
                        raw: "no rubric here".into(),
                    })
                    .collect())
            }
        }
        let p = policy();
        let judged = format_output(&words(8), &v(Label::NonViolating, None, 0.1));
        let bare = v(Label::NonViolating, None, 0.1).to_json_line();
        let batch = [input(&judged, 0, &p), input(&judged, 0, &p)];
        let flaky = std::sync::Arc::new(Flaky(true.into()));
        struct Shared(std::sync::Arc<Flaky>);
        impl Judge for Shared {
            fn score(&self, items: &[JudgeItem]) -> Result<Vec<JudgeScore>> {
                self.0.score(items)
            }
        }
        let r = Rubric::with_limit(Box::new(Shared(flaky.clone())), 2);
        assert_eq!(r.score(&batch).unwrap(), [0.8, 0.8]);
        assert_eq!(
            r.metrics(),
            vec![
                ("judge/judged".into(), 2.0),
                ("judge/parsed_fraction".into(), 1.0)
            ]
        );
        flaky.0.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(r.score(&batch).unwrap(), [0.0, 0.0]);
        assert_eq!(r.metrics()[1], ("judge/parsed_fraction".into(), 0.0));
        // A call with nothing to judge neither counts nor resets the streak.
        assert_eq!(r.score(&[input(&bare, 0, &p)]).unwrap(), [0.0]);
        assert_eq!(r.metrics(), vec![("judge/judged".into(), 0.0)]);
        let e = r.score(&batch).unwrap_err().to_string();
        assert!(
            e.contains("parsed none of its answers in 2 reward calls"),
            "{e}"
        );
        assert!(e.contains("max_unparsed_steps"), "{e}");
        // Parsing again resets the streak; a limit of 0 never stops.
        flaky.0.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(r.score(&batch).is_ok());
        flaky.0.store(false, std::sync::atomic::Ordering::SeqCst);
        let never = Rubric::with_limit(Box::new(Shared(flaky.clone())), 0);
        for _ in 0..5 {
            assert!(never.score(&batch).is_ok());
        }
    }

    fn sh(script: &str) -> External {
        External {
            name: "ext".into(),
            command: vec!["sh".into(), "-c".into(), script.into()],
            timeout: Duration::from_secs(20),
        }
    }

    #[test]
    fn external_reads_one_number_per_input_line() {
        let p = policy();
        let c = good_violating();
        // Scores 1 for inputs whose JSON says label 1, else 0.25: proves it gets the JSON lines.
        let r = sh(
            r#"while IFS= read -r l; do case "$l" in *'"label":1'*) echo 1;; *) echo 0.25;; esac; done"#,
        );
        let got = r
            .score(&[input(&c, 1, &p), input(&c, 0, &p), input(&c, 1, &p)])
            .unwrap();
        assert_eq!(got, [1.0, 0.25, 1.0]);
        assert_eq!(r.name(), "ext");
        assert!(r.score(&[]).unwrap().is_empty());
    }

    #[test]
    fn external_errors_name_the_command_and_line() {
        let p = policy();
        let c = good_violating();
        let two = [input(&c, 1, &p), input(&c, 0, &p)];
        let e = format!(
            "{:#}",
            sh("cat >/dev/null; echo 1; echo oops")
                .score(&two)
                .unwrap_err()
        );
        assert!(
            e.contains("line 2") && e.contains("oops") && e.contains("sh -c"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            sh("cat >/dev/null; echo 1").score(&two).unwrap_err()
        );
        assert!(e.contains("printed 1 numbers for 2 inputs"), "{e}");
        let e = format!(
            "{:#}",
            sh("cat >/dev/null; echo broken model >&2; exit 3")
                .score(&two)
                .unwrap_err()
        );
        assert!(e.contains("broken model") && e.contains("failed"), "{e}");
        let mut slow = sh("sleep 5");
        slow.timeout = Duration::from_millis(200);
        let e = format!("{:#}", slow.score(&two).unwrap_err());
        assert!(e.contains("did not finish"), "{e}");
        let missing = External {
            name: "gone".into(),
            command: vec!["/nonexistent/modrl-reward".into()],
            timeout: Duration::from_secs(5),
        };
        let e = format!("{:#}", missing.score(&two).unwrap_err());
        assert!(
            e.contains("cannot start `/nonexistent/modrl-reward`"),
            "{e}"
        );
    }

    #[test]
    fn http_reward_posts_inputs_and_reads_scores() {
        let srv = start(|r| {
            let b = r.json();
            let scores: Vec<f64> = b["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["label"].as_f64().unwrap() * 0.5)
                .collect();
            (200, json!({"scores": scores}).to_string())
        });
        let p = policy();
        let c = good_violating();
        let r = Http::new(
            "svc",
            &format!("{}/score", srv.url),
            Duration::from_secs(10),
        )
        .unwrap();
        let got = r.score(&[input(&c, 1, &p), input(&c, 0, &p)]).unwrap();
        assert_eq!(got, [0.5, 0.0]);
        let req = srv.requests.lock().unwrap()[0].clone();
        assert_eq!(req.path, "/score");
        let first = &req.json()["inputs"][0];
        assert_eq!(first["content"], CONTENT);
        assert_eq!(first["completion"], c);
        assert_eq!(first["policy_id"], "hate-speech");
        assert!(first["rationale"].is_null());
    }

    #[test]
    fn http_reward_rejects_bad_answers() {
        let srv = start(|r| match r.path.as_str() {
            "/short" => (200, "{\"scores\": [1]}".into()),
            "/nan" => (200, "{\"scores\": [1, \"x\"]}".into()),
            _ => (503, "{\"error\": {\"message\": \"overloaded\"}}".into()),
        });
        let p = policy();
        let c = good_violating();
        let two = [input(&c, 1, &p), input(&c, 0, &p)];
        let call = |path: &str| {
            let r = Http::new(
                "svc",
                &format!("{}{path}", srv.url),
                Duration::from_secs(10),
            )
            .unwrap();
            format!("{:#}", r.score(&two).unwrap_err())
        };
        assert!(call("/short").contains("1 scores for 2 inputs"));
        assert!(call("/nan").contains("score 1 is not a finite number"));
        let e = call("/down");
        assert!(
            e.contains("HTTP 503") && e.contains("overloaded") && e.contains("svc"),
            "{e}"
        );
    }

    #[test]
    fn build_rewards_from_toml() {
        let cfg: RewardsConfig = toml::from_str("").unwrap();
        assert_eq!(cfg, RewardsConfig::default());
        let rs = build_rewards(&cfg, true).unwrap();
        let names: Vec<(&str, f64)> = rs.iter().map(|(w, r)| (r.name(), *w)).collect();
        assert_eq!(
            names,
            [
                ("accuracy", 1.0),
                ("format", 0.2),
                ("length", 0.0),
                ("rubric_rules", 0.0)
            ]
        );
        // Without reasoning there is nothing for the deterministic rubric to grade.
        let rs = build_rewards(&cfg, false).unwrap();
        assert!(rs.iter().all(|(_, r)| r.name() != "rubric_rules"));

        let cfg: RewardsConfig = toml::from_str(
            r#"
            accuracy = 1.0
            length = 0.1
            length_band = [50, 100]
            fn_cost = 1.5

            [[external]]
            name = "toxicity"
            weight = 0.3
            command = ["sh", "-c", "while read l; do echo 0.5; done"]

            [[external]]
            name = "service"
            url = "http://127.0.0.1:9/score"
            "#,
        )
        .unwrap();
        let rs = build_rewards(&cfg, true).unwrap();
        let names: Vec<(&str, f64)> = rs.iter().map(|(w, r)| (r.name(), *w)).collect();
        assert_eq!(
            names,
            [
                ("accuracy", 1.0),
                ("format", 0.2),
                ("length", 0.1),
                ("rubric_rules", 0.0),
                ("toxicity", 0.3),
                ("service", 1.0)
            ]
        );
        // The configured band and costs reach the rewards.
        let p = policy();
        let safe = format_output(&words(25), &v(Label::NonViolating, None, 0.1));
        let batch = [input(&safe, 1, &p)];
        assert_eq!(rs[0].1.score(&batch).unwrap(), [-1.5]);
        assert_eq!(rs[2].1.score(&batch).unwrap(), [0.5]);
        assert_eq!(rs[4].1.score(&batch).unwrap(), [0.5]);
    }

    #[test]
    fn build_rewards_rejects_bad_configs() {
        let err = |t: &str| {
            let cfg: RewardsConfig = toml::from_str(t).unwrap();
            build_rewards(&cfg, true).err().unwrap().to_string()
        };
        assert!(err("rubric = 0.5").contains("[rewards.judge]"));
        let cfg: RewardsConfig = toml::from_str("rubric_rules = 0.5").unwrap();
        let e = build_rewards(&cfg, false).err().unwrap().to_string();
        assert!(
            e.contains("rubric_rules") && e.contains("no_reasoning"),
            "{e}"
        );
        assert!(err("length_band = [300, 100]").contains("length_band"));
        assert!(err("fp_cost = -1.0").contains("fp_cost"));
        assert!(
            err("[[external]]\nname = \"format\"\ncommand = [\"true\"]").contains("already used")
        );
        assert!(err("[[external]]\nname = \"x\"").contains("exactly one of command and url"));
        assert!(
            err("[[external]]\nname = \"x\"\ncommand = [\"a\"]\nurl = \"http://h\"")
                .contains("exactly one")
        );
        assert!(err("[[external]]\nname = \"x\"\nurl = \"ftp://h\"").contains("http://"));
        assert!(toml::from_str::<RewardsConfig>("acuracy = 1.0").is_err());
    }

    #[test]
    fn instruction_hallucination_flags_contract_breaks() {
        let p = policy();
        assert!(!instruction_hallucination(&good_violating(), &p));
        for bad in [
            "no verdict".to_string(),
            format!("{}\nextra", good_violating()),
            v(Label::NonViolating, None, 0.1).to_json_line(),
            format_output("x", &v(Label::NonViolating, None, 0.9)),
            "<reasoning>x</reasoning>\n{\"label\": \"violating\", \"category\": \"spam\", \"probability\": 0.9}"
                .to_string(),
            "<reasoning>x</reasoning>\n{\"label\": \"violating\", \"probability\": 0.9".to_string(),
        ] {
            assert!(instruction_hallucination(&bad, &p), "{bad:?}");
        }
    }

    #[test]
    fn contract_check_locates_the_verdict() {
        let p = policy();
        let c = check_contract(&good_violating(), &p);
        assert!(c.is_clean(), "{c:?}");
        // A JSON example inside the reasoning is not the verdict.
        let text = "<reasoning>The format is {\"label\": \"x\"}.</reasoning>\n{\"label\": \"non_violating\", \"category\": \"none\", \"probability\": 0.2}\n";
        let c = check_contract(text, &p);
        assert!(c.is_clean(), "{c:?}");
        assert_eq!(verdict::verdict_span("no json"), None);
        let s = "ab {\"label\": 1} cd";
        assert_eq!(verdict::verdict_span(s), Some((3, 15)));
    }

    #[test]
    fn quote_hallucination_checks_quotes_against_the_content() {
        let rf = |reasoning: &str| {
            format_output(reasoning, &v(Label::Violating, Some("dehumanization"), 0.9))
        };
        // Faithful quotes: case, whitespace, punctuation and elisions do not matter.
        assert_eq!(
            quote_hallucination(&rf("It says \"those people are VERMIN.\""), CONTENT),
            Some(false)
        );
        assert_eq!(
            quote_hallucination(
                &rf("It says 'Those  people ... removed from our city'."),
                CONTENT
            ),
            Some(false)
        );
        assert_eq!(
            quote_hallucination(&rf("It says \u{201C}vermin\u{201D}."), CONTENT),
            Some(false)
        );
        // Invented quotes.
        assert_eq!(
            quote_hallucination(&rf("It says \"kill them all\"."), CONTENT),
            Some(true)
        );
        assert_eq!(
            quote_hallucination(&rf("It calls them \u{2018}rats\u{2019}."), CONTENT),
            Some(true)
        );
        // Nothing quoted, or only contract words and category names.
        assert_eq!(
            quote_hallucination(
                &rf("The user doesn't like them; the users' tone is hostile."),
                CONTENT
            ),
            None
        );
        let policy_words =
            rf("This is \"violating\", 'exclusion_and_discrimination', not \"non_violating\".");
        assert_eq!(quote_hallucination(&policy_words, CONTENT), None);
        // A category name without an underscore needs the policy to be recognised.
        let named = rf("This is \"dehumanization\".");
        assert_eq!(quote_hallucination(&named, CONTENT), Some(true));
        assert_eq!(
            quote_hallucination_with_policy(&named, CONTENT, &policy()),
            Some(false)
        );
        // Quotes in the verdict line are not reasoning.
        assert_eq!(
            quote_hallucination(&good_violating(), "something else"),
            Some(true)
        );
        assert_eq!(
            quote_hallucination(
                &v(Label::Violating, Some("slurs"), 0.9).to_json_line(),
                CONTENT
            ),
            None
        );
    }

    #[test]
    fn quotes_of_the_policy_are_allowed_with_the_policy() {
        let p = policy();
        let phrase = p.categories[1]
            .violates
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        let c = format_output(
            &format!("The policy covers \"{phrase}\" and the post says \"vermin\"."),
            &v(Label::Violating, Some("dehumanization"), 0.9),
        );
        assert_eq!(quote_hallucination(&c, CONTENT), Some(true));
        assert_eq!(
            quote_hallucination_with_policy(&c, CONTENT, &p),
            Some(false)
        );
    }

    #[test]
    fn quoted_span_extraction() {
        let text = "<reasoning>He said \"a b\" and 'c d', it's the users' \u{201C}e\u{201D}; \"unclosed</reasoning>";
        assert_eq!(quoted_spans(text), ["a b", "c d", "e"]);
    }
}
