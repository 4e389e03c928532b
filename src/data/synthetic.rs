//! Small synthetic data sets for examples and tests.

use ndarray::{Array1, Array2};
use ndarray_rand::RandomExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;

use super::{Dataset, TargetData};
use crate::{Error, Float, Result};

/// Interleaved spiral arms in the plane, one class per arm: a classic task that a linear model
/// cannot solve and a small MLP can. Inputs are 2-D points with radius in `[0, 1]`.
///
/// Follows the CS231n notes ("Putting it together: minimal neural network case study",
/// <https://cs231n.github.io/neural-networks-case-study/>): for arm `j`, point `i` of `n` has
/// radius `r = i/(n−1)` and angle `t = 4j + 4·i/(n−1) + noise·N(0, 1)`, and lies at
/// `(r sin t, r cos t)`. The notes use 3 classes, 100 points per class and noise 0.2.
///
/// ```
/// let data = gradflow::data::spirals::<f64>(3, 100, 0.2, 0)?;
/// assert_eq!(data.inputs.dim(), (300, 2));
/// assert_eq!(data.class_counts(), Some(vec![100, 100, 100]));
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] naming `classes` or `points_per_class` when zero, or `noise` when
/// negative or not finite.
pub fn spirals<F: Float>(
    classes: usize,
    points_per_class: usize,
    noise: f64,
    seed: u64,
) -> Result<Dataset<F>> {
    const COMPONENT: &str = "spirals";
    if classes == 0 {
        return Err(Error::config(COMPONENT, "classes", "must be at least 1, got 0"));
    }
    if points_per_class == 0 {
        return Err(Error::config(COMPONENT, "points_per_class", "must be at least 1, got 0"));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(Error::config(COMPONENT, "noise", format!("must be finite and at least 0, got {noise}")));
    }
    if classes > crate::limits::MAX_CLASSES {
        return Err(Error::config(
            COMPONENT,
            "classes",
            format!(
                "{classes} is over the limit of {} (gradflow::limits::MAX_CLASSES)",
                crate::limits::MAX_CLASSES
            ),
        ));
    }
    crate::alloc::check_len(COMPONENT, "points_per_class", &[classes, points_per_class, 2])?;
    // The largest buffers, reserved fallibly before drawing (z, points, labels, inputs).
    let n = classes * points_per_class;
    drop(crate::alloc::try_vec::<u8>(COMPONENT, "points_per_class", n.saturating_mul(40))?);
    let (points, labels) = draw(classes, points_per_class, noise, seed);
    let inputs = crate::init::try_from_f64(&points, COMPONENT, "points_per_class")?;
    Dataset::new(inputs, TargetData::Classes(labels))
}

/// The points in `f64` and their classes, as [`spirals`] lays them out. Not generic, so compiled
/// inside gradflow (see [`crate::kernels`]).
#[inline(never)]
fn draw(classes: usize, n: usize, noise: f64, seed: u64) -> (Array2<f64>, Vec<usize>) {
    // One standard normal draw per point, in the order the points are laid out.
    let z: Array1<f64> = Array1::random_using(classes * n, StandardNormal, &mut StdRng::seed_from_u64(seed));
    let mut points = Array2::zeros((classes * n, 2));
    let mut labels = Vec::with_capacity(classes * n);
    for class in 0..classes {
        for i in 0..n {
            // linspace(0, 1, n) as numpy: a single point sits at the start.
            let s = if n == 1 { 0.0 } else { i as f64 / (n - 1) as f64 };
            let row = class * n + i;
            let t = 4.0 * class as f64 + 4.0 * s + noise * z[row];
            points[[row, 0]] = s * t.sin();
            points[[row, 1]] = s * t.cos();
            labels.push(class);
        }
    }
    (points, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noiseless_points_lie_on_the_formula() {
        let data = spirals::<f64>(2, 3, 0.0, 0).unwrap();
        // Arm 1, point 2 of 3: r = 1, t = 4 + 4 = 8.
        assert!((data.inputs[[5, 0]] - 8f64.sin()).abs() < 1e-15);
        assert!((data.inputs[[5, 1]] - 8f64.cos()).abs() < 1e-15);
        // Arm 0, point 1 of 3: r = 0.5, t = 2.
        assert!((data.inputs[[1, 0]] - 0.5 * 2f64.sin()).abs() < 1e-15);
        assert_eq!(data.targets.classes(), Some(&[0, 0, 0, 1, 1, 1][..]));
    }

    #[test]
    fn same_seed_same_points_and_bad_config_named() {
        assert_eq!(spirals::<f32>(3, 10, 0.2, 5).unwrap(), spirals::<f32>(3, 10, 0.2, 5).unwrap());
        assert_ne!(spirals::<f32>(3, 10, 0.2, 5).unwrap(), spirals::<f32>(3, 10, 0.2, 6).unwrap());
        assert!(spirals::<f32>(0, 10, 0.2, 0).unwrap_err().to_string().contains("classes"));
        assert!(spirals::<f32>(2, 0, 0.2, 0).unwrap_err().to_string().contains("points_per_class"));
        assert!(spirals::<f32>(2, 5, -1.0, 0).unwrap_err().to_string().contains("noise"));
    }
}
