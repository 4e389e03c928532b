//! Optimizers (PyTorch's update rules), learning-rate schedules and gradient clipping.

use crate::layer::Layer;
use crate::{Float, Result};

/// Updates a model's parameters from their accumulated gradients.
///
/// Per-parameter state (momentum, moment estimates) is kept in the order in which the model
/// visits its parameters; stepping a model with a different set of parameters is an error.
pub trait Optimizer<F: Float>: Send {
    /// The optimizer's name, e.g. `"sgd"`.
    fn name(&self) -> &'static str;

    /// Applies one update to every parameter of `model` (gradients are not zeroed).
    ///
    /// # Errors
    /// [`crate::Error::ShapeMismatch`] when the model's parameters do not match the state the
    /// optimizer has built up; [`crate::Error::NonFinite`] when a gradient is NaN or infinite
    /// (no parameter is changed in that case).
    fn step(&mut self, model: &mut dyn Layer<F>) -> Result<()>;

    /// The current learning rate.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate (used by schedules).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when `lr` is not positive and finite.
    fn set_learning_rate(&mut self, lr: f64) -> Result<()>;
}
