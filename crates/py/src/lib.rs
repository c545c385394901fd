//! `modrl._modrl`: the native half of the Python package `modrl` (the Python half, with
//! `Classifier.score_arrow`, is crates/py/python/modrl/__init__.py).
//!
//! `Classifier` loads a model (HF directory, optional PEFT LoRA adapter) and a policy once, then
//! scores lists of texts with [`modrl_moderation::score::TextClassifier`], the code behind `modrl classify`:
//! the same texts get the same scores. Scoring releases the GIL. Errors raise `modrl.ModrlError`
//! with the message the CLI prints after `error: `; a panic inside libtorch becomes the same
//! exception, never an abort.

use std::path::PathBuf;
use std::sync::Mutex;

use modrl_model::guard::guarded;
use modrl_model::{load, parse_device, parse_kind, Model, Tokenizer};
use modrl_moderation::prompt::Variant;
use modrl_moderation::score::ScoringMode;
use modrl_moderation::score::{ClassifierOptions, TextClassifier};
use modrl_moderation::Policy;
use pyo3::create_exception;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

create_exception!(
    _modrl,
    ModrlError,
    PyRuntimeError,
    "An error from modrl: bad arguments, unreadable files, a model or policy that cannot be used."
);

fn to_py(e: anyhow::Error) -> PyErr {
    ModrlError::new_err(format!("{e:#}"))
}

struct Loaded {
    model: Model,
    tok: Tokenizer,
    clf: TextClassifier,
}

/// A policy classifier: `Classifier(model, policy, adapter=None, scoring="verdict-token",
/// device="cpu", batch_rows=32, ...)`; see the Python class `modrl.Classifier`.
#[pyclass(name = "Classifier", module = "modrl._modrl")]
struct PyClassifier {
    inner: Mutex<Loaded>,
    scoring: String,
}

#[pymethods]
impl PyClassifier {
    #[new]
    #[pyo3(signature = (model, policy, adapter=None, scoring="verdict-token", device="cpu",
        dtype="f32", batch_rows=32, threshold=0.5, max_new_tokens=384, seed=0,
        variant="standard", no_system_role=false, threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: PathBuf,
        policy: PathBuf,
        adapter: Option<PathBuf>,
        scoring: &str,
        device: &str,
        dtype: &str,
        batch_rows: usize,
        threshold: f64,
        max_new_tokens: usize,
        seed: u64,
        variant: &str,
        no_system_role: bool,
        threads: Option<i32>,
    ) -> PyResult<Self> {
        let (scoring, device, dtype, variant) = (
            scoring.to_string(),
            device.to_string(),
            dtype.to_string(),
            variant.to_string(),
        );
        let loaded = py
            .detach(|| {
                guarded(|| {
                    if let Some(n) = threads {
                        anyhow::ensure!(n >= 1, "threads must be >= 1, got {n}");
                        tch::set_num_threads(n);
                    }
                    let mode: ScoringMode = scoring.parse()?;
                    let reasoning_variant: Variant = variant.parse().map_err(anyhow::Error::msg)?;
                    anyhow::ensure!(
                        reasoning_variant.has_reasoning(),
                        "variant {variant:?}: the reasoning modes need standard or reflection"
                    );
                    anyhow::ensure!(batch_rows >= 1, "batch_rows must be >= 1");
                    let policy = Policy::load(&policy)?;
                    let device = parse_device(&device)?;
                    let kind = parse_kind(&dtype, device)?;
                    let (mut model, tok) = load(&model, device, kind)?;
                    if let Some(dir) = &adapter {
                        modrl_model::lora::load_adapter(&mut model, dir)
                            .map_err(|e| e.context(format!("loading adapter {}", dir.display())))?;
                    }
                    let opts = ClassifierOptions {
                        mode,
                        threshold,
                        max_new_tokens,
                        batch_rows,
                        seed,
                        reasoning_variant,
                        no_system_role,
                    };
                    let clf = TextClassifier::new(&model, &tok, policy, opts)?;
                    Ok(Loaded { model, tok, clf })
                })
            })
            .map_err(to_py)?;
        Ok(PyClassifier {
            inner: Mutex::new(loaded),
            scoring,
        })
    }

    /// Score texts: one dict per text with `label` (0/1 at the threshold), `score`
    /// (P(violating)), `category` (`none` when not flagged) and, for greedy / mc scoring,
    /// `reasoning`. The GIL is released while scoring.
    fn score<'py>(&self, py: Python<'py>, texts: Vec<String>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let results = py
            .detach(|| {
                guarded(|| {
                    let l = self
                        .inner
                        .lock()
                        .map_err(|_| anyhow::anyhow!("an earlier call failed mid-way"))?;
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    l.clf.classify(&l.model, &l.tok, &refs)
                })
            })
            .map_err(to_py)?;
        results
            .into_iter()
            .map(|c| {
                let d = PyDict::new(py);
                d.set_item("label", c.label)?;
                d.set_item("score", c.score)?;
                d.set_item("category", c.category)?;
                if let Some(r) = c.reasoning {
                    d.set_item("reasoning", r)?;
                }
                Ok(d)
            })
            .collect()
    }

    /// The scoring mode, as given.
    #[getter]
    fn scoring(&self) -> &str {
        &self.scoring
    }

    /// Label 1 when the score is at least this.
    #[getter]
    fn threshold(&self) -> PyResult<f64> {
        let l = self
            .inner
            .lock()
            .map_err(|_| ModrlError::new_err("an earlier call failed mid-way"))?;
        Ok(l.clf.options().threshold)
    }
}

#[pymodule]
fn _modrl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyClassifier>()?;
    m.add("ModrlError", m.py().get_type::<ModrlError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
