//! What the HTTP handlers share: the server settings, the queue to the model thread, the policies'
//! prompts, the model list and the metrics.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::StatusCode;
use modrl_model::Tokenizer;
use modrl_moderation::prompt::Variant;
use tokio::sync::oneshot;

use crate::engine::{EngineConfig, EngineError, Work};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::model_card::ModelCard;
use modrl_moderation::score::PolicyPrompts;

/// Server settings (the `modrl serve` flags).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The id clients use for the served model (`"model"` fields, `/v1/models`).
    pub served_model_name: String,
    /// A PEFT adapter that is part of the served model (applied to its requests).
    pub adapter: Option<PathBuf>,
    pub engine: EngineConfig,
    /// Most requests waiting for the engine; one more is answered 429.
    pub max_queue: usize,
    /// Longest time a `/v1/*` request may take (504 after).
    pub request_timeout: Duration,
    /// Largest request body in bytes (413 above).
    pub max_body_bytes: usize,
    /// Longest input text / prompt in tokens (400 above).
    pub max_input_tokens: usize,
    /// Most tokens one request may ask to generate (completions, reasoning of greedy / mc).
    pub max_tokens_limit: usize,
    /// Most samples per prompt (`n`, mc samples).
    pub max_n: usize,
    /// Most texts / prompts in one request.
    pub max_items: usize,
    /// Decision threshold on P(violating) unless a request gives one.
    pub threshold: f64,
    /// Prompt variant of the reasoning scoring modes.
    pub reasoning_variant: Variant,
    /// Fold the system message into the user turn (templates without a system role).
    pub no_system_role: bool,
    /// SHA-256 hashes of the accepted API keys; `None` serves without authentication.
    pub api_keys: Option<HashSet<String>>,
    /// Allow `/v1/load_lora_adapter` and `/v1/unload_lora_adapter`.
    pub allow_runtime_lora: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            served_model_name: "modrl".into(),
            adapter: None,
            engine: EngineConfig::default(),
            max_queue: 256,
            request_timeout: Duration::from_secs(120),
            max_body_bytes: 1 << 20,
            max_input_tokens: 4096,
            max_tokens_limit: 2048,
            max_n: 64,
            max_items: 256,
            threshold: 0.5,
            reasoning_variant: Variant::Standard,
            no_system_role: false,
            api_keys: None,
            allow_runtime_lora: true,
        }
    }
}

#[doc(hidden)]
pub struct Inner {
    pub tx: SyncSender<Work>,
    pub tok: Arc<Tokenizer>,
    pub policies: Arc<Vec<PolicyPrompts>>,
    pub models: Arc<RwLock<Vec<ModelCard>>>,
    pub opts: ServeOptions,
    pub metrics: Arc<Metrics>,
    pub engine_alive: Arc<AtomicBool>,
    /// Embedding rows of the model: token ids must be below.
    pub vocab_size: usize,
    pub max_positions: usize,
    /// Token ids that end a completion.
    pub stop_ids: Vec<u32>,
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Queue work for the engine (429 when the queue is full); returns its answer channel.
    pub(crate) fn enqueue<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, EngineError>>) -> Work,
    ) -> Result<oneshot::Receiver<Result<T, EngineError>>, ApiError> {
        let (tx, rx) = oneshot::channel();
        // Counted before sending so that the engine's decrement never sees it missing.
        self.metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.tx.try_send(make(tx)) {
            self.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
            return Err(match e {
                TrySendError::Full(_) => ApiError::queue_full(),
                TrySendError::Disconnected(_) => {
                    ApiError::unavailable("the model thread has stopped")
                }
            });
        }
        Ok(rx)
    }

    /// The engine's answer to queued work.
    pub(crate) async fn wait<T>(
        rx: oneshot::Receiver<Result<T, EngineError>>,
    ) -> Result<T, ApiError> {
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(EngineError::NotFound(m))) => Err(ApiError {
                param: Some("model".into()),
                ..ApiError::new(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "not_found",
                    m,
                )
            }),
            Ok(Err(EngineError::BadRequest(m))) => Err(ApiError::bad_request("invalid_request", m)),
            Ok(Err(EngineError::Internal(m))) => Err(ApiError::internal(m)),
            Err(_) => Err(ApiError::unavailable(
                "the model thread dropped the request",
            )),
        }
    }

    /// The model a request names (`None`: the served model); 404 when it is not loaded.
    pub(crate) fn resolve_model(&self, model: Option<&str>) -> Result<String, ApiError> {
        let Some(m) = model.filter(|m| !m.is_empty()) else {
            return Ok(self.opts.served_model_name.clone());
        };
        if self.models.read().unwrap().iter().any(|c| c.id == m) {
            Ok(m.to_string())
        } else {
            Err(ApiError::model_not_found(m))
        }
    }
}
