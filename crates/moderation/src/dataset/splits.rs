//! Deterministic stratified train / val / test splits.

use super::*;

/// Fractions and seed for [`assign_splits`].
#[derive(Debug, Clone, PartialEq)]
pub struct SplitConfig {
    /// Fraction of each label stratum in train.
    pub train: f64,
    /// Fraction in val.
    pub val: f64,
    /// Fraction in test.
    pub test: f64,
    /// Seed; the same seed and ids always give the same assignment.
    pub seed: u64,
    /// Leave records that already have a split alone (e.g. official test sets).
    pub keep_existing: bool,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            train: 0.8,
            val: 0.1,
            test: 0.1,
            seed: 0,
            keep_existing: true,
        }
    }
}

/// SplitMix64 finaliser: a fixed, portable 64-bit mix.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Assigns train/val/test splits, stratified by label.
///
/// Within each label, the records to assign are ordered by a seeded hash of their id (ties by
/// id), and the first `round(n·train)` go to train, the next `round(n·val)` to val and the rest
/// to test. The result depends only on the ids, labels, fractions and seed — not on input order
/// or on the `rand` crate's version.
pub fn assign_splits(records: &mut [Record], config: &SplitConfig) -> Result<(), DataError> {
    let fractions = [config.train, config.val, config.test];
    if fractions.iter().any(|f| !f.is_finite() || *f < 0.0)
        || (fractions.iter().sum::<f64>() - 1.0).abs() > 1e-9
    {
        return Err(DataError::Invalid(format!(
            "split fractions must be non-negative and sum to 1, got {fractions:?}"
        )));
    }
    let mut strata: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if !(config.keep_existing && r.split.is_some()) {
            strata.entry(r.label).or_default().push(i);
        }
    }
    let seed_mix = mix64(config.seed);
    for indices in strata.values_mut() {
        indices.sort_by_cached_key(|&i| {
            let id = &records[i].id;
            (mix64(fnv1a(id.as_bytes()) ^ seed_mix), id.clone())
        });
        let n = indices.len();
        let n_train = (((n as f64) * config.train).round() as usize).min(n);
        let n_val = (((n as f64) * config.val).round() as usize).min(n - n_train);
        for (rank, &i) in indices.iter().enumerate() {
            records[i].split = Some(if rank < n_train {
                Split::Train
            } else if rank < n_train + n_val {
                Split::Val
            } else {
                Split::Test
            });
        }
    }
    Ok(())
}

/// The records of one split.
pub fn in_split(records: &[Record], split: Split) -> Vec<&Record> {
    records.iter().filter(|r| r.split == Some(split)).collect()
}
