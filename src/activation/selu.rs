//! Scaled exponential linear unit.

use super::{Activation, ActivationFamily};
use crate::Float;

/// SELU(x) = λ·x for x > 0 and λα(eˣ − 1) otherwise, with the fixed constants of Klambauer et
/// al. 2017, "Self-Normalizing Neural Networks" (PyTorch's `nn.SELU`): α ≈ 1.6733, λ ≈ 1.0507.
/// With LeCun-normal weights, they make zero mean and unit variance a stable fixed point of the
/// layer map, so activations (and with them gradients) neither vanish nor explode with depth.
///
/// The derivative is λ for x > 0 and λαeˣ otherwise, so its largest value, λα ≈ 1.7581, is
/// reached just left of 0. `eˣ − 1` is computed with `exp_m1`, only for x ≤ 0.
///
/// Gain 3/4 (PyTorch's `calculate_gain("selu")`, chosen there to pair with Kaiming/LeCun
/// initialization).
///
/// ```
/// use gradflow::Activation;
/// use gradflow::activation::Selu;
/// assert_eq!(Selu.value(1.0f64), Selu::SCALE);
/// assert!((Selu.value(-1000.0f64) + Selu::SCALE * Selu::ALPHA).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Selu;

impl Selu {
    // The digits as printed in PyTorch's source; f64 rounds them to 17 significant digits.
    /// α, from PyTorch's `aten/src/ATen/native/Activation.cpp` (`SELU_ALPHA`), which quotes
    /// Klambauer et al. 2017.
    #[allow(clippy::excessive_precision)]
    pub const ALPHA: f64 = 1.673_263_242_354_377_284_817_042_991_671_7;
    /// λ (the scale), from the same source (`SELU_SCALE`).
    #[allow(clippy::excessive_precision)]
    pub const SCALE: f64 = 1.050_700_987_355_480_493_419_334_985_294_6;
}

impl<F: Float> Activation<F> for Selu {
    fn name(&self) -> &'static str {
        "selu"
    }
    fn value(&self, x: F) -> F {
        let scale = F::lit(Self::SCALE);
        if x > F::zero() { scale * x } else { scale * F::lit(Self::ALPHA) * x.exp_m1() }
    }
    fn derivative(&self, x: F, _y: F) -> F {
        let scale = F::lit(Self::SCALE);
        if x > F::zero() { scale } else { scale * F::lit(Self::ALPHA) * x.exp() }
    }
    fn gain(&self) -> f64 {
        0.75
    }
    fn max_derivative(&self) -> f64 {
        Self::SCALE * Self::ALPHA
    }
    fn family(&self) -> ActivationFamily {
        ActivationFamily::Rectifier
    }
    fn forward_slice(&self, x: &[F], y: &mut [F]) {
        F::selu_forward(x, y)
    }
    fn backward_slice(&self, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
        F::selu_backward(x, y, grad_y, grad_x)
    }
}

/// [`Selu`]'s forward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn forward<F: Float>(x: &[F], y: &mut [F]) {
    super::map_values(&Selu, x, y)
}

/// [`Selu`]'s backward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn backward<F: Float>(x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
    super::map_derivatives(&Selu, x, y, grad_y, grad_x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_derivatives_at_hand_computed_points() {
        let (a, s) = (Selu::ALPHA, Selu::SCALE);
        assert_eq!(Selu.value(1.0f64), s);
        assert_eq!(Selu.derivative(1.0f64, s), s);
        let e = std::f64::consts::E;
        assert!((Selu.value(-1.0f64) - s * a * (1.0 / e - 1.0)).abs() < 1e-15);
        assert!((Selu.derivative(-1.0f64, 0.0) - s * a / e).abs() < 1e-15);
        // λα ≈ 1.0507 · 1.6733 ≈ 1.7581 (Klambauer et al.'s constants multiplied by hand).
        assert!((Activation::<f64>::max_derivative(&Selu) - 1.7581).abs() < 1e-4);
    }

    #[test]
    fn constants_make_the_standard_normal_a_fixed_point() {
        // The defining property (Klambauer et al. 2017, section 3): for z ~ N(0, 1),
        // E[SELU(z)] = 0 and E[SELU(z)²] = 1.
        let mean = crate::activation::tests::gaussian_expectation(|z| Selu.value(z));
        let second = crate::activation::tests::gaussian_expectation(|z| Selu.value(z).powi(2));
        assert!(mean.abs() < 1e-6, "mean {mean}");
        assert!((second - 1.0).abs() < 1e-6, "second moment {second}");
    }
}
