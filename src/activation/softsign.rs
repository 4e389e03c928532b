//! Softsign.

use super::{Activation, ActivationFamily};
use crate::Float;

/// softsign(x) = x/(1 + |x|) (PyTorch's `nn.Softsign`), derivative 1/(1 + |x|)² ≤ 1.
///
/// Shaped like tanh but saturating polynomially rather than exponentially: at x = 3 its
/// derivative is 1/16 where tanh's is ≈ 0.01, so deep softsign stacks lose their gradient more
/// slowly (Glorot & Bengio 2010 observed this). Bounded by construction; finite everywhere.
///
/// # Gain
/// PyTorch's `calculate_gain` has no entry for softsign. We use √2: the gain that keeps
/// E[f(z)²] = 1 for z ~ N(0, 1) is 1/√E[softsign(z)²] ≈ 2.34, well above 1, so of the two
/// customary values √2 is the nearer (tanh, by the same measure ≈ 1.59, gets 5/3 in PyTorch).
///
/// ```
/// use gradflow::Activation;
/// use gradflow::activation::Softsign;
/// assert_eq!(Softsign.value(1.0f64), 0.5);
/// assert_eq!(Softsign.derivative(1.0f64, 0.5), 0.25);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Softsign;

impl<F: Float> Activation<F> for Softsign {
    fn name(&self) -> &'static str {
        "softsign"
    }
    fn value(&self, x: F) -> F {
        x / (F::one() + x.abs())
    }
    fn derivative(&self, x: F, _y: F) -> F {
        let d = F::one() + x.abs();
        F::one() / (d * d)
    }
    fn gain(&self) -> f64 {
        std::f64::consts::SQRT_2
    }
    fn max_derivative(&self) -> f64 {
        1.0
    }
    fn family(&self) -> ActivationFamily {
        ActivationFamily::Saturating
    }
    fn forward_slice(&self, x: &[F], y: &mut [F]) {
        F::softsign_forward(x, y)
    }
    fn backward_slice(&self, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
        F::softsign_backward(x, y, grad_y, grad_x)
    }
}

/// [`Softsign`]'s forward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn forward<F: Float>(x: &[F], y: &mut [F]) {
    super::map_values(&Softsign, x, y)
}

/// [`Softsign`]'s backward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn backward<F: Float>(x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
    super::map_derivatives(&Softsign, x, y, grad_y, grad_x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_derivatives_at_hand_computed_points() {
        assert_eq!(Softsign.value(0.0f64), 0.0);
        assert_eq!(Softsign.derivative(0.0f64, 0.0), 1.0);
        assert_eq!(Softsign.value(3.0f64), 0.75);
        assert_eq!(Softsign.value(-3.0f64), -0.75);
        assert_eq!(Softsign.derivative(-3.0f64, -0.75), 1.0 / 16.0);
    }
}
