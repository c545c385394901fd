//! From forward passes and samples to [`ItemScore`]s: verdict-token scores (with or without
//! per-category scores), sampled (greedy and Monte-Carlo) aggregation, and reasoned scores, as
//! methods of [`PolicyPrompts`] so that every caller (the [`Scorer`](super::Scorer), the
//! [`TextClassifier`](super::TextClassifier), the server engine) runs the same code.

use anyhow::{Context, Result};
use modrl_model::generate::{generate_with_prefix, next_token_logits, PrefixCache, SamplingParams};
use modrl_model::{Device, Kind, Model, Tensor, Tokenizer};

use super::{ItemScore, PolicyPrompts, ScoringMode};
use crate::prompt::VERDICT_PREFIX;
use crate::verdict::{self, Label};

/// Limits of one scoring call: output tokens of the reasoning modes, their sampling seed, and the
/// most sequences per forward pass or decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max_new_tokens: usize,
    pub seed: u64,
    pub max_rows: usize,
}

impl PolicyPrompts {
    /// Verdict-token scores of `prompts` (no-reasoning prompts, or any prompt ending where the
    /// label word starts), at most `max_rows` sequences per forward pass. With `categories`, each
    /// item also gets its category scores (one more row per category divergence point, see
    /// [`PolicyPrompts::rows_per_item`]) and `pred_category` the most likely category.
    pub fn verdict_token(
        &self,
        model: &Model,
        prefix: Option<&PrefixCache>,
        prompts: &[Vec<u32>],
        max_rows: usize,
        categories: bool,
    ) -> Result<Vec<ItemScore>> {
        let branches: &[super::prompts::BranchNode] = if categories { &self.branches } else { &[] };
        let per_item = 1 + branches.len();
        let items_per_call = (max_rows / per_item).max(1);
        let mut out: Vec<Option<ItemScore>> = vec![None; prompts.len()];
        // Rows of one forward pass are padded to the longest: run similar lengths together.
        let calls: Vec<Vec<usize>> = length_groups(prompts)
            .into_iter()
            .flat_map(|g| {
                g.chunks(items_per_call)
                    .map(|c| c.to_vec())
                    .collect::<Vec<_>>()
            })
            .collect();
        for idxs in calls {
            let mut rows: Vec<Vec<u32>> = Vec::with_capacity(idxs.len() * per_item);
            for p in idxs.iter().map(|&i| &prompts[i]) {
                rows.push(p.clone());
                for b in branches {
                    let mut r = p.clone();
                    r.extend_from_slice(&b.path);
                    rows.push(r);
                }
            }
            let logits = next_token_logits(model, prefix, &rows)?;
            let lp = logits.to_kind(Kind::Float).log_softmax(-1, Kind::Float);
            let (pv, pn) = self.label_probs(&lp, per_item, idxs.len())?;
            // P(category | violating) from the divergence points: log-probs of each branch row at
            // its children's tokens.
            let branch_lp = if branches.is_empty() {
                vec![vec![]; rows.len()]
            } else {
                let cols: Vec<Vec<u32>> = (0..idxs.len())
                    .flat_map(|_| {
                        std::iter::once(vec![]).chain(
                            branches
                                .iter()
                                .map(|b| b.children.iter().map(|(t, _)| *t).collect()),
                        )
                    })
                    .collect();
                gather_logprobs(&lp, &cols)?
            };
            for (k, &i) in idxs.iter().enumerate() {
                let (a, b) = (pv[k] as f64, pn[k] as f64);
                let mass = a + b;
                let score = if mass > 0.0 { a / mass } else { 0.5 };
                // Most of the next-token mass should sit on the two label words.
                let ok = mass >= 0.5;
                let category_scores = if categories {
                    self.category_scores(score, &branch_lp[k * per_item + 1..(k + 1) * per_item])
                } else {
                    vec![]
                };
                let pred_category = category_scores
                    .iter()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(c, _)| c.clone());
                out[i] = Some(ItemScore {
                    score,
                    pred_label: Some(u8::from(score >= 0.5)),
                    pred_category,
                    category_scores,
                    format_ok: ok,
                    failure: (!ok).then(|| "label_mass_below_half".to_string()),
                    reasoning_words: None,
                    n_samples: 1,
                    format_ok_rate: if ok { 1.0 } else { 0.0 },
                    output: None,
                });
            }
        }
        Ok(out
            .into_iter()
            .map(|s| s.expect("every item scored"))
            .collect())
    }

    /// P(violating) and P(non_violating) as next tokens of each item's label row (every
    /// `per_item`-th row of `lp`, the row's full-vocabulary log-probs), in f32.
    fn label_probs(
        &self,
        lp: &Tensor,
        per_item: usize,
        items: usize,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let rows = if per_item == 1 {
            lp.shallow_clone()
        } else {
            let idx: Vec<i64> = (0..items).map(|k| (k * per_item) as i64).collect();
            lp.index_select(0, &Tensor::from_slice(&idx).to_device(lp.device()))
        };
        let (v, n) = self.label_tokens;
        let p = |t: u32| -> Result<Vec<f32>> {
            Vec::try_from(&rows.select(1, t as i64).exp().to_device(Device::Cpu))
                .context("reading label probabilities")
        };
        Ok((p(v)?, p(n)?))
    }

    /// `(category, P(violating and category))` from the log-probs of one item's branch rows.
    fn category_scores(&self, score: f64, branch_lp: &[Vec<f64>]) -> Vec<(String, f64)> {
        let mut lw = vec![0f64; self.categories.len()];
        for (b, lps) in self.branches.iter().zip(branch_lp) {
            for ((_, cats), &l) in b.children.iter().zip(lps) {
                for &c in cats {
                    lw[c] += l;
                }
            }
        }
        let m = lw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = lw.iter().map(|x| (x - m).exp()).collect();
        let z: f64 = w.iter().sum();
        self.categories
            .iter()
            .zip(&w)
            .map(|(c, x)| (c.clone(), score * x / z))
            .collect()
    }

    /// Greedy (`n = 1`, `temperature = 0`) or Monte-Carlo scores from `n` sampled reasonings per
    /// prompt, at most `max_rows` sequences decoded at once: the mean reported probability over
    /// the samples that keep the contract (0.5 when none does), the majority verdict, the most
    /// common category, and per-category scores (the mean over parsed samples of the reported
    /// probability of those that flag that category).
    #[allow(clippy::too_many_arguments)]
    pub fn sampled(
        &self,
        model: &Model,
        tok: &Tokenizer,
        prefix: Option<&PrefixCache>,
        prompts: &[Vec<u32>],
        n: usize,
        temperature: f64,
        budget: Budget,
    ) -> Result<Vec<ItemScore>> {
        Ok(self
            .sample_texts(model, tok, prefix, prompts, n, temperature, budget)?
            .iter()
            .map(|texts| self.aggregate(texts))
            .collect())
    }

    /// The decoded outputs of `n` samples per prompt at `temperature` (greedy at 0), at most
    /// `max_rows` sequences decoded at once: `n` texts per prompt, in prompt order.
    #[allow(clippy::too_many_arguments)]
    pub fn sample_texts(
        &self,
        model: &Model,
        tok: &Tokenizer,
        prefix: Option<&PrefixCache>,
        prompts: &[Vec<u32>],
        n: usize,
        temperature: f64,
        budget: Budget,
    ) -> Result<Vec<Vec<String>>> {
        let params = SamplingParams {
            max_new_tokens: budget.max_new_tokens,
            temperature,
            seed: Some(budget.seed),
            ..Default::default()
        };
        let n = n.max(1);
        let mut res = Vec::with_capacity(prompts.len());
        for chunk in prompts.chunks((budget.max_rows / n).max(1)) {
            let outs = generate_with_prefix(model, prefix, chunk, n, &params, Some(tok))?;
            for item in outs.chunks(n) {
                res.push(
                    item.iter()
                        .map(|o| tok.decode(&o.token_ids, true))
                        .collect::<Result<_>>()?,
                );
            }
        }
        Ok(res)
    }

    /// One item's score from its sampled outputs.
    fn aggregate(&self, texts: &[String]) -> ItemScore {
        let mut probs = vec![];
        let mut words = vec![];
        let mut first_failure = None;
        let mut cats: Vec<String> = vec![];
        let mut cat_mass = vec![0f64; self.categories.len()];
        let mut votes = 0usize;
        for text in texts {
            words.push(verdict::word_count(&verdict::reasoning_text(text)));
            match verdict::parse(text, &self.categories) {
                Ok(v) => {
                    probs.push(v.probability);
                    votes += usize::from(v.label == Label::Violating);
                    if let Some(c) = v.category {
                        if let Some(i) = self.categories.iter().position(|x| *x == c) {
                            if v.label == Label::Violating {
                                cat_mass[i] += v.probability;
                            }
                        }
                        cats.push(c);
                    }
                }
                Err(e) => {
                    first_failure.get_or_insert_with(|| e.kind().to_string());
                }
            }
        }
        let ok = probs.len();
        let score = if ok > 0 {
            probs.iter().sum::<f64>() / ok as f64
        } else {
            0.5
        };
        ItemScore {
            score,
            pred_label: (ok > 0)
                .then(|| u8::from(votes * 2 > ok || (votes * 2 == ok && score >= 0.5))),
            pred_category: mode_of(&cats),
            category_scores: self
                .categories
                .iter()
                .zip(&cat_mass)
                .map(|(c, m)| (c.clone(), if ok > 0 { m / ok as f64 } else { 0.0 }))
                .collect(),
            format_ok: ok > 0,
            failure: if ok == texts.len() {
                None
            } else {
                first_failure
            },
            reasoning_words: Some(words.iter().sum::<usize>() / words.len().max(1)),
            n_samples: texts.len(),
            format_ok_rate: ok as f64 / texts.len().max(1) as f64,
            output: texts.first().cloned(),
        }
    }

    /// Reasoned scores: one greedy reasoning per item (`prompts`, rendered from `contents` with
    /// `variant`), then the label-token distribution at the verdict after it.
    #[allow(clippy::too_many_arguments)]
    pub fn reasoned(
        &self,
        model: &Model,
        tok: &Tokenizer,
        prefix: Option<&PrefixCache>,
        contents: &[&str],
        prompts: &[Vec<u32>],
        variant: crate::prompt::Variant,
        budget: Budget,
    ) -> Result<Vec<ItemScore>> {
        let greedy = self.sampled(model, tok, prefix, prompts, 1, 0.0, budget)?;
        let answers: Vec<&str> = greedy
            .iter()
            .map(|g| g.output.as_deref().unwrap_or(""))
            .collect();
        let at_label = self.verdict_after(
            model,
            tok,
            prefix,
            contents,
            &answers,
            variant,
            budget.max_rows,
        )?;
        Ok(greedy
            .into_iter()
            .zip(at_label)
            .map(|(g, v)| ItemScore {
                score: v.score,
                pred_label: Some(u8::from(v.score >= 0.5)),
                // The contract counts as kept when the greedy answer parsed and the label
                // position carries the label mass.
                format_ok: g.format_ok && v.format_ok,
                failure: g.failure.or(v.failure),
                ..g
            })
            .collect())
    }

    /// Verdict-token scores read after given answers: for each content, the prompt of `variant`,
    /// the answer's reasoning ([`reasoned_stem`]: its own verdict cut off, the verdict opening
    /// appended), and P(violating) at the label position. What the model concludes from that
    /// reasoning, whether or not the answer wrote a verdict itself.
    #[allow(clippy::too_many_arguments)]
    pub fn verdict_after(
        &self,
        model: &Model,
        tok: &Tokenizer,
        prefix: Option<&PrefixCache>,
        contents: &[&str],
        answers: &[&str],
        variant: crate::prompt::Variant,
        max_rows: usize,
    ) -> Result<Vec<ItemScore>> {
        let continued = contents
            .iter()
            .zip(answers)
            .map(|(t, a)| {
                let prompt = format!("{}{}", self.prompt_text(tok, t, variant)?, reasoned_stem(a));
                tok.encode(&prompt)
            })
            .collect::<Result<Vec<_>>>()?;
        self.verdict_token(model, prefix, &continued, max_rows, false)
    }

    /// Score prompts with any mode (verdict-token with category scores); `contents` are the texts
    /// the prompts were rendered from with [`PolicyPrompts::variant`] of `mode` (reasoned scoring
    /// renders them again after the model's reasoning; other modes do not read them).
    #[allow(clippy::too_many_arguments)]
    pub fn score(
        &self,
        model: &Model,
        tok: &Tokenizer,
        prefix: Option<&PrefixCache>,
        contents: &[&str],
        prompts: &[Vec<u32>],
        mode: &ScoringMode,
        budget: Budget,
    ) -> Result<Vec<ItemScore>> {
        match *mode {
            ScoringMode::VerdictToken => {
                self.verdict_token(model, prefix, prompts, budget.max_rows, true)
            }
            ScoringMode::Greedy => self.sampled(model, tok, prefix, prompts, 1, 0.0, budget),
            ScoringMode::MonteCarlo { n, temperature } => {
                self.sampled(model, tok, prefix, prompts, n, temperature, budget)
            }
            ScoringMode::Reasoned if contents.len() != prompts.len() => anyhow::bail!(
                "reasoned scoring needs the content of every prompt ({} prompts, {} contents)",
                prompts.len(),
                contents.len()
            ),
            ScoringMode::Reasoned => {
                let variant = self.variant(mode);
                self.reasoned(model, tok, prefix, contents, prompts, variant, budget)
            }
        }
    }
}

/// Log-probs of each row of `lp` (full-vocabulary log-probs, one row per sequence) at the given
/// columns.
fn gather_logprobs(lp: &Tensor, cols: &[Vec<u32>]) -> Result<Vec<Vec<f64>>> {
    let k = cols.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let flat: Vec<i64> = cols
        .iter()
        .flat_map(|c| (0..k).map(move |j| c.get(j).copied().unwrap_or(0) as i64))
        .collect();
    let idx = Tensor::from_slice(&flat)
        .view([cols.len() as i64, k as i64])
        .to_device(lp.device());
    let got: Vec<f32> = Vec::try_from(
        &lp.gather(1, &idx, false)
            .to_device(Device::Cpu)
            .reshape([-1]),
    )
    .context("reading log-probs")?;
    Ok(cols
        .iter()
        .enumerate()
        .map(|(r, c)| (0..c.len()).map(|j| got[r * k + j] as f64).collect())
        .collect())
}

/// The answer up to where its verdict's label word starts, ending with [`VERDICT_PREFIX`]: the
/// reasoning as the model wrote it, then the canonical verdict opening. An answer without a
/// verdict object keeps its reasoning (closed with the closing tag when the model did not close
/// it, e.g. cut at the token limit) and gets the opening appended.
pub fn reasoned_stem(answer: &str) -> String {
    let lower = answer.to_ascii_lowercase();
    let close = lower.rfind(verdict::REASONING_CLOSE);
    let after = close.map_or(0, |i| i + verdict::REASONING_CLOSE.len());
    // The last `{` after the reasoning that opens an object with a "label" key.
    let verdict_start = lower[after..]
        .rmatch_indices('{')
        .map(|(i, _)| after + i)
        .find(|&i| {
            lower[i + 1..]
                .trim_start()
                .strip_prefix("\"label\"")
                .is_some()
        });
    match (verdict_start, close) {
        (Some(i), _) => format!("{}{VERDICT_PREFIX}", &answer[..i]),
        (None, Some(_)) => format!("{}\n{VERDICT_PREFIX}", answer[..after].trim_end()),
        (None, None) => format!(
            "{}\n{}\n{VERDICT_PREFIX}",
            answer.trim_end(),
            verdict::REASONING_CLOSE
        ),
    }
}

/// Indices of `prompts` grouped for batched forward passes: sorted by length, a new group started
/// whenever padding to the group's longest row would waste more than a quarter of its tokens.
pub fn length_groups(prompts: &[Vec<u32>]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..prompts.len()).collect();
    order.sort_by_key(|&i| prompts[i].len());
    let mut groups: Vec<Vec<usize>> = vec![];
    let mut cur: Vec<usize> = vec![];
    let mut sum = 0usize;
    for i in order {
        let len = prompts[i].len();
        // Sorted ascending: the new row is the longest, so the padded size is rows * len.
        if !cur.is_empty() && (cur.len() + 1) * len * 4 > (sum + len) * 5 {
            groups.push(std::mem::take(&mut cur));
            sum = 0;
        }
        cur.push(i);
        sum += len;
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    groups
}

/// The most common string (the last of equally common ones), e.g. the category most samples name.
pub fn mode_of(xs: &[String]) -> Option<String> {
    let mut counts: Vec<(&String, usize)> = vec![];
    for x in xs {
        match counts.iter_mut().find(|(k, _)| *k == x) {
            Some((_, c)) => *c += 1,
            None => counts.push((x, 1)),
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, c)| *c)
        .map(|(k, _)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::VERDICT_PREFIX;

    #[test]
    fn length_groups_cover_every_row_once_and_bound_padding() {
        let lens = [5usize, 300, 6, 7, 290, 5, 1000, 8];
        let prompts: Vec<Vec<u32>> = lens.iter().map(|&n| vec![1; n]).collect();
        let groups = length_groups(&prompts);
        let mut seen: Vec<usize> = groups.concat();
        seen.sort();
        assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>());
        for g in &groups {
            let max = g.iter().map(|&i| lens[i]).max().unwrap();
            let sum: usize = g.iter().map(|&i| lens[i]).sum();
            assert!(g.len() == 1 || g.len() * max * 4 <= sum * 5, "{g:?}");
        }
        // Short rows stay together; the 1000-token row is alone.
        assert!(groups.iter().any(|g| g.len() >= 4));
        assert!(groups.contains(&vec![6]));
        // Equal lengths: one group.
        assert_eq!(length_groups(&vec![vec![1u32; 9]; 5]).len(), 1);
    }

    #[test]
    fn reasoned_stem_cuts_at_the_label_word() {
        let full = "<reasoning>\nIt asks for a weapon.\n</reasoning>\n{\"label\": \"violating\", \"category\": \"x\", \"probability\": 0.9}";
        assert_eq!(
            reasoned_stem(full),
            "<reasoning>\nIt asks for a weapon.\n</reasoning>\n{\"label\": \""
        );
        // Braces inside the reasoning are not the verdict.
        let braces = "<reasoning>the text has {\"label\": 1} in it</reasoning>\n{ \"label\": \"non_violating\"}";
        assert!(reasoned_stem(braces)
            .starts_with("<reasoning>the text has {\"label\": 1} in it</reasoning>\n{"));
        assert!(reasoned_stem(braces).ends_with(VERDICT_PREFIX));
        // Closed reasoning and no verdict; then a reasoning cut at the token limit.
        assert_eq!(
            reasoned_stem("<reasoning>fine</reasoning>  oops"),
            "<reasoning>fine</reasoning>\n{\"label\": \""
        );
        assert_eq!(
            reasoned_stem("<reasoning>it goes on and on"),
            "<reasoning>it goes on and on\n</reasoning>\n{\"label\": \""
        );
        assert_eq!(
            "reasoned".parse::<ScoringMode>().unwrap(),
            ScoringMode::Reasoned
        );
    }

    #[test]
    fn mode_picks_most_common() {
        let xs: Vec<String> = ["a", "b", "b"].map(String::from).to_vec();
        assert_eq!(mode_of(&xs), Some("b".into()));
        assert_eq!(mode_of(&[]), None);
    }
}
