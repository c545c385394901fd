//! `[rewards]` configuration and [`build_rewards`], the weighted sum the trainer uses.

use super::*;

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

pub(crate) fn default_weight() -> f64 {
    1.0
}

pub(crate) fn default_external_timeout_s() -> f64 {
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
