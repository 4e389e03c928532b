//! Constant initializers: [`Constant`], [`Zeros`], [`Ones`] (`torch.nn.init.constant_`,
//! `zeros_`, `ones_`).
//!
//! Constant weights make every unit of a layer compute the same thing and receive the same
//! gradient, so they never become different: use them for biases (zeros) and for the scale of
//! normalization layers (ones), not for weights.

use ndarray::Array2;
use rand::RngCore;

use super::{Fans, Initializer, check, short};
use crate::Result;

/// Every entry equal to `value` (`torch.nn.init.constant_`). Draws nothing from the RNG.
///
/// ```
/// use gradflow::init::{Constant, Fans, Initializer};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let b = Constant::new(0.1)?.sample((1, 3), Fans::new(4, 3, 1.0), &mut rng)?;
/// assert_eq!(b, ndarray::array![[0.1, 0.1, 0.1]]);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constant {
    value: f64,
}

impl Constant {
    /// The constant `value`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming `value` when it is not finite.
    pub fn new(value: f64) -> Result<Self> {
        Ok(Constant { value: check::finite("Constant", "value", value)? })
    }

    /// The constant 0 (the same as [`Zeros`]).
    pub fn zeros() -> Self {
        Constant { value: 0.0 }
    }

    /// The constant 1 (the same as [`Ones`]).
    pub fn ones() -> Self {
        Constant { value: 1.0 }
    }

    /// The value.
    pub fn value(&self) -> f64 {
        self.value
    }
}

impl Initializer for Constant {
    fn name(&self) -> String {
        format!("constant({})", short(self.value))
    }

    fn sample(&self, shape: (usize, usize), _fans: Fans, _rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        crate::alloc::try_full("Constant", "shape", shape, self.value)
    }
}

/// All zeros (`torch.nn.init.zeros_`), e.g. for biases: `.bias_init(Zeros)`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Zeros;

impl Initializer for Zeros {
    fn name(&self) -> String {
        "zeros".into()
    }

    fn sample(&self, shape: (usize, usize), _fans: Fans, _rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        crate::alloc::try_zeros("Zeros", "shape", shape)
    }
}

/// All ones (`torch.nn.init.ones_`), e.g. for the scale of a normalization layer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ones;

impl Initializer for Ones {
    fn name(&self) -> String {
        "ones".into()
    }

    fn sample(&self, shape: (usize, usize), _fans: Fans, _rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        crate::alloc::try_full("Ones", "shape", shape, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::testing::{FAN_IN, FAN_OUT, rng};

    #[test]
    fn every_entry_is_the_constant_and_no_randomness_is_used() {
        let fans = Fans::new(FAN_IN, FAN_OUT, 1.0);
        let cases: [(&dyn Initializer, f64); 5] = [
            (&Constant::new(-0.25).unwrap(), -0.25),
            (&Constant::zeros(), 0.0),
            (&Constant::ones(), 1.0),
            (&Zeros, 0.0),
            (&Ones, 1.0),
        ];
        for (init, value) in cases {
            let mut r = rng(91);
            let w = init.sample((512, 512), fans, &mut r).unwrap();
            assert!(w.iter().all(|&v| v == value), "{}", init.name());
            // The RNG was not advanced.
            assert_eq!(r.next_u64(), rng(91).next_u64(), "{}", init.name());
        }
    }

    #[test]
    fn zero_fans_are_fine_for_a_constant() {
        let w = Zeros.sample((2, 0), Fans::new(0, 0, 1.0), &mut rng(0)).unwrap();
        assert_eq!(w.dim(), (2, 0));
    }

    #[test]
    fn non_finite_value_is_refused() {
        for bad in [f64::NAN, f64::INFINITY] {
            let msg = Constant::new(bad).unwrap_err().to_string();
            assert!(msg.contains("Constant") && msg.contains("`value`"), "{msg}");
        }
        assert_eq!(Constant::new(0.5).unwrap().name(), "constant(0.5)");
    }
}
