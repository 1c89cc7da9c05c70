//! Checks `NumpyRng` and `make_split` against values recorded from numpy by
//! `scripts/make_split_fixtures.py` (fixtures in `tests/fixtures/`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use replab::data::rng::NumpyRng;
use replab::data::splits::{SplitConfig, SplitError, SplitSizes, make_split};
use serde::Deserialize;
use std::collections::BTreeMap;

const RNG_FIXTURE: &str = include_str!("fixtures/numpy_rng.json");
const SPLIT_FIXTURE: &str = include_str!("fixtures/splits.json");

/// Same as the script's `order_checksum`.
const CHECKSUM_MODULUS: u128 = (1 << 61) - 1;

#[derive(Deserialize)]
struct RngFixture {
    fresh_generator_per_test: bool,
    seeds: Vec<SeedRecord>,
}

#[derive(Deserialize)]
struct SeedRecord {
    seed: u64,
    random_raw: Vec<u64>,
    random: Vec<f64>,
    random_bits: Vec<u64>,
    integers: Vec<IntegersRecord>,
    choice: Vec<ChoiceRecord>,
    shuffle: Vec<ShuffleRecord>,
    mixed: Vec<(String, serde_json::Value)>,
}

#[derive(Deserialize)]
struct IntegersRecord {
    low: i64,
    high: i64,
    values: Vec<i64>,
}

#[derive(Deserialize)]
struct ChoiceRecord {
    n: usize,
    k: usize,
    values: Vec<usize>,
}

#[derive(Deserialize)]
struct ShuffleRecord {
    m: usize,
    values: Vec<usize>,
}

#[derive(Deserialize)]
struct SplitFixture {
    head_len_when_incomplete: usize,
    cases: Vec<SplitCase>,
}

#[derive(Deserialize)]
struct SplitCase {
    name: String,
    n_classes: usize,
    config: CaseConfig,
    held_out_labels: Vec<u8>,
    kept_labels: Vec<u8>,
    kept_label_map: BTreeMap<String, usize>,
    held_out_label_map: BTreeMap<String, usize>,
    sizes: SplitSizes,
    checksums: BTreeMap<String, u64>,
    lists: BTreeMap<String, Vec<usize>>,
    lists_complete: bool,
    train_labels: Vec<u8>,
    val_labels: Vec<u8>,
}

#[derive(Deserialize)]
struct CaseConfig {
    labeled_ratio: f64,
    held_out_ratio: f64,
    split_seed: u64,
}

fn rng_fixture() -> RngFixture {
    serde_json::from_str(RNG_FIXTURE).expect("numpy_rng.json parses")
}

fn split_fixture() -> SplitFixture {
    serde_json::from_str(SPLIT_FIXTURE).expect("splits.json parses")
}

fn order_checksum(values: &[usize]) -> u64 {
    let mut total: u128 = 0;
    for (position, &value) in values.iter().enumerate() {
        total = (total + (position as u128 + 1) * value as u128) % CHECKSUM_MODULUS;
    }
    total as u64
}

#[test]
fn raw_stream_matches_numpy() {
    let fixture = rng_fixture();
    assert!(fixture.fresh_generator_per_test);
    for record in &fixture.seeds {
        let mut rng = NumpyRng::new(record.seed);
        let raw: Vec<u64> = (0..record.random_raw.len())
            .map(|_| rng.next_u64())
            .collect();
        assert_eq!(raw, record.random_raw, "seed {}", record.seed);
    }
}

#[test]
fn random_matches_numpy_bit_for_bit() {
    for record in &rng_fixture().seeds {
        let mut rng = NumpyRng::new(record.seed);
        for (expected_bits, expected) in record.random_bits.iter().zip(&record.random) {
            let value = rng.random();
            assert_eq!(value.to_bits(), *expected_bits, "seed {}", record.seed);
            // The decimal form is only a readability aid: serde_json's default
            // float parser may land one ULP away from the shortest repr that
            // Python wrote, so the bit pattern above is the exact check.
            let ulps = value.to_bits().abs_diff(expected.to_bits());
            assert!(ulps <= 1, "seed {}: {value} vs {expected}", record.seed);
        }
    }
}

#[test]
fn integers_match_numpy() {
    for record in &rng_fixture().seeds {
        for case in &record.integers {
            let mut rng = NumpyRng::new(record.seed);
            let values: Vec<i64> = (0..case.values.len())
                .map(|_| rng.integers(case.low, case.high))
                .collect();
            assert_eq!(
                values, case.values,
                "seed {} integers({}, {})",
                record.seed, case.low, case.high
            );
        }
    }
}

#[test]
fn choice_without_replacement_matches_numpy() {
    for record in &rng_fixture().seeds {
        for case in &record.choice {
            let mut rng = NumpyRng::new(record.seed);
            let values = rng.choice_indices(case.n, case.k);
            assert_eq!(
                values, case.values,
                "seed {} choice({}, {})",
                record.seed, case.n, case.k
            );
        }
    }
}

#[test]
fn shuffle_matches_numpy() {
    for record in &rng_fixture().seeds {
        for case in &record.shuffle {
            let mut rng = NumpyRng::new(record.seed);
            let mut values: Vec<usize> = (0..case.m).collect();
            rng.shuffle(&mut values);
            assert_eq!(
                values, case.values,
                "seed {} shuffle({})",
                record.seed, case.m
            );
        }
    }
}

#[test]
fn mixed_calls_on_one_generator_match_numpy() {
    for record in &rng_fixture().seeds {
        let mut rng = NumpyRng::new(record.seed);
        for (step, (call, expected)) in record.mixed.iter().enumerate() {
            let actual = match call.as_str() {
                "integers_0_3" => serde_json::json!(rng.integers(0, 3)),
                "integers_0_1000" => serde_json::json!(rng.integers(0, 1000)),
                "random_bits" => serde_json::json!(rng.random().to_bits()),
                "raw" => serde_json::json!(rng.next_u64()),
                "shuffle_5" => {
                    let mut values: Vec<usize> = (0..5).collect();
                    rng.shuffle(&mut values);
                    serde_json::json!(values)
                }
                "choice_8_3" => serde_json::json!(rng.choice_indices(8, 3)),
                other => panic!("unknown mixed call {other}"),
            };
            assert_eq!(
                &actual, expected,
                "seed {} step {step} ({call})",
                record.seed
            );
        }
    }
}

#[test]
fn splits_match_notebook() {
    let fixture = split_fixture();
    assert!(!fixture.cases.is_empty());
    for case in &fixture.cases {
        let name = &case.name;
        let cfg = SplitConfig {
            labeled_ratio: case.config.labeled_ratio,
            held_out_ratio: case.config.held_out_ratio,
            split_seed: case.config.split_seed,
        };
        let split = make_split(case.n_classes, &case.train_labels, &case.val_labels, &cfg)
            .unwrap_or_else(|err| panic!("{name}: {err}"));

        assert_eq!(split.held_out_labels, case.held_out_labels, "{name}");
        assert_eq!(split.kept_labels, case.kept_labels, "{name}");
        assert_eq!(split.sizes(), case.sizes, "{name}");
        for (label, &index) in &case.kept_label_map {
            let label: u8 = label.parse().expect("label key");
            assert_eq!(split.kept_index(label), Some(index), "{name} kept {label}");
            assert_eq!(split.held_out_index(label), None, "{name} kept {label}");
        }
        for (label, &index) in &case.held_out_label_map {
            let label: u8 = label.parse().expect("label key");
            assert_eq!(
                split.held_out_index(label),
                Some(index),
                "{name} held {label}"
            );
            assert_eq!(split.kept_index(label), None, "{name} held {label}");
        }

        let actual_lists = [
            ("train_a", &split.train_a),
            ("train_b", &split.train_b),
            ("train_unlabeled", &split.train_unlabeled),
            ("dev_a", &split.dev_a),
            ("dev_b", &split.dev_b),
            ("dev_unlabeled", &split.dev_unlabeled),
        ];
        for (list_name, actual) in actual_lists {
            let expected = &case.lists[list_name];
            if case.lists_complete {
                assert_eq!(actual, expected, "{name} {list_name}");
            } else {
                let head = actual.len().min(fixture.head_len_when_incomplete);
                assert_eq!(&actual[..head], &expected[..], "{name} {list_name} head");
            }
            assert_eq!(
                order_checksum(actual),
                case.checksums[list_name],
                "{name} {list_name} checksum"
            );
        }
    }
}

#[test]
fn blood_default_held_out_labels() {
    let fixture = split_fixture();
    let case = fixture
        .cases
        .iter()
        .find(|case| case.name == "blood_default")
        .expect("blood_default case");
    let split = make_split(
        8,
        &case.train_labels,
        &case.val_labels,
        &SplitConfig::default(),
    )
    .expect("blood split");
    assert_eq!(split.held_out_labels, [7, 0, 5]);
    let sizes = split.sizes();
    println!("blood default sizes: {sizes:?}");
    assert_eq!(sizes, case.sizes);
}

#[test]
fn two_class_dataset_keeps_one_class() {
    let train = [0, 1, 1, 0, 1, 0, 1, 1, 0, 1];
    let val = [1, 0, 1, 0];
    let split = make_split(2, &train, &val, &SplitConfig::default()).expect("two-class split");
    assert_eq!(split.held_out_labels.len(), 1);
    assert_eq!(split.kept_labels.len(), 1);
}

#[test]
fn labeled_ratio_one_leaves_nothing_unlabeled() {
    let train = [0, 1, 2, 3, 0, 1, 2, 3];
    let val = [3, 2, 1, 0];
    let cfg = SplitConfig {
        labeled_ratio: 1.0,
        ..SplitConfig::default()
    };
    let split = make_split(4, &train, &val, &cfg).expect("split");
    assert!(split.train_unlabeled.is_empty());
    assert!(split.dev_unlabeled.is_empty());
    assert_eq!(split.train_a.len() + split.train_b.len(), train.len());
}

fn split_err(n_classes: usize, train: &[u8], val: &[u8], cfg: SplitConfig) -> SplitError {
    match make_split(n_classes, train, val, &cfg) {
        Ok(split) => panic!("expected an error, got {:?}", split.sizes()),
        Err(err) => err,
    }
}

#[test]
fn invalid_ratios_are_rejected() {
    let train = [0, 1, 2, 0, 1, 2];
    let val = [0, 1, 2];
    for bad in [f64::NAN, f64::INFINITY, -0.1, 0.0, 1.5] {
        let cfg = SplitConfig {
            labeled_ratio: bad,
            ..SplitConfig::default()
        };
        let err = split_err(3, &train, &val, cfg);
        assert!(
            matches!(
                err,
                SplitError::RatioOutOfRange {
                    name: "labeled ratio",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("labeled ratio"), "{err}");
    }
    for bad in [f64::NAN, f64::NEG_INFINITY, -1.0, 1.0001] {
        let cfg = SplitConfig {
            held_out_ratio: bad,
            ..SplitConfig::default()
        };
        let err = split_err(3, &train, &val, cfg);
        assert!(
            matches!(
                err,
                SplitError::RatioOutOfRange {
                    name: "held-out ratio",
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn held_out_ratio_extremes_are_explained() {
    let train = [0, 1, 2, 0, 1, 2];
    let val = [0, 1, 2];
    let zero = SplitConfig {
        held_out_ratio: 0.0,
        ..SplitConfig::default()
    };
    let err = split_err(3, &train, &val, zero);
    assert!(matches!(err, SplitError::NoHeldOutClass { .. }), "{err}");
    assert!(err.to_string().contains("holds out no class"), "{err}");

    let all = SplitConfig {
        held_out_ratio: 1.0,
        ..SplitConfig::default()
    };
    let err = split_err(3, &train, &val, all);
    assert!(matches!(err, SplitError::NoKeptClass { .. }), "{err}");
    assert!(err.to_string().contains("no kept class"), "{err}");

    // ceil(2 * 0.6) = 2: every class of a two-class set held out.
    let most = SplitConfig {
        held_out_ratio: 0.6,
        ..SplitConfig::default()
    };
    let err = split_err(2, &[0, 1], &[0, 1], most);
    assert!(matches!(err, SplitError::NoKeptClass { .. }), "{err}");
}

#[test]
fn class_count_and_labels_are_checked() {
    let cfg = SplitConfig::default();
    assert_eq!(
        split_err(1, &[0, 0], &[0], cfg),
        SplitError::TooFewClasses { n_classes: 1 }
    );
    assert_eq!(
        split_err(0, &[], &[], cfg),
        SplitError::TooFewClasses { n_classes: 0 }
    );
    assert_eq!(
        split_err(300, &[0, 1], &[0, 1], cfg),
        SplitError::TooManyClasses { n_classes: 300 }
    );
    let err = split_err(3, &[0, 1, 2, 3], &[0, 1, 2], cfg);
    assert_eq!(
        err,
        SplitError::LabelOutOfRange {
            split: "train",
            index: 3,
            label: 3,
            n_classes: 3
        }
    );
    assert!(
        err.to_string().contains("train label at index 3 is 3"),
        "{err}"
    );
    let err = split_err(3, &[0, 1, 2], &[0, 9], cfg);
    assert!(
        matches!(
            err,
            SplitError::LabelOutOfRange {
                split: "val",
                index: 1,
                label: 9,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn empty_inputs_and_subsets_are_rejected() {
    let cfg = SplitConfig::default();
    assert_eq!(
        split_err(3, &[], &[0, 1, 2], cfg),
        SplitError::EmptySplit { split: "train" }
    );
    assert_eq!(
        split_err(3, &[0, 1, 2], &[], cfg),
        SplitError::EmptySplit { split: "val" }
    );
    // Whichever class seed 42 holds out of 3: if the val split only contains
    // kept classes, dev_b is empty.
    let held = make_split(3, &[0, 1, 2], &[0, 1, 2], &cfg)
        .expect("split")
        .held_out_labels[0];
    let val_without_held: Vec<u8> = (0..3).filter(|&l| l != held).collect();
    let err = split_err(3, &[0, 1, 2], &val_without_held, cfg);
    assert_eq!(
        err,
        SplitError::EmptySubset {
            subset: "dev_b",
            split: "val"
        }
    );
}
