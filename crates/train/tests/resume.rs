//! A whole SFT-then-RL run on a tiny model (the default model's tokenizer and chat template, random
//! weights), and resumption: stopping after a step (as a crash would, with a half-written metrics
//! line and checkpoint folder left behind) and resuming gives the same trajectory as one
//! uninterrupted run, also across the SFT -> RL boundary and an epoch boundary.

use std::path::{Path, PathBuf};

use modrl_model::{Device, Model, ModelConfig};
use modrl_train::config::RunConfig;
use modrl_train::trainer::{run, TrainOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const TINY: &str = r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":49152,
  "hidden_size":32,"intermediate_size":64,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,
  "rms_norm_eps":1e-5,"rope_theta":10000.0,"tie_word_embeddings":true,"bos_token_id":1,"eos_token_id":2,
  "max_position_embeddings":2048}"#;

fn setup(tmp: &Path) -> PathBuf {
    let model_dir = tmp.join("tiny");
    let m = Model::random(ModelConfig::from_json(TINY).unwrap(), 3, Device::Cpu);
    m.save_pretrained(&model_dir, TINY).unwrap();
    let smol = root().join("models/smollm2-135m-instruct");
    assert!(smol.exists(), "run scripts/setup.sh first");
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
    ] {
        std::fs::copy(smol.join(f), model_dir.join(f)).unwrap();
    }
    let mut data = String::new();
    let texts = [
        "they are vermin",
        "lovely weather",
        "go back to your country",
        "nice game",
        "kill them all",
        "see you soon",
    ];
    for i in 0..12 {
        let label = u8::from(i % 2 == 0);
        let split = if i < 8 { "train" } else { "val" };
        data.push_str(&format!(
            "{{\"id\":\"r{i}\",\"text\":\"{} #{i}\",\"label\":{label},\"split\":\"{split}\"}}\n",
            texts[i % texts.len()]
        ));
    }
    std::fs::write(tmp.join("data.jsonl"), data).unwrap();
    let cfg = format!(
        r#"stages = ["sft", "rl"]
[model]
path = "{model}"
[lora]
r = 4
lora_alpha = 8.0
target_modules = ["q_proj", "v_proj"]
[data]
path = "{data}"
policy = "{policy}"
max_val_examples = 4
[sft]
max_steps = 3
batch_size = 4
micro_batch_size = 2
learning_rate = 1e-2
[rl]
max_steps = 3
prompts_per_step = 2
num_generations = 3
max_completion_length = 6
learning_rate = 1e-2
micro_batch_size = 4
[rewards]
accuracy = 1.0
format = 0.2
[eval]
every = 2
scoring = "verdict-token"
periodic_examples = 4
max_new_tokens = 6
[run]
save_every = 1
keep_checkpoints = 2
"#,
        model = model_dir.display(),
        data = tmp.join("data.jsonl").display(),
        policy = root()
            .join("configs/policies/hate-speech-compact.toml")
            .display()
    );
    let p = tmp.join("run.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn adapter(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("final/adapter_model.safetensors")).unwrap()
}

#[test]
fn interrupted_runs_resume_on_the_same_trajectory() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg_path = setup(tmp.path());
    let cfg = RunConfig::load(&cfg_path).unwrap();
    let full = tmp.path().join("full");
    run(
        &cfg,
        &cfg_path,
        &TrainOptions {
            out: Some(full.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let want = metrics(&full);
    assert_eq!(want.len(), 6, "3 SFT + 3 RL steps, one metrics line each");
    for (i, m) in want.iter().enumerate() {
        assert_eq!(m["step"], (i + 1) as u64);
        assert!(m["loss"].as_f64().unwrap().is_finite());
    }
    assert!(
        want[3].get("reward").is_some() && want[3].get("rewards/accuracy/mean").is_some(),
        "{}",
        want[3]
    );
    assert!(
        want[1].get("eval/pr_auc").is_some(),
        "periodic evaluation every 2 steps: {}",
        want[1]
    );
    assert!(
        full.join("eval-val/report.html").exists() && full.join("eval-val/metrics.json").exists()
    );
    assert!(
        std::fs::read_dir(full.join("tb")).unwrap().count() > 0,
        "TensorBoard events"
    );

    // Stop after step 2 (inside SFT; the 8 training examples make step 2 the end of an epoch),
    // and after step 4 (inside RL), each time resuming from the checkpoint.
    for stop in [2usize, 4] {
        let dir = tmp.path().join(format!("stop{stop}"));
        let o = TrainOptions {
            out: Some(dir.clone()),
            stop_after: Some(stop),
            ..Default::default()
        };
        run(&cfg, &cfg_path, &o).unwrap();
        assert_eq!(metrics(&dir).len(), stop);
        // What a kill -9 leaves: a half-written metrics line and an unfinished checkpoint folder.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("metrics.jsonl"))
            .unwrap();
        write!(f, "{{\"step\": {}, \"loss\": 0.1", stop + 1).unwrap();
        std::fs::create_dir_all(dir.join("checkpoints/stage9-rl-step000009.tmp")).unwrap();
        let o = TrainOptions {
            out: Some(dir.clone()),
            resume: true,
            ..Default::default()
        };
        run(&cfg, &cfg_path, &o).unwrap();
        let got = metrics(&dir);
        assert_eq!(
            got.len(),
            want.len(),
            "one line per step after resuming at {stop}"
        );
        for (a, b) in got.iter().zip(&want) {
            for key in ["step", "loss", "grad_norm", "reward", "learning_rate"] {
                assert_eq!(
                    a.get(key),
                    b.get(key),
                    "after resuming at {stop}: {key} differs at step {}",
                    b["step"]
                );
            }
        }
        assert_eq!(
            adapter(&dir),
            adapter(&full),
            "final adapter differs after resuming at {stop}"
        );
    }
}

#[test]
fn bad_config_names_the_file_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.toml");
    std::fs::write(&p, "stages = [\"rl\"]\n[model]\npath = \"m\"\n[data]\npath = \"d\"\npolicy = \"p\"\n[rl]\nnum_generation = 4\n").unwrap();
    let e = format!("{:#}", RunConfig::load(&p).unwrap_err());
    assert!(
        e.contains("bad.toml:8") && e.contains("num_generation"),
        "{e}"
    );
    std::fs::write(&p, "stages = [\"rl\"]\n[model]\npath = \"m\"\n[data]\npath = \"d\"\npolicy = \"p\"\n[rl]\nnum_generations = 1\n").unwrap();
    let e = format!("{:#}", RunConfig::load(&p).unwrap_err());
    assert!(
        e.contains("bad.toml") && e.contains("rl.num_generations"),
        "{e}"
    );
}
