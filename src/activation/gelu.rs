//! Gaussian error linear unit, exact and tanh-approximated.

use std::f64::consts::{FRAC_1_SQRT_2, PI, SQRT_2};

use super::{Activation, ActivationFamily, fast_math};
use crate::vectorize::vectorized;
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

/// ½x(1 + tanh u), u = √(2/π)(x + κx³), written x·σ(2u) (as (1 + tanh u)/2 = σ(2u)), which
/// keeps its relative accuracy in the negative tail where 1 + tanh u cancels; `sigmoid` is
/// the σ to use.
#[inline(always)]
fn tanh_form<F: Float>(x: F, sigmoid: impl Fn(F) -> F) -> F {
    let u = F::lit(SQRT_2_OVER_PI) * (x + F::lit(KAPPA) * x * x * x);
    x * sigmoid(u + u)
}

/// d/dx ½x(1 + tanh u) = ½(1 + tanh u) + ½x·sech²u·u' = σ(2u) + 2x·σ(2u)σ(−2u)·u', with
/// u' = √(2/π)(1 + 3κx²): sech²u = 4σ(2u)σ(−2u) stays accurate where 1 − tanh²u cancels.
#[inline(always)]
fn tanh_form_derivative<F: Float>(x: F, sigmoid: impl Fn(F) -> F) -> F {
    let beta = F::lit(SQRT_2_OVER_PI);
    let kappa = F::lit(KAPPA);
    let u = beta * (x + kappa * x * x * x);
    let (s_pos, s_neg) = (sigmoid(u + u), sigmoid(-(u + u)));
    let bell = s_pos * s_neg;
    // Where σ(2u)σ(−2u) is 0 the second term is exactly 0; skipping it avoids 0·∞ when 3κx²
    // overflows (|x| > ~1e19 in f32).
    let tail = if bell == F::zero() {
        F::zero()
    } else {
        (x + x) * bell * beta * (F::one() + F::lit(3.0) * kappa * x * x)
    };
    s_pos + tail
}

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
            GeluApproximation::Tanh => tanh_form(x, crate::activation::stable_sigmoid),
        }
    }

    fn derivative(&self, x: F, _y: F) -> F {
        match self.approximate {
            GeluApproximation::None => {
                let x = x.as_f64();
                // x·φ(x): φ underflows to 0 long before x could overflow, so this is finite.
                F::lit(Self::normal_cdf(x) + x * Self::normal_pdf(x))
            }
            GeluApproximation::Tanh => tanh_form_derivative(x, crate::activation::stable_sigmoid),
        }
    }

    /// Vectorized. The tanh form uses [`Float::fast_sigmoid`] (within 3·10⁻⁷ of σ in f32, exact
    /// in f64); the exact form in f32 uses a vectorizable Φ (relative error below 2·10⁻⁶ for
    /// |x| ≤ 3, 2·10⁻⁵ in the tails), and in f64 `erfc` entry by entry.
    fn forward_slice(&self, x: &[F], y: &mut [F]) {
        F::gelu_forward(self, x, y)
    }

    /// As [`Activation::forward_slice`].
    fn backward_slice(&self, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
        F::gelu_backward(self, x, y, grad_y, grad_x)
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

/// [`Gelu`]'s forward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn forward<F: Float>(gelu: &Gelu, x: &[F], y: &mut [F]) {
    match gelu.approximate {
        GeluApproximation::Tanh => vectorized(
            #[inline(always)]
            || y.iter_mut().zip(x).for_each(|(y, &x)| *y = tanh_form(x, F::fast_sigmoid)),
        ),
        GeluApproximation::None => {
            if let (Some(x), Some(y)) = (F::as_f32_slice(x), F::as_f32_slice_mut(y)) {
                return fast_math::gelu_slice(x, y);
            }
            y.iter_mut().zip(x).for_each(|(y, &x)| *y = gelu.value(x))
        }
    }
}

/// [`Gelu`]'s backward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn backward<F: Float>(gelu: &Gelu, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
    match gelu.approximate {
        GeluApproximation::Tanh => vectorized(
            #[inline(always)]
            || {
                let rows = grad_x.iter_mut().zip(grad_y).zip(x);
                rows.for_each(|((gx, &gy), &x)| *gx = gy * tanh_form_derivative(x, F::fast_sigmoid))
            },
        ),
        GeluApproximation::None => {
            if let (Some(x), Some(gy), Some(gx)) =
                (F::as_f32_slice(x), F::as_f32_slice(grad_y), F::as_f32_slice_mut(grad_x))
            {
                return fast_math::gelu_backward_slice(x, gy, gx);
            }
            let rows = grad_x.iter_mut().zip(grad_y).zip(x).zip(y);
            rows.for_each(|(((gx, &gy), &x), &y)| *gx = gy * gelu.derivative(x, y))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectorized_slices_agree_with_the_scalar_definition() {
        for form in [GeluApproximation::Tanh, GeluApproximation::None] {
            slices_agree_with_the_scalar_definition(Gelu::new(form));
        }
    }

    fn slices_agree_with_the_scalar_definition(gelu: Gelu) {
        let xs: Vec<f64> = (-4000..=4000).map(|i| i as f64 / 400.0).chain([-1e20, 1e20, 0.0]).collect();
        // f64: the slices compute exactly the scalar definition.
        let (mut y, mut gx) = (vec![0.0; xs.len()], vec![0.0; xs.len()]);
        gelu.forward_slice(&xs, &mut y);
        gelu.backward_slice(&xs, &y, &vec![1.0; xs.len()], &mut gx);
        for (i, &x) in xs.iter().enumerate() {
            assert_eq!(
                (y[i], gx[i]),
                (Activation::<f64>::value(&gelu, x), Activation::<f64>::derivative(&gelu, x, y[i]))
            );
        }
        // f32: within a few times the fast σ's relative error; in the negative tail, where the
        // values fall like e^(−2u), the f32 rounding of u (relative 6e-8, times 2u) dominates.
        let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        let (mut y32, mut gx32) = (vec![0.0f32; xs.len()], vec![0.0f32; xs.len()]);
        gelu.forward_slice(&xs32, &mut y32);
        gelu.backward_slice(&xs32, &y32, &vec![1.0; xs.len()], &mut gx32);
        // Near x = 0 and where the derivative crosses 0 (x ≈ −0.75) the terms cancel: there
        // the error is judged against the O(1) scale of the function.
        let tol = |x: f32| if x.abs() <= 3.0 { 2e-6 } else { 2e-5 };
        let floor = |x: f32| if x.abs() <= 3.0 { 1e-7 } else { 1e-38 };
        for (i, &x) in xs32.iter().enumerate() {
            let (v, d) = (
                Activation::<f64>::value(&gelu, x as f64),
                Activation::<f64>::derivative(&gelu, x as f64, 0.0),
            );
            assert!(
                (y32[i] as f64 - v).abs() <= tol(x) * v.abs() + floor(x),
                "{}({x}) = {} vs {v}",
                Activation::<f32>::name(&gelu),
                y32[i]
            );
            assert!(
                (gx32[i] as f64 - d).abs() <= tol(x) * d.abs() + floor(x),
                "{}'({x}) = {} vs {d}",
                Activation::<f32>::name(&gelu),
                gx32[i]
            );
        }
    }

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
