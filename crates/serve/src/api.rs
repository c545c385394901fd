//! Route handlers and the OpenAI-compatible request / response shapes.

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

type ApiResult = Result<Json<Value>, ApiError>;

/// A fresh response id with the given prefix.
fn new_id(prefix: &str) -> String {
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
fn parse_json<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
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

fn internal(e: anyhow::Error) -> ApiError {
    ApiError::internal(format!("{e:#}"))
}

fn policy_index(s: &AppState, id: Option<&str>) -> Result<usize, ApiError> {
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
fn check_input_len(s: &AppState, text: &str, param: &str) -> Result<(), ApiError> {
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

fn scoring_mode(
    s: &AppState,
    scoring: Option<&str>,
    n: Option<usize>,
    temperature: Option<f64>,
) -> Result<ScoringMode, ApiError> {
    let mut mode: ScoringMode = scoring
        .unwrap_or("verdict-token")
        .parse()
        .map_err(|e: anyhow::Error| ApiError::invalid("scoring", format!("{e:#}")))?;
    if mode == ScoringMode::Reasoned {
        return Err(ApiError::invalid(
            "scoring",
            "reasoned scoring is available in `modrl eval`, `modrl classify` and the Python package, not on the server yet; use verdict-token, greedy or mc",
        ));
    }
    match &mut mode {
        ScoringMode::MonteCarlo {
            n: mn,
            temperature: mt,
        } => {
            if let Some(x) = n {
                *mn = x;
            }
            if let Some(t) = temperature {
                *mt = t;
            }
            if *mn == 0 || *mn > s.opts.max_n {
                return Err(ApiError::invalid(
                    "n",
                    format!("n must be between 1 and {}", s.opts.max_n),
                ));
            }
            if !(mt.is_finite() && *mt > 0.0 && *mt <= 100.0) {
                return Err(ApiError::invalid(
                    "temperature",
                    "mc scoring needs a temperature above 0",
                ));
            }
        }
        _ => {
            if n.is_some_and(|x| x != 1) {
                return Err(ApiError::invalid("n", "n applies to mc scoring only"));
            }
        }
    }
    Ok(mode)
}

fn mode_name(m: &ScoringMode) -> &'static str {
    match m {
        ScoringMode::VerdictToken => "verdict-token",
        ScoringMode::Greedy => "greedy",
        ScoringMode::Reasoned => "reasoned",
        ScoringMode::MonteCarlo { .. } => "mc",
    }
}

fn check_threshold(t: Option<f64>, default: f64) -> Result<f64, ApiError> {
    let t = t.unwrap_or(default);
    if !(0.0..=1.0).contains(&t) {
        return Err(ApiError::invalid(
            "threshold",
            "threshold must be in [0, 1]",
        ));
    }
    Ok(t)
}

fn check_max_tokens(s: &AppState, v: Option<usize>, default: usize) -> Result<usize, ApiError> {
    let m = v.unwrap_or(default.min(s.opts.max_tokens_limit));
    if m == 0 || m > s.opts.max_tokens_limit {
        return Err(ApiError::invalid(
            "max_tokens",
            format!(
                "max_tokens must be between 1 and {}",
                s.opts.max_tokens_limit
            ),
        ));
    }
    Ok(m)
}

/// Queue a score job and return its answer channel (429 when the queue is full).
fn score(
    s: &AppState,
    model: &str,
    policy: usize,
    mode: ScoringMode,
    max_new_tokens: usize,
    seed: u64,
    texts: &[String],
) -> Result<oneshot::Receiver<Result<Vec<ItemScore>, EngineError>>, ApiError> {
    let p = &s.policies[policy];
    let variant = p.variant(&mode);
    let prompts: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| p.prompt_ids(&s.tok, t, variant))
        .collect::<anyhow::Result<_>>()
        .map_err(internal)?;
    let model = model.to_string();
    s.enqueue(|reply| {
        Work::Score(ScoreWork {
            model,
            policy,
            mode,
            max_new_tokens,
            seed,
            prompts,
            reply,
        })
    })
}

#[derive(Deserialize)]
pub struct ClassifyRequest {
    input: Value,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    scoring: Option<String>,
    #[serde(default)]
    n: Option<usize>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    return_reasoning: bool,
    /// Longest reasoning (greedy, mc), in tokens.
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    seed: Option<u64>,
}

/// `POST /v1/classify`: one text, one policy, a verdict.
pub async fn classify(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let req: ClassifyRequest = parse_json(body)?;
    let Value::String(input) = req.input else {
        return Err(ApiError::invalid("input", "`input` must be a string"));
    };
    let model = s.resolve_model(req.model.as_deref())?;
    let pi = policy_index(&s, req.policy.as_deref())?;
    let mode = scoring_mode(&s, req.scoring.as_deref(), req.n, req.temperature)?;
    let threshold = check_threshold(req.threshold, s.opts.threshold)?;
    let max_new = check_max_tokens(&s, req.max_tokens, 384)?;
    check_input_len(&s, &input, "input")?;
    let rx = score(
        &s,
        &model,
        pi,
        mode,
        max_new,
        req.seed.unwrap_or(0),
        std::slice::from_ref(&input),
    )?;
    let scored = AppState::wait(rx).await?;
    let sc = &scored[0];
    let p = &s.policies[pi].policy;
    let flagged = sc.score >= threshold;
    let mut out = json!({
        "label": if flagged { "violating" } else { "non_violating" },
        "category": if flagged { sc.pred_category.clone().unwrap_or_else(|| "none".into()) } else { "none".into() },
        "probability": sc.score,
        "flagged": flagged,
        "threshold": threshold,
        "category_scores": sc.category_scores.iter().map(|(c, v)| (c.clone(), json!(v))).collect::<Map<_, _>>(),
        "format_ok": sc.format_ok,
        "n_samples": sc.n_samples,
        "policy_id": p.id,
        "policy_version": p.version,
        "model": model,
        "scoring": mode_name(&mode),
    });
    if req.return_reasoning {
        out["reasoning"] = json!(sc.output);
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct ModerationRequest {
    input: Value,
    #[serde(default)]
    model: Option<String>,
    /// A policy id or a list of them (default: every served policy).
    #[serde(default)]
    policy: Option<Value>,
    #[serde(default)]
    scoring: Option<String>,
    #[serde(default)]
    threshold: Option<f64>,
}

fn moderation_inputs(v: &Value) -> Result<Vec<String>, ApiError> {
    let bad = || {
        ApiError::invalid(
            "input",
            "`input` must be a string, a list of strings or a list of {\"type\": \"text\", \"text\": ...} objects",
        )
    };
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("text") => o
                    .get("text")
                    .and_then(Value::as_str)
                    .map(String::from)
                    .ok_or_else(bad),
                Value::Object(_) => {
                    Err(ApiError::invalid("input", "only text inputs are supported"))
                }
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}

/// `POST /v1/moderations`: OpenAI's Moderation API over the served policies.
pub async fn moderations(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let req: ModerationRequest = parse_json(body)?;
    let inputs = moderation_inputs(&req.input)?;
    if inputs.len() > s.opts.max_items {
        return Err(ApiError::invalid(
            "input",
            format!("at most {} inputs per request", s.opts.max_items),
        ));
    }
    let model = s.resolve_model(req.model.as_deref())?;
    let policies: Vec<usize> = match &req.policy {
        None | Some(Value::Null) => (0..s.policies.len()).collect(),
        Some(Value::String(id)) => vec![policy_index(&s, Some(id))?],
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|x| match x.as_str() {
                Some(id) => policy_index(&s, Some(id)),
                None => Err(ApiError::invalid("policy", "policy ids must be strings")),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ApiError::invalid(
                "policy",
                "`policy` must be a policy id or a list of them",
            ))
        }
    };
    let mode = scoring_mode(&s, req.scoring.as_deref(), None, None)?;
    let threshold = check_threshold(req.threshold, s.opts.threshold)?;
    for t in &inputs {
        check_input_len(&s, t, "input")?;
    }
    // Queue every policy's job before waiting, so that they can share a batch.
    let mut pending = vec![];
    for &pi in &policies {
        pending.push(score(&s, &model, pi, mode, 384, 0, &inputs)?);
    }
    let mut per_policy: Vec<Vec<ItemScore>> = vec![];
    for rx in pending {
        per_policy.push(AppState::wait(rx).await?);
    }
    let multi = policies.len() > 1;
    let results: Vec<Value> = (0..inputs.len())
        .map(|i| {
            let mut cats = Map::new();
            let mut scores = Map::new();
            let mut flagged = false;
            for (&pi, res) in policies.iter().zip(&per_policy) {
                let p = &s.policies[pi].policy;
                let sc = &res[i];
                let hit = sc.score >= threshold;
                flagged |= hit;
                let key = |c: &str| {
                    if multi {
                        format!("{}/{c}", p.id)
                    } else {
                        c.to_string()
                    }
                };
                for (c, v) in &sc.category_scores {
                    cats.insert(key(c), json!(hit && sc.pred_category.as_deref() == Some(c)));
                    scores.insert(key(c), json!(v));
                }
                cats.insert(p.id.clone(), json!(hit));
                scores.insert(p.id.clone(), json!(sc.score));
            }
            json!({"flagged": flagged, "categories": cats, "category_scores": scores})
        })
        .collect();
    Ok(Json(json!({
        "id": new_id("modr"),
        "model": model,
        "results": results,
        "policies": policies.iter().map(|&pi| {
            let p = &s.policies[pi].policy;
            json!({"id": p.id, "version": p.version})
        }).collect::<Vec<_>>(),
        "scoring": mode_name(&mode),
    })))
}

/// Sampling settings common to both completion routes.
struct Sampling {
    params: SamplingParams,
    n: usize,
}

#[allow(clippy::too_many_arguments)]
fn sampling(
    s: &AppState,
    max_tokens: Option<usize>,
    default_max: usize,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<i64>,
    n: Option<usize>,
    seed: Option<i64>,
    stop: Option<&Value>,
    stop_token_ids: Option<&[u32]>,
) -> Result<Sampling, ApiError> {
    let max_new_tokens = check_max_tokens(s, max_tokens, default_max)?;
    let temperature = temperature.unwrap_or(1.0);
    if !(temperature.is_finite() && (0.0..=100.0).contains(&temperature)) {
        return Err(ApiError::invalid(
            "temperature",
            "temperature must be in [0, 100]",
        ));
    }
    let top_p = top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid("top_p", "top_p must be in (0, 1]"));
    }
    let top_k = match top_k.unwrap_or(0) {
        -1 | 0 => 0,
        k if k > 0 => k as usize,
        _ => {
            return Err(ApiError::invalid(
                "top_k",
                "top_k must be -1, 0 (off) or positive",
            ))
        }
    };
    let n = n.unwrap_or(1);
    if n == 0 || n > s.opts.max_n {
        return Err(ApiError::invalid(
            "n",
            format!("n must be between 1 and {}", s.opts.max_n),
        ));
    }
    let stop_strings = match stop {
        None | Some(Value::Null) => vec![],
        Some(Value::String(x)) => vec![x.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::invalid("stop", "`stop` must be a string or a list of strings")
            })?,
        _ => {
            return Err(ApiError::invalid(
                "stop",
                "`stop` must be a string or a list of strings",
            ))
        }
    };
    if stop_strings.iter().any(String::is_empty) || stop_strings.len() > 16 {
        return Err(ApiError::invalid(
            "stop",
            "at most 16 non-empty stop strings",
        ));
    }
    let mut stop_ids = s.stop_ids.clone();
    if let Some(extra) = stop_token_ids {
        for &t in extra {
            if t as usize >= s.vocab_size {
                return Err(ApiError::invalid(
                    "stop_token_ids",
                    format!("token id {t} is out of the vocabulary"),
                ));
            }
            if !stop_ids.contains(&t) {
                stop_ids.push(t);
            }
        }
    }
    Ok(Sampling {
        params: SamplingParams {
            max_new_tokens,
            temperature,
            top_p,
            top_k,
            seed: seed.map(|x| x as u64),
            stop_token_ids: stop_ids,
            stop_strings,
        },
        n,
    })
}

/// Check prompt lengths against the limits and the model's context.
fn check_prompts(s: &AppState, prompts: &[Vec<u32>], max_new: usize) -> Result<(), ApiError> {
    if prompts.len() > s.opts.max_items {
        return Err(ApiError::invalid(
            "prompt",
            format!("at most {} prompts per request", s.opts.max_items),
        ));
    }
    for p in prompts {
        if p.is_empty() {
            return Err(ApiError::invalid("prompt", "prompts must not be empty"));
        }
        if let Some(&t) = p.iter().find(|&&t| t as usize >= s.vocab_size) {
            return Err(ApiError::invalid(
                "prompt",
                format!(
                    "token id {t} is out of the vocabulary (size {})",
                    s.vocab_size
                ),
            ));
        }
        if p.len() > s.opts.max_input_tokens || p.len() + max_new > s.max_positions {
            return Err(ApiError {
                param: Some("prompt".into()),
                ..ApiError::bad_request(
                    "context_length_exceeded",
                    format!(
                        "The prompt has {} tokens; this server accepts at most {} prompt tokens and {} tokens of prompt plus max_tokens.",
                        p.len(),
                        s.opts.max_input_tokens,
                        s.max_positions
                    ),
                )
            });
        }
    }
    Ok(())
}

async fn generate(
    s: &AppState,
    model: String,
    prompts: Vec<Vec<u32>>,
    sm: &Sampling,
) -> Result<Vec<Completion>, ApiError> {
    let (n, params) = (sm.n, sm.params.clone());
    let rx = s.enqueue(|reply| {
        Work::Generate(GenWork {
            model,
            prompts,
            n,
            params,
            reply,
        })
    })?;
    AppState::wait(rx).await
}

/// Generated text: special tokens dropped, cut before the first stop string.
fn completion_text(s: &AppState, c: &Completion, stops: &[String]) -> Result<String, ApiError> {
    let mut text = s.tok.decode(&c.token_ids, true).map_err(internal)?;
    if c.finish_reason == FinishReason::Stop {
        if let Some(cut) = stops.iter().filter_map(|x| text.find(x.as_str())).min() {
            text.truncate(cut);
        }
    }
    Ok(text)
}

fn token_strings(s: &AppState, ids: &[u32], as_ids: bool) -> Result<Vec<String>, ApiError> {
    ids.iter()
        .map(|&t| {
            if as_ids {
                Ok(format!("token_id:{t}"))
            } else {
                s.tok.decode(&[t], false).map_err(internal)
            }
        })
        .collect()
}

fn finish(c: &Completion) -> &'static str {
    match c.finish_reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

fn usage(prompts: &[Vec<u32>], outs: &[Completion]) -> Value {
    let p: usize = prompts.iter().map(Vec::len).sum();
    let c: usize = outs.iter().map(|o| o.token_ids.len()).sum();
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
}

fn reject_unsupported(stream: bool, echo: bool) -> Result<(), ApiError> {
    if stream {
        return Err(ApiError::invalid("stream", "streaming is not supported"));
    }
    if echo {
        return Err(ApiError::invalid("echo", "echo is not supported"));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct CompletionRequest {
    #[serde(default)]
    model: Option<String>,
    prompt: Value,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<i64>,
    #[serde(default)]
    n: Option<usize>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    stop: Option<Value>,
    #[serde(default)]
    stop_token_ids: Option<Vec<u32>>,
    #[serde(default)]
    logprobs: Option<Value>,
    #[serde(default)]
    return_tokens_as_token_ids: bool,
    #[serde(default)]
    echo: bool,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    best_of: Option<usize>,
}

/// A completions `prompt`: a string, a list of strings, a list of token ids or a list of lists.
fn completion_prompts(s: &AppState, v: &Value) -> Result<Vec<Vec<u32>>, ApiError> {
    let bad = || {
        ApiError::invalid(
            "prompt",
            "`prompt` must be a string, a list of strings, a list of token ids or a list of token-id lists",
        )
    };
    let ids = |a: &[Value]| -> Result<Vec<u32>, ApiError> {
        a.iter()
            .map(|x| {
                x.as_u64()
                    .filter(|&t| t <= u32::MAX as u64)
                    .map(|t| t as u32)
                    .ok_or_else(bad)
            })
            .collect()
    };
    let enc = |t: &str| s.tok.encode(t).map_err(internal);
    match v {
        Value::String(t) => Ok(vec![enc(t)?]),
        Value::Array(a) if a.is_empty() => Err(bad()),
        Value::Array(a) => match &a[0] {
            Value::String(_) => a
                .iter()
                .map(|x| x.as_str().ok_or_else(bad).and_then(enc))
                .collect(),
            Value::Number(_) => Ok(vec![ids(a)?]),
            Value::Array(_) => a
                .iter()
                .map(|x| x.as_array().ok_or_else(bad).and_then(|l| ids(l)))
                .collect(),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

fn logprobs_wanted(v: &Option<Value>, param: &str) -> Result<bool, ApiError> {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(false),
        Some(Value::Bool(true)) => Ok(true),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(true),
        _ => Err(ApiError::invalid(
            param,
            "`logprobs` must be a non-negative integer",
        )),
    }
}

/// `POST /v1/completions`.
pub async fn completions(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let req: CompletionRequest = parse_json(body)?;
    reject_unsupported(req.stream, req.echo)?;
    let model = s.resolve_model(req.model.as_deref())?;
    let want_lp = logprobs_wanted(&req.logprobs, "logprobs")?;
    let sm = sampling(
        &s,
        req.max_tokens,
        16,
        req.temperature,
        req.top_p,
        req.top_k,
        req.n,
        req.seed,
        req.stop.as_ref(),
        req.stop_token_ids.as_deref(),
    )?;
    if req.best_of.is_some_and(|b| b != sm.n) {
        return Err(ApiError::invalid(
            "best_of",
            "best_of other than n is not supported",
        ));
    }
    let prompts = completion_prompts(&s, &req.prompt)?;
    check_prompts(&s, &prompts, sm.params.max_new_tokens)?;
    let outs = generate(&s, model.clone(), prompts.clone(), &sm).await?;
    let mut choices = Vec::with_capacity(outs.len());
    for (i, c) in outs.iter().enumerate() {
        let logprobs = if want_lp {
            json!({
                "tokens": token_strings(&s, &c.token_ids, req.return_tokens_as_token_ids)?,
                "token_logprobs": c.logprobs,
                "top_logprobs": null,
                "text_offset": null,
            })
        } else {
            Value::Null
        };
        choices.push(json!({
            "index": i,
            "text": completion_text(&s, c, &sm.params.stop_strings)?,
            "finish_reason": finish(c),
            "logprobs": logprobs,
            "token_ids": c.token_ids,
            "prompt_index": c.prompt_index,
        }));
    }
    Ok(Json(json!({
        "id": new_id("cmpl"),
        "object": "text_completion",
        "created": crate::model_card::unix_now(),
        "model": model,
        "choices": choices,
        "usage": usage(&prompts, &outs),
    })))
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Value,
}

#[derive(Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    model: Option<String>,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    max_completion_tokens: Option<usize>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<i64>,
    #[serde(default)]
    n: Option<usize>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    stop: Option<Value>,
    #[serde(default)]
    stop_token_ids: Option<Vec<u32>>,
    #[serde(default)]
    logprobs: Option<Value>,
    #[serde(default)]
    return_tokens_as_token_ids: bool,
    #[serde(default)]
    stream: bool,
}

fn message_text(v: &Value) -> Result<String, ApiError> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                match (
                    p.get("type").and_then(Value::as_str),
                    p.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => out.push_str(t),
                    _ => {
                        return Err(ApiError::invalid(
                            "messages",
                            "only text content parts are supported",
                        ))
                    }
                }
            }
            Ok(out)
        }
        _ => Err(ApiError::invalid(
            "messages",
            "message content must be a string or a list of text parts",
        )),
    }
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let req: ChatRequest = parse_json(body)?;
    reject_unsupported(req.stream, false)?;
    let model = s.resolve_model(req.model.as_deref())?;
    if req.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "`messages` must not be empty",
        ));
    }
    let want_lp = match &req.logprobs {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        _ => {
            return Err(ApiError::invalid(
                "logprobs",
                "`logprobs` must be a boolean",
            ))
        }
    };
    let sm = sampling(
        &s,
        req.max_completion_tokens.or(req.max_tokens),
        512,
        req.temperature,
        req.top_p,
        req.top_k,
        req.n,
        req.seed,
        req.stop.as_ref(),
        req.stop_token_ids.as_deref(),
    )?;
    let msgs: Vec<Message> = req
        .messages
        .iter()
        .map(|m| Ok(Message::new(&m.role, message_text(&m.content)?)))
        .collect::<Result<_, ApiError>>()?;
    if !s.tok.has_chat_template() {
        return Err(ApiError::bad_request(
            "no_chat_template",
            "The served model has no chat template; use /v1/completions.",
        ));
    }
    let prompt = s
        .tok
        .encode_chat(&msgs, true)
        .map_err(|e| ApiError::invalid("messages", format!("{e:#}")))?;
    let prompts = vec![prompt];
    check_prompts(&s, &prompts, sm.params.max_new_tokens)?;
    let outs = generate(&s, model.clone(), prompts.clone(), &sm).await?;
    let mut choices = Vec::with_capacity(outs.len());
    for (i, c) in outs.iter().enumerate() {
        let logprobs = if want_lp {
            let toks = token_strings(&s, &c.token_ids, req.return_tokens_as_token_ids)?;
            json!({"content": toks.iter().zip(&c.logprobs).map(|(t, lp)| json!({
                "token": t,
                "logprob": lp,
                "bytes": t.as_bytes(),
                "top_logprobs": [],
            })).collect::<Vec<_>>()})
        } else {
            Value::Null
        };
        choices.push(json!({
            "index": i,
            "message": {"role": "assistant", "content": completion_text(&s, c, &sm.params.stop_strings)?},
            "finish_reason": finish(c),
            "logprobs": logprobs,
            "token_ids": c.token_ids,
        }));
    }
    Ok(Json(json!({
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": crate::model_card::unix_now(),
        "model": model,
        "choices": choices,
        "usage": usage(&prompts, &outs),
    })))
}

/// `GET /v1/models`.
pub async fn list_models(State(s): State<AppState>) -> ApiResult {
    let data: Vec<Value> = s
        .models
        .read()
        .unwrap()
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "object": "model",
                "created": c.created,
                "owned_by": "modrl",
                "root": c.root,
                "parent": c.parent,
                "max_model_len": s.max_positions,
            })
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

#[derive(Deserialize)]
pub struct LoadLora {
    lora_name: String,
    #[serde(default)]
    lora_path: Option<String>,
}

fn check_runtime_lora(s: &AppState, name: &str) -> Result<(), ApiError> {
    if !s.opts.allow_runtime_lora {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            "runtime_lora_disabled",
            "Loading and unloading LoRA adapters at run time is disabled on this server.",
        ));
    }
    if name.trim().is_empty() {
        return Err(ApiError::invalid(
            "lora_name",
            "`lora_name` must not be empty",
        ));
    }
    Ok(())
}

/// `POST /v1/load_lora_adapter` (vLLM's route): `{"lora_name", "lora_path"}`.
pub async fn load_lora_adapter(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let req: LoadLora = parse_json(body)?;
    check_runtime_lora(&s, &req.lora_name)?;
    let Some(path) = req.lora_path.filter(|p| !p.is_empty()) else {
        return Err(ApiError::invalid("lora_path", "`lora_path` is required"));
    };
    let path = std::path::PathBuf::from(path);
    if !path.join("adapter_config.json").is_file() {
        return Err(ApiError::invalid(
            "lora_path",
            format!(
                "{} is not a PEFT adapter directory (no adapter_config.json)",
                path.display()
            ),
        ));
    }
    let name = req.lora_name.clone();
    let rx = s.enqueue(|reply| Work::LoadAdapter { name, path, reply })?;
    AppState::wait(rx).await?;
    Ok(Json(json!({
        "object": "lora_adapter",
        "id": req.lora_name,
        "status": "loaded",
        "message": format!("Success: LoRA adapter '{}' added successfully.", req.lora_name),
    })))
}

/// `POST /v1/unload_lora_adapter`: `{"lora_name"}`.
pub async fn unload_lora_adapter(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let req: LoadLora = parse_json(body)?;
    check_runtime_lora(&s, &req.lora_name)?;
    let name = req.lora_name.clone();
    let rx = s.enqueue(|reply| Work::UnloadAdapter { name, reply })?;
    AppState::wait(rx).await?;
    Ok(Json(json!({
        "object": "lora_adapter",
        "id": req.lora_name,
        "status": "unloaded",
        "message": format!("Success: LoRA adapter '{}' removed successfully.", req.lora_name),
    })))
}

/// `GET /healthz`: 200 while the model thread runs.
pub async fn healthz(State(s): State<AppState>) -> Response {
    if !s.engine_alive.load(Ordering::SeqCst) {
        return ApiError::unavailable("the model thread has stopped").into_response();
    }
    Json(json!({
        "status": "ok",
        "model": s.opts.served_model_name,
        "policies": s.policies.iter().map(|p| json!({"id": p.policy.id, "version": p.policy.version})).collect::<Vec<_>>(),
        "queue_depth": s.metrics.queue_depth.load(Ordering::Relaxed),
    }))
    .into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}
