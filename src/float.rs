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
/// The trait is sealed: besides the arithmetic below it carries gradflow's hot loops, compiled
/// inside gradflow for each of the two types, so that a program using gradflow runs them at the
/// optimization level of gradflow's build rather than its own (see the README's "Using gradflow
/// in your crate").
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
    + crate::kernels::Kernels
{
    /// The type's name as used in reports and file formats (`"f32"` or `"f64"`).
    const NAME: &'static str;

    /// Converts an `f64` constant (rounding to nearest for `f32`).
    fn lit(x: f64) -> Self;

    /// Widens (or copies) the value to `f64`.
    fn as_f64(self) -> f64;

    /// `values` seen as `f32`s when `Self` is `f32`, `None` otherwise: lets a kernel take a
    /// vectorized `f32`-only path (such as the fast `tanh` of [`crate::activation::Tanh`])
    /// while other types keep the generic one.
    ///
    /// ```
    /// use gradflow::Float;
    /// assert_eq!(f32::as_f32_slice(&[1.0f32, 2.0]), Some(&[1.0f32, 2.0][..]));
    /// assert_eq!(f64::as_f32_slice(&[1.0f64]), None);
    /// ```
    fn as_f32_slice(values: &[Self]) -> Option<&[f32]> {
        let _ = values;
        None
    }

    /// The mutable counterpart of [`Float::as_f32_slice`].
    fn as_f32_slice_mut(values: &mut [Self]) -> Option<&mut [f32]> {
        let _ = values;
        None
    }

    /// `tanh` as gradflow's kernels compute it: for `f32` a branch-free rational
    /// approximation (Eigen's, relative error below 5·10⁻⁷, exact ±1 in the limits, NaN stays
    /// NaN) that the compiler turns into SIMD code when it is inlined into a loop; for `f64`
    /// the exact `std` function, so that gradient checks in `f64` see the true derivative.
    ///
    /// ```
    /// use gradflow::Float;
    /// assert!((0.5f32.fast_tanh() - 0.5f32.tanh()).abs() <= 5e-7 * 0.5f32.tanh());
    /// assert_eq!(0.5f64.fast_tanh(), 0.5f64.tanh());
    /// ```
    #[inline(always)]
    fn fast_tanh(self) -> Self {
        self.tanh()
    }

    /// The logistic sigmoid `1/(1 + e⁻ˣ)` as gradflow's kernels compute it, without overflow
    /// for any `x` (see [`crate::activation::stable_sigmoid`]): for `f32` with a vectorizable
    /// `exp` (relative error below 3·10⁻⁷ where the result is a normal number), for `f64`
    /// exact.
    ///
    /// ```
    /// use gradflow::Float;
    /// assert_eq!((0.0f32.fast_sigmoid(), (-1000.0f32).fast_sigmoid()), (0.5, 0.0));
    /// assert_eq!(2.0f64.fast_sigmoid(), gradflow::activation::stable_sigmoid(2.0f64));
    /// ```
    #[inline(always)]
    fn fast_sigmoid(self) -> Self {
        crate::activation::stable_sigmoid(self)
    }
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
    #[inline(always)]
    fn as_f32_slice(values: &[Self]) -> Option<&[f32]> {
        Some(values)
    }
    #[inline(always)]
    fn as_f32_slice_mut(values: &mut [Self]) -> Option<&mut [f32]> {
        Some(values)
    }
    #[inline(always)]
    fn fast_tanh(self) -> Self {
        crate::activation::fast_math::tanh(self)
    }
    #[inline(always)]
    fn fast_sigmoid(self) -> Self {
        crate::activation::fast_math::sigmoid(self)
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

/// True when every entry of `values` is finite (no NaN, no ±∞).
///
/// The whole slice is scanned without an early exit, which lets the compiler vectorize the loop:
/// this check runs over every gradient on every optimizer step, so it must cost no more than a
/// memory pass. Callers that need the position of the first bad entry look for it only when this
/// returns `false`.
#[inline]
pub(crate) fn all_finite<F: Float>(values: &[F]) -> bool {
    crate::vectorize::all_entries([values], |[v]| v.is_finite())
}

/// [`all_finite`] for an array of any shape and layout (a fast path for contiguous ones).
pub(crate) fn all_finite_array<F: Float, D: ndarray::Dimension>(
    values: &ndarray::ArrayView<'_, F, D>,
) -> bool {
    match values.as_slice_memory_order() {
        Some(slice) => F::all_finite(slice),
        None => values.iter().all(|v| v.is_finite()),
    }
}
