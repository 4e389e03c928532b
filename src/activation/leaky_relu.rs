//! Leaky rectified linear unit.

use super::{Activation, ActivationFamily};
use crate::{Error, Float, Result};

/// LeakyReLU(x) = x for x > 0 and `negative_slope`·x otherwise (PyTorch's `nn.LeakyReLU`,
/// default slope 0.01). The derivative is 1 or `negative_slope` (PyTorch's convention: the
/// slope at 0), so a unit that is negative for every sample still passes a little gradient and
/// cannot die completely.
///
/// Gain √(2/(1 + slope²)) (PyTorch's `calculate_gain("leaky_relu", slope)`).
///
/// ```
/// use gradflow::Activation;
/// use gradflow::activation::LeakyRelu;
/// let act = LeakyRelu::new(0.2)?;
/// assert_eq!(act.value(-2.0f64), -0.4);
/// assert_eq!(act.derivative(-2.0f64, -0.4), 0.2);
/// assert_eq!(LeakyRelu::default().negative_slope(), 0.01);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakyRelu {
    negative_slope: f64,
}

impl LeakyRelu {
    /// PyTorch's default slope, 0.01.
    pub const DEFAULT_NEGATIVE_SLOPE: f64 = 0.01;

    /// A leaky ReLU with the given slope for negative inputs. Any finite slope is accepted, as
    /// in PyTorch (a slope of 0 is ReLU, 1 the identity).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `negative_slope` when it is NaN or infinite.
    pub fn new(negative_slope: f64) -> Result<Self> {
        if !negative_slope.is_finite() {
            return Err(Error::config(
                "LeakyReLU",
                "negative_slope",
                format!("must be finite, got {negative_slope}"),
            ));
        }
        Ok(LeakyRelu { negative_slope })
    }

    /// The slope for negative inputs.
    pub fn negative_slope(&self) -> f64 {
        self.negative_slope
    }
}

impl Default for LeakyRelu {
    fn default() -> Self {
        LeakyRelu { negative_slope: Self::DEFAULT_NEGATIVE_SLOPE }
    }
}

impl<F: Float> Activation<F> for LeakyRelu {
    fn name(&self) -> &'static str {
        "leaky_relu"
    }
    fn describe(&self) -> String {
        format!("leaky_relu(negative_slope={})", self.negative_slope)
    }
    fn value(&self, x: F) -> F {
        if x > F::zero() { x } else { F::lit(self.negative_slope) * x }
    }
    fn derivative(&self, x: F, _y: F) -> F {
        if x > F::zero() { F::one() } else { F::lit(self.negative_slope) }
    }
    fn gain(&self) -> f64 {
        (2.0 / (1.0 + self.negative_slope * self.negative_slope)).sqrt()
    }
    fn max_derivative(&self) -> f64 {
        self.negative_slope.abs().max(1.0)
    }
    fn family(&self) -> ActivationFamily {
        ActivationFamily::Rectifier
    }
    fn forward_slice(&self, x: &[F], y: &mut [F]) {
        F::leaky_relu_forward(self, x, y)
    }
    fn backward_slice(&self, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
        F::leaky_relu_backward(self, x, y, grad_y, grad_x)
    }
}

/// [`LeakyRelu`]'s forward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn forward<F: Float>(leaky_relu: &LeakyRelu, x: &[F], y: &mut [F]) {
    super::map_values(leaky_relu, x, y)
}

/// [`LeakyRelu`]'s backward loop over a slice, compiled inside gradflow ([`crate::kernels`]).
pub(crate) fn backward<F: Float>(leaky_relu: &LeakyRelu, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
    super::map_derivatives(leaky_relu, x, y, grad_y, grad_x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_derivatives_at_hand_computed_points() {
        let act = LeakyRelu::default();
        assert_eq!(act.value(-2.0f64), -0.02);
        assert_eq!(act.value(3.0f64), 3.0);
        assert_eq!(act.derivative(-2.0f64, -0.02), 0.01);
        assert_eq!(act.derivative(3.0f64, 3.0), 1.0);
        // At 0 PyTorch uses the negative side.
        assert_eq!(act.derivative(0.0f64, 0.0), 0.01);
    }

    #[test]
    fn gain_follows_calculate_gain() {
        // calculate_gain("leaky_relu", 0.2) = sqrt(2 / 1.04)
        let act = LeakyRelu::new(0.2).unwrap();
        assert!((Activation::<f64>::gain(&act) - (2.0f64 / 1.04).sqrt()).abs() < 1e-15);
        // slope 1 is the identity: gain 1.
        assert!((Activation::<f64>::gain(&LeakyRelu::new(1.0).unwrap()) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn non_finite_slope_is_refused_with_the_field_named() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = LeakyRelu::new(bad).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("LeakyReLU") && msg.contains("negative_slope"), "{msg}");
        }
    }

    #[test]
    fn describe_shows_the_slope() {
        let act = LeakyRelu::new(0.2).unwrap();
        assert_eq!(Activation::<f32>::describe(&act), "leaky_relu(negative_slope=0.2)");
    }
}
