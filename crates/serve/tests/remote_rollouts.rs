//! RL with rollouts from a served model over HTTP: `modrl serve` (in process, loopback) samples
//! every rollout; the trainer writes its LoRA adapter and has the server load it before each step,
//! recomputes the log-probs locally and logs how far they are from the server's.

mod common;

use std::path::Path;

use modrl_train::config::RunConfig;
use modrl_train::trainer::{run, TrainOptions};

fn write_run(tmp: &Path, url: &str) -> std::path::PathBuf {
    let texts = [
        "they are vermin",
        "lovely weather",
        "go back to your country",
        "nice game",
    ];
    let mut data = String::new();
    for i in 0..10 {
        let split = if i < 8 { "train" } else { "val" };
        data.push_str(&format!(
            "{{\"id\":\"r{i}\",\"text\":\"{} #{i}\",\"label\":{},\"split\":\"{split}\"}}\n",
            texts[i % texts.len()],
            i % 2
        ));
    }
    std::fs::write(tmp.join("data.jsonl"), data).unwrap();
    let cfg = format!(
        r#"stages = ["rl"]
[model]
path = "{model}"
[lora]
r = 4
lora_alpha = 8.0
target_modules = ["q_proj", "v_proj"]
[data]
path = "{data}"
policy = "{policy}"
max_val_examples = 2
[rl]
max_steps = 3
prompts_per_step = 2
num_generations = 3
max_completion_length = 8
learning_rate = 0.05
micro_batch_size = 6
rollout_url = "{url}"
[rewards]
accuracy = 1.0
format = 0.2
length = 1.0
length_band = [1, 3]
[eval]
every = 0
scoring = "verdict-token"
[run]
save_every = 10
"#,
        model = common::tiny_dir().display(),
        data = tmp.join("data.jsonl").display(),
        policy = common::root()
            .join("configs/policies/hate-speech-compact.toml")
            .display(),
    );
    let p = tmp.join("run.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rl_rollouts_come_from_the_server_with_the_adapter_reloaded_every_step() {
    let server = common::start(
        &common::tiny_dir(),
        &["hate-speech-compact"],
        common::opts(|_| {}),
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let cfg_path = write_run(tmp.path(), &format!("http://{}/v1", server.addr));
    let out = tmp.path().join("run");
    let out2 = out.clone();
    tokio::task::spawn_blocking(move || {
        let cfg = RunConfig::load(&cfg_path).unwrap();
        run(
            &cfg,
            &cfg_path,
            &TrainOptions {
                out: Some(out2),
                ..Default::default()
            },
        )
        .unwrap();
    })
    .await
    .unwrap();

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for m in &lines {
        let get = |k: &str| m[k].as_f64().unwrap_or_else(|| panic!("no {k} in {m}"));
        assert!(get("timing/weight_sync") >= 0.0);
        // Same weights on both sides (the server got this step's adapter): the log-probs agree to
        // float precision. A server still on the previous step's adapter (lr 0.05 moved it) or on
        // the base model would be far off.
        assert!(get("sampling/sampling_logp_difference/mean") < 1e-4, "{m}");
        let r = get("sampling/importance_sampling_ratio/mean");
        assert!((r - 1.0).abs() < 1e-4, "{m}");
        assert!(get("sampling/importance_sampling_ratio/min") <= r);
        assert!(get("sampling/importance_sampling_ratio/max") >= r);
        assert!(get("completions/mean_length") > 0.0);
    }
    // The adapter did change between steps, so agreement above is not trivial.
    let first = std::fs::read(out.join("rollout_adapter/adapter_model.safetensors")).unwrap();
    let fin = std::fs::read(out.join("final/adapter_model.safetensors")).unwrap();
    assert_ne!(first, fin, "the policy moved during training");

    // Three loads (one per step), two unloads in between, all over HTTP.
    let metrics = server.get("/metrics").await.text();
    let count = |route: &str| -> u64 {
        metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "modrl_requests_total{{route=\"{route}\",status=\"200\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(|n| n.parse().unwrap())
            .unwrap_or(0)
    };
    assert_eq!(count("/v1/load_lora_adapter"), 3, "{metrics}");
    assert_eq!(count("/v1/unload_lora_adapter"), 2, "{metrics}");
    assert_eq!(count("/v1/completions"), 3, "{metrics}");
    let models = server.get("/v1/models").await.json();
    assert!(
        common::model_ids(&models)
            .iter()
            .any(|m| m == "modrl-policy"),
        "{models}"
    );
    server.stop().await.unwrap();
}
