//! Rectified linear unit.

use super::{Activation, ActivationFamily};
use crate::Float;

/// ReLU(x) = max(0, x), derivative 1 for x > 0 and 0 otherwise (PyTorch's convention at 0).
/// Passes the gradient unchanged through active units, so depth alone does not shrink it; a unit
/// whose input is negative for every sample is *dead* and passes nothing. Gain √2.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Relu;

impl<F: Float> Activation<F> for Relu {
    fn name(&self) -> &'static str {
        "relu"
    }
    fn value(&self, x: F) -> F {
        // Written so that NaN passes through (NaN <= 0 is false), as `torch.relu` does: a NaN
        // must not be turned into a harmless-looking 0.
        if x <= F::zero() { F::zero() } else { x }
    }
    fn derivative(&self, x: F, _y: F) -> F {
        if x > F::zero() { F::one() } else { F::zero() }
    }
    fn gain(&self) -> f64 {
        std::f64::consts::SQRT_2
    }
    fn max_derivative(&self) -> f64 {
        1.0
    }
    fn family(&self) -> ActivationFamily {
        ActivationFamily::Rectifier
    }
    fn forward_slice(&self, x: &[F], y: &mut [F]) {
        F::relu_forward(x, y)
    }
    fn backward_slice(&self, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
        F::relu_backward(x, y, grad_y, grad_x)
    }
}

/// [`Relu`]'s forward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn forward<F: Float>(x: &[F], y: &mut [F]) {
    super::map_values(&Relu, x, y)
}

/// [`Relu`]'s backward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn backward<F: Float>(x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
    super::map_derivatives(&Relu, x, y, grad_y, grad_x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_passes_through_instead_of_becoming_zero() {
        assert!(Activation::<f64>::value(&Relu, f64::NAN).is_nan());
        assert!(Activation::<f32>::value(&Relu, f32::NAN).is_nan());
    }

    #[test]
    fn values_and_derivatives_at_hand_computed_points() {
        assert_eq!(Relu.value(-2.0f64), 0.0);
        assert_eq!(Relu.value(2.5f64), 2.5);
        assert_eq!(Relu.derivative(2.5f64, 2.5), 1.0);
        assert_eq!(Relu.derivative(-2.0f64, 0.0), 0.0);
        // PyTorch's convention: the derivative at 0 is 0.
        assert_eq!(Relu.derivative(0.0f64, 0.0), 0.0);
    }
}
