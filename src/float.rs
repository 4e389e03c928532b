//! The scalar type: one trait bundling everything gradflow needs from `f32` and `f64`.

use std::fmt::{Debug, Display, LowerExp};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use ndarray::{LinalgScalar, ScalarOperand};
use rand_distr::uniform::SampleUniform;

/// A floating-point scalar: implemented for `f32` (speed) and `f64` (gradient checks).
///
/// Every layer, loss and optimizer in gradflow is generic over `F: Float`, so the same
/// network can be trained in `f32` and checked against finite differences in `f64`.
///
/// ```
/// use gradflow::Float;
/// fn half<F: Float>() -> F { F::lit(0.5) }
/// assert_eq!(half::<f32>(), 0.5f32);
/// assert_eq!(half::<f64>().as_f64(), 0.5);
/// ```
pub trait Float:
    num_traits::Float
    + num_traits::FromPrimitive
    + LinalgScalar
    + ScalarOperand
    + SampleUniform
    + Debug
    + Display
    + LowerExp
    + Default
    + Sum
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Send
    + Sync
    + 'static
{
    /// The type's name as used in reports and file formats (`"f32"` or `"f64"`).
    const NAME: &'static str;

    /// Converts an `f64` constant (rounding to nearest for `f32`).
    fn lit(x: f64) -> Self;

    /// Widens (or copies) the value to `f64`.
    fn as_f64(self) -> f64;
}

impl Float for f32 {
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn lit(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";
    #[inline(always)]
    fn lit(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
}
