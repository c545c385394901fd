//! `/v1/models`, vLLM's LoRA routes (`/v1/load_lora_adapter`, `/v1/unload_lora_adapter`),
//! `/healthz` and Prometheus `/metrics`.

use super::*;

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
    pub(crate) lora_name: String,
    #[serde(default)]
    pub(crate) lora_path: Option<String>,
}

pub(crate) fn check_runtime_lora(s: &AppState, name: &str) -> Result<(), ApiError> {
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
