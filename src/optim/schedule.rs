//! Learning-rate schedules: the closed forms of `torch.optim.lr_scheduler`'s `StepLR`,
//! `ExponentialLR` and `CosineAnnealingLR`.

use std::f64::consts::PI;

use super::validate;
use crate::{Error, Result};

/// A learning rate as a function of the epoch.
///
/// `learning_rate(base_lr, epoch)` is the rate to use *during* `epoch` (counted from 0) when
/// training started at `base_lr` — PyTorch's `_get_closed_form_lr` with `last_epoch = epoch`, i.e.
/// the rate after `epoch` calls of `scheduler.step()`. Schedules are pure functions, so they can
/// be shared, evaluated ahead of time or plotted; [`Optimizer::apply_schedule`](super::Optimizer::apply_schedule)
/// sets an optimizer's rate from one.
///
/// ```
/// use gradflow::optim::{LrSchedule, StepLr};
/// let schedule = StepLr::new(30, 0.1)?;
/// assert_eq!(schedule.learning_rate(0.05, 29), 0.05);
/// assert!((schedule.learning_rate(0.05, 30) - 0.005).abs() < 1e-15);
/// # Ok::<(), gradflow::Error>(())
/// ```
pub trait LrSchedule: Send + Sync + std::fmt::Debug {
    /// The schedule's name, e.g. `"step"`.
    fn name(&self) -> &'static str;

    /// The learning rate for `epoch` (from 0), starting from `base_lr`.
    fn learning_rate(&self, base_lr: f64, epoch: usize) -> f64;
}

/// Multiplies the rate by `gamma` every `step_size` epochs: `base_lr · gamma^⌊epoch / step_size⌋`
/// (`StepLR`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StepLr {
    step_size: usize,
    gamma: f64,
}

impl StepLr {
    /// A step schedule. PyTorch's default `gamma` is 0.1.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `step_size` when it is 0, or `gamma` when it is not
    /// positive and finite.
    pub fn new(step_size: usize, gamma: f64) -> Result<Self> {
        if step_size == 0 {
            return Err(Error::config("StepLr", "step_size", "must be at least 1, got 0"));
        }
        validate::positive("StepLr", "gamma", gamma)?;
        Ok(StepLr { step_size, gamma })
    }

    /// Epochs between decays.
    pub fn step_size(&self) -> usize {
        self.step_size
    }

    /// The factor applied at each decay.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }
}

impl LrSchedule for StepLr {
    fn name(&self) -> &'static str {
        "step"
    }

    fn learning_rate(&self, base_lr: f64, epoch: usize) -> f64 {
        base_lr * self.gamma.powi(power(epoch / self.step_size))
    }
}

/// Multiplies the rate by `gamma` every epoch: `base_lr · gamma^epoch` (`ExponentialLR`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ExponentialLr {
    gamma: f64,
}

impl ExponentialLr {
    /// An exponential schedule.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `gamma` when it is not positive and finite.
    pub fn new(gamma: f64) -> Result<Self> {
        validate::positive("ExponentialLr", "gamma", gamma)?;
        Ok(ExponentialLr { gamma })
    }

    /// The factor applied each epoch.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }
}

impl LrSchedule for ExponentialLr {
    fn name(&self) -> &'static str {
        "exponential"
    }

    fn learning_rate(&self, base_lr: f64, epoch: usize) -> f64 {
        base_lr * self.gamma.powi(power(epoch))
    }
}

/// Anneals the rate along half a cosine from `base_lr` to `eta_min` over `t_max` epochs
/// (`CosineAnnealingLR`, from Loshchilov & Hutter, "SGDR", 2017, without restarts):
/// `eta_min + (base_lr − eta_min) · (1 + cos(π · epoch / t_max)) / 2`.
///
/// Past `t_max` the closed form keeps following the cosine (back up towards `base_lr`), as
/// PyTorch's closed form does.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CosineAnnealingLr {
    t_max: usize,
    eta_min: f64,
}

impl CosineAnnealingLr {
    /// A cosine schedule reaching `eta_min` (PyTorch's default 0) at epoch `t_max`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `t_max` when it is 0, or `eta_min` when it is negative or
    /// not finite.
    pub fn new(t_max: usize, eta_min: f64) -> Result<Self> {
        if t_max == 0 {
            return Err(Error::config("CosineAnnealingLr", "t_max", "must be at least 1, got 0"));
        }
        validate::non_negative("CosineAnnealingLr", "eta_min", eta_min)?;
        Ok(CosineAnnealingLr { t_max, eta_min })
    }

    /// The half-period in epochs.
    pub fn t_max(&self) -> usize {
        self.t_max
    }

    /// The rate reached at `t_max`.
    pub fn eta_min(&self) -> f64 {
        self.eta_min
    }
}

impl LrSchedule for CosineAnnealingLr {
    fn name(&self) -> &'static str {
        "cosine"
    }

    fn learning_rate(&self, base_lr: f64, epoch: usize) -> f64 {
        let phase = PI * epoch as f64 / self.t_max as f64;
        self.eta_min + (base_lr - self.eta_min) * (1.0 + phase.cos()) / 2.0
    }
}

/// An exponent for `powi`, saturating (a rate to the power 2³¹ is 0 or ∞ anyway).
fn power(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use approx::{assert_abs_diff_eq, relative_eq};

    use super::*;
    use crate::optim::{Optimizer, SgdConfig};

    /// Within 1e-12, relative to the larger magnitude when that is above 1.
    fn close(a: f64, b: f64) -> bool {
        relative_eq!(a, b, epsilon = 1e-12, max_relative = 1e-12)
    }

    #[test]
    fn step_decays_every_step_size_epochs() {
        let s = StepLr::new(3, 0.5).unwrap();
        let expected = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025];
        for (epoch, e) in expected.into_iter().enumerate() {
            assert!(close(s.learning_rate(0.1, epoch), e), "epoch {epoch}: {}", s.learning_rate(0.1, epoch));
        }
    }

    #[test]
    fn exponential_decays_every_epoch() {
        let s = ExponentialLr::new(0.9).unwrap();
        for (epoch, e) in [1.0, 0.9, 0.81, 0.729].into_iter().enumerate() {
            assert!(close(s.learning_rate(1.0, epoch), e), "epoch {epoch}");
        }
    }

    #[test]
    fn cosine_follows_half_a_cosine_to_eta_min() {
        let s = CosineAnnealingLr::new(4, 0.01).unwrap();
        // 0.01 + 0.09 · (1 + cos(π e/4)) / 2: cos = 1, √½, 0, −√½, −1
        let half = std::f64::consts::FRAC_1_SQRT_2;
        let expected = [0.1, 0.01 + 0.045 * (1.0 + half), 0.055, 0.01 + 0.045 * (1.0 - half), 0.01];
        for (epoch, e) in expected.into_iter().enumerate() {
            assert!(close(s.learning_rate(0.1, epoch), e), "epoch {epoch}: {}", s.learning_rate(0.1, epoch));
        }
        // Past t_max the cosine rises again: epoch 6 equals epoch 2.
        assert!(close(s.learning_rate(0.1, 6), 0.055));
    }

    #[test]
    fn an_optimizer_follows_a_schedule_down_to_zero() {
        let mut sgd = SgdConfig::new(0.2).build::<f32>().unwrap();
        let cosine = CosineAnnealingLr::new(2, 0.0).unwrap();
        assert!(close(sgd.apply_schedule(&cosine, 0.2, 1).unwrap(), 0.1));
        assert!(close(sgd.learning_rate(), 0.1));
        assert_abs_diff_eq!(sgd.apply_schedule(&cosine, 0.2, 2).unwrap(), 0.0, epsilon = 1e-17);
    }

    #[test]
    fn invalid_schedules_are_refused_naming_the_field() {
        let fields = [
            StepLr::new(0, 0.1).unwrap_err(),
            StepLr::new(1, 0.0).unwrap_err(),
            ExponentialLr::new(-0.5).unwrap_err(),
            CosineAnnealingLr::new(0, 0.0).unwrap_err(),
            CosineAnnealingLr::new(10, -1e-3).unwrap_err(),
        ]
        .map(|e| match e {
            Error::InvalidConfig { field, .. } => field,
            other => panic!("expected InvalidConfig, got {other}"),
        });
        assert_eq!(fields, ["step_size", "gamma", "gamma", "t_max", "eta_min"]);
    }
}
