//! Activation functions: the [`Activation`] trait, the zoo, and [`Act`], which makes any
//! activation a [`Layer`](crate::Layer).
//!
//! The derivative of the activation is the factor the gradient is multiplied by at every layer
//! of a deep network: sigmoid's is at most 1/4 and tanh's falls to nearly zero once |x| > 3, which
//! is why deep stacks of them vanish; the ReLU family passes the gradient through unchanged
//! wherever the unit is active.

mod act;
mod relu;
mod tanh;

pub use act::Act;
pub use relu::Relu;
pub use tanh::Tanh;

use crate::Float;

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

    /// Applies f to a whole slice: `y[i] = f(x[i])`. Override for a vectorized version.
    fn forward_slice(&self, x: &[F], y: &mut [F]) {
        for (yi, &xi) in y.iter_mut().zip(x) {
            *yi = self.value(xi);
        }
    }

    /// Backward over a whole slice: `grad_x[i] = grad_y[i] · f'(x[i])`. Override for a
    /// vectorized version.
    fn backward_slice(&self, x: &[F], y: &[F], grad_y: &[F], grad_x: &mut [F]) {
        for i in 0..grad_x.len() {
            grad_x[i] = grad_y[i] * self.derivative(x[i], y[i]);
        }
    }
}

/// A shared activation is an activation: lets a chosen-by-name activation be used wherever a
/// concrete one is.
impl<F: Float> Activation<F> for std::sync::Arc<dyn Activation<F>> {
    fn name(&self) -> &'static str {
        (**self).name()
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
