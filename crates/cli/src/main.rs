//! `modrl`: train, evaluate and serve policy-aligned content-moderation classifiers.

mod classify;
mod data;
mod eval;
mod grade;
mod plot;
mod scaling;
mod serve;
mod train;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use modrl_model::{generate, load, parse_device, parse_kind, Message, SamplingParams};

#[derive(Parser)]
#[command(
    name = "modrl",
    version,
    about = "Policy-aligned content moderation with RL-trained LLMs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Render the chat template for a prompt and generate a completion.
    Generate(GenerateArgs),
    /// Import raw datasets and inspect canonical data files.
    #[command(subcommand)]
    Data(data::DataCmd),
    /// Score a dataset under a policy and write metrics and a report (or compare two reports).
    Eval(Box<eval::EvalArgs>),
    /// Grade model answers with a run's rewards (rules, LLM judge) and report their agreement.
    Grade(grade::GradeArgs),
    /// Train a classifier: SFT and/or GRPO-family RL on a policy and labelled data.
    Train(train::TrainArgs),
    /// Serve policies over HTTP: OpenAI-compatible moderations / completions / chat, /v1/classify.
    Serve(Box<serve::ServeArgs>),
    /// Classify a JSONL / CSV file under a policy (resumable), with a rejects file for bad rows.
    Classify(Box<classify::ClassifyArgs>),
    /// Draw runs side by side (SVG): one panel per metric, one line per run.
    Plot(plot::PlotArgs),
    /// Scaling laws: fit the sigmoid R(C) = R0 + (A - R0) / (1 + (C_mid / C)^B) to runs.
    #[command(subcommand)]
    Scaling(scaling::ScalingCmd),
}

/// Where and how to load a model.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// HF model directory (config.json, *.safetensors, tokenizer.json).
    #[arg(long)]
    pub model: PathBuf,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32, or bf16 on CUDA.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// A PEFT LoRA adapter directory to apply on top of the model.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
}

impl ModelArgs {
    /// "DIR" or "DIR + adapter ADIR", for reports.
    pub fn describe(&self) -> String {
        match &self.adapter {
            Some(a) => format!("{} + adapter {}", self.model.display(), a.display()),
            None => self.model.display().to_string(),
        }
    }
}

/// The current UTC time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn now_utc() -> String {
    let (y, m, d, rem) = modrl_model::tokenizer::utc_now();
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[derive(Args)]
struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The user message.
    #[arg(long)]
    prompt: String,
    /// An optional system message.
    #[arg(long)]
    system: Option<String>,
    #[arg(long, default_value_t = 128)]
    max_new_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// 0 = off.
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long)]
    seed: Option<u64>,
    /// Number of samples.
    #[arg(long, short = 'n', default_value_t = 1)]
    num_samples: usize,
    /// Stop when the completion contains this string (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
    /// Print one JSON object (per sample) with text, token_ids and logprobs.
    #[arg(long)]
    json: bool,
}

pub fn load_model(a: &ModelArgs) -> Result<(modrl_model::Model, modrl_model::Tokenizer)> {
    let device = parse_device(&a.device)?;
    let kind = parse_kind(&a.dtype, device)?;
    let (mut model, tok) = load(&a.model, device, kind)?;
    if let Some(dir) = &a.adapter {
        modrl_model::lora::load_adapter(&mut model, dir)
            .with_context(|| format!("loading adapter {}", dir.display()))?;
    }
    Ok((model, tok))
}

fn cmd_generate(a: GenerateArgs) -> Result<()> {
    let (model, tok) = load_model(&a.model)?;
    let mut msgs = vec![];
    if let Some(s) = &a.system {
        msgs.push(Message::new("system", s.clone()));
    }
    msgs.push(Message::new("user", a.prompt.clone()));
    let prompt = tok.encode_chat(&msgs, true)?;
    let params = SamplingParams {
        max_new_tokens: a.max_new_tokens,
        temperature: a.temperature,
        top_p: a.top_p,
        top_k: a.top_k,
        seed: a.seed,
        stop_token_ids: vec![],
        stop_strings: a.stop.clone(),
    };
    let outs = generate(&model, &[prompt], a.num_samples, &params, Some(&tok))?;
    for o in outs {
        let text = tok.decode(&o.token_ids, true)?;
        if a.json {
            let j = serde_json::json!({
                "text": text,
                "token_ids": o.token_ids,
                "logprobs": o.logprobs,
                "finish_reason": o.finish_reason,
            });
            println!("{j}");
        } else {
            println!("{text}");
        }
    }
    Ok(())
}

fn main() {
    modrl_model::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // A panic (a libtorch error inside tensor code, or a bug) ends the command with one clear
    // error line, not a backtrace (the error policy: crates/model/src/guard.rs).
    let r = modrl_model::guard::run_guarded(|| match cli.cmd {
        Cmd::Generate(a) => cmd_generate(a),
        Cmd::Data(c) => data::run(c),
        Cmd::Eval(a) => eval::run(*a),
        Cmd::Grade(a) => grade::run(a),
        Cmd::Train(a) => train::run(a),
        Cmd::Serve(a) => serve::run(*a),
        Cmd::Classify(a) => classify::run(*a),
        Cmd::Plot(a) => plot::run(a),
        Cmd::Scaling(c) => scaling::run(c),
    });
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
        Err(msg) => {
            eprintln!(
                "error: {msg}. Files already written are kept (train --resume and classify \
                 continue where they stopped); set RUST_BACKTRACE=1 for a backtrace"
            );
            // Rust's own status for an uncaught panic: a failure, distinguishable from exit 1.
            std::process::exit(101);
        }
    }
}
