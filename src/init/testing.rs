//! Helpers for the initializers' statistical tests.

use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Fan-in and fan-out that differ from each other and from the 512×512 shape drawn, so that a
/// formula using the wrong fan fails the test.
pub(crate) const FAN_IN: usize = 300;
pub(crate) const FAN_OUT: usize = 700;

/// A seeded `StdRng`.
pub(crate) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Sample mean and (population) standard deviation of all entries.
pub(crate) fn moments(a: &Array2<f64>) -> (f64, f64) {
    let n = a.len() as f64;
    let mean = a.sum() / n;
    let var = a.iter().map(|&v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The done-when criterion: the mean within 0.02·std of the expected mean, and the standard
/// deviation within 2% of the expected one. (On a 512×512 draw the standard error of the mean
/// is std/512 and that of the std about 0.15%, so a correct formula passes with a wide margin
/// while a wrong fan or gain — off by far more than 2% here — fails.)
pub(crate) fn assert_moments(a: &Array2<f64>, expected_mean: f64, expected_std: f64, what: &str) {
    let (mean, std) = moments(a);
    assert!(
        (mean - expected_mean).abs() < 0.02 * expected_std,
        "{what}: mean {mean} is not within 0.02·{expected_std} of {expected_mean}"
    );
    assert!((std / expected_std - 1.0).abs() < 0.02, "{what}: std {std} is not within 2% of {expected_std}");
}

#[test]
fn moments_of_a_hand_computed_matrix() {
    // Entries 1, 2, 3, 4, 5, 6: mean 3.5, population variance 35/12.
    let a = ndarray::array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
    let (mean, std) = moments(&a);
    assert_eq!(mean, 3.5);
    assert!((std - (35.0f64 / 12.0).sqrt()).abs() < 1e-15);
}
