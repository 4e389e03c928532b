//! Validation of initializer settings and fans, shared by the schemes.

use crate::{Error, Result};

/// A gain must be positive and finite (a zero or negative gain would give all-zero or
/// sign-flipped weights, a non-finite one NaN weights).
pub(crate) fn gain(component: &str, field: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(Error::config(component, field, format!("must be positive and finite, got {value}")))
    }
}

/// A standard deviation must be finite and not negative (0 gives a constant).
pub(crate) fn std(component: &str, value: f64) -> Result<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(Error::config(component, "std", format!("must be finite and >= 0, got {value}")))
    }
}

/// A location or constant value must be finite.
pub(crate) fn finite(component: &str, field: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::config(component, field, format!("must be finite, got {value}")))
    }
}

/// A fan the formula divides by must be at least 1; returned as f64.
pub(crate) fn fan(component: &str, field: &'static str, value: usize) -> Result<f64> {
    if value == 0 {
        Err(Error::config(component, field, "must be at least 1, got 0 (the formula divides by it)"))
    } else {
        Ok(value as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gain_accepts_positive_finite_only() {
        assert_eq!(gain("X", "gain", 2.0).unwrap(), 2.0);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let msg = gain("X", "gain", bad).unwrap_err().to_string();
            assert!(msg.contains("X") && msg.contains("`gain`"), "{msg}");
        }
    }

    #[test]
    fn std_accepts_zero_but_not_negative_or_nan() {
        assert_eq!(std("N", 0.0).unwrap(), 0.0);
        for bad in [-0.1, f64::NAN, f64::NEG_INFINITY] {
            assert!(std("N", bad).unwrap_err().to_string().contains("`std`"));
        }
    }

    #[test]
    fn zero_fan_is_refused_with_its_name() {
        assert_eq!(fan("K", "fan_out", 3).unwrap(), 3.0);
        let msg = fan("K", "fan_out", 0).unwrap_err().to_string();
        assert!(msg.contains("K") && msg.contains("`fan_out`"), "{msg}");
    }

    #[test]
    fn finite_refuses_nan_and_infinity() {
        assert!(finite("C", "value", 1e300).is_ok());
        assert!(finite("C", "value", f64::NAN).unwrap_err().to_string().contains("`value`"));
        assert!(finite("C", "value", f64::INFINITY).is_err());
    }
}
