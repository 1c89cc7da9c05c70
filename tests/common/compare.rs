//! Comparing two chapter outputs number by number.

use replab::lab::ChapterOutput;

/// Assert that two outputs of the same run agree within `tol`: losses, accuracies,
/// probes, step counts and UMAP points.
pub fn assert_same(what_run: &str, a: &ChapterOutput, b: &ChapterOutput, tol: f64) {
    let close = |what: &str, x: f64, y: f64| {
        assert!(
            (x - y).abs() <= tol || (x.is_nan() && y.is_nan()),
            "{what_run}: {what} {x} vs {y}"
        );
    };
    let (ra, rb) = (&a.result, &b.result);
    assert_eq!(ra.epochs_trained, rb.epochs_trained, "{what_run}: epochs");
    for (i, (x, y)) in ra.train_loss.iter().zip(&rb.train_loss).enumerate() {
        close(&format!("train loss {i}"), *x, *y);
    }
    for (i, (x, y)) in ra.dev_loss.iter().zip(&rb.dev_loss).enumerate() {
        close(&format!("dev loss {i}"), *x, *y);
    }
    close(
        "dev A",
        ra.dev_a_accuracy.unwrap_or(0.0),
        rb.dev_a_accuracy.unwrap_or(0.0),
    );
    let (pa, pb) = (&ra.probe, &rb.probe);
    for (what, x, y) in [
        ("probe before", pa.before, pb.before),
        ("probe after", pa.after, pb.after),
        ("fine-tune", pa.finetune_after, pb.finetune_after),
        ("untrained", pa.random_init_test_b, pb.random_init_test_b),
        (
            "converged dev B",
            Some(pa.converged_dev_b),
            Some(pb.converged_dev_b),
        ),
        (
            "converged test B",
            Some(pa.converged_test_b),
            Some(pb.converged_test_b),
        ),
    ] {
        close(what, x.unwrap_or(-1.0), y.unwrap_or(-1.0));
    }
    assert_eq!(
        a.history.step_loss.len(),
        b.history.step_loss.len(),
        "{what_run}: steps"
    );
    for (ua, ub) in a.umaps.iter().zip(&b.umaps) {
        for (p, q) in ua.points.iter().zip(&ub.points) {
            close("UMAP x", f64::from(p[0]), f64::from(q[0]));
            close("UMAP y", f64::from(p[1]), f64::from(q[1]));
        }
    }
}
