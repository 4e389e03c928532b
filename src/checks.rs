//! Checks of values in the float type a model actually uses: a setting given in `f64` (a
//! learning rate, an `eps`, a constant) can be finite and positive in `f64` yet infinite or zero
//! once rounded to `f32` (`1e39`, `1e-50`); these checks run after the conversion and name the
//! component, the field and the value.

use crate::{Error, Float, Result};

/// What a setting must be, once converted to the model's float type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Finite (any sign, zero allowed).
    Finite,
    /// Finite and zero or at least the smallest normal number in magnitude (a subnormal
    /// factor, e.g. a decay of 1e-40 in `f32`, is refused: it slows every operation and loses
    /// its precision).
    FiniteNotSubnormal,
    /// Finite and at least the smallest positive normal number (an `eps` or a learning rate
    /// that would round to zero or to a subnormal value).
    PositiveNormal,
}

/// `value` converted to `F`, or an [`Error::InvalidConfig`] naming `component` and `field` when
/// the converted value does not meet `needs`.
pub(crate) fn setting<F: Float>(component: &str, field: &'static str, value: f64, needs: Needs) -> Result<F> {
    let converted = F::lit(value);
    let min_normal = F::min_positive_value();
    let ok = converted.is_finite()
        && match needs {
            Needs::Finite => true,
            Needs::FiniteNotSubnormal => converted == F::zero() || converted.abs() >= min_normal,
            Needs::PositiveNormal => converted >= min_normal,
        };
    if ok {
        return Ok(converted);
    }
    let limits = match needs {
        Needs::Finite => format!("within ±{:e}", F::max_value().as_f64()),
        Needs::FiniteNotSubnormal => {
            format!("0 or between {:e} and {:e} in magnitude", min_normal.as_f64(), F::max_value().as_f64())
        }
        Needs::PositiveNormal => {
            format!("between {:e} and {:e}", min_normal.as_f64(), F::max_value().as_f64())
        }
    };
    Err(Error::config(
        component,
        field,
        format!("{value:e} becomes {converted:e} in {}; it must be {limits} there", F::NAME),
    ))
}

/// An [`Error::InvalidConfig`] naming `component` and `field` when one of `values` is NaN or
/// infinite.
pub(crate) fn check_finite<'a, F: Float>(
    component: &str,
    field: &'static str,
    values: impl IntoIterator<Item = &'a F>,
) -> Result<()> {
    match values.into_iter().enumerate().find(|(_, v)| !v.is_finite()) {
        None => Ok(()),
        Some((i, v)) => {
            Err(Error::config(component, field, format!("entry {i} is {v}, not a finite number")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_after_conversion() {
        assert_eq!(setting::<f32>("Sgd", "lr", 0.5, Needs::PositiveNormal).unwrap(), 0.5);
        let err = setting::<f32>("Sgd", "lr", 1e39, Needs::PositiveNormal).unwrap_err().to_string();
        assert!(err.starts_with("Sgd: invalid `lr`") && err.contains("1e39") && err.contains("f32"), "{err}");
        assert!(setting::<f64>("Sgd", "lr", 1e39, Needs::PositiveNormal).is_ok());
        assert!(setting::<f32>("Adam", "eps", 1e-50, Needs::PositiveNormal).is_err());
        assert!(setting::<f32>("Adam", "eps", 1e-40, Needs::PositiveNormal).is_err());
        assert!(setting::<f32>("Sgd", "weight_decay", 1e-40, Needs::FiniteNotSubnormal).is_err());
        assert_eq!(setting::<f32>("Sgd", "weight_decay", 0.0, Needs::FiniteNotSubnormal).unwrap(), 0.0);
        assert!(setting::<f64>("C", "value", f64::NAN, Needs::Finite).is_err());
        assert!(check_finite("L", "weight", [1.0f32, f32::INFINITY].iter()).is_err());
        assert!(check_finite("L", "weight", [1.0f32, 2.0].iter()).is_ok());
    }
}
