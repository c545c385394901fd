//! The HTTP API end to end on a tiny random model (SmolLM2's tokenizer and chat template):
//! a real server on 127.0.0.1:0 in this process, spoken to over TCP.

mod common;

use std::time::Duration;

use common::*;
use modrl_serve::auth::hash_key;
use serde_json::{json, Value};

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// `modrl_requests_total{route=..,status=..}` from a metrics page.
fn request_count(metrics: &str, route: &str, status: u16) -> u64 {
    let key = format!("modrl_requests_total{{route=\"{route}\",status=\"{status}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .map_or(0, |v| v.parse().unwrap())
}

fn metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderations_take_a_string_or_a_list_and_report_policy_categories() {
    let s = start(&tiny_dir(), &["hate-speech", "offensive"], opts(|_| {})).await;
    let texts = ["you are all vermin", "have a nice day", "ok"];
    // One string, one policy: the policy's categories plus its id.
    let r = s
        .post(
            "/v1/moderations",
            &json!({"input": texts[0], "policy": "hate-speech"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert!(j["id"].as_str().unwrap().starts_with("modr-"));
    assert_eq!(j["model"], "tiny");
    let res = j["results"].as_array().unwrap();
    assert_eq!(res.len(), 1);
    let hate = policy("hate-speech");
    let cats = res[0]["categories"].as_object().unwrap();
    let scores = res[0]["category_scores"].as_object().unwrap();
    let mut want: Vec<String> = hate.category_names();
    want.push("hate-speech".into());
    let mut got: Vec<String> = scores.keys().cloned().collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let overall = f(&scores["hate-speech"]);
    assert!((0.0..=1.0).contains(&overall));
    // Category scores split P(violating) over the categories.
    let sum: f64 = hate.category_names().iter().map(|c| f(&scores[c])).sum();
    assert!((sum - overall).abs() < 1e-6, "{sum} vs {overall}");
    assert_eq!(res[0]["flagged"], json!(overall >= 0.5));
    assert_eq!(cats["hate-speech"], json!(overall >= 0.5));
    let n_true = hate
        .category_names()
        .iter()
        .filter(|c| cats[c.as_str()] == json!(true))
        .count();
    assert_eq!(n_true, usize::from(overall >= 0.5));

    // A list: one result per input, each equal to scoring that input alone.
    let r = s
        .post(
            "/v1/moderations",
            &json!({"input": texts, "policy": "hate-speech"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json()["results"].as_array().unwrap().clone();
    assert_eq!(list.len(), 3);
    for (i, t) in texts.iter().enumerate() {
        let one = s
            .post(
                "/v1/moderations",
                &json!({"input": t, "policy": "hate-speech"}),
            )
            .await
            .json();
        let a = f(&one["results"][0]["category_scores"]["hate-speech"]);
        let b = f(&list[i]["category_scores"]["hate-speech"]);
        assert!((a - b).abs() < 1e-4, "{t}: {a} vs {b}");
    }
    // OpenAI's multimodal list form with text parts.
    let r = s
        .post(
            "/v1/moderations",
            &json!({"input": [{"type": "text", "text": texts[0]}], "policy": "hate-speech"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!((f(&r.json()["results"][0]["category_scores"]["hate-speech"]) - overall).abs() < 1e-6);

    // No policy: every served policy, keys prefixed by policy id.
    let r = s.post("/v1/moderations", &json!({"input": texts[0]})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let scores = j["results"][0]["category_scores"].as_object().unwrap();
    assert!(scores.contains_key("hate-speech/slurs"), "{j}");
    assert!(
        scores.contains_key("offensive/insults_and_harassment"),
        "{j}"
    );
    assert!((f(&scores["hate-speech"]) - overall).abs() < 1e-6);
    assert_eq!(j["policies"].as_array().unwrap().len(), 2);

    // Unknown model and policy: OpenAI-style 404s.
    let r = s
        .post("/v1/moderations", &json!({"input": "x", "model": "gpt-9"}))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error()["code"], "model_not_found");
    let r = s
        .post("/v1/moderations", &json!({"input": "x", "policy": "spam"}))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error()["code"], "policy_not_found");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_gives_a_policy_grounded_verdict_in_every_scoring_mode() {
    let s = start(
        &tiny_dir(),
        &["hate-speech", "offensive"],
        opts(|o| {
            o.max_input_tokens = 64;
            o.max_n = 4;
            o.max_tokens_limit = 32;
        }),
    )
    .await;
    let text = "those people are animals";
    let r = s
        .post(
            "/v1/classify",
            &json!({"input": text, "policy": "offensive", "return_reasoning": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let p = f(&j["probability"]);
    assert!((0.0..=1.0).contains(&p));
    assert_eq!(j["flagged"], json!(p >= 0.5));
    assert_eq!(
        j["label"],
        if p >= 0.5 {
            "violating"
        } else {
            "non_violating"
        }
    );
    assert_eq!(j["policy_id"], "offensive");
    assert_eq!(j["policy_version"], "1.0.0");
    assert_eq!(j["model"], "tiny");
    assert_eq!(j["scoring"], "verdict-token");
    assert_eq!(j["reasoning"], Value::Null);
    // The same number as the moderation endpoint's.
    let m = s
        .post(
            "/v1/moderations",
            &json!({"input": text, "policy": "offensive"}),
        )
        .await
        .json();
    assert!((f(&m["results"][0]["category_scores"]["offensive"]) - p).abs() < 1e-6);

    // The threshold decides.
    let lo = s
        .post(
            "/v1/classify",
            &json!({"input": text, "policy": "offensive", "threshold": 0.0}),
        )
        .await
        .json();
    assert_eq!(lo["flagged"], true);
    assert_eq!(lo["label"], "violating");
    let cat = lo["category"].as_str().unwrap();
    assert!(
        policy("offensive")
            .category_names()
            .iter()
            .any(|c| c == cat),
        "{cat}"
    );
    let hi = s
        .post(
            "/v1/classify",
            &json!({"input": text, "policy": "offensive", "threshold": 1.0}),
        )
        .await
        .json();
    assert_eq!(hi["flagged"], json!(p >= 1.0));
    assert_eq!(hi["category"], "none");

    // Greedy: one reasoning, returned on request.
    let g = s
        .post(
            "/v1/classify",
            &json!({"input": text, "policy": "hate-speech", "scoring": "greedy", "max_tokens": 8, "return_reasoning": true}),
        )
        .await;
    assert_eq!(g.status, 200, "{}", g.text());
    let g = g.json();
    assert_eq!(g["scoring"], "greedy");
    assert_eq!(g["n_samples"], 1);
    assert!(g["reasoning"].is_string(), "{g}");
    let pg = f(&g["probability"]);
    // A random model does not write the verdict line: the documented fallback is 0.5.
    if g["format_ok"] == false {
        assert_eq!(pg, 0.5);
    }
    // Monte-Carlo with n samples.
    let mc = s
        .post(
            "/v1/classify",
            &json!({"input": text, "policy": "hate-speech", "scoring": "mc", "n": 3, "temperature": 0.8, "max_tokens": 6}),
        )
        .await;
    assert_eq!(mc.status, 200, "{}", mc.text());
    assert_eq!(mc.json()["n_samples"], 3);
    assert_eq!(mc.json()["scoring"], "mc");

    // Per-request limits and validation.
    let bad = |body: Value, status: u16, code: &'static str| {
        let s = &s;
        async move {
            let r = s.post("/v1/classify", &body).await;
            assert_eq!(r.status, status, "{body}: {}", r.text());
            assert_eq!(r.error()["code"], code, "{body}");
        }
    };
    bad(json!({"input": text}), 400, "invalid_value").await; // two policies: which?
    bad(
        json!({"input": text, "policy": "nope"}),
        404,
        "policy_not_found",
    )
    .await;
    bad(
        json!({"input": 5, "policy": "offensive"}),
        400,
        "invalid_value",
    )
    .await;
    bad(
        json!({"input": text, "policy": "offensive", "scoring": "mc", "n": 5}),
        400,
        "invalid_value",
    )
    .await;
    bad(
        json!({"input": text, "policy": "offensive", "scoring": "mc", "n": 0}),
        400,
        "invalid_value",
    )
    .await;
    bad(
        json!({"input": text, "policy": "offensive", "scoring": "greedy", "max_tokens": 33}),
        400,
        "invalid_value",
    )
    .await;
    bad(
        json!({"input": text, "policy": "offensive", "scoring": "best"}),
        400,
        "invalid_value",
    )
    .await;
    bad(
        json!({"input": text, "policy": "offensive", "threshold": 2}),
        400,
        "invalid_value",
    )
    .await;
    bad(
        json!({"input": "word ".repeat(100), "policy": "offensive"}),
        400,
        "context_length_exceeded",
    )
    .await;
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_take_token_id_prompts_and_return_n_samples_with_ids_and_logprobs() {
    let s = start(&tiny_dir(), &["hate-speech"], opts(|o| o.max_n = 4)).await;
    let tok = modrl_model::Tokenizer::from_dir(&tiny_dir()).unwrap();
    let p0 = tok.encode("The weather today is").unwrap();
    let p1 = tok.encode("Once upon a time").unwrap();
    let body = json!({
        "model": "tiny", "prompt": [p0, p1], "n": 2, "max_tokens": 5, "temperature": 1.0,
        "seed": 7, "logprobs": 0, "return_tokens_as_token_ids": true,
    });
    let r = s.post("/v1/completions", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["object"], "text_completion");
    assert_eq!(j["model"], "tiny");
    let choices = j["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 4);
    let mut completion_tokens = 0;
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_eq!(c["prompt_index"], i / 2);
        let t = ids(&c["token_ids"]);
        assert!(!t.is_empty() && t.len() <= 5);
        completion_tokens += t.len();
        let lp = &c["logprobs"];
        let toks: Vec<String> = lp["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            toks,
            t.iter()
                .map(|x| format!("token_id:{x}"))
                .collect::<Vec<_>>()
        );
        let lps = lp["token_logprobs"].as_array().unwrap();
        assert_eq!(lps.len(), t.len());
        assert!(lps.iter().all(|x| f(x) <= 0.0));
        assert_eq!(
            c["finish_reason"],
            if t.len() == 5 { "length" } else { "stop" }
        );
        let ids32: Vec<u32> = t.iter().map(|&x| x as u32).collect();
        assert_eq!(c["text"], tok.decode(&ids32, true).unwrap());
    }
    assert_eq!(j["usage"]["prompt_tokens"], p0.len() + p1.len());
    assert_eq!(j["usage"]["completion_tokens"], completion_tokens);
    assert_eq!(
        j["usage"]["total_tokens"],
        p0.len() + p1.len() + completion_tokens
    );
    // The same seed gives the same tokens.
    let again = s.post("/v1/completions", &body).await.json();
    for (a, b) in choices.iter().zip(again["choices"].as_array().unwrap()) {
        assert_eq!(a["token_ids"], b["token_ids"]);
    }

    // Greedy: a string prompt equals its token ids; tokens rendered as text without the flag.
    let greedy =
        |prompt: Value| json!({"prompt": prompt, "max_tokens": 6, "temperature": 0, "logprobs": 1});
    let a = s
        .post("/v1/completions", &greedy(json!("Once upon a time")))
        .await
        .json();
    let b = s
        .post("/v1/completions", &greedy(json!(p1.clone())))
        .await
        .json();
    let c = s
        .post(
            "/v1/completions",
            &greedy(json!(["The weather today is", "Once upon a time"])),
        )
        .await
        .json();
    assert_eq!(a["choices"][0]["token_ids"], b["choices"][0]["token_ids"]);
    assert_eq!(a["choices"][0]["token_ids"], c["choices"][1]["token_ids"]);
    let first = ids(&a["choices"][0]["token_ids"])[0] as u32;
    assert_eq!(
        a["choices"][0]["logprobs"]["tokens"][0],
        tok.decode(&[first], false).unwrap()
    );
    // A stop string cuts the text and ends with finish_reason "stop".
    let text = a["choices"][0]["text"].as_str().unwrap().to_string();
    let toks = ids(&a["choices"][0]["token_ids"]);
    // (The random model repeats itself, so the stop string is two generated tokens' text.)
    let stop = tok.decode(&[toks[1] as u32, toks[2] as u32], true).unwrap();
    assert!(!stop.trim().is_empty(), "{text:?} {toks:?}");
    let cut = &text[..text.find(stop.as_str()).unwrap()];
    let r = s
        .post(
            "/v1/completions",
            &json!({"prompt": "Once upon a time", "max_tokens": 6, "temperature": 0, "stop": [stop]}),
        )
        .await
        .json();
    assert_eq!(r["choices"][0]["finish_reason"], "stop", "{r}");
    assert_eq!(r["choices"][0]["text"], cut);
    assert!(ids(&r["choices"][0]["token_ids"]).len() < 6);
    assert_eq!(r["choices"][0]["logprobs"], Value::Null);
    let r = s
        .post(
            "/v1/completions",
            &json!({"prompt": "Once upon a time", "max_tokens": 6, "temperature": 0, "stop": "never in this text"}),
        )
        .await
        .json();
    assert_eq!(r["choices"][0]["finish_reason"], "length");
    assert_eq!(r["choices"][0]["text"], text.as_str());

    // Validation.
    for (body, code) in [
        (json!({"prompt": [49152]}), "invalid_value"),
        (json!({"prompt": []}), "invalid_value"),
        (json!({"prompt": [[1, 2], "x"]}), "invalid_value"),
        (json!({"prompt": "x", "n": 5}), "invalid_value"),
        (json!({"prompt": "x", "stream": true}), "invalid_value"),
        (json!({"prompt": "x", "top_p": 0}), "invalid_value"),
    ] {
        let r = s.post("/v1/completions", &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.error()["code"], code, "{body}");
    }
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completions_render_the_chat_template_and_return_logprobs() {
    let s = start(&tiny_dir(), &["hate-speech"], opts(|_| {})).await;
    let tok = modrl_model::Tokenizer::from_dir(&tiny_dir()).unwrap();
    let messages = json!([
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "Say hi."}]},
    ]);
    let r = s
        .post(
            "/v1/chat/completions",
            &json!({"model": "tiny", "messages": messages, "max_tokens": 6, "n": 2, "seed": 3, "logprobs": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["object"], "chat.completion");
    let choices = j["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_eq!(c["message"]["role"], "assistant");
        let t = ids(&c["token_ids"]);
        let content = c["logprobs"]["content"].as_array().unwrap();
        assert_eq!(content.len(), t.len());
        for (e, &id) in content.iter().zip(&t) {
            assert!(f(&e["logprob"]) <= 0.0);
            assert_eq!(e["token"], tok.decode(&[id as u32], false).unwrap());
        }
    }
    let prompt = tok
        .encode_chat(
            &[
                modrl_model::Message::new("system", "You are terse."),
                modrl_model::Message::new("user", "Say hi."),
            ],
            true,
        )
        .unwrap();
    assert_eq!(j["usage"]["prompt_tokens"], prompt.len());
    // Greedy chat = greedy completion of the rendered prompt.
    let chat = s
        .post(
            "/v1/chat/completions",
            &json!({"messages": messages, "max_completion_tokens": 6, "temperature": 0, "return_tokens_as_token_ids": true, "logprobs": true}),
        )
        .await
        .json();
    let comp = s
        .post(
            "/v1/completions",
            &json!({"prompt": prompt, "max_tokens": 6, "temperature": 0}),
        )
        .await
        .json();
    assert_eq!(
        chat["choices"][0]["token_ids"],
        comp["choices"][0]["token_ids"]
    );
    assert_eq!(
        chat["choices"][0]["message"]["content"],
        comp["choices"][0]["text"]
    );
    let first = ids(&chat["choices"][0]["token_ids"])[0];
    assert_eq!(
        chat["choices"][0]["logprobs"]["content"][0]["token"],
        format!("token_id:{first}")
    );
    let r = s
        .post("/v1/chat/completions", &json!({"messages": []}))
        .await;
    assert_eq!(r.status, 400);
    r.error();
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_required_when_configured() {
    let keys = [hash_key("k1"), hash_key("k2")].into_iter().collect();
    let s = start(
        &tiny_dir(),
        &["hate-speech"],
        opts(|o| o.api_keys = Some(keys)),
    )
    .await;
    let body = json!({"input": "hello"}).to_string();
    for auth in [None, Some("Bearer nope"), Some("k1"), Some("Basic k1")] {
        let h: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", *a)).collect();
        let r = http(s.addr, "POST", "/v1/moderations", &h, body.as_bytes()).await;
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(r.error()["code"], "invalid_api_key");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    for key in ["Bearer k1", "Bearer k2"] {
        let r = http(
            s.addr,
            "POST",
            "/v1/moderations",
            &[("Authorization", key)],
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // Health checks stay open; metrics and models need a key.
    assert_eq!(s.get("/healthz").await.status, 200);
    assert_eq!(s.get("/metrics").await.status, 401);
    assert_eq!(s.get("/v1/models").await.status, 401);
    let r = http(
        s.addr,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer k2")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(request_count(&r.text(), "/v1/moderations", 401), 4);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_413_400_404_405() {
    let s = start(
        &tiny_dir(),
        &["hate-speech"],
        opts(|o| o.max_body_bytes = 1024),
    )
    .await;
    let big = json!({"input": "x".repeat(2000)});
    let r = s.post("/v1/moderations", &big).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.error()["code"], "request_too_large");
    let r = http(s.addr, "POST", "/v1/classify", &[], b"{\"input\": \"x\",").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["code"], "invalid_json");
    let r = http(s.addr, "POST", "/v1/completions", &[], b"not json").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["code"], "invalid_json");
    let r = s.post("/v1/completions", &json!({"max_tokens": 3})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["code"], "invalid_request");
    assert!(r.error()["message"].as_str().unwrap().contains("prompt"));
    let r = s.get("/v1/nothing").await;
    assert_eq!(r.status, 404);
    r.error();
    let r = s.get("/v1/classify").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.error()["code"], "method_not_allowed");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_time_out_with_504() {
    let s = start(
        &tiny_dir(),
        &["hate-speech"],
        opts(|o| {
            o.request_timeout = Duration::from_millis(20);
            o.engine.max_wait = Duration::from_millis(300);
        }),
    )
    .await;
    let r = s
        .post(
            "/v1/completions",
            &json!({"prompt": "hello", "max_tokens": 50}),
        )
        .await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.error()["code"], "timeout");
    assert_eq!(r.error()["type"], "timeout_error");
    // Cheap routes are not held up.
    assert_eq!(s.get("/healthz").await.status, 200);
    let m = s.get("/metrics").await.text();
    assert_eq!(request_count(&m, "/v1/completions", 504), 1);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_and_never_grows() {
    let s = start(
        &tiny_dir(),
        &["hate-speech"],
        opts(|o| {
            o.max_queue = 1;
            o.engine.max_batch = 1;
            o.engine.max_wait = Duration::ZERO;
        }),
    )
    .await;
    let addr = s.addr;
    let body = json!({"prompt": "hello there", "max_tokens": 800, "temperature": 1.0}).to_string();
    let mut tasks = vec![];
    for _ in 0..8 {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            http(addr, "POST", "/v1/completions", &[], body.as_bytes()).await
        }));
    }
    let mut ok = 0;
    let mut full = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => ok += 1,
            429 => {
                assert_eq!(r.error()["code"], "queue_full");
                assert_eq!(r.error()["type"], "rate_limit_error");
                full += 1;
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    // One runs, at most one waits: the other six are turned away.
    assert!((1..=2).contains(&ok), "ok={ok} full={full}");
    assert_eq!(ok + full, 8);
    let m = s.get("/metrics").await.text();
    assert_eq!(request_count(&m, "/v1/completions", 429), full);
    assert_eq!(metric(&m, "modrl_queue_depth"), 0.0);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_a_batch_and_metrics_show_it() {
    let s = start(
        &tiny_dir(),
        &["hate-speech"],
        opts(|o| o.engine.max_wait = Duration::from_millis(400)),
    )
    .await;
    let texts = ["first text", "a second, longer piece of text", "third", "4"];
    let addr = s.addr;
    let mut tasks = vec![];
    for t in texts {
        let body = json!({"input": t}).to_string();
        tasks.push(tokio::spawn(async move {
            http(addr, "POST", "/v1/classify", &[], body.as_bytes()).await
        }));
    }
    let mut together = vec![];
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        together.push(f(&r.json()["probability"]));
    }
    let m = s.get("/metrics").await.text();
    // Fewer engine batches than requests: some were merged.
    let batches = metric(&m, "modrl_batch_size_count");
    assert!(batches < 4.0, "{m}");
    assert!(metric(&m, "modrl_batch_size_bucket{le=\"1\"}") < batches);
    assert_eq!(metric(&m, "modrl_scored_items_total"), 4.0);
    // Batched scores equal the scores computed alone (up to padding round-off).
    for (t, p) in texts.iter().zip(&together) {
        let alone = f(&s.post("/v1/classify", &json!({"input": t})).await.json()["probability"]);
        assert!((alone - p).abs() < 1e-4, "{t}: {alone} vs {p}");
    }
    // The Prometheus page.
    let r = s.get("/metrics").await;
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let m = r.text();
    assert_eq!(request_count(&m, "/v1/classify", 200), 8);
    assert!(m.contains("# TYPE modrl_request_duration_seconds histogram"));
    assert!(
        m.contains("modrl_request_duration_seconds_bucket{route=\"/v1/classify\",le=\"+Inf\"} 8")
    );
    assert!(m.contains("modrl_request_duration_seconds_count{route=\"/v1/classify\"} 8"));
    assert!(m.contains("# TYPE modrl_queue_depth gauge"));
    assert!(m.contains("# TYPE modrl_batch_size histogram"));
    // A request is counted once answered: this page shows the earlier one only.
    assert_eq!(request_count(&m, "/metrics", 200), 1);
    let h = s.get("/healthz").await;
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["status"], "ok");
    assert_eq!(h.json()["policies"][0]["id"], "hate-speech");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lora_adapters_load_serve_and_unload_over_one_set_of_base_weights() {
    let s = start(&tiny_dir(), &["hate-speech"], opts(|_| {})).await;
    let greedy = |model: &str| json!({"model": model, "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0, "logprobs": 0});
    let base = s.post("/v1/completions", &greedy("tiny")).await.json();
    let base_p = f(&s
        .post("/v1/classify", &json!({"input": "hello"}))
        .await
        .json()["probability"]);
    // Not loaded yet.
    assert_eq!(
        s.post("/v1/completions", &greedy("tuned")).await.status,
        404
    );
    let path = tiny_adapter();
    let r = s
        .post(
            "/v1/load_lora_adapter",
            &json!({"lora_name": "tuned", "lora_path": path}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let models = s.get("/v1/models").await.json();
    assert_eq!(model_ids(&models), ["tiny", "tuned"]);
    assert_eq!(models["data"][1]["parent"], "tiny");
    let tuned = s.post("/v1/completions", &greedy("tuned")).await;
    assert_eq!(tuned.status, 200, "{}", tuned.text());
    let tuned = tuned.json();
    assert_eq!(tuned["model"], "tuned");
    assert_ne!(
        base["choices"][0]["logprobs"]["token_logprobs"],
        tuned["choices"][0]["logprobs"]["token_logprobs"]
    );
    let tuned_p = f(&s
        .post("/v1/classify", &json!({"input": "hello", "model": "tuned"}))
        .await
        .json()["probability"]);
    assert!((tuned_p - base_p).abs() > 1e-6, "{tuned_p} vs {base_p}");
    // The base model is untouched after the adapter ran.
    let base2 = s.post("/v1/completions", &greedy("tiny")).await.json();
    assert_eq!(
        base["choices"][0]["token_ids"],
        base2["choices"][0]["token_ids"]
    );
    assert_eq!(
        base["choices"][0]["logprobs"]["token_logprobs"],
        base2["choices"][0]["logprobs"]["token_logprobs"]
    );
    let base_p2 = f(&s
        .post("/v1/classify", &json!({"input": "hello"}))
        .await
        .json()["probability"]);
    assert_eq!(base_p, base_p2);
    // Errors: same name twice, a directory that is not an adapter, unknown unload.
    let r = s
        .post(
            "/v1/load_lora_adapter",
            &json!({"lora_name": "tuned", "lora_path": path}),
        )
        .await;
    assert_eq!(r.status, 400);
    r.error();
    let r = s
        .post(
            "/v1/load_lora_adapter",
            &json!({"lora_name": "other", "lora_path": tiny_dir()}),
        )
        .await;
    assert_eq!(r.status, 400);
    r.error();
    let r = s
        .post("/v1/unload_lora_adapter", &json!({"lora_name": "tuned"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.post("/v1/completions", &greedy("tuned")).await.status,
        404
    );
    assert_eq!(
        s.post("/v1/unload_lora_adapter", &json!({"lora_name": "tuned"}))
            .await
            .status,
        404
    );
    s.stop().await.unwrap();

    // Serving with --adapter gives the same numbers as the runtime-loaded adapter.
    let s2 = start(
        &tiny_dir(),
        &["hate-speech"],
        opts(|o| o.adapter = Some(tiny_adapter())),
    )
    .await;
    let own = s2.post("/v1/completions", &greedy("tiny")).await.json();
    assert_eq!(
        own["choices"][0]["token_ids"],
        tuned["choices"][0]["token_ids"]
    );
    let own_p = f(&s2
        .post("/v1/classify", &json!({"input": "hello"}))
        .await
        .json()["probability"]);
    assert!((own_p - tuned_p).abs() < 1e-6);
    s2.stop().await.unwrap();

    // Runtime adapters can be switched off.
    let s3 = start(
        &tiny_dir(),
        &["hate-speech"],
        opts(|o| o.allow_runtime_lora = false),
    )
    .await;
    let r = s3
        .post(
            "/v1/load_lora_adapter",
            &json!({"lora_name": "tuned", "lora_path": tiny_adapter()}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error()["code"], "runtime_lora_disabled");
    s3.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight() {
    let mut s = start(&tiny_dir(), &["hate-speech"], opts(|_| {})).await;
    let addr = s.addr;
    let body = json!({"prompt": "hello", "max_tokens": 1500, "temperature": 0}).to_string();
    let req =
        tokio::spawn(
            async move { http(addr, "POST", "/v1/completions", &[], body.as_bytes()).await },
        );
    // Let the request reach the engine, then ask the server to stop.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!req.is_finished(), "the request should still be running");
    let server = s.begin_stop();
    let r = req.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let n = r.json()["choices"][0]["token_ids"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(n, 1500);
    tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
