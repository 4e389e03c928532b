//! The identity (no non-linearity).

use super::{Activation, ActivationFamily};
use crate::Float;

/// f(x) = x, derivative 1. A network of linear layers with identity activations is a single
/// linear map however deep it is; useful as the baseline in which only the weights decide
/// whether the gradient vanishes. Gain 1 (PyTorch's `calculate_gain("linear")`).
///
/// ```
/// use gradflow::Activation;
/// use gradflow::activation::Identity;
/// assert_eq!(Identity.value(-3.5f64), -3.5);
/// assert_eq!(Identity.derivative(-3.5f64, -3.5), 1.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Identity;

impl<F: Float> Activation<F> for Identity {
    fn name(&self) -> &'static str {
        "identity"
    }
    fn value(&self, x: F) -> F {
        x
    }
    fn derivative(&self, _x: F, _y: F) -> F {
        F::one()
    }
    fn gain(&self) -> f64 {
        1.0
    }
    fn max_derivative(&self) -> f64 {
        1.0
    }
    fn family(&self) -> ActivationFamily {
        ActivationFamily::Linear
    }
    fn forward_slice(&self, x: &[F], y: &mut [F]) {
        y.copy_from_slice(x);
    }
    fn backward_slice(&self, _x: &[F], _y: &[F], grad_y: &[F], grad_x: &mut [F]) {
        grad_x.copy_from_slice(grad_y);
    }
}
