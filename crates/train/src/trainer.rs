//! The training run: recipe stages (SFT, RL) over one model, with periodic evaluation,
//! checkpoints, resumption, metrics.jsonl + TensorBoard, and a final evaluation report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use modrl_model::generate::{generate_with_prefix, PrefixCache, SamplingParams};
use modrl_model::train::{
    clip_grad_norm, completion_logprobs_with_prefix, zero_grad, AdamW, AdamWConfig, Schedule,
};
use modrl_model::{lora, parse_device, parse_kind, Kind, LoraConfig, Model, Tensor, Tokenizer};
use modrl_moderation::dataset::{self, ReadOptions};
use modrl_moderation::eval::{evaluate, EvalMetrics, EvalOptions, ScoredRow};
use modrl_moderation::prompt::{Variant, VERDICT_PREFIX};
use modrl_moderation::report::{write_report, ReportMeta};
use modrl_moderation::score::{PromptRenderer, ScoreConfig, Scorer, ScoringMode};
use modrl_moderation::verdict::{self, Label, Verdict};
use modrl_moderation::{Policy, Record};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::advantage::{advantages, frac_zero_std, zero_std_groups};
use crate::checkpoint::{self, TrainState};
use crate::config::{RlAction, RunConfig, Stage};
use crate::logging::{LengthMonitor, RunLogger};
use crate::loss::{policy_loss_accumulated, Accumulation, LossConfig};
use crate::openai::OpenAiClient;
use crate::rewards::{self, Reward, RewardInput};

/// Command-line overrides of a run.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from the run folder's latest checkpoint.
    pub resume: bool,
    /// Cap every stage at this many steps (a short run of the same config).
    pub max_steps: Option<usize>,
    /// Run folder (overrides the config's `run.out`).
    pub out: Option<PathBuf>,
    /// Stop (after checkpointing) once this many steps over all stages are done, as if the
    /// process were interrupted there; `resume` continues. For tests and time-sliced jobs.
    pub stop_after: Option<usize>,
}

/// Everything a stage needs.
struct Ctx<'a> {
    cfg: &'a RunConfig,
    run_dir: PathBuf,
    model: Model,
    tok: Tokenizer,
    policy: Policy,
    variant: Variant,
    train: Vec<Record>,
    val: Vec<Record>,
    lora: Option<LoraConfig>,
    logger: RunLogger,
    ref_model: Option<Model>,
    rollout: Option<RemoteRollout>,
}

/// Rollouts on an OpenAI-compatible server, with the policy's LoRA adapter synced every step.
struct RemoteRollout {
    client: OpenAiClient,
    /// Name of the adapter on the server (the `model` of rollout requests).
    model: String,
    /// Where the adapter is written for the server to read (absolute).
    adapter_dir: PathBuf,
    /// Whether this run has loaded the adapter on the server (so it must unload it first).
    loaded: bool,
}

impl RemoteRollout {
    fn connect(cfg: &RunConfig, url: &str, run_dir: &Path) -> Result<Self> {
        let rl = &cfg.rl;
        let key = match &rl.rollout_api_key_env {
            Some(var) => Some(std::env::var(var).with_context(|| {
                format!("field \"rl.rollout_api_key_env\": environment variable {var} is not set")
            })?),
            None => None,
        };
        let client = OpenAiClient::new(
            url,
            key,
            std::time::Duration::from_secs(rl.rollout_timeout_s),
        )?;
        let models = client
            .models()
            .with_context(|| format!("rollout server {url} (field \"rl.rollout_url\")"))?;
        // A run resumed after a crash may find its adapter still loaded: start clean.
        if models.iter().any(|m| m == &rl.rollout_model) {
            client.unload_lora_adapter(&rl.rollout_model)?;
        }
        let dir = run_dir.join("rollout_adapter");
        std::fs::create_dir_all(&dir)?;
        let adapter_dir = dir.canonicalize()?;
        eprintln!(
            "modrl train: rollouts on {} as {:?} (adapter synced every step from {})",
            client.base_url(),
            rl.rollout_model,
            adapter_dir.display()
        );
        Ok(RemoteRollout {
            client,
            model: rl.rollout_model.clone(),
            adapter_dir,
            loaded: false,
        })
    }

    /// Write the current adapter and make the server serve it under `self.model`.
    fn sync(&mut self, model: &Model, lcfg: &LoraConfig, base: &str) -> Result<()> {
        lora::save_adapter(model, lcfg, &self.adapter_dir, base)?;
        if self.loaded {
            self.client.unload_lora_adapter(&self.model)?;
            self.loaded = false;
        }
        let path = self.adapter_dir.display().to_string();
        self.client.load_lora_adapter(&self.model, &path)?;
        self.loaded = true;
        Ok(())
    }
}

fn f(x: f64) -> Value {
    serde_json::Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// Train with `cfg` (read from `config_path`); returns the run folder.
pub fn run(cfg: &RunConfig, config_path: &Path, opts: &TrainOptions) -> Result<PathBuf> {
    cfg.validate()?;
    let run_dir = opts
        .out
        .clone()
        .or_else(|| cfg.run.out.clone())
        .unwrap_or_else(|| {
            PathBuf::from("runs").join(
                config_path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or("run".into()),
            )
        });
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    std::fs::write(run_dir.join("config.toml"), toml::to_string_pretty(cfg)?)?;
    if cfg.run.threads > 0 {
        tch::set_num_threads(cfg.run.threads as i32);
    }
    let device = parse_device(&cfg.model.device)?;
    let kind = parse_kind(&cfg.model.dtype, device)?;
    let (mut model, tok) = modrl_model::load(&cfg.model.path, device, kind)?;
    let mut lora_cfg = cfg.lora.clone();
    if let Some(a) = &cfg.model.adapter {
        let loaded = lora::load_adapter(&mut model, a)
            .with_context(|| format!("loading adapter {}", a.display()))?;
        for t in lora::trainable(&model) {
            let _ = t.set_requires_grad(true);
        }
        lora_cfg = Some(loaded);
    } else if let Some(l) = &lora_cfg {
        tch::manual_seed(cfg.run.seed as i64);
        lora::attach(&mut model, l)?;
    } else {
        model.set_base_trainable(true);
    }
    let ref_model = if cfg.stages.contains(&Stage::Rl) && cfg.rl.beta > 0.0 && lora_cfg.is_none() {
        Some(Model::load(&cfg.model.path, device, kind)?)
    } else {
        None
    };
    let policy = Policy::load(&cfg.data.policy)?;
    let variant = cfg.data.variant;
    let all = dataset::read_jsonl(&cfg.data.path, &ReadOptions::default())?.records;
    let train = select_train(&all, cfg);
    let mut val: Vec<Record> = all
        .iter()
        .filter(|r| r.split.map(|s| s.as_str()) == Some(cfg.data.val_split.as_str()))
        .cloned()
        .collect();
    val.truncate(cfg.data.max_val_examples);
    if train.is_empty() && cfg.stages.iter().any(|_| true) {
        bail!(
            "{}: no records in split {:?}",
            cfg.data.path.display(),
            cfg.data.train_split
        );
    }
    eprintln!(
        "modrl train: {} ({:.1} M params, {}), {} train / {} val examples ({} positive in train), stages {:?}, run folder {}",
        cfg.model.path.display(),
        model.num_parameters() as f64 / 1e6,
        if lora_cfg.is_some() { "LoRA" } else { "full fine-tuning" },
        train.len(),
        val.len(),
        train.iter().filter(|r| r.label == 1).count(),
        cfg.stages,
        run_dir.display()
    );
    // The exact training examples, for baselines trained on the same labels.
    let ids: String = train.iter().map(|r| format!("{}\n", r.id)).collect();
    std::fs::write(run_dir.join("train_ids.txt"), ids)
        .with_context(|| format!("cannot write {}", run_dir.join("train_ids.txt").display()))?;
    let state = if opts.resume {
        checkpoint::latest(&run_dir)?
            .map(|d| checkpoint::read_state(&d))
            .transpose()?
    } else {
        None
    };
    let rollout = match &cfg.rl.rollout_url {
        Some(url) if cfg.stages.contains(&Stage::Rl) => {
            Some(RemoteRollout::connect(cfg, url, &run_dir)?)
        }
        _ => None,
    };
    let logger = RunLogger::create(&run_dir, opts.resume)?;
    let mut ctx = Ctx {
        cfg,
        run_dir: run_dir.clone(),
        model,
        tok,
        policy,
        variant,
        train,
        val,
        lora: lora_cfg,
        logger,
        ref_model,
        rollout,
    };
    let mut global_step = state.as_ref().map_or(0, |s| s.global_step);
    for (si, stage) in cfg.stages.iter().enumerate() {
        let resume_here = state.as_ref().filter(|s| s.stage_index == si).cloned();
        if state.as_ref().is_some_and(|s| s.stage_index > si) {
            continue; // finished before the interruption
        }
        let max_steps = match stage {
            Stage::Sft => cfg.sft.max_steps,
            Stage::Rl => cfg.rl.max_steps,
        };
        let max_steps = opts.max_steps.map_or(max_steps, |m| m.min(max_steps));
        global_step = run_stage(
            &mut ctx,
            si,
            *stage,
            max_steps,
            global_step,
            resume_here,
            opts.stop_after,
        )?;
        if opts.stop_after.is_some_and(|s| global_step >= s) {
            eprintln!("stopped after step {global_step} (resume with --resume)");
            return Ok(run_dir);
        }
        // The weights after each stage but the last (e.g. the SFT-only baseline of SFT then RL).
        if si + 1 < cfg.stages.len() {
            let dir = run_dir.join(format!("after_{}", format!("{stage:?}").to_lowercase()));
            save_weights(&ctx, &dir)?;
            eprintln!("weights after {stage:?}: {}", dir.display());
        }
    }
    ctx.model.training = false;
    // Final weights and evaluation.
    save_weights(&ctx, &run_dir.join("final"))?;
    let n = ctx.val.len();
    if n > 0 {
        let m = evaluate_on_val(&mut ctx, n, Some(&run_dir.join("eval-val")))?;
        let j = serde_json::to_value(&m)?;
        eprintln!(
            "final evaluation on {n} {} examples: pr_auc={} f1={} ece={}",
            cfg.data.val_split, j["pr_auc"], j["f1"], j["ece"]
        );
    }
    crate::plots::write_run_plots(&run_dir)?;
    Ok(run_dir)
}

/// The shared prompt prefix and every training prompt (token ids) in one prompt variant.
fn render_train(ctx: &Ctx, variant: Variant) -> Result<(Vec<u32>, Vec<Vec<u32>>)> {
    let renderer = PromptRenderer {
        tok: &ctx.tok,
        policy: &ctx.policy,
        variant,
        no_system_role: ctx.cfg.data.no_system_role,
    };
    let ids: Vec<Vec<u32>> = ctx
        .train
        .iter()
        .map(|r| renderer.ids(&r.text))
        .collect::<Result<_>>()?;
    Ok((renderer.prefix_ids()?, ids))
}

/// The trained weights as a PEFT adapter (LoRA) or an HF model directory (full fine-tuning).
fn save_weights(ctx: &Ctx, dir: &Path) -> Result<()> {
    let cfg = ctx.cfg;
    match &ctx.lora {
        Some(l) => lora::save_adapter(&ctx.model, l, dir, &cfg.model.path.display().to_string())?,
        None => {
            let conf = std::fs::read_to_string(cfg.model.path.join("config.json"))?;
            ctx.model.save_pretrained(dir, &conf)?;
        }
    }
    Ok(())
}

/// The training examples: the train split, optionally capped with a chosen share of positives.
fn select_train(all: &[Record], cfg: &RunConfig) -> Vec<Record> {
    let mut pool: Vec<Record> = all
        .iter()
        .filter(|r| r.split.map(|s| s.as_str()) == Some(cfg.data.train_split.as_str()))
        .filter(|r| {
            cfg.data
                .max_text_chars
                .is_none_or(|m| r.text.chars().count() <= m)
        })
        .cloned()
        .collect();
    let mut rng = StdRng::seed_from_u64(cfg.run.seed ^ 0x5eed_da7a);
    pool.shuffle(&mut rng);
    let Some(n) = cfg.data.max_train_examples else {
        return pool;
    };
    match cfg.data.positive_fraction {
        None => {
            pool.truncate(n);
            pool
        }
        Some(fr) => {
            let want_pos = ((n as f64) * fr).round() as usize;
            let pos: Vec<Record> = pool
                .iter()
                .filter(|r| r.label == 1)
                .take(want_pos)
                .cloned()
                .collect();
            let neg: Vec<Record> = pool
                .iter()
                .filter(|r| r.label == 0)
                .take(n - pos.len())
                .cloned()
                .collect();
            let mut out = [pos, neg].concat();
            out.shuffle(&mut rng);
            out
        }
    }
}

/// The index of the record at data position `cursor`: epochs in a seeded order of their own.
fn record_at(n: usize, seed: u64, cursor: usize) -> usize {
    let epoch = cursor / n;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(epoch as u64),
    ));
    order[cursor % n]
}

/// The SFT target (the end-of-turn token is appended by the caller): the output contract with a reasoning (the human rationale where the data has
/// one, else a short templated justification of the label built from the policy's own category
/// definition) and the verdict line.
pub fn sft_target(r: &Record, policy: &Policy) -> String {
    let (reasoning, v) = sft_parts(r, policy);
    verdict::format_output(&reasoning, &v)
}

/// The verdict-only SFT target: the rest of the verdict line after the no-reasoning prompt's
/// assistant prefix (`{"label": "`), so that the next token is the label token that verdict-token
/// scoring reads.
pub fn sft_target_verdict_only(r: &Record, policy: &Policy) -> String {
    let line = sft_parts(r, policy).1.to_json_line();
    line.strip_prefix(VERDICT_PREFIX)
        .unwrap_or(&line)
        .to_string()
}

/// Whether SFT example number `cursor` is trained in the verdict-only format: a fixed function of
/// seed and position, so a resumed run makes the same choices.
fn verdict_only_at(seed: u64, cursor: usize, fraction: f64) -> bool {
    if fraction <= 0.0 {
        return false;
    }
    let u = StdRng::seed_from_u64(seed ^ (cursor as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .random::<f64>();
    u < fraction
}

fn sft_parts(r: &Record, policy: &Policy) -> (String, Verdict) {
    let cats = policy.category_names();
    let violating = r.label == 1;
    // The record's category when the policy has it; a one-category policy's only category.
    let category = if violating {
        r.categories
            .iter()
            .find(|c| cats.contains(c))
            .cloned()
            .or_else(|| (cats.len() == 1).then(|| cats[0].clone()))
    } else {
        None
    };
    let p = match r.soft_label {
        Some(s) if (s >= 0.5) == violating => s.clamp(0.02, 0.98),
        _ if violating => 0.9,
        _ => 0.1,
    };
    let p = (p * 100.0).round() / 100.0;
    let mut reasoning = String::new();
    if let Some(rat) = r.rationale.as_deref().filter(|s| !s.trim().is_empty()) {
        reasoning.push_str(&format!(
            "The words that carry the meaning here are: \"{}\". ",
            rat.trim()
        ));
    }
    match &category {
        Some(c) => {
            let def = policy
                .category(c)
                .map(|k| first_sentence(&k.violates))
                .unwrap_or_default();
            reasoning.push_str(&format!(
                "The content matches the policy's definition of {c} ({def}), and none of the exclusions applies, so it violates the policy."
            ));
        }
        None if violating => reasoning.push_str(
            "The content matches one of the policy's categories of violating content, and none of the exclusions applies, so it violates the policy.",
        ),
        None => reasoning.push_str(&format!(
            "The content does not match any category the policy defines ({}), or one of the exclusions applies, so it does not violate the policy.",
            cats.join(", ")
        )),
    }
    let v = Verdict {
        label: if violating {
            Label::Violating
        } else {
            Label::NonViolating
        },
        category,
        probability: p,
    };
    (reasoning, v)
}

/// The first sentence (or line) of a definition, without its final period, for templated reasons.
fn first_sentence(text: &str) -> String {
    let t = text.trim().trim_start_matches("- ");
    let end = t
        .find(|c| c == '\n' || c == '.' || c == ':')
        .unwrap_or(t.len());
    t[..end].trim().to_string()
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} step {pos}/{len} ETA {eta} {msg}",
        )
        .unwrap(),
    );
    pb.set_prefix(what.to_string());
    pb
}

fn run_stage(
    ctx: &mut Ctx,
    stage_index: usize,
    stage: Stage,
    max_steps: usize,
    mut global_step: usize,
    resume: Option<TrainState>,
    stop_after: Option<usize>,
) -> Result<usize> {
    let cfg = ctx.cfg;
    let named: Vec<(String, Tensor)> = match &ctx.lora {
        Some(_) => lora::adapter_tensors(&ctx.model),
        None => ctx.model.named_parameters(),
    };
    let params: Vec<Tensor> = named.iter().map(|(_, t)| t.shallow_clone()).collect();
    let (lr, warmup, wd) = match stage {
        Stage::Sft => (
            cfg.sft.learning_rate,
            cfg.sft.warmup_steps,
            cfg.sft.weight_decay,
        ),
        Stage::Rl => (cfg.rl.learning_rate, cfg.rl.warmup_steps, 0.0),
    };
    let mut opt = AdamW::new(
        &params,
        AdamWConfig {
            lr,
            weight_decay: wd,
            ..Default::default()
        },
    );
    let schedule = Schedule {
        lr,
        warmup_steps: warmup,
        total_steps: max_steps,
        min_lr_ratio: 0.1,
    };
    let mut state = TrainState {
        stage,
        stage_index,
        step: 0,
        global_step,
        cursor: 0,
        nonfinite_steps: 0,
    };
    if let Some(s) = resume {
        let dir = checkpoint::latest(&ctx.run_dir)?.context("resume: checkpoint vanished")?;
        state = checkpoint::restore(&dir, &ctx.model, &named, &mut opt)?;
        global_step = state.global_step;
        eprintln!(
            "resuming {stage:?} at step {} from {}",
            s.step,
            dir.display()
        );
    }
    let (prefix_ids, prompt_ids) = render_train(ctx, ctx.variant)?;
    // SFT examples in the no-reasoning format (the prompt verdict-token scoring reads), if asked.
    let verdict_only = if stage == Stage::Sft
        && cfg.sft.verdict_only_fraction > 0.0
        && ctx.variant.has_reasoning()
    {
        Some(render_train(ctx, Variant::NoReasoning)?)
    } else {
        None
    };
    let rewards_fns = if stage == Stage::Rl {
        rewards::build_rewards(&cfg.rewards, ctx.variant.has_reasoning())?
    } else {
        vec![]
    };
    let mut length_monitor = LengthMonitor::new(10);
    if state.step > 0 {
        let past = crate::logging::read_metrics(ctx.logger.metrics_path())?;
        length_monitor.replay(&past, "monitors/reasoning_words");
    }
    let pb = progress(max_steps as u64, &format!("{stage:?}"));
    pb.set_position(state.step as u64);
    while state.step < max_steps {
        let t0 = Instant::now();
        let step_seed = cfg
            .run
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(global_step as u64);
        tch::manual_seed(step_seed as i64);
        let lr_now = schedule.lr_at(state.step);
        let mut metrics = Map::new();
        metrics.insert("stage".into(), json!(format!("{stage:?}").to_lowercase()));
        let (loss, ntok) = match stage {
            Stage::Sft => sft_step(
                ctx,
                &prompt_ids,
                &prefix_ids,
                verdict_only.as_ref(),
                &params,
                &mut state,
                &mut metrics,
            )?,
            Stage::Rl if cfg.rl.action == RlAction::Label => label_rl_step(
                ctx,
                &prompt_ids,
                &prefix_ids,
                &mut state,
                step_seed,
                &mut metrics,
            )?,
            Stage::Rl => rl_step(
                ctx,
                &prompt_ids,
                &prefix_ids,
                &params,
                &rewards_fns,
                &mut state,
                step_seed,
                &mut metrics,
                &mut length_monitor,
                &mut opt,
                lr_now,
            )?,
        };
        let grad_norm = clip_grad_norm(
            &params,
            match stage {
                Stage::Sft => cfg.sft.max_grad_norm,
                Stage::Rl => cfg.rl.max_grad_norm,
            },
        );
        if !loss.is_finite() || !grad_norm.is_finite() {
            zero_grad(&params);
            state.nonfinite_steps += 1;
            metrics.insert("nonfinite_skipped".into(), json!(1));
            tracing::warn!(
                "step {}: non-finite loss {loss} or grad norm {grad_norm}; step skipped",
                state.step
            );
            if state.nonfinite_steps > cfg.rl.max_nonfinite_steps {
                bail!(
                    "stopping: {} steps had non-finite loss or gradients (limit rl.max_nonfinite_steps = {}); \
                     lower the learning rate or check the data",
                    state.nonfinite_steps,
                    cfg.rl.max_nonfinite_steps
                );
            }
        } else {
            opt.step(&params, lr_now);
            zero_grad(&params);
        }
        state.step += 1;
        global_step += 1;
        state.global_step = global_step;
        metrics.insert("loss".into(), f(loss));
        metrics.insert("grad_norm".into(), f(grad_norm));
        metrics.insert("learning_rate".into(), f(lr_now));
        metrics.insert("num_tokens".into(), json!(ntok));
        metrics.insert("step_time".into(), f(t0.elapsed().as_secs_f64()));
        let every = cfg.eval.every;
        if every > 0 && state.step % every == 0 && !ctx.val.is_empty() {
            let m = evaluate_on_val(ctx, cfg.eval.periodic_examples, None)?;
            for (k, v) in [
                ("eval/pr_auc", m.pr_auc),
                ("eval/roc_auc", m.roc_auc),
                ("eval/f1", m.f1),
            ] {
                metrics.insert(k.into(), v.map(f).unwrap_or(Value::Null));
            }
            metrics.insert(
                "eval/format_failure_rate".into(),
                m.format_failure_rate.map(f).unwrap_or(Value::Null),
            );
            if let Some(w) = m.mean_reasoning_words {
                metrics.insert("eval/mean_reasoning_words".into(), f(w));
            }
        }
        ctx.logger.log(global_step as u64, &metrics)?;
        pb.set_message(format!("loss {loss:.4}"));
        pb.inc(1);
        let stopping = stop_after.is_some_and(|s| global_step >= s);
        if (cfg.run.save_every > 0 && state.step % cfg.run.save_every == 0)
            || state.step == max_steps
            || stopping
        {
            checkpoint::save(
                &ctx.run_dir,
                &ctx.model,
                ctx.lora.as_ref(),
                &cfg.model.path,
                &opt,
                &state,
                cfg.run.keep_checkpoints,
            )?;
        }
        if stopping {
            break;
        }
    }
    pb.finish_and_clear();
    Ok(global_step)
}

fn sft_step(
    ctx: &mut Ctx,
    prompt_ids: &[Vec<u32>],
    prefix_ids: &[u32],
    verdict_only: Option<&(Vec<u32>, Vec<Vec<u32>>)>,
    params: &[Tensor],
    state: &mut TrainState,
    metrics: &mut Map<String, Value>,
) -> Result<(f64, usize)> {
    let cfg = ctx.cfg;
    ctx.model.training = true;
    // Two formats, each with its own shared prefix: [0] reasoning + verdict, [1] verdict only.
    let mut prompts: [Vec<Vec<u32>>; 2] = [vec![], vec![]];
    let mut targets: [Vec<Vec<u32>>; 2] = [vec![], vec![]];
    for _ in 0..cfg.sft.batch_size {
        let i = record_at(ctx.train.len(), cfg.run.seed, state.cursor);
        let short = verdict_only.is_some()
            && verdict_only_at(cfg.run.seed, state.cursor, cfg.sft.verdict_only_fraction);
        state.cursor += 1;
        let (f, text) = match verdict_only {
            Some((_, ids)) if short => {
                prompts[1].push(ids[i].clone());
                (1, sft_target_verdict_only(&ctx.train[i], &ctx.policy))
            }
            // The no-reasoning variant: its prompts end with the verdict prefix already.
            _ if !ctx.variant.has_reasoning() => {
                prompts[0].push(prompt_ids[i].clone());
                (0, sft_target_verdict_only(&ctx.train[i], &ctx.policy))
            }
            _ => {
                prompts[0].push(prompt_ids[i].clone());
                (0, sft_target(&ctx.train[i], &ctx.policy))
            }
        };
        let mut t = ctx.tok.encode(&text)?;
        // The answer ends with the tokenizer's end-of-turn token, as in generation.
        t.extend(ctx.tok.eos_token_id);
        targets[f].push(t);
    }
    let total: f64 = targets.iter().flatten().map(|t| t.len() as f64).sum();
    let mut loss_sum = 0.0;
    let prefixes = [Some(prefix_ids), verdict_only.map(|(p, _)| p.as_slice())];
    for ((prefix, ps), ts) in prefixes.into_iter().zip(&prompts).zip(&targets) {
        let Some(prefix) = prefix else { continue };
        for (pc, tc) in ps
            .chunks(cfg.sft.micro_batch_size)
            .zip(ts.chunks(cfg.sft.micro_batch_size))
        {
            let pr: Vec<&[u32]> = pc.iter().map(|x| x.as_slice()).collect();
            let cr: Vec<&[u32]> = tc.iter().map(|x| x.as_slice()).collect();
            let lp =
                completion_logprobs_with_prefix(&ctx.model, Some(prefix), &pr, &cr, 1.0, false)?;
            // Token mean over the whole batch, whatever the micro-batching.
            let loss = -lp.logprobs.sum(Kind::Float) / total;
            loss.backward();
            loss_sum += loss.double_value(&[]);
        }
    }
    if verdict_only.is_some() {
        metrics.insert("sft/verdict_only_examples".into(), json!(targets[1].len()));
    }
    let _ = params;
    ctx.model.training = false;
    Ok((loss_sum, total as usize))
}

/// One label-token RL step (`rl.action = "label"`, [`crate::label_rl`]).
fn label_rl_step(
    ctx: &mut Ctx,
    prompt_ids: &[Vec<u32>],
    prefix_ids: &[u32],
    state: &mut TrainState,
    step_seed: u64,
    metrics: &mut Map<String, Value>,
) -> Result<(f64, usize)> {
    let cfg = ctx.cfg;
    let idx: Vec<usize> = (0..cfg.rl.prompts_per_step)
        .map(|_| {
            let i = record_at(ctx.train.len(), cfg.run.seed, state.cursor);
            state.cursor += 1;
            i
        })
        .collect();
    let prompts: Vec<&[u32]> = idx.iter().map(|&i| prompt_ids[i].as_slice()).collect();
    let labels: Vec<u8> = idx.iter().map(|&i| ctx.train[i].label).collect();
    ctx.model.training = true;
    let t = Instant::now();
    let loss = crate::label_rl::step(
        &ctx.model,
        &crate::label_rl::LabelStep {
            prefix: prefix_ids,
            prompts: &prompts,
            labels: &labels,
            label_tokens: modrl_moderation::score::label_tokens(&ctx.tok)?,
            num_generations: cfg.rl.num_generations,
            temperature: cfg.rl.temperature,
            fn_cost: cfg.rewards.fn_cost,
            fp_cost: cfg.rewards.fp_cost,
            scale_rewards: cfg.rl.scale_rewards,
            micro_batch_size: cfg.rl.micro_batch_size,
            seed: step_seed,
        },
        metrics,
    )?;
    metrics.insert(
        "timing/forward_backward".into(),
        f(t.elapsed().as_secs_f64()),
    );
    ctx.model.training = false;
    // Rollout tokens: one sampled label token per sample.
    Ok((loss, prompts.len() * cfg.rl.num_generations))
}

#[allow(clippy::too_many_arguments)]
fn rl_step(
    ctx: &mut Ctx,
    prompt_ids: &[Vec<u32>],
    prefix_ids: &[u32],
    params: &[Tensor],
    rewards_fns: &[(f64, Box<dyn Reward>)],
    state: &mut TrainState,
    step_seed: u64,
    metrics: &mut Map<String, Value>,
    length_monitor: &mut LengthMonitor,
    opt: &mut AdamW,
    lr_now: f64,
) -> Result<(f64, usize)> {
    let cfg = ctx.cfg;
    let rl = &cfg.rl;
    let g = rl.num_generations;
    // Rollouts (no dropout), the policy prefix prefilled once for all prompts and samples; or on
    // a remote engine, after giving it the current adapter.
    ctx.model.training = false;
    let prefix = match &mut ctx.rollout {
        None => Some(PrefixCache::new(&ctx.model, prefix_ids)?),
        Some(r) => {
            let t = Instant::now();
            let lcfg = ctx
                .lora
                .as_ref()
                .context("remote rollouts need a LoRA adapter")?;
            r.sync(&ctx.model, lcfg, &cfg.model.path.display().to_string())?;
            metrics.insert("timing/weight_sync".into(), f(t.elapsed().as_secs_f64()));
            None
        }
    };
    let params_s = SamplingParams {
        max_new_tokens: rl.max_completion_length,
        temperature: rl.temperature,
        top_p: rl.top_p,
        ..Default::default()
    };
    let reasoning = ctx.variant.has_reasoning();
    let answer_prefix = if reasoning { "" } else { VERDICT_PREFIX };
    let mut recs: Vec<Record> = vec![];
    let mut prompts: Vec<Vec<u32>> = vec![];
    let mut comps: Vec<modrl_model::Completion> = vec![];
    let mut texts: Vec<String> = vec![];
    let mut per_fn: Vec<Vec<f64>> = vec![vec![]; rewards_fns.len()];
    let mut total_r: Vec<f64> = vec![];
    let mut rounds = 0;
    let mut all_groups = 0usize;
    let mut zero_groups = 0usize;
    let t_gen = Instant::now();
    loop {
        let need = rl.prompts_per_step - recs.len();
        let idx: Vec<usize> = (0..need)
            .map(|_| {
                let i = record_at(ctx.train.len(), cfg.run.seed, state.cursor);
                state.cursor += 1;
                i
            })
            .collect();
        let batch: Vec<Record> = idx.iter().map(|&i| ctx.train[i].clone()).collect();
        let p_ids: Vec<Vec<u32>> = idx.iter().map(|&i| prompt_ids[i].clone()).collect();
        let sp = SamplingParams {
            seed: Some(step_seed.wrapping_add(rounds as u64 * 7919)),
            ..params_s.clone()
        };
        let outs = match &ctx.rollout {
            None => {
                generate_with_prefix(&ctx.model, prefix.as_ref(), &p_ids, g, &sp, Some(&ctx.tok))?
            }
            Some(r) => {
                let sp = SamplingParams {
                    // The stop ids local generation uses.
                    stop_token_ids: ctx.model.config.eos_token_ids.clone(),
                    ..sp
                };
                // Whole prompts (the server finds the shared prefix itself, or not).
                r.client.completions_tokens(&r.model, &p_ids, g, &sp)?
            }
        };
        // The whole answer: the prompt's assistant prefix (the verdict prefix in the
        // no-reasoning variant) and what was sampled after it.
        let out_texts: Vec<String> = outs
            .iter()
            .map(|o| {
                Ok(format!(
                    "{answer_prefix}{}",
                    ctx.tok.decode(&o.token_ids, true)?
                ))
            })
            .collect::<Result<_>>()?;
        let inputs: Vec<RewardInput> = outs
            .iter()
            .zip(&out_texts)
            .map(|(o, t)| {
                let r = &batch[o.prompt_index];
                RewardInput {
                    content: &r.text,
                    label: r.label,
                    categories: &r.categories,
                    completion: t,
                    rationale: r.rationale.as_deref(),
                    policy: &ctx.policy,
                }
            })
            .collect();
        let mut fn_scores = vec![];
        for (_, rf) in rewards_fns {
            fn_scores.push(rf.score(&inputs)?);
        }
        let totals: Vec<f64> = (0..outs.len())
            .map(|i| {
                rewards_fns
                    .iter()
                    .zip(&fn_scores)
                    .map(|((w, _), s)| w * s[i])
                    .sum()
            })
            .collect();
        let zero = zero_std_groups(&totals, g);
        all_groups += zero.len();
        zero_groups += zero.iter().filter(|&&z| z).count();
        rounds += 1;
        let last_round = !rl.dynamic_sampling || rounds > rl.max_resample_rounds;
        for (gi, r) in batch.iter().enumerate() {
            if rl.dynamic_sampling && zero[gi] && !last_round {
                continue; // no learning signal in this group: draw another prompt instead
            }
            recs.push(r.clone());
            for k in 0..g {
                let i = gi * g + k;
                prompts.push(p_ids[gi].clone());
                comps.push(outs[i].clone());
                texts.push(out_texts[i].clone());
                total_r.push(totals[i]);
                for (j, s) in fn_scores.iter().enumerate() {
                    per_fn[j].push(s[i]);
                }
            }
            if recs.len() == rl.prompts_per_step {
                break;
            }
        }
        if recs.len() >= rl.prompts_per_step || last_round {
            break;
        }
    }
    let gen_time = t_gen.elapsed().as_secs_f64();
    if rl.log_completions > 0 {
        use std::io::Write;
        let path = ctx.run_dir.join("completions.jsonl");
        let mut w = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        for (i, t) in texts.iter().enumerate().take(rl.log_completions) {
            let r = &recs[i / g];
            let row = json!({"step": state.step + 1, "id": r.id, "label": r.label,
                             "reward": total_r[i], "completion": t});
            writeln!(w, "{row}")?;
        }
    }
    let adv = advantages(&total_r, g, rl.scale_rewards);
    let n = comps.len();
    // Metrics named as TRL names them.
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len().max(1) as f64;
    let std = |x: &[f64]| crate::advantage::unbiased_std(x);
    metrics.insert("reward".into(), f(mean(&total_r)));
    metrics.insert("reward_std".into(), f(std(&total_r)));
    for ((_, rf), s) in rewards_fns.iter().zip(&per_fn) {
        metrics.insert(format!("rewards/{}/mean", rf.name()), f(mean(s)));
        metrics.insert(format!("rewards/{}/std", rf.name()), f(std(s)));
    }
    metrics.insert(
        "frac_reward_zero_std".into(),
        f(zero_groups as f64 / all_groups.max(1) as f64),
    );
    metrics.insert(
        "frac_reward_zero_std_batch".into(),
        f(frac_zero_std(&total_r, g)),
    );
    metrics.insert("dynamic_sampling/rounds".into(), json!(rounds));
    let lens: Vec<f64> = comps.iter().map(|c| c.token_ids.len() as f64).collect();
    let truncated: Vec<bool> = comps
        .iter()
        .map(|c| c.finish_reason == modrl_model::FinishReason::Length)
        .collect();
    let term: Vec<f64> = lens
        .iter()
        .zip(&truncated)
        .filter(|(_, &t)| !t)
        .map(|(l, _)| *l)
        .collect();
    metrics.insert("completions/mean_length".into(), f(mean(&lens)));
    metrics.insert(
        "completions/min_length".into(),
        f(lens.iter().cloned().fold(f64::INFINITY, f64::min)),
    );
    metrics.insert(
        "completions/max_length".into(),
        f(lens.iter().cloned().fold(0.0, f64::max)),
    );
    metrics.insert(
        "completions/clipped_ratio".into(),
        f(truncated.iter().filter(|&&t| t).count() as f64 / n as f64),
    );
    metrics.insert(
        "completions/mean_terminated_length".into(),
        f(if term.is_empty() { 0.0 } else { mean(&term) }),
    );
    // Failure-mode monitors: reasoning length (collapse), instruction and factuality hallucination.
    let words: Vec<f64> = texts
        .iter()
        .map(|t| verdict::word_count(&verdict::reasoning_text(t)) as f64)
        .collect();
    let mean_words = mean(&words);
    metrics.insert("monitors/reasoning_words".into(), f(mean_words));
    let trend = length_monitor.push(state.step as u64, mean_words);
    for (k, v) in trend.to_metrics() {
        metrics.insert(k, f(v));
    }
    let instr = texts
        .iter()
        .filter(|t| rewards::instruction_hallucination_for(t, &ctx.policy, reasoning))
        .count();
    metrics.insert(
        "monitors/instruction_hallucination_rate".into(),
        f(instr as f64 / n as f64),
    );
    let quotes: Vec<bool> = texts
        .iter()
        .zip(&prompts)
        .enumerate()
        .filter_map(|(i, (t, _))| {
            let r = &recs[i / g];
            rewards::quote_hallucination(t, &r.text)
        })
        .collect();
    if !quotes.is_empty() {
        metrics.insert(
            "monitors/factuality_hallucination_rate".into(),
            f(quotes.iter().filter(|&&q| q).count() as f64 / quotes.len() as f64),
        );
    }
    metrics.insert(
        "monitors/quoting_rate".into(),
        f(quotes.len() as f64 / n as f64),
    );
    metrics.insert("timing/generation".into(), f(gen_time));

    // Policy update: the loss over all completions (micro-batched; gradients accumulate).
    ctx.model.training = true;
    let loss_cfg = LossConfig {
        loss_type: rl.loss_type,
        importance_sampling_level: rl.importance_sampling_level,
        epsilon: rl.epsilon,
        epsilon_high: rl.epsilon_high.unwrap_or(rl.epsilon),
        beta: rl.beta,
        delta: None,
        max_completion_length: rl.max_completion_length,
    };
    let dev = ctx.model.device;
    let mask_row = |i: usize| {
        if rl.mask_truncated_completions && truncated[i] {
            0.0
        } else {
            1.0
        }
    };
    let total_tokens: f64 = comps
        .iter()
        .enumerate()
        .map(|(i, c)| c.token_ids.len() as f64 * mask_row(i))
        .sum();
    let chunks: Vec<std::ops::Range<usize>> = (0..n)
        .step_by(rl.micro_batch_size)
        .map(|s| s..(s + rl.micro_batch_size).min(n))
        .collect();
    let mut old: Vec<Option<Tensor>> = (0..chunks.len()).map(|_| None).collect();
    if rl.num_iterations > 1 {
        ctx.model.training = false;
        for (ci, r) in chunks.iter().enumerate() {
            let pr: Vec<&[u32]> = prompts[r.clone()].iter().map(|x| x.as_slice()).collect();
            let cr: Vec<&[u32]> = comps[r.clone()]
                .iter()
                .map(|c| c.token_ids.as_slice())
                .collect();
            old[ci] = Some(
                tch::no_grad(|| {
                    completion_logprobs_with_prefix(
                        &ctx.model,
                        Some(prefix_ids),
                        &pr,
                        &cr,
                        rl.temperature,
                        false,
                    )
                })?
                .logprobs,
            );
        }
        ctx.model.training = true;
    }
    let mut loss_total = 0.0;
    let (mut ent_sum, mut clip_low, mut clip_high, mut clip_region, mut kl_sum) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
    // Sampler vs trainer log-probs: |difference| and importance ratio exp(trainer - sampler).
    let (mut lp_diff, mut lp_diff_max, mut is_sum) = (0.0f64, 0.0f64, 0.0f64);
    let (mut is_min, mut is_max) = (f64::INFINITY, 0.0f64);
    for it in 0..rl.num_iterations {
        if it > 0 {
            // Several updates per batch of rollouts: the previous iteration's update happens here,
            // the last one in the caller.
            if clip_grad_norm(params, rl.max_grad_norm).is_finite() {
                opt.step(params, lr_now);
            }
            zero_grad(params);
        }
        for (ci, r) in chunks.iter().enumerate() {
            let pr: Vec<&[u32]> = prompts[r.clone()].iter().map(|x| x.as_slice()).collect();
            let cr: Vec<&[u32]> = comps[r.clone()]
                .iter()
                .map(|c| c.token_ids.as_slice())
                .collect();
            let lp = completion_logprobs_with_prefix(
                &ctx.model,
                Some(prefix_ids),
                &pr,
                &cr,
                rl.temperature,
                true,
            )?;
            let rows = r.len() as i64;
            let row_mask: Vec<f32> = r.clone().map(|i| mask_row(i) as f32).collect();
            let mask = &lp.mask * Tensor::from_slice(&row_mask).view([rows, 1]).to_device(dev);
            let a =
                Tensor::from_slice(&adv[r.clone()].iter().map(|&x| x as f32).collect::<Vec<_>>())
                    .to_device(dev);
            let old_lp = old[ci]
                .as_ref()
                .map(|t| t.shallow_clone())
                .unwrap_or_else(|| lp.logprobs.detach());
            let ref_lp = if rl.beta > 0.0 {
                Some(reference_logprobs(ctx, prefix_ids, &pr, &cr)?)
            } else {
                None
            };
            let out = policy_loss_accumulated(
                &loss_cfg,
                &lp.logprobs,
                &old_lp,
                ref_lp.as_ref(),
                &a,
                &mask,
                Accumulation {
                    steps: chunks.len(),
                    active_tokens: Some(total_tokens.max(1.0)),
                },
            )?;
            out.loss.backward();
            let w = r.len() as f64 / n as f64;
            loss_total += out.loss.double_value(&[]);
            ent_sum += (lp.entropy.as_ref().unwrap() * &lp.mask)
                .sum(Kind::Float)
                .double_value(&[]);
            clip_low += out.clip_ratio_low_mean * w;
            clip_high += out.clip_ratio_high_mean * w;
            clip_region += out.clip_ratio_region_mean * w;
            kl_sum += out.kl_mean.unwrap_or(0.0) * w;
            if it == 0 {
                // Sampler vs trainer log-probs (they differ only by numerics when both are local).
                for (k, i) in r.clone().enumerate() {
                    let row: Vec<f32> = Vec::try_from(
                        &lp.logprobs
                            .get(k as i64)
                            .detach()
                            .to_kind(Kind::Float)
                            .to_device(modrl_model::Device::Cpu),
                    )?;
                    for (j, s) in comps[i].logprobs.iter().enumerate() {
                        let d = (row[j] - s) as f64;
                        lp_diff += d.abs();
                        lp_diff_max = lp_diff_max.max(d.abs());
                        let ratio = d.exp();
                        is_sum += ratio;
                        is_min = is_min.min(ratio);
                        is_max = is_max.max(ratio);
                    }
                }
            }
        }
    }
    let all_tok: f64 = lens.iter().sum();
    metrics.insert(
        "entropy".into(),
        f(ent_sum / all_tok.max(1.0) / rl.num_iterations as f64),
    );
    metrics.insert(
        "clip_ratio/low_mean".into(),
        f(clip_low / rl.num_iterations as f64),
    );
    metrics.insert(
        "clip_ratio/high_mean".into(),
        f(clip_high / rl.num_iterations as f64),
    );
    metrics.insert(
        "clip_ratio/region_mean".into(),
        f(clip_region / rl.num_iterations as f64),
    );
    if rl.beta > 0.0 {
        metrics.insert("kl".into(), f(kl_sum / rl.num_iterations as f64));
    }
    // TRL's names (vLLM rollouts): the sampler's log-probs against the trainer's recomputation.
    metrics.insert(
        "sampling/sampling_logp_difference/mean".into(),
        f(lp_diff / all_tok.max(1.0)),
    );
    metrics.insert(
        "sampling/sampling_logp_difference/max".into(),
        f(lp_diff_max),
    );
    if all_tok > 0.0 {
        metrics.insert("sampling/importance_sampling_ratio/min".into(), f(is_min));
        metrics.insert(
            "sampling/importance_sampling_ratio/mean".into(),
            f(is_sum / all_tok),
        );
        metrics.insert("sampling/importance_sampling_ratio/max".into(), f(is_max));
    }
    ctx.model.training = false;
    Ok((loss_total / rl.num_iterations as f64, all_tok as usize))
}

/// Log-probs under the frozen reference: the base model without its adapters (LoRA), or a second
/// copy of the base (full fine-tuning).
fn reference_logprobs(
    ctx: &mut Ctx,
    prefix_ids: &[u32],
    pr: &[&[u32]],
    cr: &[&[u32]],
) -> Result<Tensor> {
    let t = ctx.cfg.rl.temperature;
    tch::no_grad(|| match &ctx.ref_model {
        Some(m) => {
            Ok(completion_logprobs_with_prefix(m, Some(prefix_ids), pr, cr, t, false)?.logprobs)
        }
        None => {
            ctx.model.adapters_enabled = false;
            let r = completion_logprobs_with_prefix(&ctx.model, Some(prefix_ids), pr, cr, t, false);
            ctx.model.adapters_enabled = true;
            Ok(r?.logprobs)
        }
    })
}

/// Score `n` validation examples with the configured scoring mode; with `report`, write a full
/// report folder there.
fn evaluate_on_val(ctx: &mut Ctx, n: usize, report: Option<&Path>) -> Result<EvalMetrics> {
    let cfg = ctx.cfg;
    let was = ctx.model.training;
    ctx.model.training = false;
    let mode: ScoringMode = cfg.eval.scoring.parse()?;
    let scfg = ScoreConfig {
        mode,
        variant: ctx.variant,
        max_new_tokens: cfg.eval.max_new_tokens,
        batch_rows: 32,
        seed: cfg.run.seed,
        no_system_role: cfg.data.no_system_role,
    };
    let scorer = Scorer::new(&ctx.model, &ctx.tok, &ctx.policy, scfg)?;
    let items = &ctx.val[..n.min(ctx.val.len())];
    let mut rows = vec![];
    for chunk in items.chunks(scorer.items_per_batch()) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        for (r, s) in chunk.iter().zip(scorer.score_batch(&texts)?) {
            let mut row = ScoredRow::new(r.id.clone(), r.label, s.score);
            row.pred_label = s.pred_label;
            row.format_ok = s.format_ok;
            row.failure = s.failure.clone();
            row.reasoning_words = s.reasoning_words;
            row.categories = r.categories.clone();
            row.slices = r.slices.clone();
            row.n_samples = Some(s.n_samples);
            rows.push(row);
        }
    }
    let m = evaluate(
        &rows,
        None,
        &EvalOptions {
            bootstrap: if report.is_some() { 1000 } else { 0 },
            ..Default::default()
        },
    );
    if let Some(dir) = report {
        std::fs::create_dir_all(dir)?;
        let mut w = std::fs::File::create(dir.join("scores.jsonl"))?;
        for r in &rows {
            use std::io::Write;
            writeln!(w, "{}", serde_json::to_string(r)?)?;
        }
        let meta = ReportMeta {
            title: format!("{} after training", ctx.policy.id),
            model: format!(
                "{} ({})",
                ctx.run_dir.join("final").display(),
                cfg.model.path.display()
            ),
            policy_id: ctx.policy.id.clone(),
            policy_version: ctx.policy.version.clone(),
            data_file: format!("{} [{}]", cfg.data.path.display(), cfg.data.val_split),
            scoring_mode: mode.describe(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            timestamp: String::new(),
            extra: vec![],
        };
        write_report(dir, &m, &meta)?;
    }
    ctx.model.training = was;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str) -> Policy {
        Policy::load(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../../configs/policies/{name}.toml")),
        )
        .unwrap()
    }

    fn record(label: u8, categories: &[&str], rationale: Option<&str>) -> Record {
        serde_json::from_value(json!({
            "id": "x", "text": "some text", "label": label,
            "categories": categories, "rationale": rationale,
        }))
        .unwrap()
    }

    #[test]
    fn sft_targets_keep_the_contract_and_use_the_policy_wording() {
        // One-category policy: a violating record without categories gets that category.
        let p = policy("prompt-harm-compact");
        let t = sft_target(&record(1, &[], None), &p);
        let v = verdict::parse(&t, &p.category_names()).unwrap();
        assert_eq!(v.label, Label::Violating);
        assert_eq!(v.category.as_deref(), Some("harmful_request"));
        assert!(
            t.contains("Asking for help to hurt people or animals"),
            "{t}"
        );
        assert!(!t.contains("protected characteristic"), "{t}");
        let t = sft_target(&record(0, &[], None), &p);
        let v = verdict::parse(&t, &p.category_names()).unwrap();
        assert_eq!(v.label, Label::NonViolating);
        assert!(v.probability < 0.5);
        // Multi-category policy: the record's own category, and its rationale quoted.
        let p = policy("prompt-harm");
        let cat = p.category_names()[1].clone();
        let t = sft_target(&record(1, &[cat.as_str()], Some("hack the server")), &p);
        let v = verdict::parse(&t, &p.category_names()).unwrap();
        assert_eq!(v.category.as_deref(), Some(cat.as_str()));
        assert!(t.contains("\"hack the server\""), "{t}");
        // Unknown category on a multi-category policy: violating, no invented category.
        let t = sft_target(&record(1, &["other"], None), &p);
        assert_eq!(
            verdict::parse(&t, &p.category_names()).unwrap().category,
            None
        );
    }

    #[test]
    fn verdict_only_targets_continue_the_verdict_prefix() {
        let p = policy("prompt-harm-compact");
        for label in [0u8, 1] {
            let full = sft_target(&record(label, &[], None), &p);
            let short = sft_target_verdict_only(&record(label, &[], None), &p);
            // Prefix + short target is exactly the verdict line of the full target.
            let line = format!("{VERDICT_PREFIX}{short}");
            assert!(full.ends_with(&line), "{full:?} vs {line:?}");
            let v = verdict::parse(&line, &p.category_names()).unwrap();
            assert_eq!(v.label == Label::Violating, label == 1);
            let first = if label == 1 {
                "violating\""
            } else {
                "non_violating\""
            };
            assert!(short.starts_with(first), "{short:?}");
        }
    }

    #[test]
    fn verdict_only_choice_is_deterministic_and_near_the_fraction() {
        assert!(!(0..1000).any(|c| verdict_only_at(7, c, 0.0)));
        assert!((0..1000).all(|c| verdict_only_at(7, c, 1.0)));
        let a: Vec<bool> = (0..2000).map(|c| verdict_only_at(7, c, 0.3)).collect();
        let b: Vec<bool> = (0..2000).map(|c| verdict_only_at(7, c, 0.3)).collect();
        assert_eq!(a, b);
        let share = a.iter().filter(|&&x| x).count() as f64 / 2000.0;
        assert!((share - 0.3).abs() < 0.04, "{share}");
    }

    #[test]
    fn first_sentence_stops_at_a_period_colon_or_line() {
        assert_eq!(first_sentence("\n- Asking for x. More."), "Asking for x");
        assert_eq!(
            first_sentence("Requests that help: a, b"),
            "Requests that help"
        );
        assert_eq!(first_sentence("one line\nsecond"), "one line");
    }
}
