//! Elementwise loops over slices that several layers, losses and optimizers share, and the
//! adapters that run them on ndarray arrays.
//!
//! The slice functions are kernels ([`crate::kernels`]): generic code calls them as
//! `F::scale_into(…)` and so on, which runs code compiled inside gradflow. The array adapters
//! (`*_array`) take the kernel when the arrays are contiguous in the same order and fall back to
//! ndarray's own loops otherwise (an array with unusual strides: a rare path, left generic).

use ndarray::{Array1, ArrayBase, ArrayView, ArrayViewMut, Data, Dimension};

use crate::Float;
use crate::vectorize::vectorized;

/// `out[i] = factor · x[i]`.
pub(crate) fn scale_into<F: Float>(factor: F, x: &[F], out: &mut [F]) {
    vectorized(
        #[inline(always)]
        || out.iter_mut().zip(x).for_each(|(o, &x)| *o = factor * x),
    )
}

/// `values[i] = values[i] · factor`.
pub(crate) fn scale_in_place<F: Float>(values: &mut [F], factor: F) {
    vectorized(
        #[inline(always)]
        || values.iter_mut().for_each(|v| *v *= factor),
    )
}

/// `values[i] = min(max(values[i], low), high)`.
pub(crate) fn clamp_in_place<F: Float>(values: &mut [F], low: F, high: F) {
    vectorized(
        #[inline(always)]
        || values.iter_mut().for_each(|v| *v = v.max(low).min(high)),
    )
}

/// Σ xᵢ·yᵢ, summed in the slices' type from the first entry to the last.
pub(crate) fn dot<F: Float>(x: &[F], y: &[F]) -> F {
    let mut sum = F::zero();
    x.iter().zip(y).for_each(|(&x, &y)| sum += x * y);
    sum
}

/// Σ xᵢ², each square and the sum in `f64`, from the first entry to the last.
pub(crate) fn sum_of_squares_f64<F: Float>(values: &[F]) -> f64 {
    values.iter().map(|v| v.as_f64() * v.as_f64()).sum::<f64>()
}

/// `out[i] = values[i]` converted from `f64` (rounded to nearest for `f32`).
pub(crate) fn convert_from_f64<F: Float>(values: &[f64], out: &mut [F]) {
    out.iter_mut().zip(values).for_each(|(o, &v)| *o = F::lit(v));
}

/// `out[i] = bytes[i] · scale` (pixels to inputs).
pub(crate) fn from_bytes_scaled<F: Float>(bytes: &[u8], scale: F, out: &mut [F]) {
    out.iter_mut().zip(bytes).for_each(|(o, &b)| *o = F::lit(f64::from(b)) * scale);
}

/// `dst = src` for arrays of the same shape; a copy of memory when both are contiguous in the
/// same order.
pub(crate) fn assign_array<F: Float, D: Dimension>(
    dst: &mut ArrayViewMut<'_, F, D>,
    src: &ArrayView<'_, F, D>,
) {
    if dst.shape() == src.shape()
        && dst.strides() == src.strides()
        && let (Some(d), Some(s)) = (dst.as_slice_memory_order_mut(), src.as_slice_memory_order())
    {
        return d.copy_from_slice(s);
    }
    dst.assign(src);
}

/// The entries of two arrays of the same shape as slices in which entry `i` of one matches
/// entry `i` of the other, when both are contiguous in the same order.
pub(crate) fn matching_slices<'a, F, S, T, D>(
    a: &'a ArrayBase<S, D>,
    b: &'a ArrayBase<T, D>,
) -> Option<(&'a [F], &'a [F])>
where
    S: Data<Elem = F>,
    T: Data<Elem = F>,
    D: Dimension,
{
    if a.shape() != b.shape() || a.strides() != b.strides() {
        return None;
    }
    Some((a.as_slice_memory_order()?, b.as_slice_memory_order()?))
}

/// The entries of `values` as a slice: borrowed when it is contiguous (always, unless a caller
/// replaced a parameter by a strided array), copied otherwise.
pub(crate) fn contiguous<F: Float>(values: &Array1<F>) -> std::borrow::Cow<'_, [F]> {
    match values.as_slice() {
        Some(slice) => std::borrow::Cow::Borrowed(slice),
        None => std::borrow::Cow::Owned(values.to_vec()),
    }
}
