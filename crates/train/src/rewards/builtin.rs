//! The built-in rewards: accuracy, format, length, the label reward of label-token RL, and the
//! LLM-judge rubric.

use super::*;

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
    pub(crate) stats: std::sync::Mutex<JudgeStats>,
}

/// What the judge did in the last call, and how many calls in a row it parsed nothing.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct JudgeStats {
    pub(crate) asked: usize,
    pub(crate) parsed: usize,
    pub(crate) unparsed_streak: usize,
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
