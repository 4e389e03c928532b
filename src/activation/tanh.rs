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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_derivatives_at_hand_computed_points() {
        assert_eq!(Tanh.value(0.0f64), 0.0);
        assert_eq!(Tanh.derivative(0.0f64, 0.0), 1.0);
        // tanh(ln 2) = (2 − ½)/(2 + ½) = 3/5, derivative 1 − 9/25 = 16/25.
        let x = 2f64.ln();
        let y = Tanh.value(x);
        assert!((y - 0.6).abs() < 1e-15);
        assert!((Tanh.derivative(x, y) - 0.64).abs() < 1e-15);
        assert_eq!(Tanh.value(-1000.0f32), -1.0);
    }
}
