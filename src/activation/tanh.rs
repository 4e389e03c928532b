//! Hyperbolic tangent.

use super::{Activation, ActivationFamily};
use crate::Float;

/// tanh(x) = (eˣ − e⁻ˣ)/(eˣ + e⁻ˣ), derivative 1 − tanh²(x) ≤ 1. Saturates for |x| ≳ 3, where
/// the derivative is below 0.01: the classic cause of vanishing gradients in deep tanh stacks.
/// Gain 5/3 (PyTorch's `calculate_gain("tanh")`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tanh;

impl<F: Float> Activation<F> for Tanh {
    fn name(&self) -> &'static str {
        "tanh"
    }
    fn value(&self, x: F) -> F {
        x.tanh()
    }
    fn derivative(&self, _x: F, y: F) -> F {
        F::one() - y * y
    }
    fn gain(&self) -> f64 {
        5.0 / 3.0
    }
    fn max_derivative(&self) -> f64 {
        1.0
    }
    fn family(&self) -> ActivationFamily {
        ActivationFamily::Saturating
    }
}
