//! Classification metrics for evaluating probes.
//!
//! These helpers are deliberately small and total: they never panic and never
//! produce `NaN`, so their results can be shown in a UI or written to a report
//! without extra checks. Labels are class indices in `0..n_classes`.

/// Fraction of positions where `pred` and `truth` agree, in `[0, 1]`.
///
/// Both slices are expected to have the same length. If they do not, the
/// positions that have no partner are counted as errors, so the denominator is
/// the longer length. Two empty slices give `0.0` (there is nothing to be
/// right about, and `0.0` is safer to display than `NaN`).
pub fn accuracy(pred: &[usize], truth: &[usize]) -> f64 {
    let total = pred.len().max(truth.len());
    if total == 0 {
        return 0.0;
    }
    let correct = pred.iter().zip(truth).filter(|(p, t)| p == t).count();
    correct as f64 / total as f64
}

/// Counts of (true class, predicted class) pairs.
///
/// The result is an `n_classes x n_classes` matrix indexed as
/// `cm[truth][pred]`: row `r` describes every sample whose true label is `r`,
/// and the diagonal holds the correct predictions. Pairs are taken
/// position-wise over the shorter of the two slices; a pair that mentions a
/// label `>= n_classes` cannot be placed in the matrix and is skipped.
pub fn confusion_matrix(pred: &[usize], truth: &[usize], n_classes: usize) -> Vec<Vec<u64>> {
    let mut cm = vec![vec![0u64; n_classes]; n_classes];
    for (&p, &t) in pred.iter().zip(truth) {
        if let Some(cell) = cm.get_mut(t).and_then(|row| row.get_mut(p)) {
            *cell += 1;
        }
    }
    cm
}

/// Divides every row of a confusion matrix by its sum.
///
/// Entry `[r][c]` of the result is the fraction of class-`r` samples that were
/// predicted as class `c`, so the diagonal is the per-class recall. A row with
/// no samples (a class absent from the evaluation set) stays all zeros rather
/// than becoming `NaN`.
pub fn row_normalize(cm: &[Vec<u64>]) -> Vec<Vec<f64>> {
    cm.iter()
        .map(|row| {
            let total: u64 = row.iter().sum();
            if total == 0 {
                vec![0.0; row.len()]
            } else {
                row.iter().map(|&v| v as f64 / total as f64).collect()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_matches() {
        assert_eq!(accuracy(&[0, 1, 2, 1], &[0, 1, 1, 1]), 0.75);
        assert_eq!(accuracy(&[3, 3], &[3, 3]), 1.0);
        assert_eq!(accuracy(&[0, 0], &[1, 1]), 0.0);
    }

    #[test]
    fn accuracy_of_empty_is_zero_not_nan() {
        let a = accuracy(&[], &[]);
        assert_eq!(a, 0.0);
        assert!(!a.is_nan());
    }

    #[test]
    fn accuracy_counts_unpaired_positions_as_errors() {
        // Two of the three truth labels have a prediction and both are right.
        assert!((accuracy(&[1, 2], &[1, 2, 0]) - 2.0 / 3.0).abs() < 1e-15);
        assert!((accuracy(&[1, 2, 0], &[1, 2]) - 2.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn confusion_matrix_is_indexed_truth_then_pred() {
        let truth = [0, 0, 1, 1, 1, 2];
        let pred = [0, 1, 1, 1, 2, 2];
        let cm = confusion_matrix(&pred, &truth, 3);
        assert_eq!(cm, vec![vec![1, 1, 0], vec![0, 2, 1], vec![0, 0, 1]]);
        let total: u64 = cm.iter().flatten().sum();
        assert_eq!(total, truth.len() as u64);
        let diag: u64 = (0..3).map(|i| cm[i][i]).sum();
        assert_eq!(diag as f64 / total as f64, accuracy(&pred, &truth));
    }

    #[test]
    fn confusion_matrix_skips_out_of_range_labels() {
        let cm = confusion_matrix(&[0, 5, 1], &[0, 1, 7], 2);
        assert_eq!(cm, vec![vec![1, 0], vec![0, 0]]);
    }

    #[test]
    fn confusion_matrix_with_zero_classes_is_empty() {
        assert!(confusion_matrix(&[0, 1], &[0, 1], 0).is_empty());
    }

    #[test]
    fn row_normalize_gives_fractions_and_keeps_empty_rows_zero() {
        let cm = vec![vec![3, 1, 0], vec![0, 0, 0], vec![1, 1, 2]];
        let norm = row_normalize(&cm);
        assert_eq!(norm[0], vec![0.75, 0.25, 0.0]);
        assert_eq!(norm[1], vec![0.0, 0.0, 0.0]);
        assert_eq!(norm[2], vec![0.25, 0.25, 0.5]);
        assert!(norm.iter().flatten().all(|v| v.is_finite()));
        for row in [&norm[0], &norm[2]] {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        }
    }

    #[test]
    fn row_normalize_of_empty_matrix_is_empty() {
        assert!(row_normalize(&[]).is_empty());
    }
}
