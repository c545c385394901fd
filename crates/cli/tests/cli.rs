//! End-to-end tests of the `modrl` binary on a tiny random model (2 layers, 64 wide, the default
//! model's tokenizer and chat template): data import -> stats -> eval -> train with a stop and a
//! resume -> classify with the trained adapter -> serve one request; eval keeping its answers ->
//! grade them with the rules and an LLM judge served by `modrl serve`; and bad input (a missing
//! file, a malformed row, an unknown policy field, an unknown config key) exits 1 with a message
//! naming the file, the line and the field, never with a panic.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use modrl_model::{Device, Model, ModelConfig};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const TINY_CONFIG: &str = r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":49152,
  "hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,
  "rms_norm_eps":1e-5,"rope_theta":10000.0,"tie_word_embeddings":true,"bos_token_id":1,"eos_token_id":2,
  "max_position_embeddings":8192}"#;

/// The tiny model directory, built once per test binary.
fn tiny_model() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-tiny-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = root().join("models/smollm2-135m-instruct");
        assert!(
            src.join("tokenizer.json").exists(),
            "{} is missing: run scripts/setup.sh first",
            src.display()
        );
        for f in [
            "tokenizer.json",
            "tokenizer_config.json",
            "chat_template.jinja",
        ] {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
        let m = Model::random(ModelConfig::from_json(TINY_CONFIG).unwrap(), 7, Device::Cpu);
        m.save_pretrained(&dir, TINY_CONFIG).unwrap();
        dir
    })
}

fn policy() -> PathBuf {
    root().join("configs/policies/offensive-compact.toml")
}

fn modrl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modrl"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running modrl")
}

fn ok(args: &[&str]) -> String {
    let o = modrl(args);
    assert!(
        o.status.success(),
        "modrl {args:?} exited {:?}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `modrl ARGS` fails with exit code 1 (an error, not a panic) and stderr holding every `needle`.
fn fails_with(args: &[&str], needles: &[&str]) {
    let o = modrl(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "modrl {args:?}: stderr {err}");
    assert!(!err.contains("panicked"), "a panic reached the user: {err}");
    for n in needles {
        assert!(
            err.contains(n),
            "modrl {args:?}: {n:?} not in stderr: {err}"
        );
    }
}

fn jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const TWEETS: [&str; 6] = [
    "shut up you stupid hoe",
    "have a lovely day everyone",
    "that bitch is crazy lol",
    "the game starts at eight tonight",
    "you are trash and everyone knows it",
    "new recipe for lemon cake is up",
];

/// A Davidson-style CSV (class 0 hate, 1 offensive, 2 neither) of `n` rows.
fn davidson_csv(n: usize) -> String {
    let mut out = String::from(",count,hate_speech,offensive_language,neither,class,tweet\n");
    for i in 0..n {
        let t = TWEETS[i % TWEETS.len()];
        let class = if i % 2 == 0 { 1 } else { 2 };
        out.push_str(&format!(
            "{i},3,0,{},{},{class},{t} #{i}\n",
            3 * (class == 1) as u8,
            3 * (class == 2) as u8
        ));
    }
    out
}

/// `modrl data import` of a Davidson-style CSV of `n` rows written in `t`: the canonical JSONL.
fn import_davidson(t: &Path, n: usize) -> PathBuf {
    let csv = t.join("labeled_data.csv");
    std::fs::write(&csv, davidson_csv(n)).unwrap();
    let data = t.join("data.jsonl");
    ok(&[
        "data",
        "import",
        "--source",
        "davidson",
        "--task",
        "offensive",
        "--in",
        s(&csv),
        "--out",
        s(&data),
    ]);
    data
}

fn train_config(dir: &Path, model: &Path, data: &Path) -> PathBuf {
    let cfg = format!(
        r#"stages = ["sft"]
[model]
path = "{model}"
[lora]
r = 4
lora_alpha = 8.0
target_modules = ["q_proj", "v_proj"]
[data]
path = "{data}"
policy = "{policy}"
variant = "no_reasoning"
max_val_examples = 4
[sft]
max_steps = 2
batch_size = 4
micro_batch_size = 2
learning_rate = 1e-2
[eval]
every = 0
scoring = "verdict-token"
[run]
save_every = 1
threads = 1
"#,
        model = model.display(),
        data = data.display(),
        policy = policy().display()
    );
    let p = dir.join("run.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

/// POST `body` to `path` on `addr` (HTTP/1.1, connection closed after); (status, JSON body).
/// `modrl serve ARGS` on an ephemeral port: the child and the address it listens on.
fn spawn_serve(args: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_modrl"))
        .arg("serve")
        .args(args)
        .args(["--addr", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap_or(0) > 0 {
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.trim().to_string();
            std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
            return (child, addr);
        }
        seen.push_str(&line);
        line.clear();
    }
    let _ = child.kill();
    panic!("modrl serve never said where it listens: {seen}");
}

fn post(addr: &str, path: &str, body: &Value) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let b = body.to_string();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
        b.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status: u16 = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
    // Chunked or not: the JSON object is between the first '{' and the last '}'.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(z)) => serde_json::from_str(&body[a..=z]).unwrap(),
        _ => Value::Null,
    };
    (status, json)
}

#[test]
fn import_eval_train_resume_classify_and_serve_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = tiny_model();

    // data import + stats.
    let data = import_davidson(t, 60);
    let rows = jsonl(&data);
    assert_eq!(rows.len(), 60);
    for split in ["train", "val", "test"] {
        assert!(rows.iter().any(|r| r["split"] == split), "no {split} rows");
    }
    assert_eq!(rows.iter().filter(|r| r["label"] == 1).count(), 30);
    let stats = ok(&["data", "stats", s(&data)]);
    assert!(stats.contains("60"), "stats: {stats}");

    // eval: scores for the first 5 test items, threshold on 5 validation items.
    let ev = t.join("eval");
    ok(&[
        "eval",
        "--model",
        s(model),
        "--policy",
        s(&policy()),
        "--data",
        s(&data),
        "--limit",
        "5",
        "--bootstrap",
        "10",
        "--out",
        s(&ev),
    ]);
    let scores = jsonl(&ev.join("scores.jsonl"));
    assert_eq!(scores.len(), 5);
    for r in &scores {
        let p = r["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p), "{r}");
        assert!(
            r["id"].is_string() && (r["label"] == 0 || r["label"] == 1),
            "{r}"
        );
    }
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(ev.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["n"], 5, "{m}");
    assert!(m.get("pr_auc").is_some() && ev.join("report.html").exists());

    // train: stop after the first step (a checkpoint, no final adapter), then resume to the end.
    let cfg = train_config(t, model, &data);
    let run = t.join("run");
    ok(&[
        "train",
        "--config",
        s(&cfg),
        "--out",
        s(&run),
        "--stop-after",
        "1",
    ]);
    assert!(!run.join("final/adapter_model.safetensors").exists());
    assert_eq!(jsonl(&run.join("metrics.jsonl")).len(), 1);
    let out = ok(&["train", "--config", s(&cfg), "--out", s(&run), "--resume"]);
    assert!(out.contains("run folder"), "{out}");
    let steps: Vec<u64> = jsonl(&run.join("metrics.jsonl"))
        .iter()
        .map(|m| m["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [1, 2]);
    let adapter = run.join("final");
    assert!(adapter.join("adapter_model.safetensors").exists());

    // classify with the trained adapter: one row per input, a bad row rejected, not fatal.
    let input = t.join("in.jsonl");
    let mut lines: Vec<String> = TWEETS
        .iter()
        .enumerate()
        .map(|(i, x)| format!("{{\"id\":\"c{i}\",\"text\":\"{x}\"}}"))
        .collect();
    lines.push("{\"id\":\"empty\",\"text\":\"\"}".into());
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let res = t.join("out.jsonl");
    let pol = policy();
    let classify = || {
        ok(&[
            "classify",
            "--model",
            s(model),
            "--adapter",
            s(&adapter),
            "--policy",
            s(&pol),
            "--in",
            s(&input),
            "--out",
            s(&res),
        ])
    };
    classify();
    let got = jsonl(&res);
    assert_eq!(got.len(), TWEETS.len());
    assert!(got.iter().all(|r| r["score"]
        .as_f64()
        .is_some_and(|p| (0.0..=1.0).contains(&p))));
    let rejects = jsonl(&t.join("out.jsonl.rejects.jsonl"));
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0]["line"], 7, "{}", rejects[0]);
    assert!(
        rejects[0]["error"].as_str().unwrap().contains("text"),
        "{}",
        rejects[0]
    );
    // A re-run finds everything done and changes nothing.
    classify();
    assert_eq!(jsonl(&res), got);

    // serve: one /v1/classify request on an ephemeral port, then stop the server.
    let (mut child, addr) = spawn_serve(&["--model", s(model), "--policy", s(&policy())]);
    let (status, j) = post(
        &addr,
        "/v1/classify",
        &serde_json::json!({"input": TWEETS[0], "policy": "offensive-compact"}),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "{j}");
    let p = j["probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p), "{j}");
    assert_eq!(j["flagged"], Value::Bool(p >= 0.5), "{j}");
}

#[test]
fn bad_input_exits_1_naming_the_file_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = tiny_model();
    let pol = policy();

    // A missing data file.
    let missing = t.join("nope.jsonl");
    fails_with(
        &[
            "eval",
            "--model",
            s(model),
            "--policy",
            s(&pol),
            "--data",
            s(&missing),
            "--out",
            s(&t.join("e1")),
        ],
        &["nope.jsonl"],
    );

    // A malformed row: line 3 has a label that is not 0 / 1.
    let data = t.join("bad.jsonl");
    std::fs::write(
        &data,
        "{\"id\":\"a\",\"text\":\"hello\",\"label\":0}\n{\"id\":\"b\",\"text\":\"you idiot\",\"label\":1}\n{\"id\":\"c\",\"text\":\"hm\",\"label\":\"maybe\"}\n",
    )
    .unwrap();
    fails_with(
        &[
            "eval",
            "--model",
            s(model),
            "--policy",
            s(&pol),
            "--data",
            s(&data),
            "--val-split",
            "none",
            "--out",
            s(&t.join("e2")),
        ],
        &["bad.jsonl:3", "label"],
    );

    // A policy with a misspelt field.
    let bad_policy = t.join("policy.toml");
    let text = std::fs::read_to_string(&pol)
        .unwrap()
        .replace("exclusions = [", "exclusion = [");
    std::fs::write(&bad_policy, text).unwrap();
    let good = t.join("good.jsonl");
    std::fs::write(&good, "{\"id\":\"a\",\"text\":\"hello\",\"label\":0}\n").unwrap();
    fails_with(
        &[
            "classify",
            "--model",
            s(model),
            "--policy",
            s(&bad_policy),
            "--in",
            s(&good),
            "--out",
            s(&t.join("o.jsonl")),
        ],
        &["policy.toml", "exclusion"],
    );

    // A run config with an unknown key, and a missing model directory.
    let cfg = t.join("run.toml");
    std::fs::write(&cfg, "stages = [\"sft\"]\n[model]\npath = \"m\"\n[data]\npath = \"d\"\npolicy = \"p\"\n[sft]\nmax_step = 3\n").unwrap();
    fails_with(&["train", "--config", s(&cfg)], &["run.toml:8", "max_step"]);
    fails_with(
        &[
            "classify",
            "--model",
            s(&t.join("no-model")),
            "--policy",
            s(&pol),
            "--in",
            s(&good),
            "--out",
            s(&t.join("o2.jsonl")),
        ],
        &["no-model"],
    );
    // Nothing was written for the failed classify runs.
    assert!(!t.join("o.jsonl").exists() && !t.join("o2.jsonl").exists());
}

#[test]
fn self_reason_samples_judges_and_accounts_for_every_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let data = import_davidson(t, 40);
    let train: Vec<String> = jsonl(&data)
        .iter()
        .filter(|r| r["split"] == "train")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .take(5)
        .collect();
    let ids = t.join("ids.txt");
    std::fs::write(&ids, train.join("\n")).unwrap();
    let out = t.join("star/kept.jsonl");
    let model = tiny_model();
    let pol = policy();
    let base = [
        "data",
        "self-reason",
        "--model",
        s(model),
        "--policy",
        s(&pol),
        "--in",
        s(&data),
        "--ids",
        s(&ids),
        "--k",
        "3",
        "--max-new-tokens",
        "12",
        "--min-words",
        "2",
    ];
    let mut args = base.to_vec();
    args.extend(["--out", s(&out)]);
    ok(&args);
    let st: Value =
        serde_json::from_str(&std::fs::read_to_string(t.join("star/kept.stats.json")).unwrap())
            .unwrap();
    let n = |k: &str| st[k].as_u64().unwrap_or_else(|| panic!("no {k} in {st}"));
    assert_eq!(n("items"), 5);
    assert_eq!(n("samples"), 15);
    // Every sample is either rejected for one reason or correct; at most one target per item.
    assert_eq!(
        n("too_short") + n("degenerate") + n("wrong_verdict") + n("ungrounded") + n("correct"),
        15,
        "{st}"
    );
    let kept = jsonl(&out);
    assert_eq!(kept.len() as u64, n("kept"));
    assert!(n("kept") <= n("correct").min(5));
    for r in &kept {
        assert!(train.contains(&r["id"].as_str().unwrap().to_string()));
        assert!(r["target"].as_str().unwrap().contains("\"label\""), "{r}");
    }
    // Bad input: ids that match nothing, a temperature that samples nothing new.
    let none = t.join("none.txt");
    std::fs::write(&none, "no-such-id\n").unwrap();
    let mut args = base.to_vec();
    args.extend(["--out", s(&out)]);
    let i = args.iter().position(|a| *a == s(&ids)).unwrap();
    args[i] = s(&none);
    fails_with(
        &args,
        &["no train records with an id listed in", "none.txt"],
    );
    let mut args = base.to_vec();
    args.extend(["--out", s(&out), "--temperature", "0"]);
    fails_with(&args, &["--temperature must be above 0"]);
}

#[test]
fn eval_keeps_answers_and_grade_judges_them_through_modrl_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let data = import_davidson(t, 40);
    let model = tiny_model();
    let pol = policy();
    // Reasoned scoring keeps each answer in its row with --save-outputs (and only then).
    let eval = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--model",
            s(model),
            "--policy",
            s(&pol),
            "--data",
            s(&data),
            "--split",
            "test",
            "--val-split",
            "none",
            "--out",
            s(out),
        ];
        args.extend(extra);
        ok(&args);
        jsonl(&out.join("scores.jsonl"))
    };
    let rows = eval(
        &t.join("answers"),
        &[
            "--scoring",
            "reasoned",
            "--max-new-tokens",
            "8",
            "--limit",
            "3",
            "--save-outputs",
        ],
    );
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["output"].is_string()), "{rows:?}");
    let plain = eval(&t.join("plain"), &["--limit", "2"]);
    assert!(plain.iter().all(|r| r.get("output").is_none()));

    // Two well-formed answers (the tiny model writes none) beside the model's own three: only
    // answers with a verdict and reasoning go to the judge.
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let text0 = jsonl(&data)
        .into_iter()
        .find(|r| r["id"] == ids[0].as_str())
        .unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    let quote: String = text0
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let mut lines: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    for (i, out) in [
        format!("<reasoning>\nIt says \"{quote}\": an insult: offensive_language.\n</reasoning>\n{{\"label\": \"violating\", \"category\": \"offensive_language\", \"probability\": 0.9}}"),
        "<reasoning>\nA friendly note with no insult or slur.\n</reasoning>\n{\"label\": \"non_violating\", \"category\": \"none\", \"probability\": 0.2}".to_string(),
    ]
    .iter()
    .enumerate()
    {
        lines.push(serde_json::json!({"id": ids[i], "output": out}).to_string());
    }
    let answers = t.join("answers.jsonl");
    std::fs::write(&answers, lines.join("\n") + "\n").unwrap();

    // The judge: the tiny model behind modrl serve's OpenAI-compatible chat endpoint.
    let (mut child, addr) = spawn_serve(&[
        "--model",
        s(model),
        "--policy",
        s(&pol),
        "--served-model-name",
        "judge",
    ]);
    let rewards = t.join("rewards.toml");
    std::fs::write(
        &rewards,
        format!(
            "rubric = 0.5\nrubric_rules = 0.5\n[judge]\nbackend = \"openai\"\nbase_url = \"http://{addr}\"\n\
             model = \"judge\"\nmax_new_tokens = 8\nbatch_size = 2\n"
        ),
    )
    .unwrap();
    let graded_dir = t.join("graded");
    let grade = [
        "grade",
        "--answers",
        s(&answers),
        "--data",
        s(&data),
        "--policy",
        s(&pol),
        "--rewards",
        s(&rewards),
        "--out",
        s(&graded_dir),
    ];
    let o = modrl(&grade);
    let _ = child.kill();
    let _ = child.wait();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["answers"], 5, "{summary}");
    assert_eq!(summary["judged"], 2, "{summary}");
    assert_eq!(summary["rules_graded"], 2, "{summary}");
    // A 2-layer random model cannot write the four criteria: a judge that parses nothing is
    // reported as such, not silently scored 0.
    assert_eq!(summary["judge_parsed_fraction"], 0.0, "{summary}");
    let graded = jsonl(&graded_dir.join("graded.jsonl"));
    assert_eq!(graded.len(), 5);
    for g in &graded[3..] {
        assert!(g["judge"]["raw"].is_string(), "{g}");
        assert_eq!(g["judge"]["parsed"], false, "{g}");
        assert_eq!(g["rewards"]["rubric"], 0.0, "{g}");
        assert!(g["rules"]["category"].is_boolean(), "{g}");
    }
    assert_eq!(graded[3]["rules"]["grounded"], true, "{}", graded[3]);
    assert!(graded[..3].iter().all(|g| g["judge"].is_null()));

    // Bad input: an answer row without its text; an id the data lacks.
    std::fs::write(&answers, format!("{{\"id\": \"{}\"}}\n", ids[0])).unwrap();
    fails_with(&grade, &["answers.jsonl:1", "\"output\""]);
    std::fs::write(&answers, "{\"id\": \"nope\", \"output\": \"x\"}\n").unwrap();
    fails_with(&grade, &["\"nope\" is not in", "data.jsonl"]);
}
