//! Logistic sigmoid.

use super::{Activation, ActivationFamily};
use crate::Float;
use crate::vectorize::vectorized;

/// σ(x) = 1/(1 + e⁻ˣ), derivative σ(x)(1 − σ(x)) ≤ 1/4 (at x = 0).
///
/// Even at its best the derivative is a quarter, so every sigmoid layer shrinks the gradient at
/// least fourfold: ten layers cost a factor of 10⁶. This is the textbook vanishing gradient.
/// Gain 1 (PyTorch's `calculate_gain("sigmoid")`).
///
/// Computed in the two-branch form that never takes the exponential of a positive number, so
/// that σ(±1000) is exactly 1 and 0 with no overflow; see [`stable_sigmoid`].
///
/// In `f32`, a layer's forward pass ([`Activation::forward_slice`]) uses a vectorized
/// exponential: within 3·10⁻⁷ relative error wherever σ(x) is a normal `f32` (x > −87.3; below,
/// it returns 0, off by less than 1.2·10⁻³⁸). [`Activation::value`] and every `f64`
/// computation use the exact form.
///
/// ```
/// use gradflow::Activation;
/// use gradflow::activation::Sigmoid;
/// assert_eq!(Sigmoid.value(0.0f64), 0.5);
/// assert_eq!(Sigmoid.value(-1000.0f32), 0.0);
/// assert_eq!(Sigmoid.value(1000.0f32), 1.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sigmoid;

/// σ(x), computed without overflow for any `x`.
///
/// With `e = exp(−|x|)` (always in (0, 1]): σ(x) = 1/(1 + e) for x ≥ 0 and e/(1 + e) for x < 0.
/// Both branches divide by a number in [1, 2], so the result is finite and accurate in its
/// tails too (σ(−50) ≈ 1.9e−22 keeps its relative precision instead of rounding to 0).
#[inline(always)]
pub fn stable_sigmoid<F: Float>(x: F) -> F {
    let e = (-x.abs()).exp();
    let r = F::one() / (F::one() + e);
    if x >= F::zero() { r } else { e * r }
}

impl<F: Float> Activation<F> for Sigmoid {
    fn name(&self) -> &'static str {
        "sigmoid"
    }
    fn value(&self, x: F) -> F {
        stable_sigmoid(x)
    }
    /// `y(1 − y)` from the output, as PyTorch's `sigmoid_backward` computes it.
    fn derivative(&self, _x: F, y: F) -> F {
        y * (F::one() - y)
    }
    /// [`Float::fast_sigmoid`], vectorized (with a polynomial `exp` in f32, exact in f64).
    fn forward_slice(&self, x: &[F], y: &mut [F]) {
        F::sigmoid_forward(x, y)
    }
    /// `grad_x = grad_y · y(1 − y)`, vectorized.
    fn backward_slice(&self, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
        F::sigmoid_backward(x, y, grad_y, grad_x)
    }
    fn gain(&self) -> f64 {
        1.0
    }
    fn max_derivative(&self) -> f64 {
        0.25
    }
    fn family(&self) -> ActivationFamily {
        ActivationFamily::Saturating
    }
}

/// [`Sigmoid`]'s forward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn forward<F: Float>(x: &[F], y: &mut [F]) {
    vectorized(
        #[inline(always)]
        || y.iter_mut().zip(x).for_each(|(y, &x)| *y = x.fast_sigmoid()),
    )
}

/// [`Sigmoid`]'s backward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn backward<F: Float>(_x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
    vectorized(
        #[inline(always)]
        || {
            for ((gx, &gy), &y) in grad_x.iter_mut().zip(grad_y).zip(y) {
                *gx = gy * (y * (F::one() - y));
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_derivatives_at_hand_computed_points() {
        let s = Sigmoid;
        assert_eq!(Activation::<f64>::value(&s, 0.0), 0.5);
        assert_eq!(Activation::<f64>::derivative(&s, 0.0, 0.5), 0.25);
        // σ(ln 3) = 1/(1 + 1/3) = 3/4, σ' = 3/16.
        let x = 3f64.ln();
        let y = s.value(x);
        assert!((y - 0.75).abs() < 1e-15);
        assert!((s.derivative(x, y) - 3.0 / 16.0).abs() < 1e-15);
        // σ(−x) = 1 − σ(x)
        assert!((s.value(-x) - 0.25).abs() < 1e-15);
    }

    #[test]
    fn tails_keep_relative_precision() {
        // σ(−50) = e⁻⁵⁰/(1 + e⁻⁵⁰) ≈ e⁻⁵⁰; the naive 1 − σ(50) would give 0.
        let y: f64 = stable_sigmoid(-50.0);
        assert!((y / (-50f64).exp() - 1.0).abs() < 1e-14, "{y:e}");
        let y32: f32 = stable_sigmoid(-50.0);
        assert!(y32 > 0.0 && (y32 / (-50f32).exp() - 1.0).abs() < 1e-6, "{y32:e}");
    }
}
