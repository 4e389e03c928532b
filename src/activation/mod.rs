//! Activation functions: the [`Activation`] trait, the zoo, and [`Act`], which makes any
//! activation a [`Layer`](crate::Layer).
//!
//! The derivative of the activation is the factor the gradient is multiplied by at every layer
//! of a deep network: sigmoid's is at most 1/4 and tanh's falls to nearly zero once |x| > 3, which
//! is why deep stacks of them vanish; the ReLU family passes the gradient through unchanged
//! wherever the unit is active.

mod act;
pub(crate) mod elu;
pub(crate) mod fast_math;
pub(crate) mod gelu;
pub(crate) mod identity;
pub(crate) mod leaky_relu;
pub(crate) mod relu;
pub(crate) mod selu;
pub(crate) mod sigmoid;
pub(crate) mod silu;
pub(crate) mod softplus;
pub(crate) mod softsign;
pub(crate) mod tanh;

pub use act::Act;
pub use elu::Elu;
pub use gelu::{Gelu, GeluApproximation};
pub use identity::Identity;
pub use leaky_relu::LeakyRelu;
pub use relu::Relu;
pub use selu::Selu;
pub use sigmoid::{Sigmoid, stable_sigmoid};
pub use silu::Silu;
pub use softplus::Softplus;
pub use softsign::Softsign;
pub use tanh::Tanh;

use std::sync::Arc;

use crate::{Error, Float, Result};

/// How an activation behaves far from zero; decides which health statistics apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ActivationFamily {
    /// Bounded on both sides (sigmoid, tanh, softsign): units can *saturate*, where the
    /// derivative is nearly zero.
    Saturating,
    /// Piecewise linear or nearly so on the positive side (ReLU, LeakyReLU, PReLU, ELU, SELU,
    /// GELU, SiLU, softplus): units can *die*, outputting zero (or their negative limit) for every input.
    Rectifier,
    /// The identity.
    Linear,
}

/// An elementwise non-linearity with its derivative and recommended initialization gain.
///
/// `derivative` receives both the input `x` and the output `y = value(x)`, so that sigmoid and
/// tanh can reuse the output (`σ' = y(1−y)`, `tanh' = 1 − y²`) and the rest use `x`.
///
/// Implementations are numerically stable for inputs of ±1000 (no NaN, no overflow).
pub trait Activation<F: Float>: Send + Sync + std::fmt::Debug {
    /// Lower-case name as used on the command line and in reports, e.g. `"tanh"`.
    fn name(&self) -> &'static str;

    /// The name with the configuration, e.g. `"leaky_relu(negative_slope=0.2)"`; the bare
    /// [`Activation::name`] for activations without parameters.
    fn describe(&self) -> String {
        self.name().to_string()
    }

    /// f(x).
    fn value(&self, x: F) -> F;

    /// f'(x), given `x` and `y = f(x)`.
    fn derivative(&self, x: F, y: F) -> F;

    /// The recommended gain for initialization, as `torch.nn.init.calculate_gain` returns it.
    fn gain(&self) -> f64;

    /// The largest value of |f'(x)| over all x (e.g. 1/4 for sigmoid): units whose derivative is
    /// below 5% of it count as saturated.
    fn max_derivative(&self) -> f64;

    /// Which health statistics apply (saturation or dead units).
    fn family(&self) -> ActivationFamily;

    /// Applies f to a whole slice: `y[i] = f(x[i])`. The default loop is compiled for the
    /// widest SIMD instructions of the CPU, which vectorizes it when `value` is simple
    /// arithmetic; override it for functions that are not (see [`Tanh`]).
    fn forward_slice(&self, x: &[F], y: &mut [F]) {
        map_values(self, x, y)
    }

    /// Backward over a whole slice: `grad_x[i] = grad_y[i] · f'(x[i], y[i])`, compiled like
    /// [`Activation::forward_slice`].
    fn backward_slice(&self, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
        map_derivatives(self, x, y, grad_y, grad_x)
    }
}

/// `y[i] = f(x[i])`, the loop of [`Activation::forward_slice`]: compiled for the widest SIMD
/// instructions of the CPU, which vectorizes it when `value` is simple arithmetic.
///
/// The built-in activations run it (or their own loop) inside gradflow's kernels
/// ([`crate::kernels`]), so that a program's debug build does not compile it at opt-level 0.
#[inline(always)]
pub(crate) fn map_values<F: Float, A: Activation<F> + ?Sized>(activation: &A, x: &[F], y: &mut [F]) {
    crate::vectorize::vectorized(
        #[inline(always)]
        || {
            for (yi, &xi) in y.iter_mut().zip(x) {
                *yi = activation.value(xi);
            }
        },
    )
}

/// `grad_x[i] = grad_y[i] · f'(x[i], y[i])`, the loop of [`Activation::backward_slice`],
/// compiled like [`map_values`].
#[inline(always)]
pub(crate) fn map_derivatives<F: Float, A: Activation<F> + ?Sized>(
    activation: &A,
    x: &[F],
    y: &[F],
    grad_y: &[F],
    grad_x: &mut [F],
) {
    crate::vectorize::vectorized(
        #[inline(always)]
        || {
            for (((gx, &gy), &xi), &yi) in grad_x.iter_mut().zip(grad_y).zip(x).zip(y) {
                *gx = gy * activation.derivative(xi, yi);
            }
        },
    )
}

/// A shared activation is an activation: lets a chosen-by-name activation be used wherever a
/// concrete one is.
impl<F: Float> Activation<F> for std::sync::Arc<dyn Activation<F>> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn value(&self, x: F) -> F {
        (**self).value(x)
    }
    fn derivative(&self, x: F, y: F) -> F {
        (**self).derivative(x, y)
    }
    fn gain(&self) -> f64 {
        (**self).gain()
    }
    fn max_derivative(&self) -> f64 {
        (**self).max_derivative()
    }
    fn family(&self) -> ActivationFamily {
        (**self).family()
    }
    fn forward_slice(&self, x: &[F], y: &mut [F]) {
        (**self).forward_slice(x, y)
    }
    fn backward_slice(&self, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
        (**self).backward_slice(x, y, grad_y, grad_x)
    }
}

/// Every name [`by_name`] accepts, in the order of the documentation. `"swish"` is another name
/// for `"silu"`; `"gelu"` is the exact GELU and `"gelu_tanh"` its tanh approximation.
pub const NAMES: &[&str] = &[
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "gelu_tanh",
    "silu",
    "swish",
    "softsign",
    "softplus",
];

/// The activation called `name` (one of [`NAMES`], as typed on a command line), with
/// PyTorch's default parameters.
///
/// ```
/// use gradflow::activation::by_name;
/// let act = by_name::<f32>("leaky_relu")?;
/// assert_eq!(act.value(-1.0), -0.01);
/// assert!(by_name::<f32>("relu6").is_err());
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] (component `activation`, field `name`) listing the accepted names
/// when `name` is not one of them.
pub fn by_name<F: Float>(name: &str) -> Result<Arc<dyn Activation<F>>> {
    let activation: Arc<dyn Activation<F>> = match name {
        "identity" => Arc::new(Identity),
        "sigmoid" => Arc::new(Sigmoid),
        "tanh" => Arc::new(Tanh),
        "relu" => Arc::new(Relu),
        "leaky_relu" => Arc::new(LeakyRelu::default()),
        "elu" => Arc::new(Elu::default()),
        "selu" => Arc::new(Selu),
        "gelu" => Arc::new(Gelu::new(GeluApproximation::None)),
        "gelu_tanh" => Arc::new(Gelu::new(GeluApproximation::Tanh)),
        "silu" | "swish" => Arc::new(Silu),
        "softsign" => Arc::new(Softsign),
        "softplus" => Arc::new(Softplus::default()),
        other => {
            return Err(Error::config(
                "activation",
                "name",
                format!("unknown activation `{other}`; expected one of {}", NAMES.join(", ")),
            ));
        }
    };
    Ok(activation)
}

#[cfg(test)]
pub(crate) mod tests {
    //! Checks every activation of the zoo against the same standards: gradient check, finite
    //! values and right limits at ±1000, PyTorch's gains, and `max_derivative` against a scan.
    use approx::relative_eq;

    use super::*;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use ndarray::Array2;
    use std::f64::consts::SQRT_2;

    /// E[f(z)] for z ~ N(0, 1), by Simpson's rule on [−12, 12] with step 10⁻³ (0 is a node, so
    /// kinks at 0 cost no accuracy; the tails beyond ±12 weigh < 1e−32).
    pub(crate) fn gaussian_expectation(f: impl Fn(f64) -> f64) -> f64 {
        let (a, n) = (-12.0, 24_000);
        let h = 24.0 / n as f64;
        let g = |z: f64| f(z) * (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let mut sum = g(a) + g(-a);
        for i in 1..n {
            sum += if i % 2 == 1 { 4.0 } else { 2.0 } * g(a + i as f64 * h);
        }
        sum * h / 3.0
    }

    /// Every activation by name, plus non-default parameters.
    fn zoo<F: Float>() -> Vec<Arc<dyn Activation<F>>> {
        let mut zoo: Vec<Arc<dyn Activation<F>>> = NAMES.iter().map(|n| by_name(n).unwrap()).collect();
        zoo.push(Arc::new(LeakyRelu::new(0.2).unwrap()));
        zoo.push(Arc::new(LeakyRelu::new(-0.5).unwrap()));
        zoo.push(Arc::new(Elu::new(0.5).unwrap()));
        zoo.push(Arc::new(Elu::new(2.0).unwrap()));
        zoo.push(Arc::new(Softplus::new(2.0, 20.0).unwrap()));
        zoo.push(Arc::new(Softplus::new(1.0, f64::INFINITY).unwrap()));
        zoo
    }

    #[test]
    fn every_activation_passes_the_gradient_check() {
        // −7.95, −7.5, …, 7.8: never within 0.15 of the kink at 0, nor near softplus's switch.
        let x = Array2::from_shape_fn((4, 9), |(i, j)| -7.95 + 0.45 * (i * 9 + j) as f64);
        for activation in zoo::<f64>() {
            let mut layer = Act::from_shared(activation);
            let report = check_layer(&mut layer, &x, GradCheckConfig::default()).unwrap();
            report.within(1e-6).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    fn stays_finite_at_extreme_inputs<F: Float>() {
        for activation in zoo::<F>() {
            for x in [-1000.0, -100.0, -20.0, 0.0, 20.0, 100.0, 1000.0] {
                let x = F::lit(x);
                let y = activation.value(x);
                let d = activation.derivative(x, y);
                let what = format!("{} at {x} in {}", activation.describe(), F::NAME);
                assert!(y.is_finite() && d.is_finite(), "{what}: value {y}, derivative {d}");
                assert!(d.as_f64().abs() <= activation.max_derivative() * (1.0 + 1e-6), "{what}: {d}");
            }
        }
    }

    #[test]
    fn every_activation_is_finite_at_extreme_inputs_in_f32_and_f64() {
        stays_finite_at_extreme_inputs::<f32>();
        stays_finite_at_extreme_inputs::<f64>();
    }

    fn has_the_right_limits<F: Float>() {
        let (alpha, scale) = (Selu::ALPHA, Selu::SCALE);
        // (name, x, f(x), f'(x)), all by hand from the definitions.
        let table: &[(&str, f64, f64, f64)] = &[
            ("identity", 1000.0, 1000.0, 1.0),
            ("identity", -1000.0, -1000.0, 1.0),
            ("sigmoid", 1000.0, 1.0, 0.0),
            ("sigmoid", -1000.0, 0.0, 0.0),
            ("tanh", 1000.0, 1.0, 0.0),
            ("tanh", -1000.0, -1.0, 0.0),
            ("relu", 1000.0, 1000.0, 1.0),
            ("relu", -1000.0, 0.0, 0.0),
            ("leaky_relu", 1000.0, 1000.0, 1.0),
            ("leaky_relu", -1000.0, -10.0, 0.01),
            ("elu", 1000.0, 1000.0, 1.0),
            ("elu", -1000.0, -1.0, 0.0),
            ("selu", 1000.0, 1000.0 * scale, scale),
            ("selu", -1000.0, -scale * alpha, 0.0),
            ("gelu", 1000.0, 1000.0, 1.0),
            ("gelu", -1000.0, 0.0, 0.0),
            ("gelu_tanh", 1000.0, 1000.0, 1.0),
            ("gelu_tanh", -1000.0, 0.0, 0.0),
            ("silu", 1000.0, 1000.0, 1.0),
            ("silu", -1000.0, 0.0, 0.0),
            ("softsign", 1000.0, 1000.0 / 1001.0, 1.0 / (1001.0 * 1001.0)),
            ("softsign", -1000.0, -1000.0 / 1001.0, 1.0 / (1001.0 * 1001.0)),
            ("softplus", 1000.0, 1000.0, 1.0),
            ("softplus", -1000.0, 0.0, 0.0),
        ];
        let no_threshold: Arc<dyn Activation<F>> = Arc::new(Softplus::new(1.0, f64::INFINITY).unwrap());
        let rows = table.iter().map(|&(name, x, y, d)| (by_name::<F>(name).unwrap(), x, y, d));
        let extra = [(no_threshold.clone(), 1000.0, 1000.0, 1.0), (no_threshold, -1000.0, 0.0, 0.0)];
        for (activation, x, y, d) in rows.chain(extra) {
            let got_y = activation.value(F::lit(x));
            let got_d = activation.derivative(F::lit(x), got_y);
            // Within 1e-6, relative to the larger magnitude when that is above 1.
            let close = |a: F, b: f64| relative_eq!(a.as_f64(), b, epsilon = 1e-6, max_relative = 1e-6);
            assert!(
                close(got_y, y) && close(got_d, d),
                "{} at {x} in {}: got ({got_y}, {got_d}), expected ({y}, {d})",
                activation.describe(),
                F::NAME
            );
        }
    }

    #[test]
    fn limits_at_plus_minus_1000_are_right_in_f32_and_f64() {
        has_the_right_limits::<f32>();
        has_the_right_limits::<f64>();
    }

    #[test]
    fn gains_match_pytorch_calculate_gain() {
        // torch.nn.init.calculate_gain's table: linear 1, sigmoid 1, tanh 5/3, relu √2,
        // leaky_relu √(2/(1 + slope²)) with default slope 0.01, selu 3/4.
        let table = [
            ("identity", 1.0),
            ("sigmoid", 1.0),
            ("tanh", 5.0 / 3.0),
            ("relu", SQRT_2),
            ("leaky_relu", (2.0f64 / (1.0 + 0.01 * 0.01)).sqrt()),
            ("selu", 0.75),
        ];
        for (name, gain) in table {
            assert_eq!(by_name::<f64>(name).unwrap().gain(), gain, "{name}");
        }
    }

    #[test]
    fn gains_pytorch_lacks_are_the_nearer_of_1_and_sqrt2_to_the_variance_preserving_one() {
        // The documented rule for ELU, GELU, SiLU, softsign and softplus: of 1 and √2, the one
        // nearer 1/√E[f(z)²], z ~ N(0, 1). The same measure gives ReLU's √2 exactly.
        let preserving = |a: &dyn Activation<f64>| 1.0 / gaussian_expectation(|z| a.value(z).powi(2)).sqrt();
        assert!((preserving(&Relu) - SQRT_2).abs() < 1e-9);
        for name in ["elu", "gelu", "gelu_tanh", "silu", "swish", "softsign", "softplus"] {
            let activation = by_name::<f64>(name).unwrap();
            let v = preserving(activation.as_ref());
            let expected = if (v - 1.0).abs() < (v - SQRT_2).abs() { 1.0 } else { SQRT_2 };
            assert_eq!(activation.gain(), expected, "{name}: variance-preserving gain {v}");
        }
    }

    #[test]
    fn max_derivative_is_the_supremum_found_by_a_dense_scan() {
        for activation in zoo::<f64>() {
            let mut largest = 0.0f64;
            for i in 0..=200_000 {
                let x = -10.0 + i as f64 * 1e-4;
                largest = largest.max(activation.derivative(x, activation.value(x)).abs());
            }
            let claimed = activation.max_derivative();
            let name = activation.describe();
            assert!((largest - claimed).abs() <= 1e-3, "{name}: scan {largest}, claimed {claimed}");
            assert!(largest <= claimed + 1e-12, "{name}: scan {largest} exceeds claimed {claimed}");
        }
    }

    #[test]
    fn families_are_as_documented() {
        for name in NAMES {
            let expected = match *name {
                "sigmoid" | "tanh" | "softsign" => ActivationFamily::Saturating,
                "identity" => ActivationFamily::Linear,
                _ => ActivationFamily::Rectifier,
            };
            assert_eq!(by_name::<f32>(name).unwrap().family(), expected, "{name}");
        }
    }

    #[test]
    fn by_name_round_trips_every_name() {
        for name in NAMES {
            let activation = by_name::<f32>(name).unwrap();
            let canonical = if *name == "swish" { "silu" } else { *name };
            assert_eq!(activation.name(), canonical);
            assert_eq!(by_name::<f64>(activation.name()).unwrap().name(), canonical);
        }
    }

    #[test]
    fn by_name_rejects_an_unknown_name_listing_the_known_ones() {
        let err = by_name::<f32>("relu6").unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "name", .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("activation") && msg.contains("`relu6`"), "{msg}");
        for name in NAMES {
            assert!(msg.contains(name), "{msg} lacks {name}");
        }
    }
}
