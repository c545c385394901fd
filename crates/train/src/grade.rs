//! Grading given answers with the configured rewards, outside a training run (`modrl grade`):
//! every reward term of each answer, the deterministic rubric's criteria, the LLM judge's
//! criteria with its raw answer, and how the judge agrees with the deterministic rubric.
//!
//! The judge and the rules grade different things with different instruments, so agreement is
//! reported per pair of criteria that ask the same question:
//!
//! | judge criterion     | rule criterion | the question                                     |
//! |---------------------|----------------|--------------------------------------------------|
//! | `grounded`          | `grounded`     | is what the reasoning quotes in the content?     |
//! | `no_invented_facts` | `grounded`     | does it invent nothing (a quote is a checkable fact)? |
//! | `applies_policy`    | `category`     | does it reason with this policy's categories?    |
//!
//! A judge criterion passes at 0.5 or more. Per pair: the answers where both apply, the share
//! on which they agree and Cohen's kappa (agreement beyond what the two pass rates give by
//! chance); over all judged answers, the Pearson correlation of the two total scores.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[cfg(doc)]
use crate::judge::build_judge;
use crate::judge::{judge_criteria, Judge, JudgeScore, RUBRIC_CRITERIA};
use crate::rewards::{build_rewards, RewardInput, RewardsConfig, Rubric};
use crate::rubric_rules::{self, RuleGrades, CRITERIA};

/// One graded answer.
#[derive(Debug, Clone, Serialize)]
pub struct Graded {
    /// Each configured reward's value (`rubric` only when a judge is configured).
    pub rewards: BTreeMap<String, f64>,
    /// The weighted sum the trainer would use.
    pub total: f64,
    /// The deterministic rubric's criteria (absent: no parseable verdict or no reasoning).
    pub rules: Option<BTreeMap<String, Option<bool>>>,
    /// The judge's grade (absent: no judge, or nothing to judge).
    pub judge: Option<JudgeGrade>,
}

/// What the judge answered for one item.
#[derive(Debug, Clone, Serialize)]
pub struct JudgeGrade {
    /// Whether all four criteria were read from the answer.
    pub parsed: bool,
    /// The rubric score (mean of the criteria, missing ones 0).
    pub score: f64,
    /// Each criterion the answer gave.
    pub criteria: BTreeMap<String, Option<f64>>,
    /// The answer as generated.
    pub raw: String,
}

impl From<&JudgeScore> for JudgeGrade {
    fn from(s: &JudgeScore) -> Self {
        JudgeGrade {
            parsed: s.parsed,
            score: s.score,
            criteria: RUBRIC_CRITERIA
                .iter()
                .zip(judge_criteria(&s.raw))
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            raw: s.raw.clone(),
        }
    }
}

/// Grade `answers` with the rewards of `cfg`, `batch` answers per reward call, and with `judge`
/// (e.g. [`build_judge`] of `cfg.judge`) as the rubric reward. `reasoning`: whether the answers
/// were asked to reason before the verdict (the format contract).
pub fn grade_answers(
    cfg: &RewardsConfig,
    reasoning: bool,
    judge: Option<Box<dyn Judge>>,
    answers: &[RewardInput],
    batch: usize,
) -> Result<Vec<Graded>> {
    if batch == 0 {
        bail!("the grading batch must hold at least one answer");
    }
    // The judge separately, to keep its full answers; every other reward as the trainer builds it.
    let others = RewardsConfig {
        judge: None,
        rubric: 0.0,
        ..cfg.clone()
    };
    let rewards = build_rewards(&others, reasoning)?;
    // Never stop on unparsed answers here: counting them is the point.
    let judge = judge.map(|j| Rubric::with_limit(j, 0));
    let mut out = Vec::with_capacity(answers.len());
    for chunk in answers.chunks(batch) {
        let mut per: Vec<Vec<(String, f64, f64)>> = vec![vec![]; chunk.len()];
        for (w, r) in &rewards {
            for (p, v) in per.iter_mut().zip(r.score(chunk)?) {
                p.push((r.name().to_string(), *w, v));
            }
        }
        let judged = match &judge {
            Some(j) => j.judge_batch(chunk)?,
            None => vec![None; chunk.len()],
        };
        for ((x, terms), js) in chunk.iter().zip(per).zip(judged) {
            let mut rewards: BTreeMap<String, f64> = BTreeMap::new();
            let mut total = 0.0;
            for (name, w, v) in terms {
                total += w * v;
                rewards.insert(name, v);
            }
            if judge.is_some() {
                let v = js.as_ref().map_or(0.0, |s| s.score.clamp(0.0, 1.0));
                total += cfg.rubric * v;
                rewards.insert("rubric".into(), v);
            }
            out.push(Graded {
                rewards,
                total,
                rules: rubric_rules::grade(x).map(|g| rules_map(&g)),
                judge: js.as_ref().map(JudgeGrade::from),
            });
        }
    }
    Ok(out)
}

/// The rewards of a TOML file: its `[rewards]` table (a run config), or the whole file when it
/// holds only that table's keys. Errors name the file and line.
pub fn load_rewards(path: &Path) -> Result<RewardsConfig> {
    #[derive(serde::Deserialize)]
    struct WithRewards {
        rewards: Option<RewardsConfig>,
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let doc: WithRewards = crate::config::parse_toml(&text, path)?;
    match doc.rewards {
        Some(r) => Ok(r),
        None => crate::config::parse_toml(&text, path).context(
            "expected a [rewards] table (a run config) or a file of the [rewards] table's keys",
        ),
    }
}

fn rules_map(g: &RuleGrades) -> BTreeMap<String, Option<bool>> {
    CRITERIA
        .iter()
        .zip(g.as_array())
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// The pairs of (judge criterion, rule criterion) that ask the same question.
pub const AGREEMENT_PAIRS: [(&str, &str); 3] = [
    ("grounded", "grounded"),
    ("no_invented_facts", "grounded"),
    ("applies_policy", "category"),
];

/// How one judge criterion agrees with one rule criterion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairAgreement {
    pub judge: String,
    pub rule: String,
    /// Answers where the judge gave the criterion and the rule applied.
    pub n: usize,
    /// Share of those on which both pass or both fail.
    pub agreement: Option<f64>,
    /// Cohen's kappa (`None` when chance agreement is 1: one side always says the same).
    pub kappa: Option<f64>,
    /// Pass rates of each side on those answers.
    pub judge_pass_rate: Option<f64>,
    pub rule_pass_rate: Option<f64>,
}

/// The summary of a grading: reward means, the judge's parse rate, agreement with the rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub answers: usize,
    /// Mean of each reward over all answers.
    pub reward_means: BTreeMap<String, f64>,
    /// Answers the rules could grade (a verdict and reasoning).
    pub rules_graded: usize,
    /// Answers sent to the judge, and the share whose answer gave all four criteria.
    pub judged: usize,
    pub judge_parsed_fraction: Option<f64>,
    /// Pearson correlation of the judge's and the rules' scores over the answers both graded.
    pub score_correlation: Option<f64>,
    pub pairs: Vec<PairAgreement>,
}

pub fn summarize(graded: &[Graded]) -> Summary {
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for g in graded {
        for (k, v) in &g.rewards {
            *sums.entry(k.clone()).or_default() += v;
        }
    }
    let n = graded.len().max(1) as f64;
    let judged: Vec<&JudgeGrade> = graded.iter().filter_map(|g| g.judge.as_ref()).collect();
    let both: Vec<(f64, f64)> = graded
        .iter()
        .filter_map(|g| {
            let j = g.judge.as_ref()?;
            let r = g.rules.as_ref()?;
            let applicable: Vec<bool> = r.values().flatten().copied().collect();
            (!applicable.is_empty()).then(|| {
                let rule_score =
                    applicable.iter().filter(|&&p| p).count() as f64 / applicable.len() as f64;
                (j.score, rule_score)
            })
        })
        .collect();
    let pairs = AGREEMENT_PAIRS
        .iter()
        .map(|(jk, rk)| {
            let obs: Vec<(bool, bool)> = graded
                .iter()
                .filter_map(|g| {
                    let j = g.judge.as_ref()?.criteria.get(*jk).copied().flatten()?;
                    let r = g.rules.as_ref()?.get(*rk).copied().flatten()?;
                    Some((j >= 0.5, r))
                })
                .collect();
            agreement(jk, rk, &obs)
        })
        .collect();
    Summary {
        answers: graded.len(),
        reward_means: sums.into_iter().map(|(k, v)| (k, v / n)).collect(),
        rules_graded: graded.iter().filter(|g| g.rules.is_some()).count(),
        judged: judged.len(),
        judge_parsed_fraction: (!judged.is_empty())
            .then(|| judged.iter().filter(|j| j.parsed).count() as f64 / judged.len() as f64),
        score_correlation: pearson(&both),
        pairs,
    }
}

fn agreement(judge: &str, rule: &str, obs: &[(bool, bool)]) -> PairAgreement {
    let n = obs.len();
    let rate = |f: &dyn Fn(&(bool, bool)) -> bool| {
        (n > 0).then(|| obs.iter().filter(|o| f(o)).count() as f64 / n as f64)
    };
    let agree = rate(&|(a, b)| a == b);
    let (pj, pr) = (rate(&|o| o.0), rate(&|o| o.1));
    let kappa = match (agree, pj, pr) {
        (Some(po), Some(pj), Some(pr)) => {
            let pe = pj * pr + (1.0 - pj) * (1.0 - pr);
            (pe < 1.0 - 1e-12).then(|| (po - pe) / (1.0 - pe))
        }
        _ => None,
    };
    PairAgreement {
        judge: judge.into(),
        rule: rule.into(),
        n,
        agreement: agree,
        kappa,
        judge_pass_rate: pj,
        rule_pass_rate: pr,
    }
}

fn pearson(xy: &[(f64, f64)]) -> Option<f64> {
    if xy.len() < 2 {
        return None;
    }
    let n = xy.len() as f64;
    let (mx, my) = (
        xy.iter().map(|p| p.0).sum::<f64>() / n,
        xy.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xy {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::JudgeItem;

    #[test]
    fn kappa_and_agreement_match_hand_counts() {
        // 10 answers: both pass 4, both fail 3, judge-only 2, rule-only 1.
        let mut obs = vec![(true, true); 4];
        obs.extend(vec![(false, false); 3]);
        obs.extend(vec![(true, false); 2]);
        obs.push((false, true));
        let a = agreement("grounded", "grounded", &obs);
        assert_eq!(a.n, 10);
        assert!((a.agreement.unwrap() - 0.7).abs() < 1e-12);
        // pj = 0.6, pr = 0.5: pe = 0.3 + 0.2 = 0.5, kappa = (0.7 - 0.5) / 0.5 = 0.4.
        assert!((a.kappa.unwrap() - 0.4).abs() < 1e-12);
        // The judge always passes: agreement is only what chance gives, kappa 0.
        let a = agreement("g", "g", &[(true, true), (true, false)]);
        assert_eq!(a.kappa, Some(0.0));
        // Both sides always pass: chance agreement is 1, kappa undefined (not a division by 0).
        let a = agreement("g", "g", &[(true, true), (true, true)]);
        assert_eq!((a.agreement, a.kappa), (Some(1.0), None));
        assert_eq!(agreement("g", "g", &[]).agreement, None);
    }

    #[test]
    fn rewards_from_a_run_config_or_a_bare_table() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run.toml");
        std::fs::write(
            &run,
            "stages = [\"rl\"]\n[model]\npath = \"m\"\n[rewards]\nformat = 0.5\n",
        )
        .unwrap();
        assert_eq!(load_rewards(&run).unwrap().format, 0.5);
        let bare = dir.path().join("rewards.toml");
        std::fs::write(&bare, "rubric_rules = 1.0\n").unwrap();
        assert_eq!(load_rewards(&bare).unwrap().rubric_rules, 1.0);
        std::fs::write(&bare, "accuracy = 1.0\nbogus = 2\n").unwrap();
        let e = format!("{:#}", load_rewards(&bare).unwrap_err());
        assert!(e.contains("rewards.toml:2") && e.contains("bogus"), "{e}");
    }

    #[test]
    fn pearson_of_a_line_is_one() {
        assert!((pearson(&[(0.0, 1.0), (0.5, 2.0), (1.0, 3.0)]).unwrap() - 1.0).abs() < 1e-12);
        assert!((pearson(&[(0.0, 1.0), (1.0, 0.0)]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&[(0.0, 1.0), (0.0, 2.0)]), None);
    }

    /// A judge answering from a fixed list, to test the bookkeeping without a model.
    struct Scripted(Vec<&'static str>);
    impl Judge for Scripted {
        fn score(&self, items: &[JudgeItem]) -> Result<Vec<crate::judge::JudgeScore>> {
            Ok(items
                .iter()
                .zip(self.0.iter().cycle())
                .map(|(_, raw)| crate::judge::parse_judge_answer(raw))
                .collect())
        }
    }

    #[test]
    fn grades_every_reward_and_the_rules_and_summarizes() {
        let policy = crate::test_util::policy("offensive-compact");
        let content = "you are a total idiot";
        let good = "<reasoning>\nThe post calls the reader \"a total idiot\": an insult, \
                    offensive_language under the policy.\n</reasoning>\n{\"label\": \"violating\", \"category\": \"offensive_language\", \"probability\": 0.9}";
        let invented = "<reasoning>\nThe post says \"go away forever\", an insult under \
                        offensive_language.\n</reasoning>\n{\"label\": \"violating\", \"category\": \"offensive_language\", \"probability\": 0.8}";
        let broken = "no verdict at all";
        let inputs: Vec<RewardInput> = [good, invented, broken]
            .iter()
            .map(|c| RewardInput {
                content,
                label: 1,
                categories: &[],
                completion: c,
                rationale: None,
                policy: &policy,
            })
            .collect();
        let cfg = RewardsConfig::default();
        let g = grade_answers(&cfg, true, None, &inputs, 2).unwrap();
        assert_eq!(g.len(), 3);
        for name in ["accuracy", "format", "length", "rubric_rules"] {
            assert!(
                g[0].rewards.contains_key(name),
                "{name} missing: {:?}",
                g[0].rewards
            );
        }
        assert!(!g[0].rewards.contains_key("rubric"), "no judge configured");
        let rules = g[0].rules.as_ref().unwrap();
        assert_eq!(rules["grounded"], Some(true));
        assert_eq!(g[1].rules.as_ref().unwrap()["grounded"], Some(false));
        assert!(g[2].rules.is_none(), "no verdict: the rules do not grade");
        let total: f64 = cfg.accuracy * g[0].rewards["accuracy"]
            + cfg.format * g[0].rewards["format"]
            + cfg.length * g[0].rewards["length"]
            + cfg.rubric_rules * g[0].rewards["rubric_rules"];
        assert!((g[0].total - total).abs() < 1e-12);

        // With a judge (through the same Rubric the trainer uses), one answer per call: the
        // first answer's grade parses (all four criteria), the second's does not.
        let judge = Scripted(vec![
            r#"{"applies_policy": 1, "grounded": 1, "no_invented_facts": 1, "consistent": 1}"#,
            "grounded: 0",
        ]);
        let cfg = RewardsConfig { rubric: 0.5, ..cfg };
        let graded = grade_answers(&cfg, true, Some(Box::new(judge)), &inputs[..2], 2).unwrap();
        assert_eq!(graded[0].rewards["rubric"], 1.0);
        assert!(
            (graded[0].total - total - 0.5).abs() < 1e-12,
            "rubric weight in the total"
        );
        let mut graded = graded;
        graded.push(g[2].clone());
        assert!(
            graded[2].judge.is_none(),
            "nothing to judge without a verdict"
        );
        let s = summarize(&graded);
        assert_eq!((s.answers, s.rules_graded, s.judged), (3, 2, 2));
        assert_eq!(s.judge_parsed_fraction, Some(0.5));
        let grounded = &s.pairs[0];
        assert_eq!(
            (grounded.judge.as_str(), grounded.rule.as_str()),
            ("grounded", "grounded")
        );
        // Answer 1: judge 1 / rule pass; answer 2: judge 0 / rule fail: they agree twice.
        assert_eq!(grounded.n, 2);
        assert_eq!(grounded.agreement, Some(1.0));
        assert_eq!(grounded.kappa, Some(1.0));
        // no_invented_facts was only given for the first answer.
        assert_eq!(s.pairs[1].n, 1);
    }
}
