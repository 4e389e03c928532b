//! Sigmoid linear unit (Swish).

use super::{Activation, ActivationFamily};
use crate::Float;

/// SiLU(x) = x·σ(x) (Elfwing et al. 2017; "Swish" with β = 1 in Ramachandran et al. 2017;
/// PyTorch's `nn.SiLU`). Derivative σ(x)(1 + x(1 − σ(x))) = σ(x) + x·σ(x)σ(−x).
///
/// Like GELU a smooth ReLU: the identity for large positive x, 0 for large negative x, with a
/// dip to ≈ −0.278 at x ≈ −1.278. Its derivative peaks at ≈ 1.0998 (x ≈ 2.3994) and dips to
/// ≈ −0.0998 (x ≈ −2.3994).
///
/// Uses the overflow-free sigmoid ([`super::stable_sigmoid`]) and computes σ(x)σ(−x) from the
/// same `exp(−|x|)`, so SiLU(−1000) = 0 and SiLU'(±1000) ∈ {0, 1} with no NaN.
///
/// # Gain
/// PyTorch's `calculate_gain` has no entry for SiLU. We use √2, as for ReLU, which SiLU
/// approaches away from 0: the gain that keeps E[f(z)²] = 1 for z ~ N(0, 1) is
/// 1/√E[SiLU(z)²] ≈ 1.68, nearer √2 than 1.
///
/// ```
/// use gradflow::Activation;
/// use gradflow::activation::Silu;
/// assert_eq!(Silu.value(0.0f64), 0.0);
/// assert_eq!(Silu.derivative(0.0f64, 0.0), 0.5);
/// assert_eq!(Silu.value(-1000.0f32), 0.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[doc(alias = "Swish")]
#[doc(alias = "SiLU")]
pub struct Silu;

impl<F: Float> Activation<F> for Silu {
    fn name(&self) -> &'static str {
        "silu"
    }
    fn value(&self, x: F) -> F {
        x * super::stable_sigmoid(x)
    }
    fn derivative(&self, x: F, _y: F) -> F {
        // With e = exp(−|x|) ∈ (0, 1] and r = 1/(1 + e): σ(|x|) = r, σ(−|x|) = e·r, and
        // σ(x)σ(−x) = e·r² whatever the sign of x.
        let e = (-x.abs()).exp();
        let r = F::one() / (F::one() + e);
        let sigma = if x >= F::zero() { r } else { e * r };
        sigma + x * e * r * r
    }
    fn gain(&self) -> f64 {
        std::f64::consts::SQRT_2
    }
    /// f'(x) = σ(x)(1 + x(1 − σ(x))) peaks where f''(x) = σ(1 − σ)(2 + x(1 − 2σ)) = 0, i.e.
    /// x·tanh(x/2) = 2, x ≈ 2.399357; the value there, solved with mpmath to 40 digits, is
    /// 1.0998393201288669.
    fn max_derivative(&self) -> f64 {
        1.099_839_320_128_867
    }
    fn family(&self) -> ActivationFamily {
        ActivationFamily::Rectifier
    }
    fn forward_slice(&self, x: &[F], y: &mut [F]) {
        F::silu_forward(x, y)
    }
    fn backward_slice(&self, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
        F::silu_backward(x, y, grad_y, grad_x)
    }
}

/// [`Silu`]'s forward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn forward<F: Float>(x: &[F], y: &mut [F]) {
    super::map_values(&Silu, x, y)
}

/// [`Silu`]'s backward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn backward<F: Float>(x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
    super::map_derivatives(&Silu, x, y, grad_y, grad_x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_derivatives_at_hand_computed_points() {
        assert_eq!(Silu.value(0.0f64), 0.0);
        assert_eq!(Silu.derivative(0.0f64, 0.0), 0.5);
        // σ(ln 3) = 3/4: SiLU(ln 3) = ¾ ln 3, SiLU'(ln 3) = ¾ + ln 3 · ¾ · ¼.
        let x = 3f64.ln();
        assert!((Silu.value(x) - 0.75 * x).abs() < 1e-15);
        assert!((Silu.derivative(x, 0.0) - (0.75 + x * 0.75 * 0.25)).abs() < 1e-15);
        // and at −ln 3, σ = ¼.
        assert!((Silu.value(-x) + 0.25 * x).abs() < 1e-15);
        assert!((Silu.derivative(-x, 0.0) - (0.25 - x * 0.75 * 0.25)).abs() < 1e-15);
    }
}
