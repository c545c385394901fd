//! modrl's model layer: Llama-family transformers (Llama / SmolLM2, Qwen2 / Qwen2.5, Qwen3) on
//! libtorch through `tch`, loaded from HF model directories, with tokenizer and chat template,
//! batched KV-cache generation, per-token log-probs for training, LoRA in PEFT's format, AdamW, and
//! the error policy for libtorch's panics ([`guard`]).

pub mod config;
pub mod device;
pub mod generate;
pub mod guard;
pub mod llama;
pub mod lora;
pub mod tokenizer;
pub mod train;
pub mod weights;
pub mod xnn;

use std::path::Path;

use anyhow::{bail, Result};
pub use config::{Arch, ModelConfig};
pub use device::{parse_device, parse_kind};
pub use generate::{
    generate, generate_with_prefix, next_token_logits, Completion, FinishReason, PrefixCache,
    SamplingParams,
};
pub use llama::Model;
pub use lora::LoraConfig;
pub use tch::{Device, Kind, Tensor};
pub use tokenizer::{Message, Tokenizer};

/// Load a model directory's weights and tokenizer, checking that they belong together.
pub fn load(dir: &Path, device: Device, kind: Kind) -> Result<(Model, Tokenizer)> {
    let model = Model::load(dir, device, kind)?;
    let tok = Tokenizer::from_dir(dir)?;
    tok.check_vocab(model.config.vocab_size)?;
    Ok((model, tok))
}

/// Keep freed memory in the process for reuse instead of returning it to the system at once (glibc
/// only; a no-op elsewhere, and when `MODRL_MALLOC=system`). libtorch allocates its large CPU
/// tensors (a training micro-batch's `[B, L, vocab]` log-probs: hundreds of MB) with `malloc`,
/// which glibc serves from fresh `mmap`s and unmaps on free, so every step faulted in and zeroed
/// gigabytes again: 4.9 M page faults in 3 GRPO steps of the long-completion benchmark, 1.9 M
/// with this (most in the first step), and the steps' training phase ~30% shorter. The price: the
/// resident size stays at its peak. Call once, before any tensor is made.
pub fn tune_allocator() {
    if std::env::var("MODRL_MALLOC").is_ok_and(|v| v == "system") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation thresholds; called before other threads
    // allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

/// The Rust binary links only libtorch's CPU library; load the CUDA one on demand so that
/// `Device::Cuda` works when the venv's torch (or the GPU machine's) ships it.
pub fn load_cuda_backend() -> Result<()> {
    use std::sync::OnceLock;
    static LOADED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let r = LOADED.get_or_init(|| {
        for name in ["libtorch_cuda.so", "libtorch_cuda_cu.so"] {
            let c = std::ffi::CString::new(name).unwrap();
            // SAFETY: dlopen with a valid C string; the handle is deliberately never closed.
            let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if !h.is_null() {
                return Ok(());
            }
        }
        // SAFETY: dlerror returns a thread-local C string or null.
        let err = unsafe {
            let e = libc::dlerror();
            if e.is_null() { "unknown error".to_string() } else { std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned() }
        };
        Err(format!("cannot load libtorch_cuda.so ({err}); is LD_LIBRARY_PATH pointing at a CUDA build of torch/lib?"))
    });
    match r {
        Ok(()) => Ok(()),
        Err(e) => bail!("{e}"),
    }
}
