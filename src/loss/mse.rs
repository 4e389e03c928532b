//! [`Mse`]: mean squared error, PyTorch's `nn.MSELoss`.

use ndarray::{Array2, ArrayView2, Zip};

use super::validate;
use super::{Loss, Reduction, Targets};
use crate::layer::ensure_shape;
use crate::{Float, Result};

/// Mean squared error, `nn.MSELoss`: `L = Σᵢⱼ (xᵢⱼ − tᵢⱼ)²`, divided by the number of *elements*
/// (not rows) for [`Reduction::Mean`].
///
/// Gradient: `dL/dxᵢⱼ = 2 (xᵢⱼ − tᵢⱼ)`, divided by the number of elements for the mean.
///
/// Targets: [`Targets::Values`] of the prediction's shape.
///
/// ```
/// use gradflow::loss::{Loss, Mse, Targets};
/// use ndarray::array;
///
/// let x = array![[1.0, 2.0], [3.0, 5.0]];
/// let t = array![[1.0, 1.0], [3.0, 3.0]];
/// let (loss, grad) = Mse::default().value_and_grad(x.view(), Targets::Values(t.view()))?;
/// assert_eq!(loss, (0.0 + 1.0 + 0.0 + 4.0) / 4.0);
/// assert_eq!(grad, array![[0.0, 0.5], [0.0, 1.0]]);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Mse {
    /// Mean over all elements (default) or sum.
    pub reduction: Reduction,
}

impl Mse {
    /// Mean squared error with the given reduction.
    pub fn new(reduction: Reduction) -> Self {
        Mse { reduction }
    }
}

impl<F: Float> Loss<F> for Mse {
    fn name(&self) -> &'static str {
        "mse"
    }

    fn compute(
        &self,
        prediction: ArrayView2<'_, F>,
        target: Targets<'_, F>,
        grad: &mut Array2<F>,
    ) -> Result<F> {
        const NAME: &str = "Mse";
        validate::non_empty(NAME, &prediction, "features")?;
        let target = validate::value_targets(NAME, &prediction, target)?;
        validate::finite_prediction(NAME, &prediction)?;

        let factor = self.reduction.factor(prediction.len());
        let grad_scale = F::lit(2.0 * factor);
        ensure_shape(grad, prediction.dim());
        let sum = match (prediction.as_slice(), target.as_slice()) {
            (Some(x), Some(t)) => {
                F::mse(x, t, grad_scale, grad.as_slice_mut().expect("buffers are standard layout"))
            }
            // Strided arrays (a rare path).
            _ => {
                let mut sum = 0.0f64;
                Zip::from(grad.view_mut()).and(&prediction).and(&target).for_each(|g, &x, &t| {
                    let diff = x - t;
                    sum += diff.as_f64() * diff.as_f64();
                    *g = grad_scale * diff;
                });
                sum
            }
        };
        validate::finite_loss(NAME, sum * factor)
    }
}

/// Σ (x − t)² in `f64`, entry by entry, with `grad = grad_scale · (x − t)`. A kernel
/// ([`crate::kernels`]).
pub(crate) fn squared_error<F: Float>(x: &[F], t: &[F], grad_scale: F, grad: &mut [F]) -> f64 {
    let mut sum = 0.0f64;
    for ((g, &x), &t) in grad.iter_mut().zip(x).zip(t) {
        let diff = x - t;
        sum += diff.as_f64() * diff.as_f64();
        *g = grad_scale * diff;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::loss::check_loss;
    use ndarray::array;

    #[test]
    fn mean_and_sum_match_hand_computation() {
        // Differences 0.5, −1, 2, 0 → squares 0.25, 1, 4, 0 → sum 5.25, mean 5.25 / 4.
        let x: Array2<f64> = array![[1.5, 0.0], [4.0, -2.0]];
        let t = array![[1.0, 1.0], [2.0, -2.0]];
        let (mean, g_mean) = Mse::default().value_and_grad(x.view(), Targets::Values(t.view())).unwrap();
        assert!((mean - 1.3125).abs() < 1e-15);
        assert_eq!(g_mean, array![[0.25, -0.5], [1.0, 0.0]]); // 2·diff / 4
        let (sum, g_sum) =
            Mse::new(Reduction::Sum).value_and_grad(x.view(), Targets::Values(t.view())).unwrap();
        assert!((sum - 5.25).abs() < 1e-15);
        assert_eq!(g_sum, array![[1.0, -2.0], [4.0, 0.0]]); // 2·diff
        // The sum is the mean times the number of elements (not rows).
        assert!((sum - 4.0 * mean).abs() < 1e-14);
    }

    #[test]
    fn works_in_f32() {
        let x = array![[3.0f32, -1.0]];
        let t = array![[1.0f32, 1.0]];
        let (loss, grad) = Mse::default().value_and_grad(x.view(), Targets::Values(t.view())).unwrap();
        assert_eq!(loss, 4.0); // (4 + 4) / 2
        assert_eq!(grad, array![[2.0f32, -2.0]]);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = Array2::from_shape_fn((3, 4), |(i, j)| (i as f64 * 0.7 - j as f64 * 0.4).sin());
        let t = Array2::from_shape_fn((3, 4), |(i, j)| (i + j) as f64 * 0.1);
        for reduction in [Reduction::Mean, Reduction::Sum] {
            let check = check_loss(&Mse::new(reduction), &x, Targets::Values(t.view()), 1e-5).unwrap();
            assert!(check.max_relative_error <= 1e-6, "{reduction:?}: {check:?}");
        }
    }

    #[test]
    fn wrong_targets_are_refused_with_the_loss_named() {
        let x = Array2::<f64>::zeros((2, 3));
        let mut g = Array2::zeros((0, 0));
        let err = Mse::default().compute(x.view(), Targets::Classes(&[0, 1]), &mut g).unwrap_err();
        assert!(matches!(&err, Error::InvalidTarget { component, .. } if component == "Mse"), "{err}");
        let t = Array2::<f64>::zeros((3, 2));
        let err = Mse::default().compute(x.view(), Targets::Values(t.view()), &mut g).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("Mse") && msg.contains("(3, 2)") && msg.contains("(2, 3)"), "{msg}");
        let t = array![[0.0, 0.0, 0.0], [0.0, f64::NAN, 0.0]];
        let err = Mse::default().compute(x.view(), Targets::Values(t.view()), &mut g).unwrap_err();
        assert!(matches!(err, Error::InvalidTarget { .. }) && err.to_string().contains("row 1, column 1"));
    }

    #[test]
    fn empty_batch_is_an_error() {
        let x = Array2::<f64>::zeros((0, 3));
        let t = Array2::<f64>::zeros((0, 3));
        let err = Mse::default().compute(x.view(), Targets::Values(t.view()), &mut Array2::zeros((0, 0)));
        assert!(matches!(err, Err(Error::ShapeMismatch { .. })), "{err:?}");
    }

    #[test]
    fn non_finite_prediction_names_the_first_entry() {
        let x = array![[0.0, 1.0], [f64::INFINITY, f64::NAN]];
        let t = Array2::zeros((2, 2));
        let err = Mse::default().compute(x.view(), Targets::Values(t.view()), &mut Array2::zeros((0, 0)));
        match err {
            Err(Error::NonFinite { location, detail }) => {
                assert_eq!(location, "loss Mse");
                assert!(detail.contains("row 1, column 0") && detail.contains("inf"), "{detail}");
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
    }

    #[test]
    fn overflowing_loss_is_an_error() {
        // Finite in f32, but the squared difference (≈ 9e76) does not fit: the f32 loss is +∞.
        let x = array![[3e38f32]];
        let t = array![[-3e38f32]];
        let err = Mse::default().compute(x.view(), Targets::Values(t.view()), &mut Array2::zeros((0, 0)));
        assert!(matches!(err, Err(Error::NonFinite { .. })), "{err:?}");
    }
}
