//! `modrl data import|stats|prompts|self-reason`: raw public datasets to canonical JSONL with stratified
//! splits, their statistics, the exact prompts a model sees, and self-generated reasoning for SFT.

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
    /// Self-generated reasoning for SFT (rejection sampling): sample K reasonings per record from
    /// the model at temperature T, keep those after which the model's verdict (read as `--scoring
    /// reasoned` reads it) matches the label, that are not degenerate (JSON inside, loops) and whose
    /// quotes are all in the content, and write
    /// the records with the kept answer as their `target` (what `modrl train` SFT then teaches
    /// verbatim). Prints and writes (OUT.stats.json) the kept fraction and why samples failed.
    SelfReason(SelfReasonArgs),
}

#[derive(Args)]
pub struct SelfReasonArgs {
    #[command(flatten)]
    model: crate::ModelArgs,
    #[arg(long)]
    policy: PathBuf,
    /// Canonical JSONL, CSV or Parquet.
    #[arg(long = "in")]
    input: PathBuf,
    /// JSONL of the records that got a target (every field kept, `target` added).
    #[arg(long)]
    out: PathBuf,
    /// Only records of this split.
    #[arg(long, default_value = "train")]
    split: String,
    /// Only the records whose ids are listed in this file (one per line), e.g. a run's
    /// train_ids.txt: the same labelled items as another run.
    #[arg(long)]
    ids: Option<PathBuf>,
    /// At most this many records (the first in file order, after the filters).
    #[arg(long)]
    limit: Option<usize>,
    /// Samples per record.
    #[arg(long, default_value_t = 4)]
    k: usize,
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    #[arg(long, default_value_t = 128)]
    max_new_tokens: usize,
    /// Fewest words of reasoning a kept sample has.
    #[arg(long, default_value_t = 8)]
    min_words: usize,
    /// Most targets per record (the most confident correct samples).
    #[arg(long, default_value_t = 1)]
    keep_per_item: usize,
    /// Most sequences decoded at once.
    #[arg(long, default_value_t = 32)]
    batch_rows: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
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
        DataCmd::SelfReason(a) => self_reason(a),
    }
}

fn self_reason(a: SelfReasonArgs) -> Result<()> {
    use modrl_train::self_reason::{self_reason, SelfReasonOptions};
    if a.k == 0 || a.keep_per_item == 0 || a.batch_rows == 0 {
        anyhow::bail!("--k, --keep-per-item and --batch-rows must be at least 1");
    }
    if !(a.temperature > 0.0) {
        anyhow::bail!(
            "--temperature must be above 0 (rejection sampling needs samples that differ)"
        );
    }
    let split = dataset::Split::parse(&a.split)
        .with_context(|| format!("--split: expected train, val or test, got {:?}", a.split))?;
    let keep: Option<std::collections::HashSet<String>> = match &a.ids {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
        ),
        None => None,
    };
    let mut recs: Vec<Record> = read_records(&a.input, false)?
        .into_iter()
        .filter(|r| r.split == Some(split))
        .filter(|r| keep.as_ref().is_none_or(|k| k.contains(&r.id)))
        .collect();
    if let Some(l) = a.limit {
        recs.truncate(l);
    }
    if recs.is_empty() {
        anyhow::bail!(
            "{}: no {} records{}",
            a.input.display(),
            a.split,
            a.ids
                .as_ref()
                .map(|p| format!(" with an id listed in {}", p.display()))
                .unwrap_or_default()
        );
    }
    let (model, tok) = crate::load_model(&a.model)?;
    let policy = modrl_moderation::Policy::load(&a.policy)?;
    let prompts = modrl_moderation::score::PolicyPrompts::new(
        policy,
        &tok,
        modrl_moderation::prompt::Variant::Standard,
        false,
    )?;
    let opts = SelfReasonOptions {
        k: a.k,
        temperature: a.temperature,
        max_new_tokens: a.max_new_tokens,
        min_words: a.min_words,
        keep_per_item: a.keep_per_item,
        max_rows: a.batch_rows,
        seed: a.seed,
    };
    let bar = indicatif::ProgressBar::new(recs.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "self-reason {bar:30} {pos}/{len} items {elapsed}<{eta}",
        )
        .expect("valid template"),
    );
    let t0 = std::time::Instant::now();
    let (kept, st) = self_reason(&model, &tok, &prompts, &recs, &opts, |n| {
        bar.set_position(n as u64)
    })?;
    bar.finish_and_clear();
    // Written whole at the end (a temporary file renamed): an interrupted run leaves no half file.
    if let Some(d) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let tmp = a.out.with_extension("jsonl.tmp");
    dataset::write_jsonl(&tmp, &kept)?;
    std::fs::rename(&tmp, &a.out).with_context(|| format!("cannot write {}", a.out.display()))?;
    let stats_path = a.out.with_extension("stats.json");
    let mut stats = serde_json::to_value(&st)?;
    stats["kept_fraction"] = serde_json::json!(st.kept_fraction());
    stats["seconds"] = serde_json::json!(t0.elapsed().as_secs_f64());
    stats["model"] = serde_json::json!(a.model.describe());
    stats["k"] = serde_json::json!(a.k);
    stats["temperature"] = serde_json::json!(a.temperature);
    stats["max_new_tokens"] = serde_json::json!(a.max_new_tokens);
    std::fs::write(&stats_path, serde_json::to_string_pretty(&stats)? + "\n")
        .with_context(|| format!("cannot write {}", stats_path.display()))?;
    eprintln!(
        "{} items, {} samples: {} correct ({:.1} %; {} wrong verdict, {} too short, {} degenerate, \
         {} ungrounded); \
         {} targets written to {} ({} of {} non-violating and {} of {} violating items kept; \
         {:.0} words of reasoning on average); counts in {}",
        st.items,
        st.samples,
        st.correct,
        100.0 * st.kept_fraction(),
        st.wrong_verdict,
        st.too_short,
        st.degenerate,
        st.ungrounded,
        st.kept,
        a.out.display(),
        st.items_kept_by_label[0],
        st.items_by_label[0],
        st.items_kept_by_label[1],
        st.items_by_label[1],
        st.mean_words_kept,
        stats_path.display()
    );
    Ok(())
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
