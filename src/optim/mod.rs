//! Optimizers (PyTorch's update rules), learning-rate schedules and gradient clipping.
//!
//! | here | PyTorch |
//! |------|---------|
//! | [`Sgd`] ([`SgdConfig`]) | `torch.optim.SGD` (momentum, dampening, Nesterov, weight decay) |
//! | [`Adam`] ([`AdamConfig`]) | `torch.optim.Adam` (L2 weight decay, AMSGrad) |
//! | [`AdamW`] ([`AdamWConfig`]) | `torch.optim.AdamW` (decoupled weight decay) |
//! | [`RmsProp`] ([`RmsPropConfig`]) | `torch.optim.RMSprop` (momentum, centered) |
//! | [`StepLr`], [`ExponentialLr`], [`CosineAnnealingLr`] | `torch.optim.lr_scheduler`'s closed forms |
//! | [`clip_grad_norm`], [`clip_grad_value`] | `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_` |
//!
//! Each optimizer is built from a configuration that is validated at construction (an invalid
//! value is an [`crate::Error::InvalidConfig`] naming the field), keeps its per-parameter state
//! in the order the model visits its parameters (built on the first step), and checks every
//! gradient before changing anything: a NaN or infinite gradient is an error and leaves every
//! parameter as it was.
//!
//! ```
//! use gradflow::{Layer, Linear};
//! use gradflow::optim::{Optimizer, SgdConfig};
//! use ndarray::array;
//!
//! let mut model = Linear::from_weights(array![[1.0, -2.0]], Some(array![0.5]))?;
//! let mut sgd = SgdConfig::new(0.1).momentum(0.9).build::<f64>()?;
//! model.visit_parameters_mut(&mut |mut p| p.grad.fill(1.0));
//! sgd.step(&mut model)?;
//! assert_eq!(model.weight()[(0, 0)], 1.0 - 0.1);
//! # Ok::<(), gradflow::Error>(())
//! ```

pub(crate) mod adam;
mod adamw;
mod clip;
pub(crate) mod rmsprop;
mod schedule;
pub(crate) mod sgd;
mod state;
mod validate;

#[cfg(test)]
mod test_model;

pub use adam::{Adam, AdamConfig};
pub use adamw::{AdamW, AdamWConfig};
pub use clip::{clip_grad_norm, clip_grad_value, global_grad_norm};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use schedule::{CosineAnnealingLr, ExponentialLr, LrSchedule, StepLr};
pub use sgd::{Sgd, SgdConfig};

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

    /// Like [`Optimizer::step`], and reports how far each parameter moved: after updating the
    /// `i`-th parameter (in visiting order) it calls `observer(i, ‖W_after − W_before‖²)`, the
    /// squared L2 norm of the update, summed in `f64`. [`crate::Network::step`] uses it to show
    /// hooks each layer's update.
    ///
    /// The provided implementation copies every parameter, calls [`Optimizer::step`] and
    /// compares; gradflow's optimizers instead measure each update inside their update loops,
    /// from the old and new values they hold there anyway (no copy).
    ///
    /// ```
    /// use gradflow::{Layer, Linear};
    /// use gradflow::optim::{Optimizer, SgdConfig};
    /// use ndarray::array;
    ///
    /// let mut model = Linear::from_weights(array![[1.0, -2.0]], Some(array![0.5]))?;
    /// model.visit_parameters_mut(&mut |mut p| p.grad.fill(1.0));
    /// let mut moved = Vec::new();
    /// SgdConfig::new(0.1).build::<f64>()?.step_observed(&mut model, &mut |i, sq| moved.push((i, sq)))?;
    /// // weight: two entries moved by 0.1; bias: one.
    /// assert!((moved[0].1 - 0.02).abs() < 1e-12 && (moved[1].1 - 0.01).abs() < 1e-12);
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Optimizer::step`]; the observer is not called when the step fails.
    fn step_observed(
        &mut self,
        model: &mut dyn Layer<F>,
        observer: &mut dyn FnMut(usize, f64),
    ) -> Result<()> {
        let mut before = Vec::new();
        model.visit_parameters(&mut |p| before.push(p.value.to_owned()));
        self.step(model)?;
        let mut index = 0;
        model.visit_parameters(&mut |p| {
            if let Some(old) = before.get(index) {
                let distance =
                    p.value.iter().zip(old).map(|(&a, &b)| (a.as_f64() - b.as_f64()).powi(2)).sum();
                observer(index, distance);
            }
            index += 1;
        });
        Ok(())
    }

    /// The current learning rate.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate (used by schedules). Zero is accepted — it is where
    /// [`CosineAnnealingLr`] ends with `eta_min = 0`, as in PyTorch — although a zero learning
    /// rate is refused at construction.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when `lr` is negative or not finite.
    fn set_learning_rate(&mut self, lr: f64) -> Result<()>;

    /// Sets the learning rate that `schedule` gives for `epoch` (counted from 0) starting from
    /// `base_lr`, and returns it — what PyTorch's `scheduler.step()` does at the end of an epoch.
    ///
    /// ```
    /// use gradflow::optim::{Optimizer, SgdConfig, StepLr};
    ///
    /// let mut sgd = SgdConfig::new(0.1).build::<f32>()?;
    /// let schedule = StepLr::new(2, 0.5)?;
    /// assert_eq!(sgd.apply_schedule(&schedule, 0.1, 3)?, 0.05);
    /// assert_eq!(sgd.learning_rate(), 0.05);
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when the scheduled rate is negative or not finite.
    fn apply_schedule(&mut self, schedule: &dyn LrSchedule, base_lr: f64, epoch: usize) -> Result<f64> {
        let lr = schedule.learning_rate(base_lr, epoch);
        self.set_learning_rate(lr)?;
        Ok(lr)
    }
}
