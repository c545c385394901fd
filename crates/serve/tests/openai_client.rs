//! The official `openai` Python package (from the project venv) as a client of the server.

mod common;

use std::process::Command;

use common::*;
use modrl_serve::auth::hash_key;
use serde_json::{json, Value};

const SCRIPT: &str = r#"
import json, sys
import openai
from openai import OpenAI

base = f"http://{sys.argv[1]}/v1"
c = OpenAI(base_url=base, api_key="sk-test", max_retries=0, timeout=120)
out = {}

m = c.moderations.create(input=["you people are vermin", "have a nice day"], model="tiny")
out["moderation_id"] = m.id
out["moderation_model"] = m.model
out["moderation"] = [
    {"flagged": r.flagged,
     "categories": r.categories.to_dict(),
     "category_scores": r.category_scores.to_dict()}
    for r in m.results
]

r = c.chat.completions.create(
    model="tiny",
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}],
    max_tokens=5, temperature=0, logprobs=True, n=1,
)
ch = r.choices[0]
out["chat"] = {
    "content": ch.message.content,
    "role": ch.message.role,
    "finish_reason": ch.finish_reason,
    "logprobs": [{"token": t.token, "logprob": t.logprob} for t in ch.logprobs.content],
    "token_ids": (ch.model_extra or {}).get("token_ids"),
    "completion_tokens": r.usage.completion_tokens,
}

bad = OpenAI(base_url=base, api_key="wrong", max_retries=0)
try:
    bad.moderations.create(input="x")
    out["auth_error"] = None
except openai.AuthenticationError as e:
    out["auth_error"] = {"status": e.status_code, "code": e.code, "type": e.type}

print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_python_client_talks_to_moderations_and_chat() {
    let python = root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/setup.sh",
        python.display()
    );
    let check = Command::new(&python)
        .args(["-c", "import openai"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "the openai package is missing from the venv: pip install openai (scripts/requirements.txt)"
    );
    let keys = [hash_key("sk-test")].into_iter().collect();
    let s = start(
        &tiny_dir(),
        &["hate-speech"],
        opts(|o| o.api_keys = Some(keys)),
    )
    .await;
    let addr = s.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args(["-c", SCRIPT, &addr])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "client script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(j["moderation_id"].as_str().unwrap().starts_with("modr-"));
    assert_eq!(j["moderation_model"], "tiny");
    let res = j["moderation"].as_array().unwrap();
    assert_eq!(res.len(), 2);
    // What the client parsed is what the server computes.
    let key = "Bearer sk-test";
    let direct = http(
        s.addr,
        "POST",
        "/v1/moderations",
        &[("Authorization", key)],
        json!({"input": "you people are vermin"})
            .to_string()
            .as_bytes(),
    )
    .await
    .json();
    // (up to the round-off of padding in the two-input batch)
    let a = res[0]["category_scores"]["hate-speech"].as_f64().unwrap();
    let b = direct["results"][0]["category_scores"]["hate-speech"]
        .as_f64()
        .unwrap();
    assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    assert_eq!(res[0]["flagged"], json!(a >= 0.5));
    for c in policy("hate-speech").category_names() {
        assert!(res[1]["category_scores"][&c].is_number(), "{c}: {}", res[1]);
        assert!(res[1]["categories"][&c].is_boolean());
    }
    let chat = &j["chat"];
    assert_eq!(chat["role"], "assistant");
    assert!(chat["content"].is_string());
    let lps = chat["logprobs"].as_array().unwrap();
    let ids = chat["token_ids"].as_array().unwrap();
    assert_eq!(lps.len(), ids.len());
    assert_eq!(chat["completion_tokens"], ids.len());
    assert!(lps.iter().all(|t| t["logprob"].as_f64().unwrap() <= 0.0));
    assert_eq!(
        j["auth_error"],
        json!({"status": 401, "code": "invalid_api_key", "type": "invalid_request_error"})
    );
    s.stop().await.unwrap();
}
