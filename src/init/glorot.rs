//! Glorot/Xavier initialization: [`GlorotUniform`] and [`GlorotNormal`].
//!
//! Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural
//! networks", AISTATS: `Var(W) = 2/(fan_in + fan_out)`, the compromise between preserving the
//! forward variance (`1/fan_in`) and the backward variance (`1/fan_out`). Formulas of
//! `torch.nn.init.xavier_uniform_` and `xavier_normal_`.

use ndarray::Array2;
use rand::RngCore;

use super::{Fans, Initializer, check, draw, short};
use crate::{Error, Result};

/// Alias: Xavier is Glorot's first name; PyTorch calls this `xavier_uniform_`.
pub type XavierUniform = GlorotUniform;
/// Alias: Xavier is Glorot's first name; PyTorch calls this `xavier_normal_`.
pub type XavierNormal = GlorotNormal;

/// std = gain·√(2/(fan_in + fan_out)), as `xavier_uniform_`/`xavier_normal_` compute it.
fn glorot_std(component: &str, gain: f64, fans: Fans) -> Result<f64> {
    let sum = fans.fan_in + fans.fan_out;
    if sum == 0 {
        return Err(Error::config(component, "fans", "fan_in + fan_out must be at least 1, got 0"));
    }
    Ok(gain * (2.0 / sum as f64).sqrt())
}

/// Glorot/Xavier uniform (`torch.nn.init.xavier_uniform_`): U(−a, a) with
/// a = gain·√(6/(fan_in + fan_out)). Gain defaults to 1, as in PyTorch; it is not taken from
/// the following activation (set it to that activation's gain, e.g. 5/3 for tanh, if wanted).
///
/// ```
/// use gradflow::init::{Fans, GlorotUniform, Initializer};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let init = GlorotUniform::new(5.0 / 3.0)?; // tanh's gain
/// let w = init.sample((20, 30), Fans::new(30, 20, 5.0 / 3.0), &mut rng)?;
/// let bound = 5.0 / 3.0 * (6.0f64 / 50.0).sqrt() * (1.0 + 1e-12); // up to rounding
/// assert!(w.iter().all(|v| v.abs() <= bound));
/// # Ok::<(), gradflow::Error>(())
/// ```
#[doc(alias = "xavier_uniform")]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlorotUniform {
    gain: f64,
}

impl GlorotUniform {
    /// Glorot uniform with the given gain.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `gain` when it is not positive and finite.
    pub fn new(gain: f64) -> Result<Self> {
        Ok(GlorotUniform { gain: check::gain("GlorotUniform", "gain", gain)? })
    }

    /// The gain (PyTorch's `gain`), multiplying the bound.
    pub fn gain(&self) -> f64 {
        self.gain
    }
}

impl Default for GlorotUniform {
    /// Gain 1, PyTorch's default.
    fn default() -> Self {
        GlorotUniform { gain: 1.0 }
    }
}

impl Initializer for GlorotUniform {
    fn name(&self) -> String {
        format!("xavier_uniform(gain={})", short(self.gain))
    }

    fn sample(&self, shape: (usize, usize), fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        // PyTorch: std = gain·√(2/(fan_in+fan_out)); a = √3·std.
        let bound = 3f64.sqrt() * glorot_std("GlorotUniform", self.gain, fans)?;
        draw::uniform("GlorotUniform", shape, -bound, bound, rng)
    }
}

/// Glorot/Xavier normal (`torch.nn.init.xavier_normal_`): N(0, std²) with
/// std = gain·√(2/(fan_in + fan_out)). Gain defaults to 1, as in PyTorch.
///
/// ```
/// use gradflow::init::{Fans, GlorotNormal, Initializer};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let w = GlorotNormal::default().sample((200, 300), Fans::new(300, 200, 1.0), &mut rng)?;
/// let std = (w.mapv(|v| v * v).mean().unwrap()).sqrt();
/// assert!((std - (2.0f64 / 500.0).sqrt()).abs() < 0.002);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[doc(alias = "xavier_normal")]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlorotNormal {
    gain: f64,
}

impl GlorotNormal {
    /// Glorot normal with the given gain.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `gain` when it is not positive and finite.
    pub fn new(gain: f64) -> Result<Self> {
        Ok(GlorotNormal { gain: check::gain("GlorotNormal", "gain", gain)? })
    }

    /// The gain (PyTorch's `gain`), multiplying the standard deviation.
    pub fn gain(&self) -> f64 {
        self.gain
    }
}

impl Default for GlorotNormal {
    /// Gain 1, PyTorch's default.
    fn default() -> Self {
        GlorotNormal { gain: 1.0 }
    }
}

impl Initializer for GlorotNormal {
    fn name(&self) -> String {
        format!("xavier_normal(gain={})", short(self.gain))
    }

    fn sample(&self, shape: (usize, usize), fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        let std = glorot_std("GlorotNormal", self.gain, fans)?;
        draw::normal("GlorotNormal", shape, 0.0, std, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::testing::{FAN_IN, FAN_OUT, assert_moments, rng};

    // Glorot's std with fans 300/700: √(2/1000).
    fn expected_std(gain: f64) -> f64 {
        gain * (2.0f64 / 1000.0).sqrt()
    }

    #[test]
    fn uniform_statistics_match_xavier_uniform() {
        for (gain, seed) in [(1.0, 1), (5.0 / 3.0, 2)] {
            let init = GlorotUniform::new(gain).unwrap();
            // The activation gain must not matter: Glorot's gain is its own.
            let w = init.sample((512, 512), Fans::new(FAN_IN, FAN_OUT, 3.0), &mut rng(seed)).unwrap();
            assert_moments(&w, 0.0, expected_std(gain), "GlorotUniform");
            // a = gain·√(6/1000) (plus rounding: PyTorch computes it as √3·std).
            let bound = gain * (6.0f64 / 1000.0).sqrt() * (1.0 + 1e-12);
            assert!(w.iter().all(|v| v.abs() <= bound));
        }
    }

    #[test]
    fn normal_statistics_match_xavier_normal() {
        for (gain, seed) in [(1.0, 3), (std::f64::consts::SQRT_2, 4)] {
            let init = GlorotNormal::new(gain).unwrap();
            let w = init.sample((512, 512), Fans::new(FAN_IN, FAN_OUT, 3.0), &mut rng(seed)).unwrap();
            assert_moments(&w, 0.0, expected_std(gain), "GlorotNormal");
        }
    }

    #[test]
    fn fans_are_symmetric() {
        // Swapping fan_in and fan_out gives the same distribution, hence the same draw.
        let init = GlorotNormal::default();
        let a = init.sample((5, 5), Fans::new(3, 9, 1.0), &mut rng(5)).unwrap();
        let b = init.sample((5, 5), Fans::new(9, 3, 1.0), &mut rng(5)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn invalid_gain_is_refused_with_the_field_named() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let msg = GlorotUniform::new(bad).unwrap_err().to_string();
            assert!(msg.contains("GlorotUniform") && msg.contains("`gain`"), "{msg}");
            let msg = GlorotNormal::new(bad).unwrap_err().to_string();
            assert!(msg.contains("GlorotNormal") && msg.contains("`gain`"), "{msg}");
        }
    }

    #[test]
    fn zero_fans_are_refused() {
        let fans = Fans::new(0, 0, 1.0);
        assert!(GlorotUniform::default().sample((1, 1), fans, &mut rng(0)).is_err());
        let msg = GlorotNormal::default().sample((1, 1), fans, &mut rng(0)).unwrap_err().to_string();
        assert!(msg.contains("`fans`"), "{msg}");
    }

    #[test]
    fn names_show_the_gain() {
        assert_eq!(GlorotUniform::default().name(), "xavier_uniform(gain=1)");
        assert_eq!(GlorotNormal::new(5.0 / 3.0).unwrap().name(), "xavier_normal(gain=1.6667)");
    }
}
