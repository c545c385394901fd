//! The run configuration (`modrl train --config run.toml`). Every knob has a documented default;
//! defaults follow the paper where it speaks (beta = 0, group-normalised advantages) and TRL's
//! `GRPOConfig` / `SFTConfig` otherwise. `docs/config-reference.md` lists them all.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use modrl_model::LoraConfig;
use modrl_moderation::prompt::Variant;
use serde::{Deserialize, Serialize};

use crate::advantage::ScaleRewards;
use crate::loss::{ImportanceSamplingLevel, LossType};
use crate::rewards::RewardsConfig;

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub model: ModelConfig,
    /// LoRA adapter settings; absent = full fine-tuning.
    #[serde(default)]
    pub lora: Option<LoraConfig>,
    pub data: DataConfig,
    /// Stages in order: `["sft", "rl"]` (SFT then RL), `["rl"]` (RL only) or `["sft"]` (the SFT
    /// baseline RL must beat). Default: SFT then RL.
    #[serde(default = "default_stages")]
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub sft: SftConfig,
    #[serde(default)]
    pub rl: RlConfig,
    #[serde(default)]
    pub rewards: RewardsConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default)]
    pub run: RunSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Sft,
    Rl,
}

fn default_stages() -> Vec<Stage> {
    vec![Stage::Sft, Stage::Rl]
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// HF model directory (Llama / Qwen2 / Qwen3 family).
    pub path: PathBuf,
    /// `cpu`, `cuda` or `cuda:N`. Default `cpu`.
    #[serde(default = "default_device")]
    pub device: String,
    /// `f32` or `bf16` (CUDA). Default `f32`.
    #[serde(default = "default_dtype")]
    pub dtype: String,
    /// Start from this PEFT adapter (e.g. an earlier SFT run). Default none.
    #[serde(default)]
    pub adapter: Option<PathBuf>,
}

fn default_device() -> String {
    "cpu".into()
}
fn default_dtype() -> String {
    "f32".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Canonical JSONL with splits (`modrl data import` writes one).
    pub path: PathBuf,
    /// The policy the classifier is trained on.
    pub policy: PathBuf,
    /// Split used for training. Default `train`.
    #[serde(default = "default_train_split")]
    pub train_split: String,
    /// Split used for periodic and final evaluation. Default `val`.
    #[serde(default = "default_val_split")]
    pub val_split: String,
    /// Use at most this many training examples (the paper: RL needs hundreds of labels). Default: all.
    #[serde(default)]
    pub max_train_examples: Option<usize>,
    /// Share of positives among the training examples kept by `max_train_examples` (label sparsity
    /// makes groups of all-negative prompts frequent; 0.5 balances them). Default: keep the
    /// natural prevalence.
    #[serde(default)]
    pub positive_fraction: Option<f64>,
    /// Train only on examples whose text has at most this many characters (long outliers pad every
    /// micro-batch to their length, which costs CPU time; evaluation keeps every length).
    /// Default: no limit.
    #[serde(default)]
    pub max_text_chars: Option<usize>,
    /// Use at most this many validation examples. Default 200.
    #[serde(default = "default_max_val")]
    pub max_val_examples: usize,
    /// Fold the system message into the user turn (templates without a system role).
    #[serde(default)]
    pub no_system_role: bool,
    /// Prompt variant: `standard` (reason, then the verdict line), `reflection` (reason, re-check
    /// every category, then the verdict line) or `no_reasoning` (the answer is the verdict line
    /// alone: SFT targets and RL rollouts are verdict-only, and they train exactly the label token
    /// that verdict-token scoring reads). Default `standard`.
    #[serde(default = "default_variant")]
    pub variant: Variant,
}

fn default_train_split() -> String {
    "train".into()
}
fn default_val_split() -> String {
    "val".into()
}
fn default_max_val() -> usize {
    200
}
fn default_variant() -> Variant {
    Variant::Standard
}

/// Supervised fine-tuning on the output contract.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    /// Optimizer steps. Default 50.
    pub max_steps: usize,
    /// Examples per optimizer step. Default 8.
    pub batch_size: usize,
    /// Examples per forward/backward (gradient accumulation splits the batch). Default 8.
    pub micro_batch_size: usize,
    /// Peak learning rate (TRL SFTConfig: 2e-5 for full fine-tuning; LoRA wants ~10x). Default 2e-4.
    pub learning_rate: f64,
    /// Linear warmup steps, then cosine decay. Default 5.
    pub warmup_steps: usize,
    /// Gradient clipping norm. Default 1.0.
    pub max_grad_norm: f64,
    /// Weight decay (AdamW). Default 0.
    pub weight_decay: f64,
    /// Share of SFT examples trained in the no-reasoning format (the prompt ends with the verdict
    /// prefix and the target is the rest of the verdict line). The templated reasoning of the full
    /// format states the decision in one token among ~60, so the decision gets little gradient;
    /// verdict-only examples put it on the label token that verdict-token scoring reads. Default 0
    /// (every example has reasoning, as in the paper).
    pub verdict_only_fraction: f64,
}

impl Default for SftConfig {
    fn default() -> Self {
        SftConfig {
            max_steps: 50,
            batch_size: 8,
            micro_batch_size: 8,
            learning_rate: 2e-4,
            warmup_steps: 5,
            max_grad_norm: 1.0,
            weight_decay: 0.0,
            verdict_only_fraction: 0.0,
        }
    }
}

/// GRPO-family RL. Defaults: the paper where it speaks, else TRL's GRPOConfig.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RlConfig {
    /// Optimizer steps. Default 100.
    pub max_steps: usize,
    /// Prompts per step (each gets `num_generations` completions). Default 4.
    pub prompts_per_step: usize,
    /// G, completions per prompt (the group of group-normalised advantages). Default 8 (TRL).
    pub num_generations: usize,
    /// Longest completion in tokens. Default 256 (TRL).
    pub max_completion_length: usize,
    /// Sampling temperature of rollouts. Default 1.0 (TRL).
    pub temperature: f64,
    /// Nucleus sampling for rollouts. Default 1.0.
    pub top_p: f64,
    /// Peak learning rate (TRL: 1e-6 full; LoRA wants more). Default 1e-5.
    pub learning_rate: f64,
    /// Linear warmup steps, then cosine decay to 10 %. Default 0.
    pub warmup_steps: usize,
    /// KL coefficient to a frozen reference (k3 estimator; exact over the two labels with
    /// `action = "label"`). Default 0.0: the paper, and TRL since 0.19; no reference model is
    /// loaded then.
    pub beta: f64,
    /// Lower clip range of the ratio. Default 0.2.
    pub epsilon: f64,
    /// Upper clip range (DAPO clip-higher uses 0.28). Default: `epsilon`.
    pub epsilon_high: Option<f64>,
    /// Two-sided clipping (INTELLECT-2, TRL's `delta`): ratios multiplying negative advantages
    /// are also capped at `delta` (> 1 + `epsilon_high`). Default: unset (off).
    pub delta: Option<f64>,
    /// Loss aggregation: `grpo` (per-sequence mean), `dapo` (token mean over the batch),
    /// `dr_grpo` (constant normaliser), `bnpo`. Default `dapo` (TRL's default).
    pub loss_type: LossType,
    /// `token` (GRPO) or `sequence` (GSPO) importance ratios. Default `token`.
    pub importance_sampling_level: ImportanceSamplingLevel,
    /// `group`, `batch` or `none` reward scaling in the advantage. Default `group` (the paper's
    /// sequence-level reward normalisation within each group).
    pub scale_rewards: ScaleRewards,
    /// Policy updates per batch of rollouts (old log-probs kept for the ratio). Default 1.
    pub num_iterations: usize,
    /// Drop groups whose rewards are all equal (zero advantage, no signal) and draw more prompts
    /// until the batch is full (DAPO dynamic sampling). Default false.
    pub dynamic_sampling: bool,
    /// Extra rollout rounds dynamic sampling may spend per step. Default 3.
    pub max_resample_rounds: usize,
    /// Exclude completions cut at `max_completion_length` from the loss. Default false.
    pub mask_truncated_completions: bool,
    /// Gradient clipping norm. Default 1.0.
    pub max_grad_norm: f64,
    /// Completions per forward/backward (memory); gradients accumulate. Default 8.
    pub micro_batch_size: usize,
    /// Stop after this many steps skipped for NaN/Inf loss or gradients. Default 5.
    pub max_nonfinite_steps: usize,
    /// Rollout engine. Unset: this process generates. Else the base URL of an OpenAI-compatible
    /// server (vLLM, SGLang, `modrl serve`) serving the same base model, e.g.
    /// `http://127.0.0.1:8000/v1`: before every step the trainer writes the current LoRA adapter
    /// and asks the server to load it (`/v1/load_lora_adapter`), then samples the rollouts there
    /// (token ids in, tokens + log-probs out) and recomputes log-probs locally for the loss
    /// (`sampling/*` metrics give the difference). Needs `[lora]`. Default: unset.
    pub rollout_url: Option<String>,
    /// The name the adapter is loaded under on the rollout server (the `model` of rollout
    /// requests). Default `modrl-policy`.
    pub rollout_model: String,
    /// Environment variable holding the rollout server's API key. Default: none (no key sent).
    pub rollout_api_key_env: Option<String>,
    /// Seconds one rollout request may take. Default 600.
    pub rollout_timeout_s: u64,
    /// What a rollout samples. `completion` (default): the whole answer (reasoning and verdict,
    /// or the verdict line in the `no_reasoning` variant), rewarded by `[rewards]`. `label`
    /// (needs `data.variant = "no_reasoning"`): only the label word, from the model's next-token
    /// distribution over the two label words (what verdict-token scoring reads), rewarded for
    /// accuracy with `rewards.fn_cost` / `fp_cost`; one forward pass per prompt, no decoding.
    pub action: RlAction,
    /// With `action = "label"`: how the policy gradient over the two label words is estimated.
    /// `sampled` (default): G labels drawn per prompt, group-relative advantages (GRPO).
    /// `exact`: both labels enumerated, each weighted by its probability, with the expected
    /// reward as the baseline: the expectation of the sampled estimator, without its noise.
    pub label_estimator: LabelEstimator,
    /// With `action = "label"`: every step draws half its prompts from each class (two
    /// per-class shuffles of the training set), so the batch's class mix cannot push the label
    /// prior around. Needs an even `prompts_per_step`. Default false.
    pub balance_labels: bool,
    /// Completions per step appended to `<run>/completions.jsonl` (step, item id, label, reward,
    /// text) for inspection, like TRL's `log_completions`. Default 4; 0 = none.
    pub log_completions: usize,
}

impl Default for RlConfig {
    fn default() -> Self {
        RlConfig {
            max_steps: 100,
            prompts_per_step: 4,
            num_generations: 8,
            max_completion_length: 256,
            temperature: 1.0,
            top_p: 1.0,
            learning_rate: 1e-5,
            warmup_steps: 0,
            beta: 0.0,
            epsilon: 0.2,
            epsilon_high: None,
            delta: None,
            loss_type: LossType::Dapo,
            importance_sampling_level: ImportanceSamplingLevel::Token,
            scale_rewards: ScaleRewards::Group,
            num_iterations: 1,
            dynamic_sampling: false,
            max_resample_rounds: 3,
            mask_truncated_completions: false,
            max_grad_norm: 1.0,
            micro_batch_size: 8,
            max_nonfinite_steps: 5,
            rollout_url: None,
            rollout_model: "modrl-policy".into(),
            rollout_api_key_env: None,
            rollout_timeout_s: 600,
            log_completions: 4,
            action: RlAction::Completion,
            label_estimator: LabelEstimator::Sampled,
            balance_labels: false,
        }
    }
}

impl RlConfig {
    /// The policy-loss settings (`crate::loss`): the one place `epsilon_high` defaults to
    /// `epsilon`; `LossConfig::validate` is the one check of these values.
    pub fn loss_config(&self) -> crate::loss::LossConfig {
        crate::loss::LossConfig {
            loss_type: self.loss_type,
            importance_sampling_level: self.importance_sampling_level,
            epsilon: self.epsilon,
            epsilon_high: self.epsilon_high.unwrap_or(self.epsilon),
            beta: self.beta,
            delta: self.delta,
            max_completion_length: self.max_completion_length,
        }
    }
}

/// What an RL rollout samples ([`RlConfig::action`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RlAction {
    /// The whole answer, decoded token by token.
    #[default]
    Completion,
    /// The label word only (label-token RL, `crate::label_rl`).
    Label,
}

/// How label-token RL estimates its gradient ([`RlConfig::label_estimator`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelEstimator {
    /// G sampled labels per prompt.
    #[default]
    Sampled,
    /// Both labels, weighted by their probabilities.
    Exact,
}

/// Periodic and final evaluation on the validation split.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate every this many steps of each stage (0 = only at the end). Default 10.
    pub every: usize,
    /// Scoring mode for evaluations: `verdict-token`, `greedy`, `mc[:N[:T]]`. Default `greedy`
    /// (what RL trains: a reasoning, then the verdict).
    pub scoring: String,
    /// Items per periodic evaluation (the final one uses `data.max_val_examples`). Default 64.
    pub periodic_examples: usize,
    /// Longest generated reasoning + verdict when scoring. Default 256.
    pub max_new_tokens: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            every: 10,
            scoring: "greedy".into(),
            periodic_examples: 64,
            max_new_tokens: 256,
        }
    }
}

/// Where and how often to save.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSettings {
    /// Run folder. Default `runs/<config file stem>`.
    pub out: Option<PathBuf>,
    /// Checkpoint every this many steps of each stage. Default 10.
    pub save_every: usize,
    /// Checkpoints kept (older ones are deleted). Default 2.
    pub keep_checkpoints: usize,
    /// Seed of data order, sampling and dropout. Default 0.
    pub seed: u64,
    /// libtorch intra-op threads (0 = libtorch's default). Default 0.
    pub threads: usize,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            out: None,
            save_every: 10,
            keep_checkpoints: 2,
            seed: 0,
            threads: 0,
        }
    }
}

impl RunConfig {
    /// Read and validate a TOML run config; relative paths are taken from the current directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        Self::from_toml(&text, path)
    }

    /// [`RunConfig::load`] with `key=value` overrides applied first (`data.max_train_examples=300`,
    /// `stages=["rl"]`, `rl.learning_rate=2e-4`): the value is read as TOML (a bare word that is
    /// not TOML is taken as a string), tables are created as needed, and the result is validated
    /// as if the file said so.
    pub fn load_with(path: &Path, overrides: &[String]) -> Result<Self> {
        Self::load_layers(path, &[], overrides)
    }

    /// [`RunConfig::load_with`] with overlays: TOML files merged over the config in order
    /// (tables merge key by key, any other value replaces), before the `--set` overrides. A
    /// recipe kept as an overlay (e.g. `configs/runs/recipes/rl-kl-fmt.toml`) applies to any
    /// task's config. Errors name the file and line.
    pub fn load_layers(path: &Path, overlays: &[PathBuf], overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if overrides.is_empty() && overlays.is_empty() {
            return Self::from_toml(&text, path);
        }
        let mut doc: toml::Table = parse_toml(&text, path)?;
        for o in overlays {
            let t = std::fs::read_to_string(o)
                .with_context(|| format!("{}: cannot read", o.display()))?;
            merge_tables(&mut doc, parse_toml(&t, o)?);
        }
        let described: Vec<String> = overlays
            .iter()
            .map(|o| format!("--overlay {}", o.display()))
            .chain(overrides.iter().map(|o| format!("--set {o}")))
            .collect();
        for o in overrides {
            apply_override(&mut doc, o).with_context(|| format!("--set {o}"))?;
        }
        let merged = toml::to_string(&doc)?;
        let cfg: RunConfig = toml::from_str(&merged).map_err(|e| {
            anyhow::anyhow!(
                "{} with {}: {}",
                path.display(),
                described.join(" "),
                e.message()
            )
        })?;
        cfg.validate()
            .with_context(|| format!("{}: invalid run config", path.display()))?;
        Ok(cfg)
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        let cfg: RunConfig = parse_toml(text, path)?;
        cfg.validate()
            .with_context(|| format!("{}: invalid run config", path.display()))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        if self.stages.is_empty() {
            bail!("field \"stages\": give at least one of \"sft\", \"rl\"");
        }
        let rl = &self.rl;
        if self.stages.contains(&Stage::Rl) {
            if rl.num_generations < 2 {
                bail!("field \"rl.num_generations\": must be >= 2 (advantages are relative to the group)");
            }
            if rl.prompts_per_step == 0 || rl.max_completion_length == 0 || rl.micro_batch_size == 0
            {
                bail!("fields \"rl.prompts_per_step\", \"rl.max_completion_length\", \"rl.micro_batch_size\" must be positive");
            }
            if rl.temperature <= 0.0 {
                bail!("field \"rl.temperature\": must be > 0 for sampling rollouts");
            }
            rl.loss_config()
                .validate()
                .map_err(|e| anyhow::anyhow!("[rl] table: {e}"))?;
            if rl.num_iterations == 0 {
                bail!("field \"rl.num_iterations\": must be >= 1");
            }
            if rl.rollout_url.is_some() && self.lora.is_none() && self.model.adapter.is_none() {
                bail!("field \"rl.rollout_url\": remote rollouts sync weights by LoRA adapter; add a [lora] table (full-weight sync to a remote engine is not implemented)");
            }
            if rl.action == RlAction::Label {
                if self.data.variant.has_reasoning() {
                    bail!("field \"rl.action\": \"label\" samples the label word after the verdict prefix; it needs data.variant = \"no_reasoning\"");
                }
                if rl.rollout_url.is_some() || rl.num_iterations != 1 {
                    bail!("field \"rl.action\": \"label\" runs locally and on-policy: it does not support rl.rollout_url or rl.num_iterations > 1");
                }
                if rl.balance_labels && !rl.prompts_per_step.is_multiple_of(2) {
                    bail!("field \"rl.balance_labels\": needs an even rl.prompts_per_step (half from each class)");
                }
                let r = &self.rewards;
                if r.length != 0.0 || r.rubric != 0.0 || r.judge.is_some() || !r.external.is_empty()
                {
                    bail!("field \"rl.action\": \"label\" is rewarded for accuracy only (with rewards.fn_cost / fp_cost); remove the length, rubric, judge and external rewards");
                }
            }
            if rl.action != RlAction::Label
                && (rl.balance_labels || rl.label_estimator != LabelEstimator::Sampled)
            {
                bail!("fields \"rl.balance_labels\" and \"rl.label_estimator\" apply to label-token RL only (rl.action = \"label\")");
            }
            if rl.rollout_model.trim().is_empty() {
                bail!("field \"rl.rollout_model\": must not be empty");
            }
        }
        if self.stages.contains(&Stage::Sft)
            && (self.sft.batch_size == 0 || self.sft.micro_batch_size == 0)
        {
            bail!("fields \"sft.batch_size\" and \"sft.micro_batch_size\" must be positive");
        }
        if !(0.0..=1.0).contains(&self.sft.verdict_only_fraction) {
            bail!("field \"sft.verdict_only_fraction\": must be in [0, 1]");
        }
        let scoring: modrl_moderation::score::ScoringMode = self
            .eval
            .scoring
            .parse()
            .map_err(|e| anyhow::anyhow!("field \"eval.scoring\": {e}"))?;
        if !self.data.variant.has_reasoning()
            && scoring != modrl_moderation::score::ScoringMode::VerdictToken
        {
            bail!("field \"eval.scoring\": a data.variant = \"no_reasoning\" run answers with the verdict line alone; evaluate it with scoring = \"verdict-token\"");
        }
        if let Some(f) = self.data.positive_fraction {
            if !(0.0..=1.0).contains(&f) {
                bail!("field \"data.positive_fraction\": must be in [0, 1]");
            }
        }
        Ok(())
    }
}

/// A TOML document (a run config, or any table); errors name the file and line.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
        match line {
            Some(l) => anyhow::anyhow!("{}:{l}: {}", path.display(), e.message()),
            None => anyhow::anyhow!("{}: {}", path.display(), e.message()),
        }
    })
}

/// Merge `over` into `base`: tables key by key (recursively), any other value replaces.
fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Set `dotted.key = value` in a TOML table (see [`RunConfig::load_with`]).
fn apply_override(doc: &mut toml::Table, o: &str) -> Result<()> {
    let (key, raw) = o
        .split_once('=')
        .context("expected KEY=VALUE, e.g. data.max_train_examples=300")?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|p| p.trim().is_empty()) {
        bail!("empty key in {o:?}");
    }
    let raw = raw.trim();
    let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").context("no value")?,
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    let mut table = doc;
    for p in &parts[..parts.len() - 1] {
        let entry = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .with_context(|| format!("{p:?} is not a table"))?;
    }
    table.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod override_tests {
    use super::*;

    #[test]
    fn overlays_merge_tables_in_order_and_set_wins() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.toml");
        std::fs::write(
            &base,
            "[model]\npath = \"m\"\n[data]\npolicy = \"p.toml\"\npath = \"d.jsonl\"\n[rl]\nlearning_rate = 3e-4\nmax_steps = 40\n",
        )
        .unwrap();
        let a = dir.path().join("a.toml");
        std::fs::write(
            &a,
            "[rl]\nbeta = 0.5\nmax_steps = 60\n[rewards]\nformat = 0.2\n",
        )
        .unwrap();
        let b = dir.path().join("b.toml");
        std::fs::write(&b, "[rl]\nmax_steps = 80\n").unwrap();
        let cfg = RunConfig::load_layers(&base, &[a.clone(), b.clone()], &[]).unwrap();
        // Tables merge key by key: the base's learning rate stays, the later overlay wins.
        assert_eq!(cfg.rl.learning_rate, 3e-4);
        assert_eq!(cfg.rl.beta, 0.5);
        assert_eq!(cfg.rl.max_steps, 80);
        assert_eq!(cfg.rewards.format, 0.2);
        let cfg = RunConfig::load_layers(&base, &[a], &["rl.max_steps=7".into()]).unwrap();
        assert_eq!(cfg.rl.max_steps, 7);
        // A bad overlay names its file and line; an unknown key names the overlay.
        std::fs::write(&b, "[rl]\nmax_steps = \n").unwrap();
        let e = format!(
            "{:#}",
            RunConfig::load_layers(&base, &[b.clone()], &[]).unwrap_err()
        );
        assert!(e.contains("b.toml:2"), "{e}");
        std::fs::write(&b, "[rl]\nmax_stepz = 3\n").unwrap();
        let e = format!(
            "{:#}",
            RunConfig::load_layers(&base, &[b], &[]).unwrap_err()
        );
        assert!(e.contains("--overlay") && e.contains("max_stepz"), "{e}");
    }

    #[test]
    fn overrides_set_nested_keys_and_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(
            &path,
            "stages = [\"sft\", \"rl\"]\n[model]\npath = \"m\"\n[data]\npath = \"d.jsonl\"\npolicy = \"p.toml\"\n",
        )
        .unwrap();
        let cfg = RunConfig::load_with(
            &path,
            &[
                "data.max_train_examples=300".into(),
                "stages=[\"rl\"]".into(),
                "rl.learning_rate = 2e-4".into(),
                "data.variant=no_reasoning".into(),
                "eval.scoring=verdict-token".into(),
                "run.out=runs/x".into(),
            ],
        )
        .unwrap();
        assert_eq!(cfg.data.max_train_examples, Some(300));
        assert_eq!(cfg.stages, vec![Stage::Rl]);
        assert_eq!(cfg.rl.learning_rate, 2e-4);
        assert_eq!(cfg.data.variant, Variant::NoReasoning);
        assert_eq!(cfg.run.out, Some(PathBuf::from("runs/x")));
        // Unknown keys and invalid combinations are refused like in the file.
        let e = RunConfig::load_with(&path, &["rl.lerning_rate=1".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("lerning_rate"), "{e:#}");
        let e = RunConfig::load_with(&path, &["data.variant=no_reasoning".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("verdict-token"), "{e:#}");
        assert!(RunConfig::load_with(&path, &["novalue".into()]).is_err());
    }

    #[test]
    fn loss_settings_come_from_rl_with_one_default_and_one_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(
            &path,
            "stages = [\"rl\"]\n[model]\npath = \"m\"\n[data]\npath = \"d.jsonl\"\npolicy = \"p.toml\"\n",
        )
        .unwrap();
        let cfg = RunConfig::load_with(&path, &["rl.epsilon=0.1".into()]).unwrap();
        let l = cfg.rl.loss_config();
        assert_eq!((l.epsilon, l.epsilon_high, l.delta), (0.1, 0.1, None));
        let cfg = RunConfig::load_with(
            &path,
            &["rl.epsilon_high=0.28".into(), "rl.delta=1.5".into()],
        )
        .unwrap();
        let l = cfg.rl.loss_config();
        assert_eq!((l.epsilon_high, l.delta), (0.28, Some(1.5)));
        let e = RunConfig::load_with(&path, &["rl.delta=0.9".into()]).unwrap_err();
        assert!(
            format!("{e:#}").contains("[rl]") && format!("{e:#}").contains("delta"),
            "{e:#}"
        );
        let e = RunConfig::load_with(&path, &["rl.epsilon=1.5".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("epsilon"), "{e:#}");
        // Label-token RL knobs are refused on completion RL and need an even batch.
        let e = RunConfig::load_with(&path, &["rl.balance_labels=true".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("label-token RL only"), "{e:#}");
    }
}
