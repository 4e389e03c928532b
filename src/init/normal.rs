//! [`Normal`]: N(mean, std²), `torch.nn.init.normal_`.

use ndarray::Array2;
use rand::RngCore;

use super::{Fans, Initializer, check, draw, short};
use crate::Result;

/// N(mean, std²) whatever the fans (`torch.nn.init.normal_`; defaults mean 0, std 1 as there).
///
/// A fixed scale ignores the width of the layer: N(0, 1) weights in a 256-wide layer multiply
/// the signal's standard deviation by √256 = 16 per layer — the classic exploding start.
///
/// ```
/// use gradflow::init::{Fans, Initializer, Normal};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let init = Normal::new(0.0, 0.02)?; // GPT-2's weight init
/// let w = init.sample((64, 64), Fans::new(64, 64, 1.0), &mut rng)?;
/// assert!(w.iter().all(|v| v.abs() < 0.2)); // 10 standard deviations
/// assert!(Normal::new(0.0, -1.0).unwrap_err().to_string().contains("`std`"));
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normal {
    mean: f64,
    std: f64,
}

impl Normal {
    /// N(mean, std²).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming `mean` when it is not finite, or `std` when it is
    /// negative or not finite. (`std = 0` is allowed and gives the constant `mean`.)
    pub fn new(mean: f64, std: f64) -> Result<Self> {
        Ok(Normal { mean: check::finite("Normal", "mean", mean)?, std: check::std("Normal", std)? })
    }

    /// The mean.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// The standard deviation.
    pub fn std(&self) -> f64 {
        self.std
    }
}

impl Default for Normal {
    /// N(0, 1), PyTorch's default.
    fn default() -> Self {
        Normal { mean: 0.0, std: 1.0 }
    }
}

impl Initializer for Normal {
    fn name(&self) -> String {
        format!("normal(mean={}, std={})", short(self.mean), short(self.std))
    }

    fn sample(&self, shape: (usize, usize), _fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        draw::normal("Normal", shape, self.mean, self.std, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::testing::{FAN_IN, FAN_OUT, assert_moments, rng};

    #[test]
    fn statistics_are_the_given_mean_and_std() {
        let fans = Fans::new(FAN_IN, FAN_OUT, 2.0);
        let w = Normal::new(0.5, 0.2).unwrap().sample((512, 512), fans, &mut rng(71)).unwrap();
        assert_moments(&w, 0.5, 0.2, "Normal(0.5, 0.2)");
        let w = Normal::default().sample((512, 512), fans, &mut rng(72)).unwrap();
        assert_moments(&w, 0.0, 1.0, "Normal()");
    }

    #[test]
    fn invalid_settings_are_refused_with_the_field_named() {
        for bad in [-0.5, f64::NAN, f64::INFINITY] {
            let msg = Normal::new(0.0, bad).unwrap_err().to_string();
            assert!(msg.contains("Normal") && msg.contains("`std`"), "{msg}");
        }
        let msg = Normal::new(f64::NAN, 1.0).unwrap_err().to_string();
        assert!(msg.contains("`mean`"), "{msg}");
        assert_eq!(Normal::new(-1.0, 0.0).unwrap().name(), "normal(mean=-1, std=0)");
    }
}
