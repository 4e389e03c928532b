//! Gaussian error linear unit, exact and tanh-approximated.

use std::f64::consts::{FRAC_1_SQRT_2, PI, SQRT_2};

use super::{Activation, ActivationFamily};
use crate::{Error, Float, Result};

/// Which formula [`Gelu`] uses: PyTorch's `approximate='none'` or `approximate='tanh'`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum GeluApproximation {
    /// The exact form x·Φ(x), with Φ the standard normal CDF (`approximate='none'`).
    #[default]
    None,
    /// Hendrycks & Gimpel's approximation ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
    /// (`approximate='tanh'`).
    Tanh,
}

impl std::str::FromStr for GeluApproximation {
    type Err = Error;

    /// Parses PyTorch's spelling, `"none"` or `"tanh"`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(GeluApproximation::None),
            "tanh" => Ok(GeluApproximation::Tanh),
            other => Err(Error::config(
                "GELU",
                "approximate",
                format!("unknown approximation `{other}`; expected `none` or `tanh`"),
            )),
        }
    }
}

/// GELU(x) = x·Φ(x) (Hendrycks & Gimpel 2016; PyTorch's `nn.GELU`), where Φ is the standard
/// normal CDF; derivative Φ(x) + x·φ(x).
///
/// One struct covers both of PyTorch's forms, chosen by [`GeluApproximation`]: the exact one
/// (the default, named `"gelu"`) and the tanh approximation (named `"gelu_tanh"`):
/// ½x(1 + tanh(u)) with u = √(2/π)(x + 0.044715x³).
///
/// A smooth ReLU: the identity for large positive x, 0 for large negative x, with a dip to
/// ≈ −0.17 at x ≈ −0.75. Its derivative rises to ≈ 1.1289 at x = √2 and dips to ≈ −0.1289 at
/// x = −√2.
///
/// # Numerics
/// The exact form is evaluated in f64 with `libm::erfc` (then rounded to `F`):
/// Φ(x) = ½·erfc(−x/√2), which keeps the negative tail accurate where PyTorch's
/// ½(1 + erf(x/√2)) cancels to 0; elsewhere the two agree to rounding. The tanh form is
/// bounded by construction. Both are finite, with the right limits, at ±1000 in f32 and f64.
///
/// # Gain
/// PyTorch's `calculate_gain` has no entry for GELU. We use √2, as for ReLU, which GELU
/// approaches away from 0: the gain that keeps E[f(z)²] = 1 for z ~ N(0, 1) is
/// 1/√E[GELU(z)²] ≈ 1.53, nearer √2 than 1.
///
/// ```
/// use gradflow::Activation;
/// use gradflow::activation::{Gelu, GeluApproximation};
/// let exact = Gelu::default();
/// assert_eq!(exact.value(0.0f64), 0.0);
/// assert_eq!(exact.derivative(0.0f64, 0.0), 0.5);
/// let approx = Gelu::new(GeluApproximation::Tanh);
/// assert!((approx.value(1.0f64) - exact.value(1.0f64)).abs() < 1e-3);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[doc(alias = "GELU")]
pub struct Gelu {
    /// The formula used (any value is valid).
    pub approximate: GeluApproximation,
}

/// √(2/π), PyTorch's `kBeta = M_SQRT2 * M_2_SQRTPI * 0.5` in its GELU kernels.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of the tanh approximation, Hendrycks & Gimpel 2016 (PyTorch's `kKappa`).
const KAPPA: f64 = 0.044_715;

impl Gelu {
    /// A GELU with the given formula.
    pub fn new(approximate: GeluApproximation) -> Self {
        Gelu { approximate }
    }

    /// Φ(x), the standard normal CDF, via `erfc` (accurate in both tails).
    fn normal_cdf(x: f64) -> f64 {
        0.5 * libm::erfc(-x * FRAC_1_SQRT_2)
    }

    /// φ(x), the standard normal density.
    fn normal_pdf(x: f64) -> f64 {
        (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
    }
}

impl<F: Float> Activation<F> for Gelu {
    fn name(&self) -> &'static str {
        match self.approximate {
            GeluApproximation::None => "gelu",
            GeluApproximation::Tanh => "gelu_tanh",
        }
    }

    fn value(&self, x: F) -> F {
        match self.approximate {
            GeluApproximation::None => {
                let x = x.as_f64();
                F::lit(x * Self::normal_cdf(x))
            }
            GeluApproximation::Tanh => {
                let half = F::lit(0.5);
                let inner = F::lit(SQRT_2_OVER_PI) * (x + F::lit(KAPPA) * x * x * x);
                half * x * (F::one() + inner.tanh())
            }
        }
    }

    fn derivative(&self, x: F, _y: F) -> F {
        match self.approximate {
            GeluApproximation::None => {
                let x = x.as_f64();
                // x·φ(x): φ underflows to 0 long before x could overflow, so this is finite.
                F::lit(Self::normal_cdf(x) + x * Self::normal_pdf(x))
            }
            GeluApproximation::Tanh => {
                // d/dx ½x(1 + tanh u) = ½(1 + tanh u) + ½x·sech²u·u',  u' = √(2/π)(1 + 3κx²)
                let half = F::lit(0.5);
                let beta = F::lit(SQRT_2_OVER_PI);
                let kappa = F::lit(KAPPA);
                let t = (beta * (x + kappa * x * x * x)).tanh();
                let sech2 = F::one() - t * t;
                // Once tanh has saturated the second term is exactly 0; skipping it avoids 0·∞
                // when 3κx² overflows (|x| > ~1e19 in f32).
                let tail = if sech2 == F::zero() {
                    F::zero()
                } else {
                    half * x * sech2 * beta * (F::one() + F::lit(3.0) * kappa * x * x)
                };
                half * (F::one() + t) + tail
            }
        }
    }

    fn gain(&self) -> f64 {
        SQRT_2
    }

    /// The exact form's derivative Φ(x) + xφ(x) has its maximum where
    /// d/dx = φ(x)(2 − x²) = 0, i.e. at x = √2: (1 + erf(1))/2 + 1/(e√π) ≈ 1.128904.
    /// For the tanh form the maximum, found numerically (mpmath, 40 digits: root of f'' near
    /// x = 1.4185), is ≈ 1.128993.
    fn max_derivative(&self) -> f64 {
        match self.approximate {
            GeluApproximation::None => Self::normal_cdf(SQRT_2) + SQRT_2 * Self::normal_pdf(SQRT_2),
            GeluApproximation::Tanh => 1.128_993_068_658_771_8,
        }
    }

    fn family(&self) -> ActivationFamily {
        ActivationFamily::Rectifier
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_derivatives_at_hand_computed_points() {
        let exact = Gelu::default();
        assert_eq!(exact.value(0.0f64), 0.0);
        assert_eq!(exact.derivative(0.0f64, 0.0), 0.5);
        // Φ(1) = 0.841344746068543 (standard normal table), φ(1) = e^{-1/2}/√(2π).
        let phi1 = (-0.5f64).exp() / (2.0 * PI).sqrt();
        assert!((exact.value(1.0f64) - 0.841_344_746_068_543).abs() < 1e-14);
        assert!((exact.derivative(1.0f64, 0.0) - (0.841_344_746_068_543 + phi1)).abs() < 1e-14);
        // Odd/even symmetry: GELU(x) − GELU(−x) = x, GELU'(x) + GELU'(−x) = 1.
        for x in [0.3f64, 1.7, 4.0] {
            assert!((exact.value(x) - exact.value(-x) - x).abs() < 1e-15);
            assert!((exact.derivative(x, 0.0) + exact.derivative(-x, 0.0) - 1.0).abs() < 1e-15);
        }

        let approx = Gelu::new(GeluApproximation::Tanh);
        assert_eq!(approx.value(0.0f64), 0.0);
        assert_eq!(approx.derivative(0.0f64, 0.0), 0.5);
        // u(1) = √(2/π)·1.044715; GELU_tanh(1) = ½(1 + tanh u(1)).
        let u = (2.0 / PI).sqrt() * 1.044_715;
        assert!((approx.value(1.0f64) - 0.5 * (1.0 + u.tanh())).abs() < 1e-15);
    }

    #[test]
    fn negative_tail_of_the_exact_form_is_not_cancelled() {
        // GELU(−10) = −10·Φ(−10) ≈ −7.62e−23 (Φ(−10) = 7.619853e−24, standard normal table);
        // ½(1 + erf(−10/√2)) would round to 0.
        let y = Gelu::default().value(-10.0f64);
        assert!((y / -7.619_853e-23 - 1.0).abs() < 1e-6, "{y:e}");
    }

    #[test]
    fn approximations_parse_from_pytorch_spelling() {
        assert_eq!("none".parse::<GeluApproximation>().unwrap(), GeluApproximation::None);
        assert_eq!("tanh".parse::<GeluApproximation>().unwrap(), GeluApproximation::Tanh);
        let msg = "erf".parse::<GeluApproximation>().unwrap_err().to_string();
        assert!(msg.contains("approximate") && msg.contains("erf"), "{msg}");
    }

    #[test]
    fn the_two_forms_have_distinct_names() {
        assert_eq!(Activation::<f32>::name(&Gelu::default()), "gelu");
        assert_eq!(Activation::<f32>::name(&Gelu::new(GeluApproximation::Tanh)), "gelu_tanh");
    }
}
