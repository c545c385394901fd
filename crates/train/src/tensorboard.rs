//! A minimal TensorBoard event-file writer.
//!
//! TensorBoard reads `events.out.tfevents.*` files: a sequence of TFRecords, each holding one
//! serialized `tensorflow.Event` protobuf. A TFRecord is framed as
//!
//! ```text
//! u64 little-endian  length of the data
//! u32 little-endian  masked crc32c of those 8 length bytes
//! [u8; length]       data (here: an encoded Event)
//! u32 little-endian  masked crc32c of the data
//! ```
//!
//! where `masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8` (wrapping).
//!
//! The protobuf encoding of the handful of messages we need (`Event`, `Summary`,
//! `Summary.Value`, `SummaryMetadata`, `SummaryMetadata.PluginData`, `TensorProto`,
//! `TensorShapeProto`, `SessionLog`) is written **by hand** below, from the field numbers in
//! tensorflow/core/util/event.proto, tensorflow/core/framework/summary.proto,
//! tensor.proto and tensor_shape.proto. That is a few dozen lines and saves pulling in prost plus
//! a protoc build step. Only the fields we write are encoded; everything else is left at its
//! protobuf default, which readers treat as absent.
//!
//! The writer is checked against TensorBoard's own reader (`EventAccumulator`) in the tests.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

/// The file version TensorBoard expects in the first event of a file.
pub const FILE_VERSION: &str = "brain.Event:2";

/// Writes one TensorBoard event file.
///
/// Records are buffered; call [`EventWriter::flush`] to make them visible to a running
/// TensorBoard. Dropping the writer flushes too (errors on drop are ignored).
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir` (and parents) if needed and a new event file in it named
    /// `events.out.tfevents.<unix_secs>.<hostname>.<pid>.modrl`, then writes the file-version
    /// event.
    ///
    /// If a file of that name already exists (two writers started by one process within the same
    /// second), `.1`, `.2`, ... is appended, so the newer file still sorts after the older one
    /// (TensorBoard reads the files of a directory in lexicographic order).
    pub fn create(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating TensorBoard log dir {}", dir.display()))?;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let base = format!(
            "events.out.tfevents.{secs}.{}.{}.modrl",
            hostname(),
            std::process::id()
        );
        let mut n = 0u32;
        let (path, file) = loop {
            let name = if n == 0 {
                base.clone()
            } else {
                format!("{base}.{n}")
            };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (path, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 10_000 => n += 1,
                Err(e) => {
                    return Err(e).with_context(|| format!("creating {}", path.display()));
                }
            }
        };
        let mut w = EventWriter {
            path,
            out: BufWriter::new(file),
        };
        let mut ev = event_header(wall_time(), 0);
        put_bytes(&mut ev, 3, FILE_VERSION.as_bytes());
        w.write_record(&ev)?;
        w.flush()?;
        Ok(w)
    }

    /// Path of the event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a scalar: `Event{wall_time, step, summary{value{tag, simple_value}}}`.
    ///
    /// TensorBoard stores scalars as `float` (f32), so `value` is rounded to f32.
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: i64) -> Result<()> {
        let mut v = Vec::with_capacity(tag.len() + 8);
        put_bytes(&mut v, 1, tag.as_bytes()); // Summary.Value.tag
        put_fixed32(&mut v, 2, (value as f32).to_bits()); // Summary.Value.simple_value
        self.write_summary_value(&v, step)
    }

    /// Appends a text summary, shown in TensorBoard's Text tab (markdown is rendered there).
    ///
    /// Encoded like `torch.utils.tensorboard.SummaryWriter.add_text`: a `DT_STRING` tensor of shape
    /// `[1]` with plugin metadata `plugin_name: "text"`.
    pub fn add_text(&mut self, tag: &str, text: &str, step: i64) -> Result<()> {
        let mut plugin_data = Vec::new();
        put_bytes(&mut plugin_data, 1, b"text"); // PluginData.plugin_name
        let mut metadata = Vec::new();
        put_bytes(&mut metadata, 1, &plugin_data); // SummaryMetadata.plugin_data

        let mut dim = Vec::new();
        put_varint_field(&mut dim, 1, 1); // TensorShapeProto.Dim.size = 1
        let mut shape = Vec::new();
        put_bytes(&mut shape, 2, &dim); // TensorShapeProto.dim
        let mut tensor = Vec::new();
        put_varint_field(&mut tensor, 1, 7); // TensorProto.dtype = DT_STRING
        put_bytes(&mut tensor, 2, &shape); // TensorProto.tensor_shape
        put_bytes(&mut tensor, 8, text.as_bytes()); // TensorProto.string_val

        let mut v = Vec::new();
        put_bytes(&mut v, 1, tag.as_bytes()); // Summary.Value.tag
        put_bytes(&mut v, 9, &metadata); // Summary.Value.metadata
        put_bytes(&mut v, 8, &tensor); // Summary.Value.tensor
        self.write_summary_value(&v, step)
    }

    /// Appends a `SessionLog{status: START}` event at `step`.
    ///
    /// Write this when a run resumes from a checkpoint at `step`: TensorBoard then discards the
    /// events it had read (from older files) with a step `>= step`, so the stale tail of the
    /// crashed run does not show next to the resumed one.
    pub fn add_session_start(&mut self, step: i64) -> Result<()> {
        let mut session_log = Vec::new();
        put_varint_field(&mut session_log, 1, 1); // SessionLog.status = START
        let mut ev = event_header(wall_time(), step);
        put_bytes(&mut ev, 7, &session_log); // Event.session_log
        self.write_record(&ev)
    }

    /// Flushes buffered records to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("flushing {}", self.path.display()))
    }

    fn write_summary_value(&mut self, value: &[u8], step: i64) -> Result<()> {
        let mut summary = Vec::with_capacity(value.len() + 4);
        put_bytes(&mut summary, 1, value); // Summary.value
        let mut ev = event_header(wall_time(), step);
        put_bytes(&mut ev, 5, &summary); // Event.summary
        self.write_record(&ev)
    }

    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        let rec = tfrecord(data);
        self.out
            .write_all(&rec)
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

/// Frames `data` as one TFRecord.
pub fn tfrecord(data: &[u8]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(data.len() + 16);
    let len = (data.len() as u64).to_le_bytes();
    rec.extend_from_slice(&len);
    rec.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    rec.extend_from_slice(data);
    rec.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    rec
}

/// The masked CRC-32C that TFRecord stores.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Splits a TFRecord stream into its records, checking both checksums of each.
///
/// A trailing partial record (a writer still running or killed mid-write) is ignored; a checksum
/// mismatch is an error.
pub fn read_records(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while bytes.len() - pos >= 12 {
        let len_bytes = &bytes[pos..pos + 8];
        let crc = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap());
        anyhow::ensure!(
            crc == masked_crc32c(len_bytes),
            "TFRecord at byte {pos}: length checksum mismatch"
        );
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap());
        let start = pos + 12;
        let Some(end) = usize::try_from(len).ok().and_then(|l| start.checked_add(l)) else {
            anyhow::bail!("TFRecord at byte {pos}: length {len} too large");
        };
        if end + 4 > bytes.len() {
            break;
        }
        let data = &bytes[start..end];
        let crc = u32::from_le_bytes(bytes[end..end + 4].try_into().unwrap());
        anyhow::ensure!(
            crc == masked_crc32c(data),
            "TFRecord at byte {pos}: data checksum mismatch"
        );
        out.push(data);
        pos = end + 4;
    }
    Ok(out)
}

fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "localhost".to_string()
    } else {
        clean
    }
}

// ---- hand-written protobuf encoding -------------------------------------------------------

/// `Event.wall_time` (field 1, double) and `Event.step` (field 2, int64).
fn event_header(wall_time: f64, step: i64) -> Vec<u8> {
    let mut ev = Vec::with_capacity(64);
    put_tag(&mut ev, 1, 1);
    ev.extend_from_slice(&wall_time.to_bits().to_le_bytes());
    if step != 0 {
        // int64 is encoded as the two's-complement varint (10 bytes when negative).
        put_varint_field(&mut ev, 2, step as u64);
    }
    ev
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
fn put_tag(buf: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(buf, (u64::from(field) << 3) | u64::from(wire_type));
}

fn put_varint_field(buf: &mut Vec<u8>, field: u32, v: u64) {
    put_tag(buf, field, 0);
    put_varint(buf, v);
}

fn put_fixed32(buf: &mut Vec<u8>, field: u32, v: u32) {
    put_tag(buf, field, 5);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(buf, field, 2);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    /// The project virtualenv's python, which has `tensorboard` installed
    /// (scripts/requirements.txt). Panics with instructions when it is missing.
    pub(crate) fn venv_python() -> PathBuf {
        let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
        assert!(
            py.exists(),
            "{} is missing: create the project venv (python -m venv .venv && \
             .venv/bin/pip install -r scripts/requirements.txt) to run the TensorBoard \
             read-back tests",
            py.display()
        );
        py
    }

    /// Reads every event file under `dir` with TensorBoard's own `EventAccumulator` and returns
    /// `{"scalars": {tag: [[step, value], ...]}, "texts": {tag: [[step, text], ...]}}`.
    pub(crate) fn read_with_tensorboard(dir: &Path) -> serde_json::Value {
        const SCRIPT: &str = r#"
import json, math, sys
try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError as e:
    sys.exit("tensorboard is not installed in this venv (pip install tensorboard==2.21.0): %s" % e)
ea = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "tensors": 0})
ea.Reload()
tags = ea.Tags()
def num(v):
    # JSON has no NaN/Infinity; pass them as strings.
    return v if math.isfinite(v) else repr(float(v)).replace("inf", "Infinity").replace("nan", "NaN")
out = {"scalars": {}, "texts": {}}
for tag in tags["scalars"]:
    out["scalars"][tag] = [[e.step, num(e.value)] for e in ea.Scalars(tag)]
for tag in tags["tensors"]:
    out["texts"][tag] = [[e.step, e.tensor_proto.string_val[0].decode("utf-8")]
                         for e in ea.Tensors(tag)]
print(json.dumps(out))
"#;
        let py = venv_python();
        let output = Command::new(&py)
            .arg("-c")
            .arg(SCRIPT)
            .arg(dir)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", py.display()));
        assert!(
            output.status.success(),
            "TensorBoard reader failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "bad reader output ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    #[test]
    #[allow(clippy::manual_rotate)] // spelled out as in tensorflow/core/lib/hash/crc32c.h
    fn crc32c_matches_reference_vectors() {
        // RFC 3720 B.4 / the usual check value.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8A91_36AA);
        // Masking as in tensorflow/core/lib/hash/crc32c.h.
        let crc = crc32c::crc32c(b"123456789");
        assert_eq!(
            masked_crc32c(b"123456789"),
            ((crc >> 15) | (crc << 17)).wrapping_add(0xa282ead8)
        );
        assert_ne!(masked_crc32c(b"123456789"), crc);
    }

    #[test]
    fn varints_encode_like_protobuf() {
        let enc = |v: u64| {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            b
        };
        assert_eq!(enc(0), vec![0]);
        assert_eq!(enc(1), vec![1]);
        assert_eq!(enc(127), vec![0x7f]);
        assert_eq!(enc(300), vec![0xac, 0x02]);
        assert_eq!(enc(-1i64 as u64).len(), 10);
    }

    #[test]
    fn records_roundtrip_and_detect_corruption() {
        let mut stream = tfrecord(b"hello");
        stream.extend(tfrecord(b""));
        stream.extend(tfrecord(&[7u8; 300]));
        let recs = read_records(&stream).unwrap();
        assert_eq!(recs, vec![&b"hello"[..], &b""[..], &[7u8; 300][..]]);

        // A partial trailing record is ignored.
        let cut = &stream[..stream.len() - 2];
        assert_eq!(read_records(cut).unwrap().len(), 2);

        // A flipped data byte is caught.
        let mut bad = stream.clone();
        bad[13] ^= 1;
        assert!(read_records(&bad).is_err());
    }

    #[test]
    fn file_name_and_first_event() {
        let dir = tempfile::tempdir().unwrap();
        let w = EventWriter::create(dir.path().join("tb")).unwrap();
        let name = w.path().file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        assert!(
            name.ends_with(&format!(".{}.modrl", std::process::id())),
            "{name}"
        );
        let path = w.path().to_path_buf();
        let w2 = EventWriter::create(dir.path().join("tb")).unwrap();
        assert_ne!(w2.path(), path);
        assert!(w2.path() > path.as_path(), "a later writer must sort later");
        drop(w);
        let bytes = std::fs::read(&path).unwrap();
        let recs = read_records(&bytes).unwrap();
        assert_eq!(recs.len(), 1);
        let ev = recs[0];
        // wall_time, then file_version as field 3.
        assert_eq!(ev[0], 0x09);
        assert_eq!(ev[9], 0x1a);
        assert_eq!(&ev[11..], FILE_VERSION.as_bytes());
    }

    #[test]
    fn tensorboard_reads_back_scalars_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        let steps: Vec<i64> = vec![0, 1, 2, 10, 300, 70_000];
        for &s in &steps {
            w.add_scalar("reward", 0.25 * s as f64 - 1.5, s).unwrap();
            w.add_scalar("rewards/format/mean", 1.0 / (s as f64 + 1.0), s)
                .unwrap();
        }
        w.add_scalar("learning_rate", 3e-6, 5).unwrap();
        w.add_text("samples", "**bold** ünïcode", 7).unwrap();
        w.flush().unwrap();

        let got = read_with_tensorboard(dir.path());
        let scalars = got["scalars"].as_object().unwrap();
        let mut tags: Vec<_> = scalars.keys().cloned().collect();
        tags.sort();
        assert_eq!(tags, ["learning_rate", "reward", "rewards/format/mean"]);

        let reward = scalars["reward"].as_array().unwrap();
        assert_eq!(reward.len(), steps.len());
        for (p, &s) in reward.iter().zip(&steps) {
            assert_eq!(p[0].as_i64().unwrap(), s);
            let want = (0.25 * s as f64 - 1.5) as f32 as f64;
            assert_eq!(p[1].as_f64().unwrap(), want, "step {s}");
        }
        let fmt = scalars["rewards/format/mean"].as_array().unwrap();
        assert_eq!(fmt.len(), steps.len());
        assert_eq!(fmt[3][1].as_f64().unwrap(), (1.0f64 / 11.0) as f32 as f64);
        let lr = &scalars["learning_rate"][0];
        assert_eq!(lr[0].as_i64().unwrap(), 5);
        assert!((lr[1].as_f64().unwrap() - 3e-6).abs() < 1e-12);

        let text = &got["texts"]["samples"][0];
        assert_eq!(text[0].as_i64().unwrap(), 7);
        assert_eq!(text[1].as_str().unwrap(), "**bold** ünïcode");
    }
}
