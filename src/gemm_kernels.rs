//! The `gemm` crate's f32 and f64 kernels (`gemm-f32`, `gemm-f64`), called through the same
//! front end as `gemm::gemm` but without depending on `gemm` itself: `gemm` 0.19 always compiles
//! its complex-number kernels (`gemm-c32`, `gemm-c64`) as well, which gradflow never calls.
//!
//! This file uses nothing from the rest of gradflow, so that `tests/no_alloc.rs` and
//! `benches/gemm.rs` include it (`#[path]`) and call exactly the kernels the layers call.

use std::any::TypeId;

pub(crate) use gemm_common::Parallelism;

/// `dst := alpha·dst + beta·lhs·rhs` (`dst` is read only when `read_dst` is true) for `T` =
/// `f32` or `f64`: `gemm::gemm` with no conjugation. Strides are in elements, `*_cs` between
/// columns and `*_rs` between rows.
///
/// # Safety
/// As for `gemm::gemm`: `lhs`, `rhs` and `dst` with their strides address m×k, k×n and m×n
/// valid elements of `T`, and `dst` overlaps neither `lhs` nor `rhs` (nor itself). In addition,
/// every stride is non-negative (`gemm::gemm` also accepts negative ones; gradflow never passes
/// them).
///
/// # Panics
/// When `T` is neither `f32` nor `f64`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm<T: 'static>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_cs: isize,
    dst_rs: isize,
    read_dst: bool,
    lhs: *const T,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const T,
    rhs_cs: isize,
    rhs_rs: isize,
    alpha: T,
    beta: T,
    parallelism: Parallelism,
) {
    debug_assert!([dst_cs, dst_rs, lhs_cs, lhs_rs, rhs_cs, rhs_rs].iter().all(|&s| s >= 0));
    // The microkernels want a column-major destination: a row-major one is computed as the
    // transposed product dstᵀ = rhsᵀ·lhsᵀ, as `gemm::gemm` does (gemm 0.19, src/gemm.rs).
    let (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) = if dst_cs < dst_rs {
        (n, m, dst_rs, dst_cs, rhs, rhs_rs, rhs_cs, lhs, lhs_rs, lhs_cs)
    } else {
        (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs)
    };
    let (no_conj_dst, no_conj_lhs, no_conj_rhs) = (false, false, false);
    // SAFETY (both branches): `T` is the type the pointers are cast to, checked by `TypeId`; the
    // caller guarantees the rest, and the transposition above only swaps roles and strides.
    unsafe {
        if TypeId::of::<T>() == TypeId::of::<f64>() {
            gemm_f64::gemm::f64::get_gemm_fn()(
                m,
                n,
                k,
                dst.cast::<f64>(),
                dst_cs,
                dst_rs,
                read_dst,
                lhs.cast::<f64>(),
                lhs_cs,
                lhs_rs,
                rhs.cast::<f64>(),
                rhs_cs,
                rhs_rs,
                *(&alpha as *const T).cast::<f64>(),
                *(&beta as *const T).cast::<f64>(),
                no_conj_dst,
                no_conj_lhs,
                no_conj_rhs,
                parallelism,
            )
        } else if TypeId::of::<T>() == TypeId::of::<f32>() {
            gemm_f32::gemm::f32::get_gemm_fn()(
                m,
                n,
                k,
                dst.cast::<f32>(),
                dst_cs,
                dst_rs,
                read_dst,
                lhs.cast::<f32>(),
                lhs_cs,
                lhs_rs,
                rhs.cast::<f32>(),
                rhs_cs,
                rhs_rs,
                *(&alpha as *const T).cast::<f32>(),
                *(&beta as *const T).cast::<f32>(),
                no_conj_dst,
                no_conj_lhs,
                no_conj_rhs,
                parallelism,
            )
        } else {
            panic!("gemm_kernels::gemm is for f32 and f64 only");
        }
    }
}
