//! Content-moderation building blocks for RL-trained LLM classifiers (arXiv 2512.20061).
//!
//! This crate holds moderation on top of the model crate: everything but [`score`] works without
//! weights.
//!
//! * [`policy`] — versioned, diffable TOML policies and their rendering into prompt text;
//! * [`dataset`] — the canonical [`dataset::Record`], JSONL/CSV readers and writers, importers for
//!   the raw public datasets, deterministic stratified splits and dataset statistics;
//! * [`parquet_io`] — Parquet in and out with bounded memory (columns streamed a batch at a time);
//! * [`verdict`] — the model output contract and a tolerant, never-panicking parser for it;
//! * [`targets`] — SFT targets: the contract filled for a labelled record, worded from the policy
//!   (or the record's own `target`, e.g. a self-generated reasoning);
//! * [`prompt`] — chat messages for a policy and a piece of content, with a byte-identical shared
//!   prefix;
//! * [`metrics`] — ranking, threshold and calibration metrics that match scikit-learn, plus seeded
//!   bootstrap intervals;
//! * [`paired`] — two models on the same items: paired bootstrap intervals of the difference.
//!
//! * [`eval`] — the resumable `scores.jsonl` file and the metrics of a scored set; [`report`] —
//!   HTML / Markdown reports, plots and side-by-side comparisons;
//! * [`score`] — the one scoring path (verdict-token with category scores, Monte-Carlo, greedy,
//!   reasoned) used by `modrl eval`, the trainer, `modrl classify`, the Python package and the
//!   server engine.

pub mod dataset;
pub mod eval;
pub mod journal;
pub mod metrics;
pub mod paired;
pub mod parquet_io;
pub mod plot;
pub mod policy;
pub mod prompt;
pub mod report;
pub mod score;
pub mod targets;
pub mod verdict;

pub use dataset::{Record, Split};
pub use policy::Policy;
pub use verdict::{Label, ParseFailure, Verdict};
