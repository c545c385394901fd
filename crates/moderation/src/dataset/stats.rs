//! Counts and prevalence per split, label and slice.

use super::*;

/// Counts for one group of records.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct GroupStats {
    /// Records in the group.
    pub count: usize,
    /// Violating records in the group.
    pub positives: usize,
    /// `positives / count`.
    pub prevalence: f64,
    /// Mean text length in characters.
    pub mean_chars: f64,
}

impl GroupStats {
    fn of<'a>(records: impl IntoIterator<Item = &'a Record>) -> GroupStats {
        let (mut count, mut positives, mut chars) = (0usize, 0usize, 0usize);
        for r in records {
            count += 1;
            positives += usize::from(r.label == 1);
            chars += r.text.chars().count();
        }
        let ratio = |a: usize| {
            if count == 0 {
                0.0
            } else {
                a as f64 / count as f64
            }
        };
        GroupStats {
            count,
            positives,
            prevalence: ratio(positives),
            mean_chars: ratio(chars),
        }
    }
}

/// Dataset statistics; `Display` prints a table.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Stats {
    /// All records.
    pub overall: GroupStats,
    /// Count and share of each label value.
    pub by_label: BTreeMap<u8, (usize, f64)>,
    /// Per dataset category.
    pub by_category: BTreeMap<String, GroupStats>,
    /// Per split (`unassigned` for records without one).
    pub by_split: BTreeMap<String, GroupStats>,
    /// Per slice.
    pub by_slice: BTreeMap<String, GroupStats>,
}

/// Computes [`Stats`].
pub fn stats(records: &[Record]) -> Stats {
    let overall = GroupStats::of(records);
    let mut by_label: BTreeMap<u8, (usize, f64)> = BTreeMap::new();
    let mut cats: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    let mut splits: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    let mut slices: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for r in records {
        by_label.entry(r.label).or_insert((0, 0.0)).0 += 1;
        for c in &r.categories {
            cats.entry(c.clone()).or_default().push(r);
        }
        for s in &r.slices {
            slices.entry(s.clone()).or_default().push(r);
        }
        let split = r.split.map_or("unassigned", Split::as_str);
        splits.entry(split.to_string()).or_default().push(r);
    }
    for (count, share) in by_label.values_mut() {
        *share = *count as f64 / records.len() as f64;
    }
    let group = |m: BTreeMap<String, Vec<&Record>>| {
        m.into_iter()
            .map(|(k, v)| (k, GroupStats::of(v)))
            .collect::<BTreeMap<_, _>>()
    };
    Stats {
        overall,
        by_label,
        by_category: group(cats),
        by_split: group(splits),
        by_slice: group(slices),
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "records: {}   violating: {} ({:.2}%)   mean length: {:.1} chars",
            self.overall.count,
            self.overall.positives,
            100.0 * self.overall.prevalence,
            self.overall.mean_chars
        )?;
        writeln!(f)?;
        writeln!(f, "{:<8} {:>9} {:>8}", "label", "count", "share")?;
        for (label, (count, share)) in &self.by_label {
            writeln!(f, "{:<8} {:>9} {:>7.2}%", label, count, 100.0 * share)?;
        }
        let sections = [
            ("split", &self.by_split),
            ("category", &self.by_category),
            ("slice", &self.by_slice),
        ];
        let width = sections
            .iter()
            .flat_map(|(_, m)| m.keys().map(|k| k.chars().count()))
            .max()
            .unwrap_or(0)
            .max(8);
        for (title, groups) in sections {
            if groups.is_empty() {
                continue;
            }
            writeln!(f)?;
            writeln!(
                f,
                "{:<width$} {:>9} {:>9} {:>10} {:>10}",
                title, "count", "violating", "prevalence", "mean_chars"
            )?;
            for (name, g) in groups {
                writeln!(
                    f,
                    "{:<width$} {:>9} {:>9} {:>9.2}% {:>10.1}",
                    name,
                    g.count,
                    g.positives,
                    100.0 * g.prevalence,
                    g.mean_chars
                )?;
            }
        }
        Ok(())
    }
}
