//! The training run: recipe stages (SFT, RL) over one model, with periodic evaluation,
//! checkpoints, resumption, metrics.jsonl + TensorBoard, and a final evaluation report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use modrl_model::train::{
    clip_grad_norm, completion_logprobs_with_prefix, zero_grad, AdamW, AdamWConfig, Schedule,
};
use modrl_model::{lora, parse_device, parse_kind, Kind, LoraConfig, Model, Tensor, Tokenizer};
use modrl_moderation::dataset::{self, ReadOptions};
use modrl_moderation::eval::{evaluate, EvalMetrics, EvalOptions, ScoredRow};
use modrl_moderation::prompt::Variant;
use modrl_moderation::report::{write_report, ReportMeta};
use modrl_moderation::score::{PromptRenderer, ScoreConfig, Scorer, ScoringMode};
use modrl_moderation::{Policy, Record};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::checkpoint::{self, TrainState};
use crate::config::{RlAction, RunConfig, Stage};
use crate::length_monitor::LengthMonitor;
use crate::logging::RunLogger;
use crate::openai::OpenAiClient;
use crate::rewards;

pub use modrl_moderation::targets::{sft_target, sft_target_verdict_only};

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
pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a RunConfig,
    pub(crate) run_dir: PathBuf,
    pub(crate) model: Model,
    pub(crate) tok: Tokenizer,
    pub(crate) policy: Policy,
    pub(crate) variant: Variant,
    pub(crate) train: Vec<Record>,
    pub(crate) val: Vec<Record>,
    pub(crate) lora: Option<LoraConfig>,
    pub(crate) logger: RunLogger,
    pub(crate) ref_model: Option<Model>,
    pub(crate) rollout: Option<RemoteRollout>,
}

/// Rollouts on an OpenAI-compatible server, with the policy's LoRA adapter synced every step.
pub(crate) struct RemoteRollout {
    pub(crate) client: OpenAiClient,
    /// Name of the adapter on the server (the `model` of rollout requests).
    pub(crate) model: String,
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
    pub(crate) fn sync(&mut self, model: &Model, lcfg: &LoraConfig, base: &str) -> Result<()> {
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

pub(crate) fn f(x: f64) -> Value {
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
        None => checkpoint::save_full(&ctx.model, &cfg.model.path, dir)?,
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
pub(crate) fn record_at(n: usize, seed: u64, cursor: usize) -> usize {
    let epoch = cursor / n;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(epoch as u64),
    ));
    order[cursor % n]
}

/// `n` training records (even), half with each label, for the `n` draws from `cursor` on: the
/// `k`-th draw of a class is element `cursor / 2 + k` of that class's own epoch-wise shuffle
/// (so a resumed run draws the same records). Positives first, then negatives.
pub(crate) fn balanced_at(labels: &[u8], seed: u64, cursor: usize, n: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(n);
    for (class, salt) in [(1u8, 0x5eed_0001u64), (0u8, 0x5eed_0002)] {
        let members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        if members.is_empty() {
            bail!(
                "field \"rl.balance_labels\": the training split has no {} examples",
                if class == 1 {
                    "violating"
                } else {
                    "non-violating"
                }
            );
        }
        for k in 0..n / 2 {
            out.push(members[record_at(members.len(), seed ^ salt, cursor / 2 + k)]);
        }
    }
    Ok(out)
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
            Stage::Rl if cfg.rl.action == RlAction::Label => crate::rl_step::label_rl_step(
                ctx,
                &prompt_ids,
                &prefix_ids,
                &mut state,
                step_seed,
                &mut metrics,
            )?,
            Stage::Rl => crate::rl_step::rl_step(
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
            let t = Instant::now();
            opt.step(&params, lr_now);
            zero_grad(&params);
            metrics.insert("timing/optimizer".into(), f(t.elapsed().as_secs_f64()));
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn balanced_draws_take_half_of_each_class_and_cover_each_class_every_epoch() {
        // 3 positives, 7 negatives: every step of 4 has 2 of each.
        let labels = [1u8, 0, 0, 1, 0, 0, 0, 1, 0, 0];
        let mut seen_pos = vec![];
        let mut seen_neg = vec![];
        for step in 0..7 {
            let idx = balanced_at(&labels, 3, step * 4, 4).unwrap();
            assert_eq!(idx.len(), 4);
            assert!(idx[..2].iter().all(|&i| labels[i] == 1), "{idx:?}");
            assert!(idx[2..].iter().all(|&i| labels[i] == 0), "{idx:?}");
            seen_pos.extend_from_slice(&idx[..2]);
            seen_neg.extend_from_slice(&idx[2..]);
            // A resumed run (same cursor) draws the same records.
            assert_eq!(idx, balanced_at(&labels, 3, step * 4, 4).unwrap());
        }
        // The first 3 positive draws are one shuffle of the 3 positives; the first 7 negative
        // draws one shuffle of the 7 negatives.
        let mut p = seen_pos[..3].to_vec();
        p.sort();
        assert_eq!(p, vec![0, 3, 7]);
        let mut n = seen_neg[..7].to_vec();
        n.sort();
        assert_eq!(n, vec![1, 2, 4, 5, 6, 8, 9]);
        let e = balanced_at(&[0, 0], 1, 0, 2).unwrap_err().to_string();
        assert!(
            e.contains("rl.balance_labels") && e.contains("no violating"),
            "{e}"
        );
    }
}
