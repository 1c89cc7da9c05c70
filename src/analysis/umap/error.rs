//! The error type and the input checks, all run before any work starts.

use thiserror::Error;

use super::{MAX_EPOCHS, MAX_NEIGHBOURS, MAX_SPREAD, MIN_SPREAD, UmapConfig};

/// Everything that can be wrong with the inputs. All checks run before any work.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum UmapError {
    /// Not enough points for the requested neighbourhood size.
    #[error(
        "{k} neighbours per point need at least {needed} points (each point plus {k} others), but got {n}"
    )]
    TooFewPoints {
        /// Points supplied.
        n: usize,
        /// Points required.
        needed: usize,
        /// Neighbours requested.
        k: usize,
    },
    /// The neighbourhood size is outside `[min, MAX_NEIGHBOURS]`.
    #[error("the number of neighbours must be between {min} and {MAX_NEIGHBOURS}, got {k}")]
    InvalidNeighbours {
        /// Neighbours requested.
        k: usize,
        /// Smallest accepted value (2 for UMAP, 1 for a plain kNN search).
        min: usize,
    },
    /// `n × k` neighbour entries would not fit in memory on this platform.
    #[error("{n} points × {k} neighbours is too large to address on this platform")]
    TooManyEntries {
        /// Points supplied.
        n: usize,
        /// Neighbours requested.
        k: usize,
    },
    /// The feature dimension is zero.
    #[error("the feature dimension d must be at least 1, got 0")]
    ZeroDimension,
    /// `n × d` does not fit in `usize`.
    #[error("n × d = {n} × {d} overflows")]
    ShapeOverflow {
        /// Points claimed.
        n: usize,
        /// Dimension claimed.
        d: usize,
    },
    /// The feature slice length disagrees with `n × d`.
    #[error("features has {len} values but n × d = {n} × {d} = {expected}")]
    ShapeMismatch {
        /// Length of the slice.
        len: usize,
        /// Points claimed.
        n: usize,
        /// Dimension claimed.
        d: usize,
        /// `n × d`.
        expected: usize,
    },
    /// A feature is NaN or infinite.
    #[error("feature at row {row}, column {col} is not finite ({value})")]
    NonFinite {
        /// Row (point) of the bad value.
        row: usize,
        /// Column (dimension) of the bad value.
        col: usize,
        /// The value itself.
        value: f32,
    },
    /// `spread` is not finite or outside the supported range.
    #[error("spread must be a finite number in [{MIN_SPREAD}, {MAX_SPREAD}], got {0}")]
    InvalidSpread(f32),
    /// `min_dist` is not in `[0, spread]`.
    #[error("min_dist must lie in [0, spread] = [0, {spread}], got {min_dist}")]
    InvalidMinDist {
        /// The value given.
        min_dist: f32,
        /// The spread it was checked against.
        spread: f32,
    },
    /// `n_epochs` is zero or absurdly large.
    #[error("n_epochs must be between 1 and {MAX_EPOCHS}, got {0}")]
    InvalidEpochs(usize),
    /// The curve fit for `a`, `b` did not give usable numbers.
    #[error("could not fit the layout curve for min_dist = {min_dist}, spread = {spread}")]
    CurveFit {
        /// The value given.
        min_dist: f32,
        /// The value given.
        spread: f32,
    },
}

pub(super) fn validate_config(cfg: &UmapConfig) -> Result<(), UmapError> {
    if !(cfg.spread.is_finite() && (MIN_SPREAD..=MAX_SPREAD).contains(&cfg.spread)) {
        return Err(UmapError::InvalidSpread(cfg.spread));
    }
    if !(cfg.min_dist.is_finite() && (0.0..=cfg.spread).contains(&cfg.min_dist)) {
        return Err(UmapError::InvalidMinDist {
            min_dist: cfg.min_dist,
            spread: cfg.spread,
        });
    }
    if let Some(epochs) = cfg.n_epochs
        && !(1..=MAX_EPOCHS).contains(&epochs)
    {
        return Err(UmapError::InvalidEpochs(epochs));
    }
    Ok(())
}

pub(super) fn validate_features(features: &[f32], n: usize, d: usize) -> Result<(), UmapError> {
    if d == 0 {
        return Err(UmapError::ZeroDimension);
    }
    let expected = n.checked_mul(d).ok_or(UmapError::ShapeOverflow { n, d })?;
    if features.len() != expected {
        return Err(UmapError::ShapeMismatch {
            len: features.len(),
            n,
            d,
            expected,
        });
    }
    if let Some(pos) = features.iter().position(|v| !v.is_finite()) {
        return Err(UmapError::NonFinite {
            row: pos / d,
            col: pos % d,
            value: features.get(pos).copied().unwrap_or(f32::NAN),
        });
    }
    Ok(())
}

pub(super) fn validate_neighbours(n: usize, k: usize, min: usize) -> Result<(), UmapError> {
    if !(min..=MAX_NEIGHBOURS).contains(&k) {
        return Err(UmapError::InvalidNeighbours { k, min });
    }
    if n <= k {
        return Err(UmapError::TooFewPoints {
            n,
            needed: k.saturating_add(1),
            k,
        });
    }
    // The graph stage briefly holds 2·n·k entries of up to 24 bytes; make sure every
    // size derived from n·k is representable (this matters on 32-bit wasm).
    if n.checked_mul(k).and_then(|nk| nk.checked_mul(64)).is_none() {
        return Err(UmapError::TooManyEntries { n, k });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{knn_cosine, umap_2d};
    use super::*;

    #[test]
    fn rejects_bad_inputs() {
        let ok = vec![0.5f32; 20 * 4];
        let c = UmapConfig::default();
        assert_eq!(
            umap_2d(
                &ok,
                20,
                4,
                &UmapConfig {
                    n_neighbors: 1,
                    ..c
                }
            ),
            Err(UmapError::InvalidNeighbours { k: 1, min: 2 })
        );
        let err = umap_2d(&ok[..15 * 4], 15, 4, &c).unwrap_err();
        assert_eq!(
            err,
            UmapError::TooFewPoints {
                n: 15,
                needed: 16,
                k: 15
            }
        );
        assert!(err.to_string().contains("at least 16 points"), "{err}");
        assert!(matches!(
            umap_2d(&[], 0, 4, &c),
            Err(UmapError::TooFewPoints { n: 0, .. })
        ));
        assert_eq!(umap_2d(&[], 0, 0, &c), Err(UmapError::ZeroDimension));
        assert!(matches!(
            umap_2d(&ok, 20, 5, &c),
            Err(UmapError::ShapeMismatch {
                len: 80,
                expected: 100,
                ..
            })
        ));
        assert!(matches!(
            umap_2d(&ok, usize::MAX, 2, &c),
            Err(UmapError::ShapeOverflow { .. })
        ));
        let mut bad = ok.clone();
        bad[2 * 4 + 3] = f32::NAN;
        let err = umap_2d(&bad, 20, 4, &c).unwrap_err();
        assert!(matches!(err, UmapError::NonFinite { row: 2, col: 3, .. }));
        assert!(err.to_string().contains("row 2, column 3"), "{err}");
        bad[2 * 4 + 3] = f32::INFINITY;
        assert!(knn_cosine(&bad, 20, 4, 3).is_err());
        for (min_dist, spread) in [(-0.1, 1.0), (1.5, 1.0), (f32::NAN, 1.0)] {
            assert!(matches!(
                umap_2d(
                    &ok,
                    20,
                    4,
                    &UmapConfig {
                        min_dist,
                        spread,
                        ..c
                    }
                ),
                Err(UmapError::InvalidMinDist { .. })
            ));
        }
        for spread in [0.0, -1.0, f32::INFINITY, 1e-6, 1e6] {
            assert!(matches!(
                umap_2d(
                    &ok,
                    20,
                    4,
                    &UmapConfig {
                        spread,
                        min_dist: 0.0,
                        ..c
                    }
                ),
                Err(UmapError::InvalidSpread(_))
            ));
        }
        for epochs in [0, MAX_EPOCHS + 1] {
            assert_eq!(
                umap_2d(
                    &ok,
                    20,
                    4,
                    &UmapConfig {
                        n_epochs: Some(epochs),
                        ..c
                    }
                ),
                Err(UmapError::InvalidEpochs(epochs))
            );
        }
        assert_eq!(
            knn_cosine(&ok, 20, 4, 0),
            Err(UmapError::InvalidNeighbours { k: 0, min: 1 })
        );
        assert!(matches!(
            knn_cosine(&ok, 20, 4, 20),
            Err(UmapError::TooFewPoints { needed: 21, .. })
        ));
        assert!(matches!(
            knn_cosine(&ok, 20, 4, MAX_NEIGHBOURS + 1),
            Err(UmapError::InvalidNeighbours { .. })
        ));
        // Only reachable with more points than a 64-bit test can allocate.
        assert_eq!(
            validate_neighbours(usize::MAX / 8, 15, 2),
            Err(UmapError::TooManyEntries {
                n: usize::MAX / 8,
                k: 15
            })
        );
    }
}
