//! The policy-grounded routes: `/v1/classify` and OpenAI's `/v1/moderations`, scored by the
//! engine with [`modrl_moderation::score`].

use super::*;

pub(crate) fn scoring_mode(
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

pub(crate) fn mode_name(m: &ScoringMode) -> &'static str {
    match m {
        ScoringMode::VerdictToken => "verdict-token",
        ScoringMode::Greedy => "greedy",
        ScoringMode::Reasoned => "reasoned",
        ScoringMode::MonteCarlo { .. } => "mc",
    }
}

pub(crate) fn check_threshold(t: Option<f64>, default: f64) -> Result<f64, ApiError> {
    let t = t.unwrap_or(default);
    if !(0.0..=1.0).contains(&t) {
        return Err(ApiError::invalid(
            "threshold",
            "threshold must be in [0, 1]",
        ));
    }
    Ok(t)
}

pub(crate) fn check_max_tokens(
    s: &AppState,
    v: Option<usize>,
    default: usize,
) -> Result<usize, ApiError> {
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
pub(crate) fn score(
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
    pub(crate) input: Value,
    #[serde(default)]
    pub(crate) policy: Option<String>,
    #[serde(default)]
    pub(crate) model: Option<String>,
    #[serde(default)]
    pub(crate) scoring: Option<String>,
    #[serde(default)]
    pub(crate) n: Option<usize>,
    #[serde(default)]
    pub(crate) temperature: Option<f64>,
    #[serde(default)]
    pub(crate) threshold: Option<f64>,
    #[serde(default)]
    pub(crate) return_reasoning: bool,
    /// Longest reasoning (greedy, mc), in tokens.
    #[serde(default)]
    pub(crate) max_tokens: Option<usize>,
    #[serde(default)]
    pub(crate) seed: Option<u64>,
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
    pub(crate) input: Value,
    #[serde(default)]
    pub(crate) model: Option<String>,
    /// A policy id or a list of them (default: every served policy).
    #[serde(default)]
    pub(crate) policy: Option<Value>,
    #[serde(default)]
    pub(crate) scoring: Option<String>,
    #[serde(default)]
    pub(crate) threshold: Option<f64>,
}

pub(crate) fn moderation_inputs(v: &Value) -> Result<Vec<String>, ApiError> {
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
