//! [`Uniform`]: U(low, high), `torch.nn.init.uniform_`.

use ndarray::Array2;
use rand::RngCore;

use super::{Fans, Initializer, check, draw, short};
use crate::{Error, Result};

/// U[low, high) whatever the fans (`torch.nn.init.uniform_(a, b)`; defaults 0 and 1 as there).
///
/// ```
/// use gradflow::init::{Fans, Initializer, Uniform};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let w = Uniform::new(-0.1, 0.1)?.sample((8, 8), Fans::new(8, 8, 1.0), &mut rng)?;
/// assert!(w.iter().all(|&v| (-0.1..0.1).contains(&v)));
/// assert!(Uniform::new(1.0, 1.0).unwrap_err().to_string().contains("`high`"));
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uniform {
    low: f64,
    high: f64,
}

impl Uniform {
    /// U[low, high).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming `low` or `high` when it is not finite, `high` when
    /// it is not greater than `low`, and `high` when `high − low` overflows.
    pub fn new(low: f64, high: f64) -> Result<Self> {
        let low = check::finite("Uniform", "low", low)?;
        let high = check::finite("Uniform", "high", high)?;
        if high <= low {
            return Err(Error::config(
                "Uniform",
                "high",
                format!("must be greater than low ({low}), got {high}"),
            ));
        }
        if !(high - low).is_finite() {
            return Err(Error::config(
                "Uniform",
                "high",
                format!("high − low overflows for U({low}, {high})"),
            ));
        }
        Ok(Uniform { low, high })
    }

    /// The lower bound (included).
    pub fn low(&self) -> f64 {
        self.low
    }

    /// The upper bound (excluded).
    pub fn high(&self) -> f64 {
        self.high
    }
}

impl Default for Uniform {
    /// U[0, 1), PyTorch's default.
    fn default() -> Self {
        Uniform { low: 0.0, high: 1.0 }
    }
}

impl Initializer for Uniform {
    fn name(&self) -> String {
        format!("uniform(low={}, high={})", short(self.low), short(self.high))
    }

    fn sample(&self, shape: (usize, usize), _fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        draw::uniform("Uniform", shape, self.low, self.high, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::testing::{FAN_IN, FAN_OUT, assert_moments, rng};

    #[test]
    fn statistics_are_midpoint_and_width_over_root_twelve() {
        // U(−1, 3): mean 1, std 4/√12.
        let fans = Fans::new(FAN_IN, FAN_OUT, 2.0);
        let w = Uniform::new(-1.0, 3.0).unwrap().sample((512, 512), fans, &mut rng(81)).unwrap();
        assert_moments(&w, 1.0, 4.0 / 12f64.sqrt(), "Uniform(-1, 3)");
        assert!(w.iter().all(|&v| (-1.0..3.0).contains(&v)));
        let w = Uniform::default().sample((512, 512), fans, &mut rng(82)).unwrap();
        assert_moments(&w, 0.5, 1.0 / 12f64.sqrt(), "Uniform()");
    }

    #[test]
    fn invalid_bounds_are_refused_with_the_field_named() {
        for (low, high, field) in [
            (1.0, 1.0, "`high`"),
            (2.0, 1.0, "`high`"),
            (f64::NAN, 1.0, "`low`"),
            (0.0, f64::INFINITY, "`high`"),
            (-f64::MAX, f64::MAX, "`high`"),
        ] {
            let msg = Uniform::new(low, high).unwrap_err().to_string();
            assert!(msg.contains("Uniform") && msg.contains(field), "U({low}, {high}): {msg}");
        }
        assert_eq!(Uniform::new(-0.5, 0.5).unwrap().name(), "uniform(low=-0.5, high=0.5)");
    }
}
