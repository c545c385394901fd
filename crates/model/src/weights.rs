//! Reading and writing safetensors files as libtorch tensors (one file or many shards).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use tch::{Device, Kind, Tensor};

/// A tensor read from disk, with the file it came from (for error messages).
pub struct Loaded {
    pub tensor: Tensor,
    pub file: PathBuf,
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F64 => Kind::Double,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::U8 => Kind::Uint8,
        Dtype::I8 => Kind::Int8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

fn dtype_of(kind: Kind) -> Result<Dtype> {
    Ok(match kind {
        Kind::Float => Dtype::F32,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Double => Dtype::F64,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Uint8 => Dtype::U8,
        Kind::Int8 => Dtype::I8,
        Kind::Bool => Dtype::BOOL,
        k => bail!("cannot write tensors of kind {k:?} to safetensors"),
    })
}

/// The safetensors files of a model directory: the shards named by `model.safetensors.index.json`,
/// else `model.safetensors`, else every `*.safetensors` except adapters.
pub fn model_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index)
            .with_context(|| format!("{}: cannot read", index.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: invalid JSON", index.display()))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .with_context(|| format!("{}: missing field \"weight_map\"", index.display()))?;
        let mut files: Vec<PathBuf> = map
            .values()
            .filter_map(|f| f.as_str())
            .map(|f| dir.join(f))
            .collect();
        files.sort();
        files.dedup();
        return Ok(files);
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list model directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "safetensors")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("adapter"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "{}: no model weights (expected model.safetensors, or shards listed in model.safetensors.index.json)",
            dir.display()
        );
    }
    Ok(files)
}

/// Read every tensor of the given files, converted to `kind` (floating tensors only) on `device`.
pub fn read_files(
    files: &[PathBuf],
    kind: Kind,
    device: Device,
) -> Result<HashMap<String, Loaded>> {
    let mut out = HashMap::new();
    for file in files {
        let f = std::fs::File::open(file)
            .with_context(|| format!("{}: cannot open", file.display()))?;
        // SAFETY: the file is only read; a concurrent writer could change the bytes under us, which
        // at worst yields wrong weights, the same as reading a half-written file.
        let mmap = unsafe { memmap2::Mmap::map(&f) }
            .with_context(|| format!("{}: cannot map", file.display()))?;
        let st = SafeTensors::deserialize(&mmap)
            .with_context(|| format!("{}: not a valid safetensors file", file.display()))?;
        for (name, view) in st.tensors() {
            let src_kind = kind_of(view.dtype()).with_context(|| {
                format!(
                    "{}: tensor {name} has unsupported dtype {:?}",
                    file.display(),
                    view.dtype()
                )
            })?;
            let shape: Vec<i64> = view.shape().iter().map(|&s| s as i64).collect();
            let t = Tensor::f_from_data_size(view.data(), &shape, src_kind)
                .with_context(|| format!("{}: cannot read tensor {name}", file.display()))?;
            let t = if t.is_floating_point() {
                t.to_kind(kind)
            } else {
                t
            };
            out.insert(
                name,
                Loaded {
                    tensor: t.to_device(device),
                    file: file.clone(),
                },
            );
        }
    }
    Ok(out)
}

/// Write named tensors to one safetensors file, atomically (temp file + rename), with the
/// `{"format": "pt"}` metadata `transformers` expects.
pub fn write_file(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let mut bufs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.detach().to_device(Device::Cpu).contiguous();
        let numel = t.numel();
        let dtype = dtype_of(t.kind())?;
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, numel)?;
        let shape = t.size().iter().map(|&s| s as usize).collect();
        bufs.push((name.clone(), dtype, shape, bytes));
    }
    let views: Vec<(String, TensorView)> = bufs
        .iter()
        .map(|(n, d, s, b)| Ok((n.clone(), TensorView::new(*d, s.clone(), b)?)))
        .collect::<Result<_>>()?;
    let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    let tmp = path.with_extension("safetensors.tmp");
    safetensors::serialize_to_file(views, Some(meta), &tmp)
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}

/// Read a whole safetensors file into a sorted map (adapters, optimizer state, checkpoints).
pub fn read_map(path: &Path, device: Device) -> Result<BTreeMap<String, Tensor>> {
    let files = [path.to_path_buf()];
    let mut out = BTreeMap::new();
    for (k, v) in read_files(&files, Kind::Float, device)? {
        out.insert(k, v.tensor);
    }
    Ok(out)
}
