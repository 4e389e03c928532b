//! Matrix products used by the layers: the one seam where the GEMM backend is chosen.

use ndarray::{ArrayView2, ArrayViewMut2, linalg::general_mat_mul};

use crate::Float;

/// `c = alpha · op(a) · op(b) + beta · c`, where `op(x)` is `xᵀ` when the matching flag is set.
/// Shapes must already have been checked by the caller (layers check and return errors naming
/// themselves, so this never sees user input unchecked).
#[inline]
pub(crate) fn gemm<F: Float>(
    alpha: F,
    a: ArrayView2<'_, F>,
    transpose_a: bool,
    b: ArrayView2<'_, F>,
    transpose_b: bool,
    beta: F,
    mut c: ArrayViewMut2<'_, F>,
) {
    let a = if transpose_a { a.reversed_axes() } else { a };
    let b = if transpose_b { b.reversed_axes() } else { b };
    general_mat_mul(alpha, &a, &b, beta, &mut c);
}
