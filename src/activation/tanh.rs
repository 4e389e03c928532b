//! Hyperbolic tangent.

use super::{Activation, ActivationFamily};
use crate::Float;
use crate::vectorize::vectorized;

/// tanh(x) = (eˣ − e⁻ˣ)/(eˣ + e⁻ˣ), derivative 1 − tanh²(x) ≤ 1. Saturates for |x| ≳ 3, where
/// the derivative is below 0.01: the classic cause of vanishing gradients in deep tanh stacks.
/// Gain 5/3 (PyTorch's `calculate_gain("tanh")`).
///
/// In `f32`, a layer's forward pass ([`Activation::forward_slice`]) uses a vectorized rational
/// approximation within 5·10⁻⁷ relative error of the exact value (exactly ±1 beyond ±7.9,
/// NaN stays NaN), about ten times faster than `f32::tanh`; [`Activation::value`] and every
/// `f64` computation use the exact `tanh`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tanh;

impl<F: Float> Activation<F> for Tanh {
    fn name(&self) -> &'static str {
        "tanh"
    }
    fn value(&self, x: F) -> F {
        x.tanh()
    }
    fn derivative(&self, _x: F, y: F) -> F {
        F::one() - y * y
    }
    /// [`Float::fast_tanh`], vectorized (a rational approximation in f32, exact in f64).
    fn forward_slice(&self, x: &[F], y: &mut [F]) {
        F::tanh_forward(x, y)
    }
    /// `grad_x = grad_y · (1 − y²)`, vectorized.
    fn backward_slice(&self, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
        F::tanh_backward(x, y, grad_y, grad_x)
    }
    fn gain(&self) -> f64 {
        5.0 / 3.0
    }
    fn max_derivative(&self) -> f64 {
        1.0
    }
    fn family(&self) -> ActivationFamily {
        ActivationFamily::Saturating
    }
}

/// [`Tanh`]'s forward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn forward<F: Float>(x: &[F], y: &mut [F]) {
    vectorized(
        #[inline(always)]
        || y.iter_mut().zip(x).for_each(|(y, &x)| *y = x.fast_tanh()),
    )
}

/// [`Tanh`]'s backward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn backward<F: Float>(_x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
    vectorized(
        #[inline(always)]
        || {
            for ((gx, &gy), &y) in grad_x.iter_mut().zip(grad_y).zip(y) {
                *gx = gy * (F::one() - y * y);
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_derivatives_at_hand_computed_points() {
        assert_eq!(Tanh.value(0.0f64), 0.0);
        assert_eq!(Tanh.derivative(0.0f64, 0.0), 1.0);
        // tanh(ln 2) = (2 − ½)/(2 + ½) = 3/5, derivative 1 − 9/25 = 16/25.
        let x = 2f64.ln();
        let y = Tanh.value(x);
        assert!((y - 0.6).abs() < 1e-15);
        assert!((Tanh.derivative(x, y) - 0.64).abs() < 1e-15);
        assert_eq!(Tanh.value(-1000.0f32), -1.0);
    }
}
