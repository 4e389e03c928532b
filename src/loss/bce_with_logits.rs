//! [`BceWithLogits`]: binary cross-entropy on logits, PyTorch's `nn.BCEWithLogitsLoss`.

use ndarray::{Array2, ArrayView2};

use super::validate;
use super::{Loss, Reduction, Targets};
use crate::activation::stable_sigmoid as sigmoid;
use crate::layer::ensure_shape;
use crate::{Error, Float, Result};

/// Binary cross-entropy on logits (sigmoid folded in), `nn.BCEWithLogitsLoss`.
///
/// For a logit `x` and a target probability `t ∈ [0, 1]`:
/// `L = −[t·log σ(x) + (1 − t)·log(1 − σ(x))] = max(x, 0) − x·t + log1p(exp(−|x|))`,
/// the second form being finite and exact for logits of ±1e4. [`Reduction::Mean`] divides by the
/// number of elements.
///
/// Gradient: `dL/dx = σ(x) − t` (divided by the number of elements for the mean).
///
/// With a per-column `pos_weight` `p` (PyTorch's argument of that name) the positive term is
/// weighted: `L = −[p·t·log σ(x) + (1 − t)·log(1 − σ(x))]`, computed as
/// `(1 − t)·x + (1 + (p − 1)·t)·softplus(−x)`, with gradient `(1 − t) − (1 + (p − 1)·t)·σ(−x)`.
///
/// Targets: [`Targets::Values`] of the prediction's shape, each in `[0, 1]`.
///
/// ```
/// use gradflow::loss::{BceWithLogits, Loss, Targets};
/// use ndarray::array;
///
/// let x = array![[0.0]];
/// let t = array![[1.0]];
/// let (loss, grad) = BceWithLogits::default().value_and_grad(x.view(), Targets::Values(t.view()))?;
/// assert!((loss - std::f64::consts::LN_2).abs() < 1e-15);
/// assert_eq!(grad[(0, 0)], -0.5);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BceWithLogits {
    /// Mean over all elements (default) or sum.
    pub reduction: Reduction,
    pos_weight: Option<Vec<f64>>,
}

impl BceWithLogits {
    /// Binary cross-entropy with the given reduction and no `pos_weight`.
    pub fn new(reduction: Reduction) -> Self {
        BceWithLogits { reduction, pos_weight: None }
    }

    /// Sets PyTorch's `pos_weight`: one weight per column for the positive term.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `pos_weight` when it is empty or a weight is negative or
    /// not finite.
    pub fn with_pos_weight(mut self, pos_weight: Vec<f64>) -> Result<Self> {
        if pos_weight.is_empty() {
            return Err(Error::config(
                "BceWithLogits",
                "pos_weight",
                "must have one weight per column, got none",
            ));
        }
        if let Some((i, w)) = pos_weight.iter().enumerate().find(|(_, w)| !(w.is_finite() && **w >= 0.0)) {
            return Err(Error::config(
                "BceWithLogits",
                "pos_weight",
                format!("weights must be finite and non-negative, got {w} at column {i}"),
            ));
        }
        self.pos_weight = Some(pos_weight);
        Ok(self)
    }

    /// The per-column positive weights, if set.
    pub fn pos_weight(&self) -> Option<&[f64]> {
        self.pos_weight.as_deref()
    }
}

impl<F: Float> Loss<F> for BceWithLogits {
    fn name(&self) -> &'static str {
        "bce_with_logits"
    }

    fn compute(
        &self,
        prediction: ArrayView2<'_, F>,
        target: Targets<'_, F>,
        grad: &mut Array2<F>,
    ) -> Result<F> {
        const NAME: &str = "BceWithLogits";
        validate::non_empty(NAME, &prediction, "outputs")?;
        let target = validate::value_targets(NAME, &prediction, target)?;
        if let Some(pw) = &self.pos_weight
            && pw.len() != prediction.ncols()
        {
            return Err(Error::ShapeMismatch {
                layer: NAME.into(),
                what: "pos_weight",
                expected: format!("({}) (one weight per prediction column)", prediction.ncols()),
                actual: format!("({})", pw.len()),
            });
        }
        validate::finite_prediction(NAME, &prediction)?;
        // Strided arrays (a rare path) are copied into standard layout first.
        let (x, t) = (prediction.as_standard_layout(), target.as_standard_layout());
        let (x, t) = (x.as_slice().expect("standard layout"), t.as_slice().expect("standard layout"));
        if let Some(at) = F::first_outside_unit_interval(t) {
            let (r, c) = (at / prediction.ncols(), at % prediction.ncols());
            return Err(Error::InvalidTarget {
                component: NAME.into(),
                reason: format!("target at row {r}, column {c} is {}, outside [0, 1]", t[at]),
            });
        }

        let factor = self.reduction.factor(prediction.len());
        let scale = F::lit(factor);
        ensure_shape(grad, prediction.dim());
        let g = grad.as_slice_mut().expect("buffers are standard layout");
        let sum = F::bce_with_logits(x, t, prediction.ncols(), self.pos_weight.as_deref(), scale, g);
        validate::finite_loss(NAME, sum * factor)
    }
}

/// Binary cross-entropy with logits of row-major `x` (rows of `cols` entries) against targets
/// `t` in [0, 1], with an optional weight per column for the positive term: writes
/// `grad = dL/dx · scale` and returns Σ of the entries' losses in `f64`, entry by entry. A
/// kernel ([`crate::kernels`]).
pub(crate) fn entries<F: Float>(
    x: &[F],
    t: &[F],
    cols: usize,
    pos_weight: Option<&[f64]>,
    scale: F,
    grad: &mut [F],
) -> f64 {
    if cols == 0 {
        return 0.0;
    }
    let mut sum = 0.0f64;
    for ((g_row, x_row), t_row) in
        grad.chunks_exact_mut(cols).zip(x.chunks_exact(cols)).zip(t.chunks_exact(cols))
    {
        for (c, ((g, &x), &t)) in g_row.iter_mut().zip(x_row).zip(t_row).enumerate() {
            let log1p_exp = (-x.abs()).exp().ln_1p();
            let (loss, dx) = match pos_weight {
                None => (x.max(F::zero()) - x * t + log1p_exp, sigmoid(x) - t),
                Some(pw) => {
                    // PyTorch: log_weight = (pos_weight − 1)·t + 1
                    let log_weight = (F::lit(pw[c]) - F::one()) * t + F::one();
                    let softplus_neg = (-x).max(F::zero()) + log1p_exp;
                    (
                        (F::one() - t) * x + log_weight * softplus_neg,
                        (F::one() - t) - log_weight * sigmoid(-x),
                    )
                }
            };
            sum += loss.as_f64();
            *g = dx * scale;
        }
    }
    sum
}

/// The position of the first value outside [0, 1] (NaN included). A kernel
/// ([`crate::kernels`]).
pub(crate) fn first_outside_unit_interval<F: Float>(values: &[F]) -> Option<usize> {
    values.iter().position(|&t| !(t >= F::zero() && t <= F::one()))
}

#[cfg(test)]
mod tests {
    use approx::assert_abs_diff_eq;

    use super::*;
    use crate::loss::check_loss;
    use ndarray::array;

    const LN_2: f64 = std::f64::consts::LN_2;

    #[test]
    fn values_and_gradients_match_hand_computation() {
        // x = 0: ln 2 whatever the target, gradient ½ − t.
        // x = 2, t = 1: −ln σ(2) = ln(1 + e⁻²) = 0.126928011; gradient σ(2) − 1 = −0.119202922.
        // x = −1, t = ¼: ¼·ln(1 + e) + ¾·ln(1 + e⁻¹) = 0.563261688; gradient σ(−1) − ¼ = 0.018941421.
        let x: Array2<f64> = array![[0.0, 2.0], [-1.0, 0.0]];
        let t = array![[1.0, 1.0], [0.25, 0.0]];
        let sum_loss = BceWithLogits::new(Reduction::Sum);
        let (sum, g_sum) = sum_loss.value_and_grad(x.view(), Targets::Values(t.view())).unwrap();
        let expected_sum = LN_2 + 0.12692801104297 + 0.56326168751822 + LN_2;
        assert!((sum - expected_sum).abs() < 1e-12, "{sum}");
        let expected_grad = [-0.5, -0.11920292202212, 0.01894142136999, 0.5];
        for (g, e) in g_sum.iter().zip(expected_grad) {
            assert!((g - e).abs() < 1e-12, "{g_sum}");
        }
        let (mean, g_mean) =
            BceWithLogits::default().value_and_grad(x.view(), Targets::Values(t.view())).unwrap();
        assert!((mean - sum / 4.0).abs() < 1e-15); // mean over the 4 elements
        for (a, b) in g_mean.iter().zip(&g_sum) {
            assert!((a - b / 4.0).abs() < 1e-15);
        }
    }

    #[test]
    fn logits_of_ten_thousand_are_finite_and_exact() {
        fn check<F: Float>() {
            let x = array![[F::lit(1e4), F::lit(-1e4), F::lit(1e4), F::lit(-1e4)]];
            let t = array![[F::one(), F::zero(), F::zero(), F::one()]];
            let bce = BceWithLogits::new(Reduction::Sum);
            let (loss, grad) = bce.value_and_grad(x.view(), Targets::Values(t.view())).unwrap();
            // Right answers cost 0, wrong ones |x| = 1e4 each.
            assert_eq!(loss, F::lit(2e4));
            assert_eq!(grad, array![[F::zero(), F::zero(), F::one(), -F::one()]]);
        }
        check::<f32>();
        check::<f64>();
    }

    #[test]
    fn pos_weight_scales_the_positive_term() {
        // p = 3: L = −[3·t·ln σ(x) + (1 − t)·ln(1 − σ(x))].
        // x = 2, t = 1: 3·ln(1 + e⁻²) = 0.380784033; gradient (1 − t) − 3·σ(−2) = −0.357608766.
        // x = −1, t = ¼: ¾·ln(1 + e) + ¾·ln(1 + e⁻¹) = 1.219892531; gradient ¾ − 1.5·σ(1) = −0.346587868.
        // x = ½, t = 0: ln(1 + e^½) = 0.974076984; gradient σ(½) = 0.622459331.
        let x: Array2<f64> = array![[2.0], [-1.0], [0.5]];
        let t = array![[1.0], [0.25], [0.0]];
        let bce = BceWithLogits::new(Reduction::Sum).with_pos_weight(vec![3.0]).unwrap();
        let (loss, grad) = bce.value_and_grad(x.view(), Targets::Values(t.view())).unwrap();
        assert!((loss - (0.38078403312892 + 1.21989253127733 + 0.97407698418010)).abs() < 1e-12, "{loss}");
        for (g, e) in grad.iter().zip([-0.35760876606635, -0.34658786794501, 0.62245933120185]) {
            assert!((g - e).abs() < 1e-12, "{grad}");
        }
        // A weight of one is the unweighted loss.
        let unweighted = BceWithLogits::new(Reduction::Sum);
        let one = BceWithLogits::new(Reduction::Sum).with_pos_weight(vec![1.0]).unwrap();
        let (a, ga) = unweighted.value_and_grad(x.view(), Targets::Values(t.view())).unwrap();
        let (b, gb) = one.value_and_grad(x.view(), Targets::Values(t.view())).unwrap();
        assert_abs_diff_eq!(a, b, epsilon = 1e-12);
        assert_abs_diff_eq!(ga, gb, epsilon = 1e-15);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = Array2::from_shape_fn((3, 4), |(i, j)| ((i * 4 + j) as f64 * 0.61).cos() * 3.0);
        let t = Array2::from_shape_fn((3, 4), |(i, j)| ((i + 2 * j) % 5) as f64 / 4.0);
        for reduction in [Reduction::Mean, Reduction::Sum] {
            for loss in [
                BceWithLogits::new(reduction),
                BceWithLogits::new(reduction).with_pos_weight(vec![0.5, 1.0, 2.0, 4.0]).unwrap(),
            ] {
                let check = check_loss(&loss, &x, Targets::Values(t.view()), 1e-5).unwrap();
                assert!(check.max_relative_error <= 1e-6, "{loss:?}: {check:?}");
            }
        }
    }

    #[test]
    fn bad_targets_are_refused_with_the_loss_named() {
        let x = Array2::<f64>::zeros((2, 2));
        let mut g = Array2::zeros((0, 0));
        let bce = BceWithLogits::default();
        let err = bce.compute(x.view(), Targets::Classes(&[0, 1]), &mut g).unwrap_err();
        assert!(matches!(&err, Error::InvalidTarget { component, .. } if component == "BceWithLogits"));
        let t = array![[0.0, 1.0], [1.5, 0.0]];
        let err = bce.compute(x.view(), Targets::Values(t.view()), &mut g).unwrap_err();
        assert!(err.to_string().contains("row 1, column 0 is 1.5, outside [0, 1]"), "{err}");
        let t = Array2::<f64>::zeros((2, 3));
        let err = bce.compute(x.view(), Targets::Values(t.view()), &mut g).unwrap_err();
        assert!(matches!(err, Error::InvalidTarget { .. }), "{err}");
        let t = Array2::<f64>::zeros((2, 2));
        let wrong_width = BceWithLogits::default().with_pos_weight(vec![1.0; 3]).unwrap();
        let err = wrong_width.compute(x.view(), Targets::Values(t.view()), &mut g).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { what: "pos_weight", .. }), "{err}");
    }

    #[test]
    fn empty_and_non_finite_inputs_are_errors() {
        let bce = BceWithLogits::default();
        let mut g = Array2::zeros((0, 0));
        let empty = Array2::<f32>::zeros((0, 1));
        let err = bce.compute(empty.view(), Targets::Values(empty.view()), &mut g);
        assert!(matches!(err, Err(Error::ShapeMismatch { .. })), "{err:?}");
        let x = array![[0.0f32, f32::NEG_INFINITY]];
        let t = array![[0.0f32, 1.0]];
        match bce.compute(x.view(), Targets::Values(t.view()), &mut g) {
            Err(Error::NonFinite { location, detail }) => {
                assert_eq!(location, "loss BceWithLogits");
                assert!(detail.contains("row 0, column 1"), "{detail}");
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
    }

    #[test]
    fn invalid_pos_weight_is_refused() {
        for bad in [vec![], vec![1.0, -0.5], vec![f64::NAN]] {
            let err = BceWithLogits::default().with_pos_weight(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { field: "pos_weight", .. }), "{err}");
        }
    }
}
