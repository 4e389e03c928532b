//! LeCun initialization: [`LecunUniform`] and [`LecunNormal`], `Var(W) = 1/fan_in`.
//!
//! LeCun, Bottou, Orr & Müller (1998), "Efficient BackProp" (in *Neural Networks: Tricks of
//! the Trade*), §4.6: weights of standard deviation `1/√fan_in` keep the variance of the
//! forward signal constant from layer to layer when the activation roughly preserves unit
//! variance (LeCun's scaled tanh `1.7159·tanh(2x/3)`; Klambauer et al. 2017 prescribe it for
//! SELU). PyTorch has no `lecun_*`; the scheme is
//! [`KaimingUniform`](super::KaimingUniform)/[`KaimingNormal`](super::KaimingNormal) in fan-in
//! mode with gain 1, whatever activation follows.

use ndarray::Array2;
use rand::RngCore;

use super::{Fans, Initializer, check, draw};
use crate::Result;

/// LeCun uniform: U(−b, b) with b = √(3/fan_in), so Var(W) = 1/fan_in (Keras's
/// `lecun_uniform`; `kaiming_uniform_(mode='fan_in', nonlinearity='linear')` in PyTorch).
/// The activation gain is ignored.
///
/// ```
/// use gradflow::init::{Fans, Initializer, LecunUniform};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let w = LecunUniform.sample((8, 12), Fans::new(12, 8, 1.0), &mut rng)?;
/// assert!(w.iter().all(|v| v.abs() <= 0.5 + 1e-12)); // √(3/12)
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LecunUniform;

impl Initializer for LecunUniform {
    fn name(&self) -> String {
        "lecun_uniform".into()
    }

    fn sample(&self, shape: (usize, usize), fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        let bound = (3.0 / check::fan("LecunUniform", "fan_in", fans.fan_in)?).sqrt();
        draw::uniform("LecunUniform", shape, -bound, bound, rng)
    }
}

/// LeCun normal: N(0, std²) with std = 1/√fan_in
/// (`kaiming_normal_(mode='fan_in', nonlinearity='linear')` in PyTorch). The activation gain is
/// ignored.
///
/// This is the plain normal distribution. Keras's `lecun_normal` draws from a normal truncated
/// at ±2 standard deviations and widened by 1/0.87962566103423978 so that the variance is still
/// 1/fan_in; the two have the same mean and variance but the truncated one has no outliers
/// beyond ±2.27/√fan_in.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LecunNormal;

impl Initializer for LecunNormal {
    fn name(&self) -> String {
        "lecun_normal".into()
    }

    fn sample(&self, shape: (usize, usize), fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        let std = 1.0 / check::fan("LecunNormal", "fan_in", fans.fan_in)?.sqrt();
        draw::normal("LecunNormal", shape, 0.0, std, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::KaimingNormal;
    use crate::init::testing::{FAN_IN, FAN_OUT, assert_moments, rng};

    #[test]
    fn statistics_are_one_over_root_fan_in() {
        // std = 1/√300 for both; fan_out (700) and the activation gain (√2) must not matter.
        let fans = Fans::new(FAN_IN, FAN_OUT, std::f64::consts::SQRT_2);
        let expected = 1.0 / 300f64.sqrt();
        let w = LecunUniform.sample((512, 512), fans, &mut rng(21)).unwrap();
        assert_moments(&w, 0.0, expected, "LecunUniform");
        assert!(w.iter().all(|v| v.abs() <= (3.0f64 / 300.0).sqrt() * (1.0 + 1e-12)));
        let w = LecunNormal.sample((512, 512), fans, &mut rng(22)).unwrap();
        assert_moments(&w, 0.0, expected, "LecunNormal");
    }

    #[test]
    fn lecun_normal_is_kaiming_normal_fan_in_with_gain_one() {
        let fans = Fans::new(FAN_IN, FAN_OUT, 5.0 / 3.0);
        let lecun = LecunNormal.sample((16, 16), fans, &mut rng(23)).unwrap();
        let kaiming = KaimingNormal::fan_in().with_gain(1.0).unwrap().sample((16, 16), fans, &mut rng(23));
        assert_eq!(lecun, kaiming.unwrap());
    }

    #[test]
    fn zero_fan_in_is_refused() {
        let fans = Fans::new(0, 3, 1.0);
        let msg = LecunUniform.sample((3, 1), fans, &mut rng(0)).unwrap_err().to_string();
        assert!(msg.contains("LecunUniform") && msg.contains("`fan_in`"), "{msg}");
        let msg = LecunNormal.sample((3, 1), fans, &mut rng(0)).unwrap_err().to_string();
        assert!(msg.contains("LecunNormal") && msg.contains("`fan_in`"), "{msg}");
    }
}
