//! Serving moderation classifiers over HTTP and in batch.
//!
//! * [`server`] — `modrl serve`: an axum server with OpenAI-compatible routes
//!   (`/v1/moderations`, `/v1/completions`, `/v1/chat/completions`, `/v1/models`), vLLM's LoRA
//!   routes (`/v1/load_lora_adapter`, `/v1/unload_lora_adapter`), the policy-grounded
//!   `/v1/classify`, `/healthz` and Prometheus `/metrics`; API keys, limits (body size, input
//!   tokens, per-request timeout, bounded queue) and graceful shutdown.
//! * [`engine`] — the model thread that batches queued requests into forward passes.
//! * [`classifier`] — verdict-token (with category scores), greedy and Monte-Carlo scoring with
//!   per-policy prefix caches.
//! * [`text_classifier`] — classify lists of texts under a policy (`modrl classify` and the Python
//!   package share it).
//! * [`jobs`] — `modrl classify`: resumable batch classification of JSONL / CSV / Parquet files.

pub mod api;
pub mod auth;
pub mod classifier;
pub mod engine;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod model_card;
pub mod server;
pub mod state;
pub mod text_classifier;

pub use classifier::{PolicyPrompts, Scored};
pub use engine::EngineConfig;
pub use server::{shutdown_signal, ServeOptions, Server};
pub use text_classifier::{Classified, ClassifierOptions, TextClassifier};
