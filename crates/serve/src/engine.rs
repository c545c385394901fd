//! The model thread: owns the one [`Model`], collects queued requests into batches and runs them.
//!
//! `tch` is blocking and the model is not shared between threads, so one dedicated OS thread owns
//! it. HTTP handlers tokenize on the async runtime and hand the engine a [`Work`] item through a
//! bounded `std::sync::mpsc::sync_channel` (`try_send`: a full queue is answered with 429 at once,
//! the queue never grows past its bound); each item carries a `tokio::sync::oneshot` sender for
//! its answer.
//!
//! Batching: the engine blocks for the first queued item, then keeps taking items until it holds
//! `max_batch` of them or `max_wait` has passed since the first (items that queued while the
//! previous batch ran are taken at once). The batch is split into groups that can share one
//! forward pass — score requests by (model, policy, scoring mode), generation requests by (model,
//! sampling parameters, n), seeded generation requests alone so that a seed always gives the same
//! tokens — and each group is one call of the scorer or of `generate` (in chunks of at most
//! `max_rows` sequences). Requests whose client has gone (timed out) are skipped.
//!
//! LoRA adapters: the base weights exist once. An adapter's tensors are kept aside (per projection,
//! taken off the model after `lora::load_adapter`) and swapped into the model's projections for
//! the groups that name it, then swapped out again; a group runs with one adapter. The policy
//! prefix caches are kept per (model name, policy, prompt variant), computed on first use (the
//! served model's verdict-token prefixes at start-up), because the prefix's keys and values
//! depend on the adapter.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use modrl_model::generate::{generate_with_prefix, Completion, PrefixCache, SamplingParams};
use modrl_model::lora::{self, Lora};
use modrl_model::{Model, Tokenizer};
use modrl_moderation::prompt::Variant;
use modrl_moderation::score::ScoringMode;
use tokio::sync::oneshot;

use crate::metrics::Metrics;
use crate::model_card::{unix_now, ModelCard};
use modrl_moderation::score::{Budget, ItemScore, PolicyPrompts};

/// Why the engine could not answer.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineError {
    /// The named model or adapter is not loaded.
    NotFound(String),
    /// The request cannot be served as asked.
    BadRequest(String),
    /// Anything else (a failed forward pass, a panic in libtorch).
    Internal(String),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::NotFound(m) | EngineError::BadRequest(m) | EngineError::Internal(m) => {
                f.write_str(m)
            }
        }
    }
}

pub type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

/// Score texts under a policy.
pub struct ScoreWork {
    pub model: String,
    pub policy: usize,
    pub mode: ScoringMode,
    pub max_new_tokens: usize,
    pub seed: u64,
    /// Full prompt ids, one per text.
    pub prompts: Vec<Vec<u32>>,
    pub reply: Reply<Vec<ItemScore>>,
}

/// Sample `n` completions of every prompt.
pub struct GenWork {
    pub model: String,
    pub prompts: Vec<Vec<u32>>,
    pub n: usize,
    pub params: SamplingParams,
    pub reply: Reply<Vec<Completion>>,
}

/// One queued request.
pub enum Work {
    Score(ScoreWork),
    Generate(GenWork),
    LoadAdapter {
        name: String,
        path: PathBuf,
        reply: Reply<()>,
    },
    UnloadAdapter {
        name: String,
        reply: Reply<()>,
    },
}

impl Work {
    fn closed(&self) -> bool {
        match self {
            Work::Score(w) => w.reply.is_closed(),
            Work::Generate(w) => w.reply.is_closed(),
            // Adapter changes happen even if the client stopped waiting.
            _ => false,
        }
    }
}

/// Batching and size limits of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Most requests merged into one batch.
    pub max_batch: usize,
    /// Longest wait for more requests after the first of a batch.
    pub max_wait: Duration,
    /// Most sequences in one forward pass / decode.
    pub max_rows: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_batch: 32,
            max_wait: Duration::from_millis(5),
            max_rows: 64,
        }
    }
}

/// Move the adapter tensors of every projection off the model (in layer and projection order).
fn take_loras(model: &mut Model) -> Vec<Option<Lora>> {
    let mut out = vec![];
    for layer in &mut model.layers {
        for (_, lin) in layer.linears_mut() {
            out.push(lin.lora.take());
        }
    }
    out
}

/// Exchange the model's adapter tensors with `store` (calling it twice restores both).
fn swap_loras(model: &mut Model, store: &mut [Option<Lora>]) {
    let mut i = 0;
    for layer in &mut model.layers {
        for (_, lin) in layer.linears_mut() {
            std::mem::swap(&mut lin.lora, &mut store[i]);
            i += 1;
        }
    }
}

/// Load a PEFT adapter directory into a store of its own, leaving `model` without an adapter.
pub fn load_adapter_store(model: &mut Model, dir: &Path) -> Result<Vec<Option<Lora>>> {
    let r = lora::load_adapter(model, dir);
    // Whatever happened, the model keeps no adapter at rest.
    let store = take_loras(model);
    r.with_context(|| format!("loading LoRA adapter {}", dir.display()))?;
    Ok(store)
}

type PrefixKey = (String, usize, Variant);

/// The engine state that lives on the model thread.
pub struct Engine {
    model: Model,
    tok: Arc<Tokenizer>,
    policies: Arc<Vec<PolicyPrompts>>,
    served: String,
    /// Adapter tensors by model name (the served name too when it was started with an adapter).
    adapters: HashMap<String, Vec<Option<Lora>>>,
    prefixes: HashMap<PrefixKey, PrefixCache>,
    cfg: EngineConfig,
    metrics: Arc<Metrics>,
    /// The models `/v1/models` lists, kept in step with `adapters`.
    cards: Arc<RwLock<Vec<ModelCard>>>,
    seq: u64,
}

impl Engine {
    /// Set up the engine: attach the served model's own adapter (if any) and prefill every
    /// policy's verdict-token prefix.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        mut model: Model,
        tok: Arc<Tokenizer>,
        policies: Arc<Vec<PolicyPrompts>>,
        served: String,
        adapter: Option<&Path>,
        cfg: EngineConfig,
        metrics: Arc<Metrics>,
        cards: Arc<RwLock<Vec<ModelCard>>>,
    ) -> Result<Engine> {
        // The model at rest has no adapter; adapters are swapped in per group.
        let own = take_loras(&mut model);
        let mut adapters = HashMap::new();
        if let Some(dir) = adapter {
            adapters.insert(served.clone(), load_adapter_store(&mut model, dir)?);
        } else if own.iter().any(Option::is_some) {
            adapters.insert(served.clone(), own);
        }
        let mut e = Engine {
            model,
            tok,
            policies,
            served,
            adapters,
            prefixes: HashMap::new(),
            cfg,
            metrics,
            cards,
            seq: 0,
        };
        for i in 0..e.policies.len() {
            let t0 = Instant::now();
            let served = e.served.clone();
            let policies = e.policies.clone();
            let p = &policies[i];
            e.with_model(&served, |m, prefixes| {
                let key = (served.clone(), i, Variant::NoReasoning);
                prefixes.insert(key, p.prefix_cache(m, Variant::NoReasoning)?);
                Ok(())
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            tracing::info!(
                "policy {} v{}: verdict-token prefix of {} tokens prefilled in {:.2} s",
                p.policy.id,
                p.policy.version,
                p.prefix_ids(Variant::NoReasoning).len(),
                t0.elapsed().as_secs_f64()
            );
        }
        Ok(e)
    }

    /// Run `f` with the named model's adapter swapped in; panics become errors.
    fn with_model<R>(
        &mut self,
        name: &str,
        f: impl FnOnce(&Model, &mut HashMap<PrefixKey, PrefixCache>) -> Result<R>,
    ) -> Result<R, EngineError> {
        let Engine {
            model,
            adapters,
            prefixes,
            served,
            ..
        } = self;
        let mut store = adapters.get_mut(name);
        if store.is_none() && name != served.as_str() {
            return Err(EngineError::NotFound(format!(
                "The model `{name}` does not exist."
            )));
        }
        if let Some(s) = store.as_deref_mut() {
            swap_loras(model, s);
        }
        // A libtorch error (or a bug) in this batch fails this batch, not the server (the error
        // policy: modrl_model::guard).
        let r = modrl_model::guard::run_guarded(|| f(model, prefixes));
        if let Some(s) = store {
            swap_loras(model, s);
        }
        match r {
            Ok(Ok(x)) => Ok(x),
            Ok(Err(e)) => Err(EngineError::Internal(format!("{e:#}"))),
            Err(msg) => {
                tracing::error!("model thread: {msg}");
                Err(EngineError::Internal(msg))
            }
        }
    }

    /// Serve queued work until every sender is dropped.
    pub fn run(mut self, rx: Receiver<Work>) {
        while let Ok(first) = rx.recv() {
            self.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
            let mut batch = vec![first];
            let deadline = Instant::now() + self.cfg.max_wait;
            while batch.len() < self.cfg.max_batch {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(w) => {
                        self.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
                        batch.push(w);
                    }
                    Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            self.process(batch);
        }
        tracing::info!("engine: request channel closed, model thread exits");
    }

    fn process(&mut self, batch: Vec<Work>) {
        let live: Vec<Work> = batch.into_iter().filter(|w| !w.closed()).collect();
        if live.is_empty() {
            return;
        }
        let mut items = 0;
        let n_requests = live.len();
        let mut scores: Vec<(String, Vec<ScoreWork>)> = vec![];
        let mut gens: Vec<(String, Vec<GenWork>)> = vec![];
        for w in live {
            match w {
                Work::LoadAdapter { name, path, reply } => {
                    let _ = reply.send(self.load_adapter(&name, &path));
                }
                Work::UnloadAdapter { name, reply } => {
                    let _ = reply.send(self.unload_adapter(&name));
                }
                Work::Score(s) => {
                    items += s.prompts.len();
                    let key = format!(
                        "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
                        s.model,
                        s.policy,
                        s.mode.describe(),
                        s.max_new_tokens,
                        s.seed
                    );
                    match scores.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, v)) => v.push(s),
                        None => scores.push((key, vec![s])),
                    }
                }
                Work::Generate(g) => {
                    items += g.prompts.len() * g.n;
                    self.seq += 1;
                    let key = if g.params.seed.is_some() {
                        format!("seeded {}", self.seq)
                    } else {
                        format!("{}\u{0}{}\u{0}{:?}", g.model, g.n, g.params)
                    };
                    match gens.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, v)) => v.push(g),
                        None => gens.push((key, vec![g])),
                    }
                }
            }
        }
        self.metrics.observe_batch(n_requests, items);
        let t0 = Instant::now();
        for (_, group) in scores {
            self.score_group(group);
        }
        for (_, group) in gens {
            self.generate_group(group);
        }
        tracing::debug!(
            "engine: batch of {n_requests} requests, {items} items in {:.1} ms",
            1e3 * t0.elapsed().as_secs_f64()
        );
    }

    fn load_adapter(&mut self, name: &str, path: &Path) -> Result<(), EngineError> {
        if name == self.served || self.adapters.contains_key(name) {
            return Err(EngineError::BadRequest(format!(
                "The lora adapter '{name}' has already been loaded."
            )));
        }
        let t0 = Instant::now();
        let store = load_adapter_store(&mut self.model, path)
            .map_err(|e| EngineError::BadRequest(format!("{e:#}")))?;
        self.adapters.insert(name.to_string(), store);
        self.cards.write().unwrap().push(ModelCard {
            id: name.to_string(),
            parent: Some(self.served.clone()),
            root: path.display().to_string(),
            created: unix_now(),
        });
        tracing::info!(
            "loaded LoRA adapter {name} from {} in {:.2} s",
            path.display(),
            t0.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn unload_adapter(&mut self, name: &str) -> Result<(), EngineError> {
        if name == self.served {
            return Err(EngineError::BadRequest(format!(
                "`{name}` is the served model, not a runtime adapter; it cannot be unloaded."
            )));
        }
        if self.adapters.remove(name).is_none() {
            return Err(EngineError::NotFound(format!(
                "The lora adapter '{name}' cannot be found."
            )));
        }
        self.prefixes.retain(|(m, _, _), _| m != name);
        self.cards.write().unwrap().retain(|c| c.id != name);
        tracing::info!("unloaded LoRA adapter {name}");
        Ok(())
    }

    fn score_group(&mut self, group: Vec<ScoreWork>) {
        let group: Vec<ScoreWork> = group.into_iter().filter(|w| !w.reply.is_closed()).collect();
        let Some(first) = group.first() else { return };
        let (model, pi, mode, max_new, seed) = (
            first.model.clone(),
            first.policy,
            first.mode,
            first.max_new_tokens,
            first.seed,
        );
        let prompts: Vec<Vec<u32>> = group.iter().flat_map(|w| w.prompts.clone()).collect();
        let (policies, tok, max_rows) =
            (self.policies.clone(), self.tok.clone(), self.cfg.max_rows);
        let p = &policies[pi];
        let variant = p.variant(&mode);
        let key = (model.clone(), pi, variant);
        let r = self.with_model(&model, |m, prefixes| {
            if !prefixes.contains_key(&key) {
                prefixes.insert(key.clone(), p.prefix_cache(m, variant)?);
            }
            let pc = &prefixes[&key];
            // No contents: the API refuses reasoned scoring, the one mode that renders them again.
            let budget = Budget {
                max_new_tokens: max_new,
                seed,
                max_rows,
            };
            p.score(m, &tok, Some(pc), &[], &prompts, &mode, budget)
        });
        if r.is_ok() {
            self.metrics.add_scored_items(prompts.len());
        }
        let mut off = 0;
        for w in group {
            let n = w.prompts.len();
            let _ = w.reply.send(match &r {
                Ok(all) => Ok(all[off..off + n].to_vec()),
                Err(e) => Err(e.clone()),
            });
            off += n;
        }
    }

    fn generate_group(&mut self, group: Vec<GenWork>) {
        let group: Vec<GenWork> = group.into_iter().filter(|w| !w.reply.is_closed()).collect();
        let Some(first) = group.first() else { return };
        let (model, n, params) = (first.model.clone(), first.n, first.params.clone());
        let prompts: Vec<Vec<u32>> = group.iter().flat_map(|w| w.prompts.clone()).collect();
        let (tok, max_rows) = (self.tok.clone(), self.cfg.max_rows);
        let r = self.with_model(&model, |m, _| {
            let mut out = Vec::with_capacity(prompts.len() * n);
            let per_call = (max_rows / n.max(1)).max(1);
            for (ci, chunk) in prompts.chunks(per_call).enumerate() {
                let mut got = generate_with_prefix(m, None, chunk, n, &params, Some(&tok))?;
                for c in &mut got {
                    c.prompt_index += ci * per_call;
                }
                out.extend(got);
            }
            Ok(out)
        });
        if let Ok(all) = &r {
            self.metrics
                .add_generated_tokens(all.iter().map(|c| c.token_ids.len()).sum());
        }
        let mut off = 0;
        for w in group {
            let k = w.prompts.len() * n;
            let _ = w.reply.send(match &r {
                Ok(all) => {
                    let mut mine = all[off..off + k].to_vec();
                    for c in &mut mine {
                        c.prompt_index -= off / n;
                    }
                    Ok(mine)
                }
                Err(e) => Err(e.clone()),
            });
            off += k;
        }
    }
}
