//! Helpers shared by the serve crate's integration tests: a tiny random model that uses the
//! default model's tokenizer and chat template, an in-process server on 127.0.0.1:0, and a
//! minimal HTTP/1.1 client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use modrl_model::{Device, Kind, Model, ModelConfig};
use modrl_moderation::Policy;
use modrl_serve::{ServeOptions, Server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The default model directory (made by scripts/setup.sh).
pub fn default_model() -> PathBuf {
    let p = root().join("models/smollm2-135m-instruct");
    assert!(
        p.join("model.safetensors").exists(),
        "{} is missing: run scripts/setup.sh first",
        p.display()
    );
    p
}

pub fn policy(id: &str) -> Policy {
    Policy::load(root().join(format!("configs/policies/{id}.toml"))).unwrap()
}

/// A 2-layer, 64-wide Llama with SmolLM2's vocabulary: random weights, real tokenizer and chat
/// template, so every route works end to end in milliseconds.
pub const TINY_CONFIG: &str = r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":49152,
  "hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,
  "rms_norm_eps":1e-5,"rope_theta":10000.0,"tie_word_embeddings":true,"bos_token_id":1,"eos_token_id":2,
  "max_position_embeddings":8192}"#;

fn build_tiny(model_dir: &Path, adapter_dir: &Path) {
    std::fs::create_dir_all(model_dir).unwrap();
    let src = default_model();
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
    ] {
        std::fs::copy(src.join(f), model_dir.join(f)).unwrap();
    }
    let cfg = ModelConfig::from_json(TINY_CONFIG).unwrap();
    let mut m = Model::random(cfg, 7, Device::Cpu);
    m.save_pretrained(model_dir, TINY_CONFIG).unwrap();
    // An adapter that changes the outputs: random A (as PEFT inits it) and a large random B.
    let lcfg = modrl_model::LoraConfig {
        r: 4,
        lora_alpha: 8.0,
        lora_dropout: 0.0,
        ..Default::default()
    };
    modrl_model::lora::attach(&mut m, &lcfg).unwrap();
    for layer in &mut m.layers {
        for (_, lin) in layer.linears_mut() {
            if let Some(l) = &mut lin.lora {
                let shape = l.b.size();
                l.b =
                    modrl_model::Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu)) * 0.5;
            }
        }
    }
    modrl_model::lora::save_adapter(&m, &lcfg, adapter_dir, "tiny").unwrap();
}

/// The tiny model directory and a LoRA adapter directory for it.
pub fn tiny() -> &'static (PathBuf, PathBuf) {
    static DIRS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIRS.get_or_init(|| {
        // Deterministic contents, shared by the test binaries: built aside, then renamed.
        let fin = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-tiny-v1");
        if !fin.join("tiny-lora/adapter_config.json").exists() {
            let tmp = fin.with_extension(format!("tmp{}", std::process::id()));
            build_tiny(&tmp.join("tiny"), &tmp.join("tiny-lora"));
            if std::fs::rename(&tmp, &fin).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        let (model_dir, adapter_dir) = (fin.join("tiny"), fin.join("tiny-lora"));
        (model_dir, adapter_dir)
    })
}

pub fn tiny_dir() -> PathBuf {
    tiny().0.clone()
}

pub fn tiny_adapter() -> PathBuf {
    tiny().1.clone()
}

pub fn opts(f: impl FnOnce(&mut ServeOptions)) -> ServeOptions {
    let mut o = ServeOptions {
        served_model_name: "tiny".into(),
        ..Default::default()
    };
    f(&mut o);
    o
}

/// A server running in this process on an ephemeral loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Trigger a graceful shutdown and wait for the server (and its model thread) to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap()
    }

    /// Trigger a graceful shutdown without waiting; returns the server's task.
    pub fn begin_stop(&mut self) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        http(self.addr, "POST", path, &[], body.to_string().as_bytes()).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        http(self.addr, "GET", path, &[], b"").await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Start a server on 127.0.0.1:0 with the model in `model_dir` and the named policies.
pub async fn start(model_dir: &Path, policies: &[&str], opts: ServeOptions) -> TestServer {
    let (model, tok) = modrl_model::load(model_dir, Device::Cpu, Kind::Float).unwrap();
    let policies = policies.iter().map(|p| policy(p)).collect();
    let server = Server::new(model, tok, policies, opts).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(listener, async move {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        stop: Some(tx),
        handle: Some(handle),
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as an OpenAI-style error; panics unless it is one.
    pub fn error(&self) -> Value {
        let j = self.json();
        let e = j
            .get("error")
            .unwrap_or_else(|| panic!("no error object: {j}"));
        assert!(e["message"].is_string() && e["type"].is_string(), "{j}");
        e.clone()
    }
}

/// The model ids a `/v1/models` answer lists, in order.
pub fn model_ids(models: &Value) -> Vec<String> {
    models["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data list: {models}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    loop {
        let Some(i) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            std::str::from_utf8(&b[..i])
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + size]);
        b = &b[i + 2 + size + 2..];
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    // The server may answer (413) before reading the whole body.
    let _ = s.write_all(body).await;
    let mut buf = vec![];
    let _ = s.read_to_end(&mut buf).await;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {:?}", String::from_utf8_lossy(&buf)));
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let raw = &buf[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked { dechunk(raw) } else { raw.to_vec() };
    Resp {
        status,
        headers,
        body,
    }
}
