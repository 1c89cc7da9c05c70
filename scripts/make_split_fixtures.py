#!/usr/bin/env python3
"""Regenerate the numpy reference fixtures used by `tests/splits_fixture.rs`.

Writes two files under `tests/fixtures/`:

* `splits.json`: the notebook's label/sample split, run verbatim with numpy,
  for several datasets and configurations. Every case carries its own train
  and val label arrays, so the Rust test needs no data files.
* `numpy_rng.json`: raw values of `np.random.default_rng(seed)` streams
  (`random_raw`, `random`, `integers`, `choice`, `shuffle`), one fresh
  generator per (seed, test).

Usage (from the repository root):

    pip install numpy            # the only dependency
    python3 scripts/make_split_fixtures.py [--data-dir ../shared/medmnist]

The MedMNIST `.npz` files are read from `../shared/medmnist` relative to the
repository root unless `--data-dir` says otherwise.
"""

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

try:
    import numpy as np
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("numpy is required: pip install numpy")

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIR = REPO_ROOT / "tests" / "fixtures"
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "medmnist"

# Above this size the split fixture keeps full index lists only for the
# priority cases and stores a head plus checksum for the others.
MAX_SPLIT_FIXTURE_BYTES = 3_000_000
HEAD_LEN = 200
PRIORITY_CASES = {"blood_default", "breast_default"}
CHECKSUM_MODULUS = (1 << 61) - 1

NUM_CLASSES = {"bloodmnist": 8, "organamnist": 11, "breastmnist": 2}

SPLIT_CASES = [
    # (case name, dataset, pretend_labeled_ratio, held_out_ratio, seed)
    ("blood_default", "bloodmnist", 0.2, 0.3, 42),
    ("blood_seed7_lab005_held05", "bloodmnist", 0.05, 0.5, 7),
    ("blood_labeled_all", "bloodmnist", 1.0, 0.3, 42),
    ("organa_default", "organamnist", 0.2, 0.3, 42),
    ("breast_default", "breastmnist", 0.2, 0.3, 42),
]

RNG_SEEDS = [0, 1, 42, 12345, 2**40 + 7]
INTEGER_RANGES = [
    (0, 3),
    (0, 1000),
    (0, 2**31 + 5),
    (0, 2**32),  # inclusive range 0xFFFF_FFFF: plain 32-bit draw
    (0, 2**32 + 1),  # first range that needs 64-bit Lemire
    (0, 2**62 + 3),
    (-5, 5),
]
CHOICE_CASES = [
    (8, 3), (11, 4), (2, 1), (10, 10), (50000, 7), (20000, 15000),
    # Extra edge cases around numpy's Floyd / tail-shuffle cut-off
    # (pop_size > 10000 and size > pop_size // 50).
    (1, 1), (5, 0), (10000, 201), (20000, 400), (20000, 401), (10001, 201),
]
SHUFFLE_SIZES = [1, 2, 5, 100, 3000]


def load_labels(path):
    data = np.load(path)
    train = np.asarray(data["train_labels"]).reshape(-1)
    val = np.asarray(data["val_labels"]).reshape(-1)
    return [int(x) for x in train], [int(x) for x in val]


class _LabelsHolder:
    """Mimics `train_data.labels` of a MedMNIST dataset: an (N, 1) array."""

    def __init__(self, labels):
        self.labels = np.asarray(labels, dtype=np.uint8).reshape(-1, 1)


def notebook_split(n_classes, train_labels, val_labels,
                   pretend_labeled_ratio, held_out_ratio, seed):
    """The notebook's splitting cell, kept as close to verbatim as possible."""
    train_data = _LabelsHolder(train_labels)
    dev_data = _LabelsHolder(val_labels)
    label_dict = {int(int_label): str(int_label) for int_label in range(n_classes)}

    labels = sorted(label_dict.keys())
    rng = np.random.default_rng(seed=seed)
    n_held_out_labels = int(np.ceil(len(labels)*held_out_ratio))
    held_out_labels = rng.choice(labels, size=n_held_out_labels, replace=False)
    kept_labels = [l for l in labels if l not in held_out_labels]
    held_out_label_map = {l: i for i,l in enumerate(sorted(held_out_labels))}
    kept_label_map = {l: i for i,l in enumerate(sorted(kept_labels))}

    train_indices_by_label = defaultdict(list)
    for i,l in enumerate(train_data.labels):
        train_indices_by_label[l.item()].append(i)
    train_pretend_unlabeled_indices = defaultdict(list)
    train_pretend_labeled_indices = defaultdict(list)
    for label, indices in train_indices_by_label.items():
        n_labeled_examples = int(np.ceil(len(indices)*pretend_labeled_ratio))
        rng.shuffle(indices) # Shuffle is in-place
        train_pretend_labeled_indices[label].extend(indices[:n_labeled_examples])
        train_pretend_unlabeled_indices[label].extend(indices[n_labeled_examples:])

    dev_indices_by_label = defaultdict(list)
    for i,l in enumerate(dev_data.labels):
        dev_indices_by_label[l.item()].append(i)
    dev_pretend_unlabeled_indices = defaultdict(list)
    dev_pretend_labeled_indices = defaultdict(list)
    for label, indices in dev_indices_by_label.items():
        n_labeled_examples = int(np.ceil(len(indices)*pretend_labeled_ratio))
        rng.shuffle(indices) # Shuffle is in-place
        dev_pretend_labeled_indices[label].extend(indices[:n_labeled_examples])
        dev_pretend_unlabeled_indices[label].extend(indices[n_labeled_examples:])

    train_subsample_indices = [i for keep_label in kept_labels for i in train_pretend_labeled_indices[keep_label]]
    train_transfer_subsample_indices = [i for held_out_label in held_out_labels for i in train_pretend_labeled_indices[held_out_label]]
    train_all_unlabeled = [i for indices in train_pretend_unlabeled_indices.values() for i in indices]
    dev_subsample_indices = [i for keep_label in kept_labels for i in dev_pretend_labeled_indices[keep_label]]
    dev_transfer_subsample_indices = [i for held_out_label in held_out_labels for i in dev_pretend_labeled_indices[held_out_label]]
    dev_all_unlabeled = [i for indices in dev_pretend_unlabeled_indices.values() for i in indices]

    # The notebook remaps labels with these maps; record them for the test.
    return {
        "held_out_labels": [int(l) for l in held_out_labels],
        "kept_labels": [int(l) for l in kept_labels],
        "kept_label_map": {str(int(k)): v for k, v in kept_label_map.items()},
        "held_out_label_map": {str(int(k)): v for k, v in held_out_label_map.items()},
        "lists": {
            "train_a": [int(i) for i in train_subsample_indices],
            "train_b": [int(i) for i in train_transfer_subsample_indices],
            "train_unlabeled": [int(i) for i in train_all_unlabeled],
            "dev_a": [int(i) for i in dev_subsample_indices],
            "dev_b": [int(i) for i in dev_transfer_subsample_indices],
            "dev_unlabeled": [int(i) for i in dev_all_unlabeled],
        },
    }


def order_checksum(values):
    """Order-sensitive checksum: sum of (position + 1) * value mod 2^61 - 1."""
    total = 0
    for position, value in enumerate(values):
        total = (total + (position + 1) * value) % CHECKSUM_MODULUS
    return total


def build_split_cases(data_dir):
    cases = []
    label_cache = {}
    for name, dataset, labeled_ratio, held_out_ratio, seed in SPLIT_CASES:
        if dataset not in label_cache:
            label_cache[dataset] = load_labels(data_dir / f"{dataset}.npz")
        train_labels, val_labels = label_cache[dataset]
        result = notebook_split(NUM_CLASSES[dataset], train_labels, val_labels,
                                labeled_ratio, held_out_ratio, seed)
        lists = result.pop("lists")
        cases.append({
            "name": name,
            "dataset": dataset,
            "n_classes": NUM_CLASSES[dataset],
            "config": {
                "labeled_ratio": labeled_ratio,
                "held_out_ratio": held_out_ratio,
                "split_seed": seed,
            },
            **result,
            "sizes": {key: len(value) for key, value in lists.items()},
            "checksums": {key: order_checksum(value) for key, value in lists.items()},
            "lists": lists,
            "lists_complete": True,
            "train_labels": train_labels,
            "val_labels": val_labels,
        })
    return cases


def dump_readable(value, indent=0):
    """JSON where objects are indented but lists of scalars stay on one line."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f'{pad} {json.dumps(str(k))}: {dump_readable(v, indent + 1)}'
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = [pad + " " + dump_readable(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, separators=(",", ":"))


def dump_compact_cases(header, cases):
    """JSON with one case per line: small, yet diffable case by case."""
    head = json.dumps(header, indent=1)[:-2]  # drop the closing "\n}"
    body = ",\n".join(json.dumps(case, separators=(",", ":")) for case in cases)
    return head + ',\n "cases": [\n' + body + "\n ]\n}\n"


def write_split_fixture(data_dir):
    cases = build_split_cases(data_dir)
    header = {
        "description": "Notebook split (np.random.default_rng) reference values; "
                       "generated by scripts/make_split_fixtures.py",
        "numpy_version": np.__version__,
        "checksum": "sum over positions p (0-based) of (p + 1) * index, "
                    "modulo 2^61 - 1",
        "head_len_when_incomplete": HEAD_LEN,
    }
    text = dump_compact_cases(header, cases)
    if len(text.encode()) > MAX_SPLIT_FIXTURE_BYTES:
        for case in cases:
            if case["name"] not in PRIORITY_CASES:
                case["lists"] = {k: v[:HEAD_LEN] for k, v in case["lists"].items()}
                case["lists_complete"] = False
        text = dump_compact_cases(header, cases)
    path = FIXTURE_DIR / "splits.json"
    path.write_text(text)
    print(f"wrote {path} ({len(text.encode())} bytes)")
    for case in cases:
        print(f"  {case['name']}: held out {case['held_out_labels']}, "
              f"kept {case['kept_labels']}, sizes {case['sizes']}")


def rng_stream_record(seed):
    """Independent tests on one seed; each uses its own fresh generator."""
    fresh = lambda: np.random.default_rng(seed)  # noqa: E731

    g = fresh()
    raw = [int(v) for v in g.bit_generator.random_raw(8)]

    g = fresh()
    randoms = [float(g.random()) for _ in range(8)]
    random_bits = [int(np.float64(v).view(np.uint64)) for v in randoms]

    integers = []
    for low, high in INTEGER_RANGES:
        g = fresh()
        values = [int(g.integers(low, high)) for _ in range(20)]
        # One call with size=20 takes the same path element by element.
        assert values == [int(v) for v in fresh().integers(low, high, size=20)]
        integers.append({"low": low, "high": high, "values": values})

    choices = []
    for n, k in CHOICE_CASES:
        g = fresh()
        picked = g.choice(list(range(n)), size=k, replace=False)
        choices.append({"n": n, "k": k, "values": [int(v) for v in picked]})

    shuffles = []
    for m in SHUFFLE_SIZES:
        g = fresh()
        values = list(range(m))
        g.shuffle(values)
        shuffles.append({"m": m, "values": values})

    # One generator, mixed calls: checks that the buffered 32-bit half word
    # survives 64-bit draws exactly as numpy keeps it.
    g = fresh()
    mixed = []
    mixed.append(["integers_0_3", int(g.integers(0, 3))])
    mixed.append(["random_bits", int(np.float64(g.random()).view(np.uint64))])
    mixed.append(["integers_0_3", int(g.integers(0, 3))])
    mixed.append(["raw", int(g.bit_generator.random_raw())])
    mixed.append(["integers_0_1000", int(g.integers(0, 1000))])
    values = list(range(5))
    g.shuffle(values)
    mixed.append(["shuffle_5", values])
    mixed.append(["choice_8_3", [int(v) for v in g.choice(list(range(8)), size=3, replace=False)]])
    mixed.append(["integers_0_3", int(g.integers(0, 3))])
    mixed.append(["raw", int(g.bit_generator.random_raw())])

    return {
        "seed": seed,
        "random_raw": raw,
        "random": randoms,
        "random_bits": random_bits,
        "integers": integers,
        "choice": choices,
        "shuffle": shuffles,
        "mixed": mixed,
    }


def write_rng_fixture():
    fixture = {
        "description": "np.random.default_rng(seed) reference streams; "
                       "generated by scripts/make_split_fixtures.py",
        "numpy_version": np.__version__,
        "fresh_generator_per_test": True,
        "notes": "Every list (random_raw, random, each integers range, each choice, "
                 "each shuffle) comes from its own fresh default_rng(seed). "
                 "'mixed' is one generator used for the listed calls in order. "
                 "choice is Generator.choice(list(range(n)), size=k, replace=False); "
                 "shuffle is Generator.shuffle(list(range(m))).",
        "seeds": [rng_stream_record(seed) for seed in RNG_SEEDS],
    }
    path = FIXTURE_DIR / "numpy_rng.json"
    path.write_text(dump_readable(fixture) + "\n")
    print(f"wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="folder holding bloodmnist.npz, organamnist.npz, breastmnist.npz")
    args = parser.parse_args()
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    write_rng_fixture()
    write_split_fixture(args.data_dir)


if __name__ == "__main__":
    main()
