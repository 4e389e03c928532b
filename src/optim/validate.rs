//! Checks of hyperparameters shared by the optimizers and schedules: each names the component
//! and the field (PyTorch's argument name) and says what was wrong with the value given.

use crate::{Error, Result};

/// A learning rate given at construction: finite and strictly positive.
pub(crate) fn positive_lr(component: &str, lr: f64) -> Result<()> {
    if lr.is_finite() && lr > 0.0 {
        Ok(())
    } else {
        Err(Error::config(component, "lr", format!("must be positive and finite, got {lr}")))
    }
}

/// The settings of an optimizer in the model's float type `F`: `lr` (zero allowed when
/// `lr_may_be_zero`, for a schedule) and `eps` must stay positive and normal, the others finite
/// and not subnormal (1e39 is finite in `f64` but infinite in `f32`; 1e-50 is 0 there).
pub(crate) fn in_float<F: crate::Float>(
    component: &str,
    lr: f64,
    lr_may_be_zero: bool,
    eps: Option<f64>,
    others: &[(&'static str, f64)],
) -> Result<()> {
    use crate::checks::{Needs, setting};
    if !(lr_may_be_zero && lr == 0.0) {
        setting::<F>(component, "lr", lr, Needs::PositiveNormal)?;
    }
    if let Some(eps) = eps {
        setting::<F>(component, "eps", eps, Needs::PositiveNormal)?;
    }
    for &(field, value) in others {
        setting::<F>(component, field, value, Needs::FiniteNotSubnormal)?;
    }
    Ok(())
}

/// A learning rate set later (by a schedule): finite and not negative.
pub(crate) fn scheduled_lr(component: &str, lr: f64) -> Result<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(component, "lr", format!("must be non-negative and finite, got {lr}")))
    }
}

/// A value in `[0, 1)` (momentum, betas, alpha).
pub(crate) fn unit_interval_open(component: &str, field: &'static str, value: f64) -> Result<()> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::config(component, field, format!("must be in [0, 1), got {value}")))
    }
}

/// A value in `[0, 1]` (dampening).
pub(crate) fn unit_interval_closed(component: &str, field: &'static str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::config(component, field, format!("must be in [0, 1], got {value}")))
    }
}

/// A finite, non-negative value (weight decay, eta_min).
pub(crate) fn non_negative(component: &str, field: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(component, field, format!("must be non-negative and finite, got {value}")))
    }
}

/// A finite, strictly positive value (eps, gamma).
pub(crate) fn positive(component: &str, field: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::config(component, field, format!("must be positive and finite, got {value}")))
    }
}
