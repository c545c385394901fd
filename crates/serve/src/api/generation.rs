//! OpenAI-compatible generation: `/v1/completions` and `/v1/chat/completions`.

use super::*;

/// Sampling settings common to both completion routes.
pub(crate) struct Sampling {
    pub(crate) params: SamplingParams,
    pub(crate) n: usize,
}

/// The sampling fields of both completion routes (OpenAI / vLLM names), flattened into each request.
#[derive(Deserialize)]
pub struct SamplingFields {
    #[serde(default)]
    pub(crate) temperature: Option<f64>,
    #[serde(default)]
    pub(crate) top_p: Option<f64>,
    #[serde(default)]
    pub(crate) top_k: Option<i64>,
    #[serde(default)]
    pub(crate) n: Option<usize>,
    #[serde(default)]
    pub(crate) seed: Option<i64>,
    #[serde(default)]
    pub(crate) stop: Option<Value>,
    #[serde(default)]
    pub(crate) stop_token_ids: Option<Vec<u32>>,
    #[serde(default)]
    pub(crate) logprobs: Option<Value>,
    #[serde(default)]
    pub(crate) return_tokens_as_token_ids: bool,
    #[serde(default)]
    pub(crate) stream: bool,
}

/// The checked sampling settings of a request.
pub(crate) fn sampling(
    s: &AppState,
    max_tokens: Option<usize>,
    default_max: usize,
    f: &SamplingFields,
) -> Result<Sampling, ApiError> {
    let max_new_tokens = check_max_tokens(s, max_tokens, default_max)?;
    let temperature = f.temperature.unwrap_or(1.0);
    if !(temperature.is_finite() && (0.0..=100.0).contains(&temperature)) {
        return Err(ApiError::invalid(
            "temperature",
            "temperature must be in [0, 100]",
        ));
    }
    let top_p = f.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid("top_p", "top_p must be in (0, 1]"));
    }
    let top_k = match f.top_k.unwrap_or(0) {
        -1 | 0 => 0,
        k if k > 0 => k as usize,
        _ => {
            return Err(ApiError::invalid(
                "top_k",
                "top_k must be -1, 0 (off) or positive",
            ))
        }
    };
    let n = f.n.unwrap_or(1);
    if n == 0 || n > s.opts.max_n {
        return Err(ApiError::invalid(
            "n",
            format!("n must be between 1 and {}", s.opts.max_n),
        ));
    }
    let stop_strings = match &f.stop {
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
    if let Some(extra) = &f.stop_token_ids {
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
            seed: f.seed.map(|x| x as u64),
            stop_token_ids: stop_ids,
            stop_strings,
        },
        n,
    })
}

/// Check prompt lengths against the limits and the model's context.
pub(crate) fn check_prompts(
    s: &AppState,
    prompts: &[Vec<u32>],
    max_new: usize,
) -> Result<(), ApiError> {
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

pub(crate) async fn generate(
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
pub(crate) fn completion_text(
    s: &AppState,
    c: &Completion,
    stops: &[String],
) -> Result<String, ApiError> {
    let mut text = s.tok.decode(&c.token_ids, true).map_err(internal)?;
    if c.finish_reason == FinishReason::Stop {
        if let Some(cut) = stops.iter().filter_map(|x| text.find(x.as_str())).min() {
            text.truncate(cut);
        }
    }
    Ok(text)
}

pub(crate) fn token_strings(
    s: &AppState,
    ids: &[u32],
    as_ids: bool,
) -> Result<Vec<String>, ApiError> {
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

pub(crate) fn finish(c: &Completion) -> &'static str {
    match c.finish_reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

pub(crate) fn usage(prompts: &[Vec<u32>], outs: &[Completion]) -> Value {
    let p: usize = prompts.iter().map(Vec::len).sum();
    let c: usize = outs.iter().map(|o| o.token_ids.len()).sum();
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
}

pub(crate) fn reject_unsupported(stream: bool, echo: bool) -> Result<(), ApiError> {
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
    pub(crate) model: Option<String>,
    pub(crate) prompt: Value,
    #[serde(default)]
    pub(crate) max_tokens: Option<usize>,
    #[serde(default)]
    pub(crate) echo: bool,
    #[serde(default)]
    pub(crate) best_of: Option<usize>,
    #[serde(flatten)]
    pub(crate) sampling: SamplingFields,
}

/// A completions `prompt`: a string, a list of strings, a list of token ids or a list of lists.
pub(crate) fn completion_prompts(s: &AppState, v: &Value) -> Result<Vec<Vec<u32>>, ApiError> {
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

pub(crate) fn logprobs_wanted(v: &Option<Value>, param: &str) -> Result<bool, ApiError> {
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
    reject_unsupported(req.sampling.stream, req.echo)?;
    let model = s.resolve_model(req.model.as_deref())?;
    let want_lp = logprobs_wanted(&req.sampling.logprobs, "logprobs")?;
    let sm = sampling(&s, req.max_tokens, 16, &req.sampling)?;
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
                "tokens": token_strings(&s, &c.token_ids, req.sampling.return_tokens_as_token_ids)?,
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
pub(crate) struct ChatMessage {
    pub(crate) role: String,
    #[serde(default)]
    pub(crate) content: Value,
}

#[derive(Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub(crate) model: Option<String>,
    pub(crate) messages: Vec<ChatMessage>,
    #[serde(default)]
    pub(crate) max_tokens: Option<usize>,
    #[serde(default)]
    pub(crate) max_completion_tokens: Option<usize>,
    #[serde(flatten)]
    pub(crate) sampling: SamplingFields,
}

pub(crate) fn message_text(v: &Value) -> Result<String, ApiError> {
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
    reject_unsupported(req.sampling.stream, false)?;
    let model = s.resolve_model(req.model.as_deref())?;
    if req.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "`messages` must not be empty",
        ));
    }
    let want_lp = match &req.sampling.logprobs {
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
        &req.sampling,
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
            let toks = token_strings(&s, &c.token_ids, req.sampling.return_tokens_as_token_ids)?;
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
