//! Route handlers and the OpenAI-compatible request / response shapes: request parsing and
//! checks shared by every route here, the routes in [`moderation`], [`generation`] and [`admin`].

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use modrl_model::{Completion, FinishReason, Message, SamplingParams};
use modrl_moderation::score::ScoringMode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

use crate::engine::{EngineError, GenWork, ScoreWork, Work};
use crate::error::ApiError;
use crate::state::AppState;
use modrl_moderation::score::ItemScore;

pub type ApiResult = Result<Json<Value>, ApiError>;

/// A fresh response id with the given prefix.
pub(crate) fn new_id(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{prefix}-{nanos:x}{:04x}",
        N.fetch_add(1, Ordering::Relaxed) & 0xffff
    )
}

/// Parse a JSON body: 413 over the size limit, 400 for malformed JSON or a wrong shape.
pub(crate) fn parse_json<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|r| {
        let status = r.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "invalid_request_error",
                "request_too_large",
                "The request body is larger than the server's limit.",
            )
        } else {
            ApiError::new(
                status,
                "invalid_request_error",
                "invalid_body",
                r.body_text(),
            )
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::bad_request("invalid_request", format!("Invalid request: {e}"))
        }
        _ => ApiError::bad_request("invalid_json", format!("Malformed JSON body: {e}")),
    })
}

pub(crate) fn internal(e: anyhow::Error) -> ApiError {
    ApiError::internal(format!("{e:#}"))
}

pub(crate) fn policy_index(s: &AppState, id: Option<&str>) -> Result<usize, ApiError> {
    let ids = || {
        s.policies
            .iter()
            .map(|p| p.policy.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match id {
        Some(id) => s
            .policies
            .iter()
            .position(|p| p.policy.id == id)
            .ok_or_else(|| ApiError {
                param: Some("policy".into()),
                ..ApiError::new(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "policy_not_found",
                    format!("Unknown policy `{id}`; served: {}", ids()),
                )
            }),
        None if s.policies.len() == 1 => Ok(0),
        None => Err(ApiError::invalid(
            "policy",
            format!(
                "`policy` is required when several policies are served: {}",
                ids()
            ),
        )),
    }
}

/// Reject inputs longer than the server's limit (in tokens).
pub(crate) fn check_input_len(s: &AppState, text: &str, param: &str) -> Result<(), ApiError> {
    let n = s.tok.encode(text).map_err(internal)?.len();
    if n > s.opts.max_input_tokens {
        return Err(ApiError {
            param: Some(param.into()),
            ..ApiError::bad_request(
                "context_length_exceeded",
                format!(
                    "The input has {n} tokens; this server accepts at most {}.",
                    s.opts.max_input_tokens
                ),
            )
        });
    }
    Ok(())
}

mod admin;
mod generation;
mod moderation;

pub use admin::*;
pub use generation::*;
pub use moderation::*;
