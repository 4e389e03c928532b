//! Size checks and fallible allocation: every size that comes from a caller is multiplied with
//! checked arithmetic, compared with the limits of [`crate::limits`], and allocated with
//! `Vec::try_reserve_exact`, so that an impossible or excessive request is an [`Error`] naming
//! what was asked for, never a panic inside `ndarray` or an abort of the process.

use ndarray::{Array, Dimension, IntoDimension};

use crate::limits::MAX_TENSOR_ELEMENTS;
use crate::{Error, Result};

/// The number of entries of a tensor of `shape`, computed without overflow and checked against
/// [`MAX_TENSOR_ELEMENTS`]; `component` and `field` name it in the error.
pub(crate) fn check_len(component: &str, field: &'static str, shape: &[usize]) -> Result<usize> {
    let product = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    match product {
        Some(n) if n <= MAX_TENSOR_ELEMENTS => Ok(n),
        _ => Err(Error::config(
            component,
            field,
            format!(
                "a tensor of shape {} has {} entries, more than the limit of {MAX_TENSOR_ELEMENTS} \
                 (gradflow::limits::MAX_TENSOR_ELEMENTS)",
                crate::error::format_shape(shape),
                product.map_or_else(|| "more than usize::MAX".to_string(), |n| n.to_string()),
            ),
        )),
    }
}

/// `a · b` for a size, or an error naming `component`/`field` when it overflows.
pub(crate) fn mul(component: &str, field: &'static str, a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b)
        .ok_or_else(|| Error::config(component, field, format!("{a} × {b} overflows the size type (usize)")))
}

/// A vector with room for exactly `len` values, allocated fallibly: an allocation failure is an
/// error naming `component`/`field` and the bytes asked for.
pub(crate) fn try_vec<T>(component: &str, field: &'static str, len: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|e| {
        let bytes = (len as u128) * (std::mem::size_of::<T>() as u128);
        Error::config(component, field, format!("could not allocate {len} entries ({bytes} bytes): {e}"))
    })?;
    Ok(v)
}

/// `len` copies of `value` in a fallibly allocated vector (no size limit: check it first).
pub(crate) fn try_filled<T: Clone>(
    component: &str,
    field: &'static str,
    len: usize,
    value: T,
) -> Result<Vec<T>> {
    let mut v = try_vec(component, field, len)?;
    v.resize(len, value);
    Ok(v)
}

/// An array of `shape` filled with `value`, its size checked against the limits and its memory
/// allocated fallibly.
pub(crate) fn try_full<T: Clone, Sh: IntoDimension>(
    component: &str,
    field: &'static str,
    shape: Sh,
    value: T,
) -> Result<Array<T, Sh::Dim>> {
    let dim = shape.into_dimension();
    let len = check_len(component, field, dim.slice())?;
    let data = try_filled(component, field, len, value)?;
    Ok(Array::from_shape_vec(dim, data).expect("the length is the product of the shape"))
}

/// An array of zeros of `shape`, checked and allocated fallibly (see [`try_full`]).
pub(crate) fn try_zeros<T: Clone + num_traits::Zero, Sh: IntoDimension>(
    component: &str,
    field: &'static str,
    shape: Sh,
) -> Result<Array<T, Sh::Dim>> {
    try_full(component, field, shape, T::zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_over_the_limit_or_overflowing_are_refused_naming_the_field() {
        let err = check_len("Linear", "weight", &[1 << 20, 1 << 20]).unwrap_err().to_string();
        assert!(err.starts_with("Linear: invalid `weight`") && err.contains("1099511627776"), "{err}");
        let err = check_len("L", "w", &[usize::MAX, 2]).unwrap_err().to_string();
        assert!(err.contains("more than usize::MAX"), "{err}");
        assert_eq!(check_len("L", "w", &[0, usize::MAX]).unwrap(), 0);
        assert_eq!(check_len("L", "w", &[3, 4]).unwrap(), 12);
        assert!(mul("L", "w", usize::MAX, 4).is_err());
    }

    #[test]
    fn an_allocation_the_system_refuses_is_an_error_not_an_abort() {
        // More bytes than isize::MAX: refused by the allocator's capacity check.
        let err = try_vec::<f64>("Data", "images", usize::MAX / 4).unwrap_err().to_string();
        assert!(err.contains("could not allocate") && err.contains("Data"), "{err}");
        let a: Array<f32, _> = try_zeros("L", "w", (2, 3)).unwrap();
        assert_eq!(a, Array::<f32, _>::zeros((2, 3)));
    }
}
