//! Serving moderation classifiers over HTTP and in batch.
//!
//! * [`server`] — `modrl serve`: an axum server with OpenAI-compatible routes
//!   (`/v1/moderations`, `/v1/completions`, `/v1/chat/completions`, `/v1/models`), vLLM's LoRA
//!   routes (`/v1/load_lora_adapter`, `/v1/unload_lora_adapter`), the policy-grounded
//!   `/v1/classify`, `/healthz` and Prometheus `/metrics`; API keys, limits (body size, input
//!   tokens, per-request timeout, bounded queue) and graceful shutdown.
//! * [`engine`] — the model thread that batches queued requests into forward passes.
//!   Scores come from [`modrl_moderation::score`] (the one scoring path), with per-adapter,
//!   per-policy prefix caches held by the engine.
//! * [`jobs`] — `modrl classify`: resumable batch classification of JSONL / CSV / Parquet files.

pub mod api;
pub mod auth;
pub mod engine;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod model_card;
pub mod server;
pub mod state;

pub use engine::EngineConfig;
pub use server::{shutdown_signal, ServeOptions, Server};
