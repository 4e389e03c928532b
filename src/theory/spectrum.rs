//! [`Spectrum`]: the singular values of a matrix (a Jacobian) and the numbers that summarize
//! them.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The singular values of a matrix, largest first, with their summaries.
///
/// For the input–output Jacobian `J` of a network, `mean_squared` = ‖J‖²_F / n is what
/// mean-field theory predicts as `χ₁^L` (the product of the layers' gradient factors), and a
/// network is *dynamically isometric* (Pennington, Schoenholz & Ganguli 2017) when every
/// singular value is near 1 — a small `log10_spread` — not only their mean square.
///
/// ```
/// use gradflow::theory::Spectrum;
/// use ndarray::array;
///
/// let s = Spectrum::of(array![[3.0, 0.0], [0.0, -0.5]].view())?;
/// assert_eq!(s.singular_values, [3.0, 0.5]);
/// assert_eq!((s.max, s.min, s.condition), (3.0, 0.5, 6.0));
/// assert!((s.mean_squared - (9.0 + 0.25) / 2.0).abs() < 1e-15);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spectrum {
    /// The `min(rows, cols)` singular values, in decreasing order.
    pub singular_values: Vec<f64>,
    /// The mean of the squared singular values, ‖J‖²_F / min(rows, cols).
    pub mean_squared: f64,
    /// The largest singular value (the operator norm).
    pub max: f64,
    /// The smallest singular value.
    pub min: f64,
    /// `max / min` (∞ when some singular value is unresolved).
    pub condition: f64,
    /// The standard deviation of `log₁₀ σ` over the singular values: 0 when all are equal; 1
    /// when they typically differ from their geometric mean by a factor of 10. ∞ when some
    /// singular value is unresolved (its logarithm means nothing).
    pub log10_spread: f64,
    /// How many singular values are below the rounding level `max · max(rows, cols) · ε` of an
    /// f64 SVD: zero to working precision (a ReLU network's dead units give exact zeros, a deep
    /// Gaussian network's smallest singular values fall below 10⁻¹⁶ of the largest).
    pub unresolved: usize,
}

/// How many sweeps of implicit QR steps the SVD may take per singular value before giving up.
const SVD_ITERATIONS_PER_VALUE: usize = 100;

impl Spectrum {
    /// Computes the singular values of `matrix` (nalgebra's Golub–Kahan SVD, without singular
    /// vectors) and summarizes them.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for an empty matrix, [`Error::NonFinite`] when it holds a NaN or
    /// an infinity, [`Error::InvalidConfig`] when the SVD does not converge.
    pub fn of(matrix: ArrayView2<'_, f64>) -> Result<Self> {
        let (rows, cols) = matrix.dim();
        if rows == 0 || cols == 0 {
            return Err(Error::shape("Spectrum", "matrix", "a non-empty matrix", &[rows, cols]));
        }
        if let Some(((i, j), v)) = matrix.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                location: "Spectrum".into(),
                detail: format!("entry ({i}, {j}) of the {rows}×{cols} matrix is {v}"),
            });
        }
        let m = nalgebra::DMatrix::from_fn(rows, cols, |i, j| matrix[[i, j]]);
        let svd = nalgebra::SVD::try_new_unordered(
            m,
            false,
            false,
            f64::EPSILON,
            SVD_ITERATIONS_PER_VALUE * rows.min(cols),
        )
        .ok_or_else(|| {
            Error::config(
                "Spectrum",
                "matrix",
                format!("the SVD of the {rows}×{cols} matrix did not converge"),
            )
        })?;
        let values: Vec<f64> = svd.singular_values.iter().copied().collect();
        let floor = values.iter().fold(0.0f64, |m, &v| m.max(v)) * rows.max(cols) as f64 * f64::EPSILON;
        let unresolved = values.iter().filter(|&&v| v <= floor).count();
        Ok(Self::summarize(values, unresolved))
    }

    /// The singular values of several spectra pooled into one (e.g. a network's Jacobians at
    /// several inputs), summarized together; the unresolved counts add up.
    ///
    /// ```
    /// use gradflow::theory::Spectrum;
    /// use ndarray::array;
    ///
    /// let a = Spectrum::of(array![[2.0, 0.0], [0.0, 1.0]].view())?;
    /// let b = Spectrum::of(array![[4.0]].view())?;
    /// let pooled = Spectrum::pooled(&[a, b]);
    /// assert_eq!(pooled.singular_values, [4.0, 2.0, 1.0]);
    /// assert_eq!(pooled.mean_squared, 7.0);
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    pub fn pooled(spectra: &[Spectrum]) -> Self {
        let values = spectra.iter().flat_map(|s| s.singular_values.iter().copied()).collect();
        Self::summarize(values, spectra.iter().map(|s| s.unresolved).sum())
    }

    /// The `p`-quantile of the singular values (`p` in [0, 1]; 0.5 is the median), by linear
    /// interpolation between the sorted values; NaN for an empty spectrum or a NaN `p`. A `p`
    /// outside [0, 1] is clamped to it (below 0 gives the smallest value, above 1 the largest).
    pub fn quantile(&self, p: f64) -> f64 {
        let n = self.singular_values.len();
        if n == 0 {
            return f64::NAN;
        }
        // Increasing order: index from the end of the decreasing list.
        let at = p.clamp(0.0, 1.0) * (n - 1) as f64;
        let (below, frac) = (at.floor() as usize, at.fract());
        let value = |i: usize| self.singular_values[n - 1 - i.min(n - 1)];
        value(below) + frac * (value(below + 1) - value(below))
    }

    /// Summarizes singular values (any order; sorted here).
    fn summarize(mut singular_values: Vec<f64>, unresolved: usize) -> Self {
        singular_values.sort_by(|a, b| b.total_cmp(a));
        let n = singular_values.len().max(1) as f64;
        let max = singular_values.first().copied().unwrap_or(0.0);
        let min = singular_values.last().copied().unwrap_or(0.0);
        let mean_squared = singular_values.iter().map(|s| s * s).sum::<f64>() / n;
        let resolved = unresolved == 0 && min > 0.0;
        let log10_spread = if resolved {
            let logs: Vec<f64> = singular_values.iter().map(|s| s.log10()).collect();
            let mean = logs.iter().sum::<f64>() / n;
            (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n).sqrt()
        } else {
            f64::INFINITY
        };
        Spectrum {
            singular_values,
            mean_squared,
            max,
            min,
            condition: if resolved { max / min } else { f64::INFINITY },
            log10_spread,
            unresolved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::SeedableRng;

    /// `Q₁·diag(s)·Q₂` with random orthogonal factors (gradflow's own orthogonal initializer).
    fn with_singular_values(s: &[f64], seed: u64) -> Array2<f64> {
        use crate::init::{Fans, Initializer, Orthogonal};
        let n = s.len();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let fans = Fans::new(n, n, 1.0);
        let q1 = Orthogonal::default().sample((n, n), fans, &mut rng).unwrap();
        let q2 = Orthogonal::default().sample((n, n), fans, &mut rng).unwrap();
        let scaled = Array2::from_shape_fn((n, n), |(i, j)| q1[[i, j]] * s[j]);
        scaled.dot(&q2)
    }

    #[test]
    fn known_singular_values_are_recovered() {
        // Eight decades: the large ones to a relative 1e-13, all to 1e-14 of the largest.
        let n = 60;
        let s: Vec<f64> = (0..n).map(|i| 10f64.powf(2.0 - 8.0 * i as f64 / (n - 1) as f64)).collect();
        let spectrum = Spectrum::of(with_singular_values(&s, 3).view()).unwrap();
        for (got, exact) in spectrum.singular_values.iter().zip(&s) {
            assert!((got - exact).abs() <= 1e-14 * s[0], "{got} vs {exact}");
            if *exact >= 1e-3 * s[0] {
                assert!(((got - exact) / exact).abs() <= 1e-12, "{got} vs {exact}");
            }
        }
        let mean_squared = s.iter().map(|v| v * v).sum::<f64>() / n as f64;
        assert!((spectrum.mean_squared / mean_squared - 1.0).abs() < 1e-12);
        assert!((spectrum.condition / 1e8 - 1.0).abs() < 1e-6, "{}", spectrum.condition);
        // log10 σ is uniform on [−6, 2] at 60 points: std = 8·√((n+1)/(12(n−1))).
        let spread = 8.0 * ((n as f64 + 1.0) / (12.0 * (n as f64 - 1.0))).sqrt();
        assert!((spectrum.log10_spread - spread).abs() < 1e-9, "{}", spectrum.log10_spread);
    }

    #[test]
    fn rectangular_and_singular_matrices() {
        let wide = ndarray::array![[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]];
        let s = Spectrum::of(wide.view()).unwrap();
        assert_eq!(s.singular_values, [2.0, 1.0]);
        let tall = wide.t().to_owned();
        assert_eq!(Spectrum::of(tall.view()).unwrap().singular_values, [2.0, 1.0]);
        let rank_one = ndarray::array![[1.0, 2.0], [2.0, 4.0]];
        let s = Spectrum::of(rank_one.view()).unwrap();
        assert!((s.max - 5.0).abs() < 1e-14 && s.min.abs() < 1e-15, "{s:?}");
        assert_eq!((s.unresolved, s.condition, s.log10_spread), (1, f64::INFINITY, f64::INFINITY));
        // Just above the rounding level, a small singular value is resolved.
        let s = Spectrum::of(ndarray::array![[1.0, 0.0], [0.0, 1e-12]].view()).unwrap();
        assert_eq!(s.unresolved, 0);
        assert!((s.condition / 1e12 - 1.0).abs() < 1e-9 && (s.log10_spread - 6.0).abs() < 1e-9, "{s:?}");
        assert_eq!((s.quantile(0.0), s.quantile(1.0)), (1e-12, 1.0));
        assert!((s.quantile(0.5) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn bad_matrices_are_clear_errors() {
        let err = Spectrum::of(Array2::<f64>::zeros((0, 3)).view()).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
        let err = Spectrum::of(ndarray::array![[1.0, f64::NAN]].view()).unwrap_err();
        assert!(err.to_string().contains("(0, 1)") && err.to_string().contains("NaN"), "{err}");
    }
}
