//! Fifty runs in one process, as an afternoon in one tab would make them: chapters
//! mixed, some cancelled half-way, some continued and some reset. The resident
//! memory after each run must stay flat once warm: at most 10% growth from run 10
//! to run 50. The per-run figures are printed (and written to
//! `many-runs-memory.txt` in the temp directory) for the notes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use replab::lab::{self, LabEvent, LabParams};
use replab::platform::{self, BackendPref};
use replab::train::{Control, RunControl, TrainEvent};

mod common;

const RUNS: usize = 50;

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<f64>()
        .unwrap()
        / 1024.0
}

#[test]
fn fifty_runs_in_one_process_do_not_grow_memory() {
    let data = common::blood();
    let compute = platform::block_on(platform::select_compute(BackendPref::Cpu)).unwrap();
    let slugs = [
        "supervised",
        "linear-ae",
        "conv-ae",
        "supcon",
        "autoencoder",
        "simclr",
    ];
    let mut chapters: Vec<_> = slugs
        .iter()
        .map(|s| lab::make_chapter(s).unwrap())
        .collect();
    let mut memory = Vec::new();
    let (mut finished, mut cancelled) = (0, 0);
    for run in 0..RUNS {
        let k = run % slugs.len();
        let mut params = LabParams::for_chapter(slugs[k]);
        params.epochs = 1;
        params.limit = Some(256);
        params.backend = BackendPref::Cpu;
        params.seed = run as u64;
        // Every fourth run is cancelled after its first step; every fifth starts over.
        let cancel_at = (run % 4 == 3).then_some(1);
        if run % 5 == 4 {
            chapters[k].reset();
        }
        let control = RunControl::default();
        let stop = control.clone();
        let mut observer = |e: LabEvent| {
            if let LabEvent::Train {
                event: TrainEvent::Step { step, .. },
                ..
            } = e
                && Some(*step) == cancel_at
            {
                stop.set(Control::Cancel);
            }
        };
        let out = platform::block_on(lab::run(
            chapters[k].as_mut(),
            data.clone(),
            &params,
            &compute,
            &control,
            &mut observer,
        ));
        match (out, cancel_at) {
            (Ok(_), None) => finished += 1,
            (Err(e), Some(_)) if control.get() == Control::Cancel => {
                assert!(e.to_string().contains("cancelled"), "run {run}: {e}");
                cancelled += 1;
            }
            (out, _) => panic!("run {run} ({}): unexpected {:?}", slugs[k], out.err()),
        }
        memory.push(rss_mb());
    }
    let lines: Vec<String> = memory
        .iter()
        .enumerate()
        .map(|(i, m)| format!("run {:2} {:10} {m:7.1} MB", i + 1, slugs[i % slugs.len()]))
        .collect();
    let text = lines.join("\n");
    println!("{text}");
    std::fs::write(std::env::temp_dir().join("many-runs-memory.txt"), &text).unwrap();
    assert!(
        finished > 30 && cancelled > 5,
        "{finished} finished, {cancelled} cancelled"
    );
    let (at10, at50) = (memory[9], memory[RUNS - 1]);
    assert!(
        at50 <= at10 * 1.10,
        "resident memory grew from {at10:.1} MB after run 10 to {at50:.1} MB after run 50"
    );
}
