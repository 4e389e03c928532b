//! Exponential linear unit.

use super::{Activation, ActivationFamily};
use crate::{Error, Float, Result};

/// ELU(x) = x for x > 0 and α(eˣ − 1) otherwise (Clevert et al. 2015, PyTorch's `nn.ELU`,
/// default α = 1). The derivative is 1 for x > 0 and αeˣ otherwise (PyTorch's convention at 0).
///
/// Negative inputs saturate smoothly at −α instead of being cut to 0, which pushes mean
/// activations towards zero; the gradient still vanishes for very negative inputs.
///
/// `eˣ − 1` is computed with `exp_m1`, only for x ≤ 0, so ELU(−1000) = −α exactly and nothing
/// overflows.
///
/// # Gain
/// PyTorch's `calculate_gain` has no entry for ELU. We use √2, as for ReLU: ELU is the identity
/// on the positive half and bounded on the negative half, the case He et al.'s factor 2
/// corrects. Numerically, the gain that keeps E[f(z)²] = 1 for z ~ N(0, 1) is
/// 1/√E[ELU(z)²] ≈ 1.245 — nearer √2 than 1.
///
/// ```
/// use gradflow::Activation;
/// use gradflow::activation::Elu;
/// let act = Elu::default();
/// assert!((act.value(-1.0f64) - (1.0f64.exp().recip() - 1.0)).abs() < 1e-15);
/// assert_eq!(act.value(-1000.0f32), -1.0);
/// assert!(Elu::new(-0.5).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Elu {
    alpha: f64,
}

impl Elu {
    /// PyTorch's default α, 1.
    pub const DEFAULT_ALPHA: f64 = 1.0;

    /// An ELU with negative saturation value −`alpha`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `alpha` when it is negative, NaN or infinite (α = 0 is
    /// ReLU and is accepted).
    pub fn new(alpha: f64) -> Result<Self> {
        if !alpha.is_finite() || alpha < 0.0 {
            return Err(Error::config("ELU", "alpha", format!("must be finite and >= 0, got {alpha}")));
        }
        Ok(Elu { alpha })
    }

    /// α, the magnitude of the negative saturation value.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }
}

impl Default for Elu {
    fn default() -> Self {
        Elu { alpha: Self::DEFAULT_ALPHA }
    }
}

impl<F: Float> Activation<F> for Elu {
    fn name(&self) -> &'static str {
        "elu"
    }
    fn describe(&self) -> String {
        format!("elu(alpha={})", self.alpha)
    }
    fn value(&self, x: F) -> F {
        if x > F::zero() { x } else { F::lit(self.alpha) * x.exp_m1() }
    }
    fn derivative(&self, x: F, _y: F) -> F {
        if x > F::zero() { F::one() } else { F::lit(self.alpha) * x.exp() }
    }
    fn gain(&self) -> f64 {
        std::f64::consts::SQRT_2
    }
    /// 1 on the positive side; αeˣ on the negative side reaches α at 0.
    fn max_derivative(&self) -> f64 {
        self.alpha.max(1.0)
    }
    fn family(&self) -> ActivationFamily {
        ActivationFamily::Rectifier
    }
    fn forward_slice(&self, x: &[F], y: &mut [F]) {
        F::elu_forward(self, x, y)
    }
    fn backward_slice(&self, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
        F::elu_backward(self, x, y, grad_y, grad_x)
    }
}

/// [`Elu`]'s forward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn forward<F: Float>(elu: &Elu, x: &[F], y: &mut [F]) {
    super::map_values(elu, x, y)
}

/// [`Elu`]'s backward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn backward<F: Float>(elu: &Elu, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
    super::map_derivatives(elu, x, y, grad_y, grad_x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_derivatives_at_hand_computed_points() {
        let act = Elu::default();
        let e = std::f64::consts::E;
        assert!((act.value(-1.0f64) - (1.0 / e - 1.0)).abs() < 1e-15);
        assert!((act.derivative(-1.0f64, 0.0) - 1.0 / e).abs() < 1e-15);
        assert_eq!(act.value(2.5f64), 2.5);
        assert_eq!(act.derivative(2.5f64, 2.5), 1.0);
        let act = Elu::new(2.0).unwrap();
        // 2(e⁻² − 1) and 2e⁻²
        assert!((act.value(-2.0f64) - 2.0 * (e.powi(-2) - 1.0)).abs() < 1e-15);
        assert!((act.derivative(-2.0f64, 0.0) - 2.0 * e.powi(-2)).abs() < 1e-15);
        assert_eq!(Activation::<f64>::max_derivative(&act), 2.0);
    }

    #[test]
    fn small_negative_inputs_keep_precision() {
        // exp_m1: ELU(x) = x + x²/2 + O(x³) to full precision at x = −1e−10, where
        // exp(x) − 1 would keep only about 6 significant digits.
        let x = -1e-10f64;
        let y = Elu::default().value(x);
        assert!((y / (x + 0.5 * x * x) - 1.0).abs() < 1e-15, "{y:e}");
    }

    #[test]
    fn bad_alpha_is_refused_with_the_field_named() {
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            let msg = Elu::new(bad).unwrap_err().to_string();
            assert!(msg.contains("ELU") && msg.contains("alpha"), "{msg}");
        }
        assert_eq!(Elu::new(0.0).unwrap().alpha(), 0.0);
    }
}
