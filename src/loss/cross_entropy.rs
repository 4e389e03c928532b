//! [`CrossEntropy`]: softmax cross-entropy from logits, PyTorch's `nn.CrossEntropyLoss`.

use ndarray::{Array2, ArrayView2};

use super::validate;
use super::{Loss, Reduction, Targets};
use crate::layer::ensure_shape;
use crate::{Error, Float, Result};

/// Softmax cross-entropy from logits with one class index per row, `nn.CrossEntropyLoss`.
///
/// For a row of logits `x` with target class `t`:
/// `Lᵢ = log Σⱼ exp(xⱼ) − x_t`, computed as `log Σⱼ exp(xⱼ − m) − (x_t − m)` with `m = maxⱼ xⱼ`,
/// so that logits of ±1e4 give finite, exact values. [`Reduction::Mean`] divides by the number
/// of rows (the batch).
///
/// Gradient: `dL/dxᵢⱼ = softmax(xᵢ)ⱼ − [j = tᵢ]`, divided by the batch for the mean.
///
/// With label smoothing `ε` (PyTorch's `label_smoothing`, default 0) the target distribution is
/// `(1 − ε)·onehot + ε/C` over the `C` classes, and the gradient is `softmax − that`.
///
/// Targets: [`Targets::Classes`], one index `< C` per row.
///
/// ```
/// use gradflow::loss::{CrossEntropy, Loss, Targets};
/// use ndarray::array;
///
/// let logits = array![[1.0f64, 2.0, 3.0]];
/// let (loss, grad) = CrossEntropy::default().value_and_grad(logits.view(), Targets::Classes(&[2]))?;
/// // ln(e¹ + e² + e³) − 3
/// assert!((loss - 0.40760596444438).abs() < 1e-12);
/// assert!(grad[(0, 2)] < 0.0 && grad[(0, 0)] > 0.0);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CrossEntropy {
    /// Mean over the batch (default) or sum.
    pub reduction: Reduction,
    label_smoothing: f64,
}

impl CrossEntropy {
    /// Cross-entropy with the given reduction and no label smoothing.
    pub fn new(reduction: Reduction) -> Self {
        CrossEntropy { reduction, label_smoothing: 0.0 }
    }

    /// Sets PyTorch's `label_smoothing` `ε`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `label_smoothing` when `ε` is outside `[0, 1]`.
    pub fn with_label_smoothing(mut self, epsilon: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&epsilon) {
            return Err(Error::config(
                "CrossEntropy",
                "label_smoothing",
                format!("must be in [0, 1], got {epsilon}"),
            ));
        }
        self.label_smoothing = epsilon;
        Ok(self)
    }

    /// The label smoothing `ε` (0 unless set).
    pub fn label_smoothing(&self) -> f64 {
        self.label_smoothing
    }
}

impl<F: Float> Loss<F> for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }

    fn compute(
        &self,
        prediction: ArrayView2<'_, F>,
        target: Targets<'_, F>,
        grad: &mut Array2<F>,
    ) -> Result<F> {
        const NAME: &str = "CrossEntropy";
        validate::non_empty(NAME, &prediction, "classes")?;
        let classes = validate::class_targets(NAME, &prediction, target)?;
        validate::finite_prediction(NAME, &prediction)?;

        let (rows, n_classes) = prediction.dim();
        let factor = self.reduction.factor(rows);
        let scale = F::lit(factor);
        let smoothing = self.label_smoothing;
        let uniform_share = F::lit(smoothing / n_classes as f64);
        let target_share = F::lit(1.0 - smoothing);
        ensure_shape(grad, prediction.dim());
        let rule = SoftmaxRule { scale, smoothing, uniform_share, target_share };
        // A strided prediction (a rare path) is copied into standard layout first.
        let x = prediction.as_standard_layout();
        let x = x.as_slice().expect("standard layout");
        let g = grad.as_slice_mut().expect("buffers are standard layout");
        let sum = F::cross_entropy_rows(x, classes, &rule, g);
        validate::finite_loss(NAME, sum * factor)
    }
}

/// The scalars of a cross-entropy pass, in the prediction's type.
#[derive(Debug, Clone, Copy)]
pub struct SoftmaxRule<F> {
    /// The reduction's factor (1/batch for the mean).
    scale: F,
    /// The label smoothing ε.
    smoothing: f64,
    /// ε/C, the smoothed share of every class.
    uniform_share: F,
    /// 1 − ε, the share of the target class.
    target_share: F,
}

impl<F: Float> SoftmaxRule<F> {
    /// One row: writes dL/dx into `g` (`(softmax(x) − target distribution) · scale`) and
    /// returns the row's loss in `f64` (before the reduction's factor).
    #[inline(always)]
    fn row(&self, x: &[F], class: usize, g: &mut [F]) -> f64 {
        let max = x.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
        // g holds exp(x − m) until it is normalized below.
        let mut total = F::zero();
        for (g, &v) in g.iter_mut().zip(x) {
            *g = (v - max).exp();
            total += *g;
        }
        let log_total = total.ln();
        // −log softmax(x)_t = log Σ exp(x − m) − (x_t − m)
        let nll = log_total - (x[class] - max);
        let mut row_loss = self.target_share.as_f64() * nll.as_f64();
        if self.smoothing > 0.0 {
            let all: f64 = x.iter().map(|&v| (log_total - (v - max)).as_f64()).sum();
            row_loss += self.uniform_share.as_f64() * all;
        }
        g.iter_mut().for_each(|e| *e = (*e / total - self.uniform_share) * self.scale);
        g[class] -= self.target_share * self.scale;
        row_loss
    }
}

/// Cross-entropy of row-major logits `x` (`classes.len()` rows) against class indices: writes
/// dL/dx into `grad` and returns Σ of the rows' losses in `f64`, row by row. A kernel
/// ([`crate::kernels`]).
pub(crate) fn rows<F: Float>(x: &[F], classes: &[usize], rule: &SoftmaxRule<F>, grad: &mut [F]) -> f64 {
    let Some(n_classes) = x.len().checked_div(classes.len()).filter(|&n| n > 0) else { return 0.0 };
    let mut sum = 0.0f64;
    for ((x, g), &class) in x.chunks_exact(n_classes).zip(grad.chunks_exact_mut(n_classes)).zip(classes) {
        sum += rule.row(x, class, g);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::check_loss;
    use ndarray::array;

    #[test]
    fn single_row_matches_hand_computation() {
        let x: Array2<f64> = array![[1.0, 2.0, 3.0]];
        let (loss, grad) = CrossEntropy::default().value_and_grad(x.view(), Targets::Classes(&[2])).unwrap();
        // ln(e + e² + e³) − 3 = ln(30.192874850…) − 3
        assert!((loss - 0.40760596444438).abs() < 1e-12, "{loss}");
        // softmax = (e, e², e³) / 30.19287485 = (0.0900306, 0.2447285, 0.6652410); minus onehot(2).
        let expected = [0.09003057317038, 0.24472847105480, 0.66524095577482 - 1.0];
        for (g, e) in grad.iter().zip(expected) {
            assert!((g - e).abs() < 1e-12, "{grad}");
        }
    }

    #[test]
    fn mean_divides_by_the_batch_and_sum_does_not() {
        // Row 0 as above (0.4076060), row 1: ln(e^0.5 + e^-1 + e^0) − 0.5 = 0.6041306.
        let x: Array2<f64> = array![[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]];
        let t = [2, 0];
        let (mean, g_mean) = CrossEntropy::default().value_and_grad(x.view(), Targets::Classes(&t)).unwrap();
        let (sum, g_sum) =
            CrossEntropy::new(Reduction::Sum).value_and_grad(x.view(), Targets::Classes(&t)).unwrap();
        assert!((sum - (0.40760596444438 + 0.60413060533673)).abs() < 1e-12, "{sum}");
        assert!((mean - sum / 2.0).abs() < 1e-15);
        // Row 1's gradient: softmax(0.5, −1, 0) − onehot(0) = (0.5465494 − 1, 0.1219517, 0.3314990).
        assert!((g_sum[(1, 0)] - (0.54654938726618 - 1.0)).abs() < 1e-12);
        assert!((g_sum[(1, 1)] - 0.12195165230973).abs() < 1e-12);
        for (a, b) in g_mean.iter().zip(&g_sum) {
            assert!((a - b / 2.0).abs() < 1e-15);
        }
    }

    #[test]
    fn logits_of_ten_thousand_are_finite_and_exact() {
        fn check<F: Float>() {
            let x = array![[F::lit(1e4), F::lit(-1e4)], [F::lit(1e4), F::lit(-1e4)]];
            let loss = CrossEntropy::new(Reduction::Sum);
            let (right, g_right) = loss.value_and_grad(x.view(), Targets::Classes(&[0, 0])).unwrap();
            assert_eq!(right, F::zero());
            assert!(g_right.iter().all(|g| g.abs() == F::zero()), "{g_right}");
            let (wrong, g_wrong) = loss.value_and_grad(x.view(), Targets::Classes(&[1, 1])).unwrap();
            assert_eq!(wrong, F::lit(4e4)); // 2e4 per row: 1e4 − (−1e4)
            // softmax (1, 0) − onehot(1) = (1, −1)
            assert_eq!(g_wrong, array![[F::one(), -F::one()], [F::one(), -F::one()]]);
            let (mean, _) =
                CrossEntropy::default().value_and_grad(x.view(), Targets::Classes(&[0, 1])).unwrap();
            assert_eq!(mean, F::lit(1e4)); // (0 + 2e4) / 2
        }
        check::<f32>();
        check::<f64>();
    }

    #[test]
    fn label_smoothing_matches_hand_computation() {
        // ε = 0.3, C = 3: target distribution (0.1, 0.1, 0.8).
        // L = 0.7·(lse − 3) + 0.3·(lse − mean(x)) = lse − (0.7·3 + 0.3·2) = 3.40760596444 − 2.7
        let x: Array2<f64> = array![[1.0, 2.0, 3.0]];
        let ce = CrossEntropy::default().with_label_smoothing(0.3).unwrap();
        let (loss, grad) = ce.value_and_grad(x.view(), Targets::Classes(&[2])).unwrap();
        assert!((loss - 0.70760596444438).abs() < 1e-12, "{loss}");
        let expected = [0.09003057317038 - 0.1, 0.24472847105480 - 0.1, 0.66524095577482 - 0.8];
        for (g, e) in grad.iter().zip(expected) {
            assert!((g - e).abs() < 1e-12, "{grad}");
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = Array2::from_shape_fn((4, 5), |(i, j)| ((i * 5 + j) as f64 * 0.37).sin() * 2.0);
        let t = [0, 4, 2, 2];
        for reduction in [Reduction::Mean, Reduction::Sum] {
            for smoothing in [0.0, 0.2] {
                let loss = CrossEntropy::new(reduction).with_label_smoothing(smoothing).unwrap();
                let check = check_loss(&loss, &x, Targets::Classes(&t), 1e-5).unwrap();
                assert!(check.max_relative_error <= 1e-6, "{reduction:?} ε={smoothing}: {check:?}");
            }
        }
    }

    #[test]
    fn bad_targets_are_refused_with_the_loss_named() {
        let x = Array2::<f64>::zeros((2, 3));
        let mut g = Array2::zeros((0, 0));
        let ce = CrossEntropy::default();
        let cases: [(Targets<'_, f64>, &str); 3] = [
            (Targets::Classes(&[0]), "expected 2 class indices"),
            (Targets::Classes(&[0, 3]), "class index 3 at row 1 is out of range for 3 classes"),
            (Targets::Values(x.view()), "got target values of shape (2, 3)"),
        ];
        for (target, needle) in cases {
            let err = ce.compute(x.view(), target, &mut g).unwrap_err();
            assert!(matches!(&err, Error::InvalidTarget { component, .. } if component == "CrossEntropy"));
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn empty_batch_and_no_classes_are_errors() {
        let ce = CrossEntropy::default();
        let mut g = Array2::zeros((0, 0));
        let err = ce.compute(Array2::<f32>::zeros((0, 3)).view(), Targets::Classes(&[]), &mut g);
        assert!(matches!(err, Err(Error::ShapeMismatch { .. })), "{err:?}");
        let err = ce.compute(Array2::<f32>::zeros((1, 0)).view(), Targets::Classes(&[0]), &mut g);
        assert!(matches!(err, Err(Error::ShapeMismatch { .. })), "{err:?}");
    }

    #[test]
    fn nan_logit_is_reported_at_its_row_and_column() {
        let x = array![[0.0, 1.0], [2.0, f64::NAN]];
        let err =
            CrossEntropy::default().compute(x.view(), Targets::Classes(&[0, 1]), &mut Array2::zeros((0, 0)));
        match err {
            Err(Error::NonFinite { location, detail }) => {
                assert_eq!(location, "loss CrossEntropy");
                assert!(detail.contains("row 1, column 1") && detail.contains("NaN"), "{detail}");
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
    }

    #[test]
    fn label_smoothing_outside_unit_interval_is_refused() {
        for bad in [-0.1, 1.5, f64::NAN] {
            let err = CrossEntropy::default().with_label_smoothing(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { field: "label_smoothing", .. }), "{err}");
        }
    }
}
