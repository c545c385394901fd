//! `modrl serve`: the HTTP server (see the `modrl-serve` crate for the routes).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use modrl_moderation::Policy;
use modrl_serve::{auth, EngineConfig, ServeOptions, Server};

use crate::ModelArgs;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Policy file (TOML); repeat to serve several policies (requests pick one by id).
    #[arg(long = "policy", required = true)]
    pub policies: Vec<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: String,
    /// API keys: one per line, `sha256:HEX` or 64 hex digits for a SHA-256 hash, otherwise a
    /// plaintext key (hashed at load; `plain:KEY` forces plaintext). MODRL_API_KEYS (comma-
    /// separated, same rules) adds keys. With neither, the server runs without authentication.
    #[arg(long)]
    pub api_keys: Option<PathBuf>,
    /// Model id for clients (default: the model directory's name).
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// Most requests merged into one engine batch.
    #[arg(long, default_value_t = 32)]
    pub max_batch: usize,
    /// Longest wait (ms) for more requests after the first of a batch.
    #[arg(long, default_value_t = 5)]
    pub max_wait_ms: u64,
    /// Most sequences in one forward pass / decode.
    #[arg(long, default_value_t = 64)]
    pub max_batch_rows: usize,
    /// Most requests waiting for the model; more are answered 429.
    #[arg(long, default_value_t = 256)]
    pub max_queue: usize,
    /// Per-request time limit (ms); 504 after.
    #[arg(long, default_value_t = 120_000)]
    pub request_timeout_ms: u64,
    /// Largest request body (bytes); 413 above.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Longest input text or prompt (tokens); 400 above.
    #[arg(long, default_value_t = 4096)]
    pub max_input_tokens: usize,
    /// Most tokens a request may generate (completions, greedy / mc reasoning).
    #[arg(long, default_value_t = 2048)]
    pub max_tokens_limit: usize,
    /// Most samples per prompt (n, mc samples).
    #[arg(long, default_value_t = 64)]
    pub max_n: usize,
    /// Most texts or prompts in one request.
    #[arg(long, default_value_t = 256)]
    pub max_items: usize,
    /// Default decision threshold on P(violating).
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
    /// Prompt variant for greedy / mc scoring: standard or reflection.
    #[arg(long, default_value = "standard")]
    pub variant: String,
    /// Fold the system message into the user turn (templates without a system role).
    #[arg(long)]
    pub no_system_role: bool,
    /// Refuse /v1/load_lora_adapter and /v1/unload_lora_adapter.
    #[arg(long)]
    pub disable_runtime_lora: bool,
}

pub fn run(a: ServeArgs) -> Result<()> {
    let policies: Vec<Policy> = a
        .policies
        .iter()
        .map(|p| Policy::load(p).map_err(anyhow::Error::from))
        .collect::<Result<_>>()?;
    if !(0.0..=1.0).contains(&a.threshold) {
        anyhow::bail!("--threshold must be in [0, 1]");
    }
    let env_keys = std::env::var("MODRL_API_KEYS").ok();
    let api_keys = auth::configured_keys(a.api_keys.as_deref(), env_keys.as_deref())?;
    let served_model_name = a.served_model_name.clone().unwrap_or_else(|| {
        a.model
            .model
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "modrl".into())
    });
    let opts = ServeOptions {
        served_model_name,
        adapter: a.model.adapter.clone(),
        engine: EngineConfig {
            max_batch: a.max_batch.max(1),
            max_wait: Duration::from_millis(a.max_wait_ms),
            max_rows: a.max_batch_rows.max(1),
        },
        max_queue: a.max_queue,
        request_timeout: Duration::from_millis(a.request_timeout_ms),
        max_body_bytes: a.max_body_bytes,
        max_input_tokens: a.max_input_tokens,
        max_tokens_limit: a.max_tokens_limit,
        max_n: a.max_n,
        max_items: a.max_items,
        threshold: a.threshold,
        reasoning_variant: crate::eval::parse_variant(&a.variant)?,
        no_system_role: a.no_system_role,
        api_keys,
        allow_runtime_lora: !a.disable_runtime_lora,
    };
    // The served adapter is swapped in per request by the engine, so load the base weights only.
    let base = ModelArgs {
        adapter: None,
        ..a.model.clone()
    };
    let (model, tok) = crate::load_model(&base)?;
    let server = Server::new(model, tok, policies, opts)?;
    server.run_blocking(&a.addr, |addr| eprintln!("listening on http://{addr}"))
}
