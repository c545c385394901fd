//! Device and dtype names as users write them (`--device cuda:1`, `--dtype bf16`).

use anyhow::{bail, Context, Result};
use tch::{Device, Kind};

/// Parse `cpu`, `cuda` or `cuda:N`. Loads libtorch's CUDA backend on first use of a GPU.
pub fn parse_device(s: &str) -> Result<Device> {
    let s = s.trim();
    if s == "cpu" {
        return Ok(Device::Cpu);
    }
    let idx = match s.strip_prefix("cuda") {
        Some("") => 0,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|n| n.parse::<usize>().ok())
            .with_context(|| format!("invalid device {s:?}: expected cpu, cuda or cuda:N"))?,
        None => bail!("invalid device {s:?}: expected cpu, cuda or cuda:N"),
    };
    crate::load_cuda_backend()?;
    if !tch::Cuda::is_available() {
        bail!("device {s:?} requested but no CUDA device is available to libtorch");
    }
    let n = tch::Cuda::device_count() as usize;
    if idx >= n {
        bail!("device {s:?} requested but only {n} CUDA device(s) exist");
    }
    Ok(Device::Cuda(idx))
}

/// Parse a dtype name: `f32` (default) or `bf16` (CUDA only).
pub fn parse_kind(s: &str, device: Device) -> Result<Kind> {
    match s {
        "f32" | "float32" => Ok(Kind::Float),
        "bf16" | "bfloat16" if device.is_cuda() => Ok(Kind::BFloat16),
        "bf16" | "bfloat16" => bail!("dtype bf16 is supported on CUDA only; use f32 on CPU"),
        other => bail!("unknown dtype {other:?}: expected f32 or bf16"),
    }
}
