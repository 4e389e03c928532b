//! [`check_loss`]: finite-difference check of a loss's gradient.

use ndarray::Array2;

use super::{Loss, Targets};
use crate::Result;
use crate::gradcheck::TensorCheck;

/// Compares the gradient a loss writes with central differences
/// `(L(x + ε) − L(x − ε)) / 2ε`, entry by entry, in f64.
///
/// Returns the worst entry as a [`TensorCheck`] named `"prediction"`; the relative error is
/// `|a − n| / max(|a|, |n|, 1e-3)`, as in [`crate::gradcheck`].
///
/// ```
/// use gradflow::loss::{check_loss, CrossEntropy, Targets};
/// use ndarray::array;
///
/// let logits = array![[0.3, -1.2, 2.0], [1.0, 0.5, -0.5]];
/// let check = check_loss(&CrossEntropy::default(), &logits, Targets::Classes(&[2, 0]), 1e-5)?;
/// assert!(check.max_relative_error < 1e-6);
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// Whatever the loss returns for `prediction` (or for a nudged copy of it).
pub fn check_loss(
    loss: &dyn Loss<f64>,
    prediction: &Array2<f64>,
    target: Targets<'_, f64>,
    epsilon: f64,
) -> Result<TensorCheck> {
    const FLOOR: f64 = 1e-3;
    let (_, analytic) = loss.value_and_grad(prediction.view(), target)?;
    let mut check = TensorCheck {
        name: "prediction".into(),
        len: prediction.len(),
        max_relative_error: 0.0,
        max_absolute_error: 0.0,
        worst_index: 0,
        worst_pair: (0.0, 0.0),
    };
    let mut x = prediction.clone();
    let mut scratch = Array2::zeros(prediction.dim());
    for (index, ((r, c), &a)) in analytic.indexed_iter().enumerate() {
        let original = x[(r, c)];
        x[(r, c)] = original + epsilon;
        let plus = loss.compute(x.view(), target, &mut scratch)?;
        x[(r, c)] = original - epsilon;
        let minus = loss.compute(x.view(), target, &mut scratch)?;
        x[(r, c)] = original;
        let numeric = (plus - minus) / (2.0 * epsilon);
        let abs = (a - numeric).abs();
        let rel = abs / a.abs().max(numeric.abs()).max(FLOOR);
        check.max_absolute_error = check.max_absolute_error.max(abs);
        if rel > check.max_relative_error || rel.is_nan() {
            check.max_relative_error = rel;
            check.worst_index = index;
            check.worst_pair = (a, numeric);
        }
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Float;
    use crate::loss::Mse;
    use ndarray::ArrayView2;

    /// MSE's value with a gradient that is wrong by a factor of two.
    #[derive(Debug)]
    struct HalfGradient;

    impl Loss<f64> for HalfGradient {
        fn name(&self) -> &'static str {
            "half_gradient"
        }
        fn compute(
            &self,
            prediction: ArrayView2<'_, f64>,
            target: Targets<'_, f64>,
            grad: &mut Array2<f64>,
        ) -> Result<f64> {
            let value = Mse::default().compute(prediction, target, grad)?;
            grad.mapv_inplace(|g| g * f64::lit(0.5));
            Ok(value)
        }
    }

    #[test]
    fn a_wrong_gradient_is_detected() {
        let x = ndarray::array![[1.0, -2.0, 0.5]];
        let t = ndarray::array![[0.0, 0.0, 0.0]];
        let check = check_loss(&HalfGradient, &x, Targets::Values(t.view()), 1e-5).unwrap();
        // Analytic 2·x/3 · ½ against numeric 2·x/3: relative error ½ at every entry.
        assert!((check.max_relative_error - 0.5).abs() < 1e-6, "{check:?}");
        let good = check_loss(&Mse::default(), &x, Targets::Values(t.view()), 1e-5).unwrap();
        assert!(good.max_relative_error < 1e-8, "{good:?}");
        assert_eq!(good.len, 3);
    }
}
