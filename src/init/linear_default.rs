//! [`LinearDefault`]: PyTorch's default initialization of `nn.Linear`.

use ndarray::Array2;
use rand::RngCore;

use super::{Fans, Initializer, check, draw};
use crate::Result;

/// PyTorch's default for `nn.Linear` (and the recurrent layers): U(−1/√fan_in, 1/√fan_in) for
/// both weight and bias. (`reset_parameters` in `torch/nn/modules/linear.py` calls
/// `kaiming_uniform_(a=√5)`, whose bound √(6/((1+5)·fan_in)) is exactly 1/√fan_in.)
///
/// Its variance, 1/(3·fan_in), is a third of LeCun's 1/fan_in: in a deep stack without
/// normalization the signal shrinks layer by layer — a vanishing gradient by default.
///
/// ```
/// use gradflow::init::{Fans, Initializer, LinearDefault};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let w = LinearDefault.sample((4, 16), Fans::new(16, 4, 1.0), &mut rng)?;
/// assert!(w.iter().all(|v| v.abs() <= 0.25)); // 1/√16
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinearDefault;

impl Initializer for LinearDefault {
    fn name(&self) -> String {
        "uniform(±1/sqrt(fan_in))".into()
    }

    fn sample(&self, shape: (usize, usize), fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        let bound = 1.0 / check::fan("LinearDefault", "fan_in", fans.fan_in)?.sqrt();
        draw::uniform("LinearDefault", shape, -bound, bound, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::testing::{FAN_IN, FAN_OUT, assert_moments, rng};

    #[test]
    fn statistics_match_the_pytorch_formula() {
        // bound = 1/√300, std = bound/√3 = 1/√900 = 1/30; the activation gain is ignored.
        let w = LinearDefault.sample((512, 512), Fans::new(FAN_IN, FAN_OUT, 5.0), &mut rng(1)).unwrap();
        assert_moments(&w, 0.0, 1.0 / 30.0, "LinearDefault");
        let bound = 1.0 / (FAN_IN as f64).sqrt();
        assert!(w.iter().all(|v| v.abs() <= bound));
    }

    #[test]
    fn zero_fan_in_is_refused() {
        let msg = LinearDefault.sample((2, 2), Fans::new(0, 2, 1.0), &mut rng(1)).unwrap_err().to_string();
        assert!(msg.contains("LinearDefault") && msg.contains("`fan_in`"), "{msg}");
    }
}
