//! Softplus.

use super::{Activation, ActivationFamily, stable_sigmoid};
use crate::{Error, Float, Result};

/// softplus(x) = (1/β)·ln(1 + e^{βx}) (PyTorch's `nn.Softplus`, defaults β = 1, threshold = 20),
/// and exactly x where βx > threshold, as in PyTorch. Derivative σ(βx) (1 above the threshold),
/// always in (0, 1].
///
/// A smooth ReLU that is never exactly flat: its derivative is positive everywhere, though it
/// vanishes like e^{βx} for negative inputs.
///
/// # Numerics
/// Below the threshold it is computed as (max(βx, 0) + ln1p(e^{−|βx|}))/β, which never takes the
/// exponential of a positive number: softplus(−1000) ≈ 0 (not NaN) and softplus(1000) = 1000
/// even with the threshold switched off (`f64::INFINITY`). The derivative uses the
/// overflow-free sigmoid.
///
/// # Gain
/// PyTorch's `calculate_gain` has no entry for softplus. We use 1: its positive offset
/// (softplus(0) = ln 2) keeps E[f(z)²] ≈ 0.92 for z ~ N(0, 1), so the gain that would
/// preserve it, ≈ 1.04, is nearly 1.
///
/// ```
/// use gradflow::Activation;
/// use gradflow::activation::Softplus;
/// let act = Softplus::default();
/// assert!((act.value(0.0f64) - 2f64.ln()).abs() < 1e-15);
/// assert_eq!(act.value(1000.0f32), 1000.0);
/// assert!(Softplus::new(0.0, 20.0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Softplus {
    beta: f64,
    threshold: f64,
}

impl Softplus {
    /// PyTorch's default β, 1.
    pub const DEFAULT_BETA: f64 = 1.0;
    /// PyTorch's default threshold, 20.
    pub const DEFAULT_THRESHOLD: f64 = 20.0;

    /// A softplus with sharpness `beta`, linear where `beta·x > threshold`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `beta` unless it is finite and > 0, or naming `threshold`
    /// unless it is > 0 (`f64::INFINITY` is allowed and disables the linear switch).
    pub fn new(beta: f64, threshold: f64) -> Result<Self> {
        if !beta.is_finite() || beta <= 0.0 {
            return Err(Error::config("Softplus", "beta", format!("must be finite and > 0, got {beta}")));
        }
        if threshold.is_nan() || threshold <= 0.0 {
            return Err(Error::config("Softplus", "threshold", format!("must be > 0, got {threshold}")));
        }
        Ok(Softplus { beta, threshold })
    }

    /// β, the sharpness: larger values bring softplus closer to ReLU.
    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// The value of βx above which softplus returns x.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
}

impl Default for Softplus {
    fn default() -> Self {
        Softplus { beta: Self::DEFAULT_BETA, threshold: Self::DEFAULT_THRESHOLD }
    }
}

impl<F: Float> Activation<F> for Softplus {
    fn name(&self) -> &'static str {
        "softplus"
    }
    fn describe(&self) -> String {
        format!("softplus(beta={}, threshold={})", self.beta, self.threshold)
    }
    fn value(&self, x: F) -> F {
        let beta = F::lit(self.beta);
        let bx = beta * x;
        if bx > F::lit(self.threshold) {
            return x;
        }
        (bx.max(F::zero()) + (-bx.abs()).exp().ln_1p()) / beta
    }
    fn derivative(&self, x: F, _y: F) -> F {
        let bx = F::lit(self.beta) * x;
        if bx > F::lit(self.threshold) { F::one() } else { stable_sigmoid(bx) }
    }
    fn gain(&self) -> f64 {
        1.0
    }
    /// σ(βx) < 1 approaches 1 as x → ∞ (and equals 1 above the threshold).
    fn max_derivative(&self) -> f64 {
        1.0
    }
    fn family(&self) -> ActivationFamily {
        ActivationFamily::Rectifier
    }
    fn forward_slice(&self, x: &[F], y: &mut [F]) {
        F::softplus_forward(self, x, y)
    }
    fn backward_slice(&self, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
        F::softplus_backward(self, x, y, grad_y, grad_x)
    }
}

/// [`Softplus`]'s forward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn forward<F: Float>(softplus: &Softplus, x: &[F], y: &mut [F]) {
    super::map_values(softplus, x, y)
}

/// [`Softplus`]'s backward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn backward<F: Float>(softplus: &Softplus, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
    super::map_derivatives(softplus, x, y, grad_y, grad_x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_derivatives_at_hand_computed_points() {
        let act = Softplus::default();
        assert!((act.value(0.0f64) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(act.derivative(0.0f64, 0.0), 0.5);
        // softplus(ln 3) = ln 4, derivative σ(ln 3) = 3/4.
        let x = 3f64.ln();
        assert!((act.value(x) - 4f64.ln()).abs() < 1e-15);
        assert!((act.derivative(x, 0.0) - 0.75).abs() < 1e-15);
        // β = 2: softplus(x) = ½ ln(1 + e^{2x}); at x = ½ ln 3 that is ½ ln 4 = ln 2.
        let act = Softplus::new(2.0, 20.0).unwrap();
        assert!((act.value(0.5 * x) - 2f64.ln()).abs() < 1e-15);
        assert!((act.derivative(0.5 * x, 0.0) - 0.75).abs() < 1e-15);
    }

    #[test]
    fn linear_above_threshold_over_beta() {
        let act = Softplus::new(2.0, 20.0).unwrap();
        // βx = 20.2 > 20: exactly x; βx = 19.8: the log form, which differs from x by ≈ e^{−19.8}/2.
        assert_eq!(act.value(10.1f64), 10.1);
        assert_eq!(act.derivative(10.1f64, 10.1), 1.0);
        let below = act.value(9.9f64);
        assert!(below > 9.9 && below - 9.9 < 1e-8, "{below}");
    }

    #[test]
    fn bad_configuration_is_refused_with_the_field_named() {
        for (beta, threshold, field) in [
            (0.0, 20.0, "beta"),
            (-1.0, 20.0, "beta"),
            (f64::NAN, 20.0, "beta"),
            (1.0, 0.0, "threshold"),
            (1.0, f64::NAN, "threshold"),
        ] {
            let msg = Softplus::new(beta, threshold).unwrap_err().to_string();
            assert!(msg.contains("Softplus") && msg.contains(field), "{msg}");
        }
        assert!(Softplus::new(1.0, f64::INFINITY).is_ok());
    }
}
