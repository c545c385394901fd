//! The HTTP server: routes, middleware (metrics, auth, timeout, body limit), start-up and graceful
//! shutdown.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use anyhow::{Context, Result};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use modrl_model::{Model, Tokenizer};
use modrl_moderation::Policy;

use crate::api;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::metrics::Metrics;
pub use crate::model_card::{unix_now, ModelCard};
pub use crate::state::ServeOptions;
use crate::state::{AppState, Inner};
use modrl_moderation::score::PolicyPrompts;

/// A server ready to run: its router and its model thread.
pub struct Server {
    state: AppState,
    engine: std::thread::JoinHandle<()>,
}

impl Server {
    /// Set up the engine (attaching the served adapter, prefilling the policy prefixes) and the
    /// routes. `model` should carry no adapter; pass the served one in `opts.adapter`.
    pub fn new(
        model: Model,
        tok: Tokenizer,
        policies: Vec<Policy>,
        opts: ServeOptions,
    ) -> Result<Server> {
        if policies.is_empty() {
            anyhow::bail!("at least one policy is required");
        }
        let mut seen = HashSet::new();
        for p in &policies {
            if !seen.insert(p.id.clone()) {
                anyhow::bail!("two policies have the id {:?}", p.id);
            }
        }
        let tok = Arc::new(tok);
        let prompts: Vec<PolicyPrompts> = policies
            .into_iter()
            .map(|p| {
                let id = p.id.clone();
                PolicyPrompts::new(p, &tok, opts.reasoning_variant, opts.no_system_role)
                    .with_context(|| format!("policy {id}"))
            })
            .collect::<Result<_>>()?;
        let policies = Arc::new(prompts);
        let metrics = Arc::new(Metrics::new());
        let vocab_size = model.config.vocab_size;
        let max_positions = model.config.max_position_embeddings;
        let mut stop_ids = model.config.eos_token_ids.clone();
        if let Some(e) = tok.eos_token_id {
            if !stop_ids.contains(&e) {
                stop_ids.push(e);
            }
        }
        let models = Arc::new(RwLock::new(vec![ModelCard {
            id: opts.served_model_name.clone(),
            parent: None,
            root: opts.served_model_name.clone(),
            created: unix_now(),
        }]));
        let engine = Engine::new(
            model,
            tok.clone(),
            policies.clone(),
            opts.served_model_name.clone(),
            opts.adapter.as_deref(),
            opts.engine.clone(),
            metrics.clone(),
            models.clone(),
        )?;
        let (tx, rx) = sync_channel(opts.max_queue);
        let engine_alive = Arc::new(AtomicBool::new(true));
        let alive = engine_alive.clone();
        let engine = std::thread::Builder::new()
            .name("modrl-engine".into())
            .spawn(move || {
                struct Flag(Arc<AtomicBool>);
                impl Drop for Flag {
                    fn drop(&mut self) {
                        self.0.store(false, Ordering::SeqCst);
                    }
                }
                let _flag = Flag(alive);
                engine.run(rx)
            })
            .context("cannot start the model thread")?;
        let state = AppState(Arc::new(Inner {
            tx,
            tok,
            policies,
            models,
            opts,
            metrics,
            engine_alive,
            vocab_size,
            max_positions,
            stop_ids,
        }));
        Ok(Server { state, engine })
    }

    /// The metrics registry (shared with the running server).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.state.metrics.clone()
    }

    /// Serve on `listener` until `shutdown` resolves, then finish the requests in flight, stop the
    /// model thread and return.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let Server { state, engine } = self;
        if state.opts.api_keys.is_none() {
            tracing::warn!(
                "no API keys configured (--api-keys FILE or MODRL_API_KEYS): serving WITHOUT authentication"
            );
        }
        let addr = listener.local_addr()?;
        tracing::info!(
            "serving {} with {} polic{} on http://{addr}",
            state.opts.served_model_name,
            state.policies.len(),
            if state.policies.len() == 1 {
                "y"
            } else {
                "ies"
            }
        );
        let app = router(state);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("HTTP server failed")?;
        tracing::info!("HTTP server stopped; waiting for the model thread");
        // The router (and with it every queue sender) is gone: the engine drains and exits.
        tokio::task::spawn_blocking(move || engine.join())
            .await
            .context("joining the model thread")?
            .map_err(|_| anyhow::anyhow!("the model thread panicked"))?;
        Ok(())
    }
}

impl Server {
    /// Bind `addr` and serve until Ctrl-C or SIGTERM, on an async runtime of its own (blocking).
    pub fn run_blocking(
        self,
        addr: &str,
        on_listen: impl FnOnce(std::net::SocketAddr),
    ) -> Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("modrl-http")
            .build()
            .context("cannot start the async runtime")?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            on_listen(listener.local_addr()?);
            self.run(listener, shutdown_signal()).await
        })
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received: finishing requests in flight");
}

fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/v1/moderations", post(api::moderations))
        .route("/v1/classify", post(api::classify))
        .route("/v1/completions", post(api::completions))
        .route("/v1/chat/completions", post(api::chat_completions))
        .route("/v1/models", get(api::list_models))
        .route("/v1/load_lora_adapter", post(api::load_lora_adapter))
        .route("/v1/unload_lora_adapter", post(api::unload_lora_adapter))
        .layer(middleware::from_fn_with_state(state.clone(), timeout_mw));
    Router::new()
        .merge(v1)
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), auth_mw))
        .layer(DefaultBodyLimit::max(state.opts.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), metrics_mw))
        .with_state(state)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "not_found",
        format!("No route {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        format!(
            "Method {} is not allowed on {}",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn metrics_mw(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let t0 = Instant::now();
    s.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let resp = next.run(req).await;
    s.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    s.metrics
        .observe_request(&route, resp.status().as_u16(), t0.elapsed().as_secs_f64());
    resp
}

async fn auth_mw(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(keys) = &s.opts.api_keys {
        if req.uri().path() != "/healthz" {
            let h = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if !crate::auth::authorized(keys, h) {
                return ApiError::unauthorized().into_response();
            }
        }
    }
    next.run(req).await
}

async fn timeout_mw(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let limit = s.opts.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        // Dropping the handler drops its answer channel: the engine skips the work if it has
        // not started it.
        Err(_) => ApiError::timeout(limit.as_millis() as u64).into_response(),
    }
}
