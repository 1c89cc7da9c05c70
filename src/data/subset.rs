//! Taking a stratified subset of a converted dataset (`replab convert --subset`).

use super::bundle;
use super::convert::ConvertError;
use super::rng::NumpyRng;
use std::collections::BTreeMap;

/// How many images to keep from each split.
#[derive(Clone, Debug, PartialEq)]
pub enum SubsetSpec {
    /// The same fraction of every split, e.g. `0.2`.
    Fraction(f64),
    /// Exact counts, e.g. `train=4000,val=800,test=2000`; missing splits are kept whole.
    Counts(BTreeMap<String, usize>),
}

impl SubsetSpec {
    /// Parse `0.2` or `train=4000,val=800,test=2000`.
    pub fn parse(spec: &str) -> Result<Self, ConvertError> {
        let err = |why: &str| ConvertError::Subset {
            spec: spec.to_string(),
            why: why.to_string(),
        };
        if let Ok(f) = spec.trim().parse::<f64>() {
            return if f > 0.0 && f <= 1.0 {
                Ok(Self::Fraction(f))
            } else {
                Err(err("a fraction must be in (0, 1]"))
            };
        }
        let mut counts = BTreeMap::new();
        for part in spec.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| err("expected a fraction or split=count pairs"))?;
            let k = k.trim();
            if !bundle::SPLITS.contains(&k) {
                return Err(err(&format!("unknown split '{k}' (train, val, test)")));
            }
            let v: usize = v
                .trim()
                .parse()
                .map_err(|_| err(&format!("'{v}' is not a count")))?;
            if v == 0 {
                return Err(err("a count must be positive"));
            }
            counts.insert(k.to_string(), v);
        }
        Ok(Self::Counts(counts))
    }

    pub(crate) fn target(&self, split: &str, available: usize) -> usize {
        match self {
            Self::Fraction(f) => ((available as f64 * f).round() as usize).clamp(1, available),
            Self::Counts(c) => c.get(split).copied().unwrap_or(available),
        }
    }
}

/// Stratified subset of `labels` with `target` members: each class keeps its share
/// (largest remainder rounding), members are drawn with a seeded generator and
/// returned in their original order, so official split membership and order survive.
pub fn stratified_subset(labels: &[u8], n_classes: usize, target: usize, seed: u64) -> Vec<usize> {
    let total = labels.len();
    if target >= total {
        return (0..total).collect();
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &l) in labels.iter().enumerate() {
        if let Some(v) = by_class.get_mut(l as usize) {
            v.push(i);
        }
    }
    let exact: Vec<f64> = by_class
        .iter()
        .map(|v| v.len() as f64 * target as f64 / total as f64)
        .collect();
    let mut take: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..n_classes).collect();
    order.sort_by(|&a, &b| {
        let ra = exact[a] - exact[a].floor();
        let rb = exact[b] - exact[b].floor();
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let mut missing = target.saturating_sub(take.iter().sum());
    for &c in order.iter().cycle().take(n_classes * 2) {
        if missing == 0 {
            break;
        }
        if take[c] < by_class[c].len() {
            take[c] += 1;
            missing -= 1;
        }
    }
    let mut rng = NumpyRng::new(seed);
    let mut keep: Vec<usize> = Vec::with_capacity(target);
    for (c, members) in by_class.iter().enumerate() {
        let picks = rng.choice_indices(members.len(), take[c].min(members.len()));
        keep.extend(picks.into_iter().map(|p| members[p]));
    }
    keep.sort_unstable();
    keep
}
