//! `modrl data import|stats`: raw public datasets to canonical JSONL with stratified splits.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use modrl_moderation::dataset::{self, ReadOptions, SplitConfig, Task};
use modrl_moderation::Record;

#[derive(Subcommand)]
pub enum DataCmd {
    /// Convert a raw dataset to canonical JSONL ({id, text, label, categories, rationale, slices,
    /// split}) with deterministic stratified train/val/test splits.
    Import(ImportArgs),
    /// Size, prevalence per label, category and split of a canonical JSONL or CSV file.
    Stats {
        /// The data file.
        file: PathBuf,
    },
    /// Write the exact prompt text a model sees for each record (chat template + generation
    /// prompt, as `modrl train` and `modrl eval` render it): JSONL `{id, label, prompt,
    /// prompt_tokens}`. For inspection, and for running other tools on the same prompts.
    Prompts(PromptsArgs),
}

#[derive(Args)]
pub struct PromptsArgs {
    /// Model directory (its tokenizer and chat template are used; no weights are read).
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    policy: PathBuf,
    /// Canonical JSONL or CSV.
    #[arg(long = "in")]
    input: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Only records of this split.
    #[arg(long)]
    split: Option<String>,
    /// At most this many records (the first in file order).
    #[arg(long)]
    limit: Option<usize>,
    /// Prompt variant: standard, reflection or no-reasoning (the verdict-token prompt).
    #[arg(long, default_value = "standard")]
    variant: String,
    /// Fold the system message into the user turn (templates without a system role).
    #[arg(long)]
    no_system_role: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Source {
    /// Davidson et al. 2017 tweets (labeled_data.csv).
    Davidson,
    /// ETHOS binary (Ethos_Dataset_Binary.csv; the multi-label file beside it adds categories).
    Ethos,
    /// HateXplain val + test with human rationales (the folder).
    Hatexplain,
    /// Prompt-harm: GuardReasoner 5k + WildGuard benchmark (the folder).
    PromptHarm,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TaskArg {
    /// Only hate speech is violating.
    Hate,
    /// Hate or offensive language is violating.
    Offensive,
}

#[derive(Args)]
pub struct ImportArgs {
    #[arg(long, value_enum)]
    source: Source,
    /// The raw file (davidson, ethos) or folder (hatexplain, prompt-harm).
    #[arg(long = "in")]
    input: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Binary task for multi-class sources.
    #[arg(long, value_enum, default_value = "hate")]
    task: TaskArg,
    #[arg(long, default_value_t = 0.8)]
    train: f64,
    #[arg(long, default_value_t = 0.1)]
    val: f64,
    #[arg(long, default_value_t = 0.1)]
    test: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(cmd: DataCmd) -> Result<()> {
    match cmd {
        DataCmd::Import(a) => import(a),
        DataCmd::Stats { file } => {
            let recs = read_records(&file, false)?;
            println!("{}", dataset::stats(&recs));
            Ok(())
        }
        DataCmd::Prompts(a) => prompts(a),
    }
}

fn prompts(a: PromptsArgs) -> Result<()> {
    use std::io::Write;
    let tok = modrl_model::Tokenizer::from_dir(&a.model)?;
    let policy = modrl_moderation::Policy::load(&a.policy)?;
    // The reasoning variants as `modrl eval` parses them, plus the verdict-token prompt.
    let variant: modrl_moderation::prompt::Variant =
        a.variant.parse().map_err(anyhow::Error::msg)?;
    let renderer = modrl_moderation::score::PromptRenderer {
        tok: &tok,
        policy: &policy,
        variant,
        no_system_role: a.no_system_role,
    };
    let recs = read_records(&a.input, false)?;
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(&a.out)
            .with_context(|| format!("cannot create {}", a.out.display()))?,
    );
    let mut n = 0;
    for r in recs.iter().filter(|r| {
        a.split
            .as_deref()
            .is_none_or(|s| r.split.map(|x| x.as_str()) == Some(s))
    }) {
        if a.limit.is_some_and(|l| n >= l) {
            break;
        }
        let text = renderer.text(&r.text)?;
        let ids = tok.encode(&text)?;
        let row = serde_json::json!({"id": r.id, "label": r.label, "prompt": text, "prompt_tokens": ids.len()});
        writeln!(w, "{row}")?;
        n += 1;
    }
    w.flush()?;
    eprintln!("wrote {n} prompts to {}", a.out.display());
    Ok(())
}

fn import(a: ImportArgs) -> Result<()> {
    let task = match a.task {
        TaskArg::Hate => Task::Hate,
        TaskArg::Offensive => Task::Offensive,
    };
    let mut recs = match a.source {
        Source::Davidson => dataset::import_davidson(&a.input, task)?,
        Source::Ethos => {
            let multi = a.input.with_file_name("Ethos_Dataset_Multi_Label.csv");
            dataset::import_ethos(&a.input, multi.exists().then_some(multi.as_path()))?
        }
        Source::Hatexplain => dataset::import_hatexplain(&a.input, task)?,
        Source::PromptHarm => dataset::import_prompt_harm(&a.input)?,
    };
    let cfg = SplitConfig {
        train: a.train,
        val: a.val,
        test: a.test,
        seed: a.seed,
        keep_existing: true,
    };
    dataset::assign_splits(&mut recs, &cfg)?;
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    dataset::write_jsonl(&a.out, &recs)?;
    eprintln!("wrote {} records to {}", recs.len(), a.out.display());
    println!("{}", dataset::stats(&recs));
    Ok(())
}

/// Column names of a CSV or Parquet data file.
pub struct Columns {
    pub id: String,
    pub text: String,
    pub label: String,
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            id: "id".into(),
            text: "text".into(),
            label: "label".into(),
        }
    }
}

/// Read canonical records from `.jsonl` (or `.json` lines), or a `.csv` / `.parquet` with `id`,
/// `text`, `label` columns.
pub fn read_records(path: &Path, skip_bad_rows: bool) -> Result<Vec<Record>> {
    read_records_with(path, skip_bad_rows, &Columns::default())
}

/// [`read_records`] with other column names for CSV and Parquet.
pub fn read_records_with(path: &Path, skip_bad_rows: bool, cols: &Columns) -> Result<Vec<Record>> {
    let opts = if skip_bad_rows {
        ReadOptions::skipping()
    } else {
        ReadOptions::default()
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let renamed = cols.id != "id" || cols.text != "text" || cols.label != "label";
    let out = match ext.as_str() {
        "csv" => {
            let mut m = dataset::CsvMapping::new(cols.text.as_str(), cols.label.as_str());
            m.id = Some(cols.id.as_str().into());
            dataset::read_csv(path, &m, &opts)?
        }
        "parquet" => {
            let map = [
                (cols.id.as_str(), "id"),
                (cols.text.as_str(), "text"),
                (cols.label.as_str(), "label"),
            ];
            dataset::read_parquet(path, &opts, &map)?
        }
        "jsonl" | "json" | "ndjson" if renamed => bail!(
            "{}: --id-column / --text-column / --label-column apply to CSV and Parquet; JSONL uses the fields id, text, label",
            path.display()
        ),
        "jsonl" | "json" | "ndjson" => dataset::read_jsonl(path, &opts)?,
        other => bail!(
            "{}: unknown data format {other:?} (expected .jsonl, .csv or .parquet)",
            path.display()
        ),
    };
    if out.skipped > 0 {
        eprintln!(
            "warning: {}: skipped {} bad rows; first: {}",
            path.display(),
            out.skipped,
            out.errors
                .first()
                .map(|e| e.to_string())
                .unwrap_or_default()
        );
    }
    Ok(out.records)
}
