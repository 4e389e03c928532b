//! Matrix products used by the layers: the one seam where the GEMM backend is chosen.
//!
//! `f32` and `f64` products go to the [`gemm`](https://docs.rs/gemm) crate's kernels
//! (`gemm-f32`, `gemm-f64`, through [`crate::gemm_kernels`]), which pick their code at run time
//! for the CPU they run on (AVX-512, AVX2 + FMA, NEON or plain scalar code), so the default build
//! needs nothing beyond crates.io and runs on any x86-64 or aarch64 machine. Any other [`Float`]
//! type goes to ndarray's `general_mat_mul`.
//!
//! Threads: products of at least [`PARALLEL_MIN_WORK`] multiply-adds are cut into as many
//! blocks of the output as rayon's pool has threads (its size follows `RAYON_NUM_THREADS`),
//! along the output's longer side, and each block is one single-threaded product on its own
//! thread (rayon joins). Measured on a 2-core AVX-512 machine this beat the `gemm` crate's own
//! threading by 10–15% on the 256×1024×1024 products of a wide MLP (W2 of the peer
//! benchmarks), where the crate's threads synchronize inside the product. Smaller products run
//! on the calling thread, where a second thread costs more in synchronization than it saves.
//! Inside a [`crate::threads::parallel_region`] (every pass of a `Network` that split work in
//! its previous pass) the other threads are polling for work, so the threshold can be low.
//!
//! Layout: the crate computes into a column-major output, transposing the problem when the
//! output is row-major, and packs its left operand — with a slow transposing copy when that
//! operand is row-major. A layer's forward product `x · Wᵀ` into a row-major output is exactly
//! that case, with the (large) weight as the operand packed. When the output is at least four
//! times as wide as it is tall, such products are instead computed column-major into a per-thread
//! scratch buffer, where the crate packs the (smaller) input and reads the weight in place, and
//! then transposed into the output ([`transposed_output_pays`], [`crate::scratch`]). The choice
//! is made once for the whole product and kept by the blocks it is cut into for threads (which
//! are narrower, so would not qualify themselves): at two threads W2's 256×1024×1024 forward
//! product went from 234 to 257 GFLOP/s (criterion medians,
//! `RAYON_NUM_THREADS=2 cargo bench --bench gemm -- gradflow/256x1024x1024`, two runs each).
//!
//! Bias: [`gemm_plus_row`] adds a row to every row of the product. On the transposed route the
//! row is added in the transposing pass, so the output is written once instead of being filled
//! with the bias, then read and written again (W2's two wide forward products with bias, one
//! thread: median 6.68 → 6.61 ms, five alternating runs of 400).

use std::any::TypeId;

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Axis, linalg::general_mat_mul};

use crate::Float;
use crate::gemm_kernels::{self, Parallelism};
use crate::threads::busy;

/// The smallest product `m·n·k` that is split across threads. Measured on a 2-core AVX-512
/// machine with the other thread polling (a parallel region): the residual MLP of W3, whose
/// products are 128×256×256 (8.4·10⁶), ran a training step in 11.1–11.3 ms on two threads
/// against 15.3–16.0 ms unsplit; at 2²² the step was no faster (11.4 ms). Without a parallel
/// region (the other thread asleep) products this small were slower split than whole.
pub(crate) const PARALLEL_MIN_WORK: usize = 1 << 23;

/// `c = alpha · op(a) · op(b) + beta · c`, where `op(x)` is `xᵀ` when the matching flag is set.
/// Shapes must already have been checked by the caller (layers check and return errors naming
/// themselves, so this never sees user input unchecked); a mismatch here is a bug and panics.
///
/// When `beta` is zero, `c` is overwritten without being read (a NaN in it does not spread).
///
/// Runs a kernel ([`crate::kernels`]): the whole product, with its threads and layout choices,
/// is compiled inside gradflow.
#[inline]
pub(crate) fn gemm<F: Float>(
    alpha: F,
    a: ArrayView2<'_, F>,
    transpose_a: bool,
    b: ArrayView2<'_, F>,
    transpose_b: bool,
    beta: F,
    c: ArrayViewMut2<'_, F>,
) {
    F::gemm(alpha, a, transpose_a, b, transpose_b, beta, c);
}

/// [`gemm`]'s kernel.
pub(crate) fn gemm_kernel<F: Float>(
    alpha: F,
    a: ArrayView2<'_, F>,
    transpose_a: bool,
    b: ArrayView2<'_, F>,
    transpose_b: bool,
    beta: F,
    c: ArrayViewMut2<'_, F>,
) {
    product(alpha, a, transpose_a, b, transpose_b, Addend::Scaled(beta), c);
}

/// `c[i, j] = op(a) · op(b) [i, j] + row[j]`: a product plus a row broadcast over the rows of
/// the output, as a layer's bias is. `c`'s previous contents are neither read nor kept.
///
/// Where the product goes through a scratch buffer ([`transposed_output_pays`]) the row is added
/// while that buffer is transposed into `c`, which is written once; otherwise `c` is filled with
/// the row and the product added to it (as PyTorch's `addmm` does).
///
/// Runs a kernel ([`crate::kernels`]), as [`gemm`] does.
#[inline]
pub(crate) fn gemm_plus_row<F: Float>(
    a: ArrayView2<'_, F>,
    transpose_a: bool,
    b: ArrayView2<'_, F>,
    transpose_b: bool,
    row: ArrayView1<'_, F>,
    c: ArrayViewMut2<'_, F>,
) {
    F::gemm_plus_row(a, transpose_a, b, transpose_b, row, c);
}

/// [`gemm_plus_row`]'s kernel.
pub(crate) fn gemm_plus_row_kernel<F: Float>(
    a: ArrayView2<'_, F>,
    transpose_a: bool,
    b: ArrayView2<'_, F>,
    transpose_b: bool,
    row: ArrayView1<'_, F>,
    c: ArrayViewMut2<'_, F>,
) {
    assert!(row.len() == c.ncols(), "gemm_plus_row: a row of {} for {} columns", row.len(), c.ncols());
    product(F::one(), a, transpose_a, b, transpose_b, Addend::Row(row), c);
}

/// What a product is added to.
#[derive(Clone, Copy, Debug)]
enum Addend<'a, F> {
    /// `beta · c`, the output's previous contents (not read when `beta` is zero).
    Scaled(F),
    /// A row broadcast over the output's rows; its previous contents are ignored.
    Row(ArrayView1<'a, F>),
}

impl<'a, F: Float> Addend<'a, F> {
    /// The addend of the columns `..at` and `at..` of the output.
    fn split_columns(self, at: usize) -> (Self, Self) {
        match self {
            Addend::Scaled(beta) => (self, Addend::Scaled(beta)),
            Addend::Row(row) => {
                let (left, right) = row.split_at(Axis(0), at);
                (Addend::Row(left), Addend::Row(right))
            }
        }
    }

    /// Prepares `c` for a product added to it with the returned `beta`, for the paths that
    /// cannot add a row themselves: fills it with the row (and returns 1), or with zeros when
    /// `beta` is zero (ndarray's generic product computes `beta · c` even then, and `0 · NaN`
    /// is NaN).
    fn prepare(self, c: &mut ArrayViewMut2<'_, F>) -> F {
        match self {
            Addend::Scaled(beta) => {
                if beta == F::zero() {
                    c.fill(F::zero());
                }
                beta
            }
            Addend::Row(row) => {
                fill_rows(row, c);
                F::one()
            }
        }
    }
}

/// Sets every row of `c` to `row`.
fn fill_rows<F: Float>(row: ArrayView1<'_, F>, c: &mut ArrayViewMut2<'_, F>) {
    for mut out in c.rows_mut() {
        match (out.as_slice_mut(), row.as_slice()) {
            (Some(out), Some(row)) => out.copy_from_slice(row),
            _ => out.assign(&row),
        }
    }
}

/// `c = alpha · op(a) · op(b) + addend`: [`gemm`] and [`gemm_plus_row`].
fn product<F: Float>(
    alpha: F,
    a: ArrayView2<'_, F>,
    transpose_a: bool,
    b: ArrayView2<'_, F>,
    transpose_b: bool,
    addend: Addend<'_, F>,
    c: ArrayViewMut2<'_, F>,
) {
    let a = if transpose_a { a.reversed_axes() } else { a };
    let b = if transpose_b { b.reversed_axes() } else { b };
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(k == k2 && c.dim() == (m, n), "gemm: ({m}, {k}) · ({k2}, {n}) into {:?}", c.dim());
    if is_f32_or_f64::<F>() {
        let threads = rayon::current_num_threads();
        let work = m.saturating_mul(n).saturating_mul(k);
        let parts = if work >= PARALLEL_MIN_WORK { threads } else { 1 };
        // Decided on the whole product: its blocks, cut along the longer side, are narrower.
        let route = if transposed_output_pays(&a, &b, &c) { Route::TransposedOutput } else { Route::Direct };
        in_blocks(alpha, a, b, addend, c, parts, route);
    } else {
        let mut c = c;
        let beta = addend.prepare(&mut c);
        general_mat_mul(alpha, &a, &b, beta, &mut c);
    }
}

fn is_f32_or_f64<F: 'static>() -> bool {
    let t = TypeId::of::<F>();
    t == TypeId::of::<f32>() || t == TypeId::of::<f64>()
}

/// Rows (or columns) of a block are a multiple of this, so that blocks start on whole SIMD
/// vectors of the output.
const BLOCK_ALIGN: usize = 16;

/// How [`gemm_crate`] lays out a product (see [`transposed_output_pays`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Route {
    /// Straight into `c`.
    Direct,
    /// Column-major into a scratch buffer, then transposed into `c`.
    TransposedOutput,
}

/// `c = alpha · a · b + beta · c` as `parts` products on blocks of `c` cut along its longer
/// side, run in parallel by rayon joins; one block is a single-threaded product, laid out by
/// `route`.
fn in_blocks<F: Float>(
    alpha: F,
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    addend: Addend<'_, F>,
    c: ArrayViewMut2<'_, F>,
    parts: usize,
    route: Route,
) {
    let (m, n) = c.dim();
    let long = m.max(n);
    if parts < 2 || long < 2 * BLOCK_ALIGN {
        return gemm_crate(alpha, a, b, addend, c, route);
    }
    let left = parts / 2;
    let at = (long * left / parts).next_multiple_of(BLOCK_ALIGN).min(long);
    if m >= n {
        let ((c1, c2), (a1, a2)) = (c.split_at(Axis(0), at), a.split_at(Axis(0), at));
        crate::threads::note_split();
        rayon::join(
            || busy(|| in_blocks(alpha, a1, b, addend, c1, left, route)),
            || busy(|| in_blocks(alpha, a2, b, addend, c2, parts - left, route)),
        );
    } else {
        let ((c1, c2), (b1, b2)) = (c.split_at(Axis(1), at), b.split_at(Axis(1), at));
        let (addend1, addend2) = addend.split_columns(at);
        crate::threads::note_split();
        rayon::join(
            || busy(|| in_blocks(alpha, a, b1, addend1, c1, left, route)),
            || busy(|| in_blocks(alpha, a, b2, addend2, c2, parts - left, route)),
        );
    }
}

/// The one call into the `gemm` crate, which takes raw pointers and strides.
///
/// Checked here before the call, so that the pointers are valid for every index the crate
/// touches: `F` is `f32` or `f64` (the crate panics on other types); `a` is `(m, k)`, `b` is
/// `(k, n)`, `c` is `(m, n)`, all views that ndarray guarantees to be in bounds for every index
/// within their shapes, with the strides ndarray reports; `c` is a unique mutable borrow, so it
/// overlaps neither `a` nor `b`, and its own elements are distinct (ndarray refuses overlapping
/// mutable views). Negative strides, legal in ndarray, are sent to ndarray's product instead,
/// as are empty products (nothing to compute, or `c = beta · c` when `k = 0`).
fn gemm_crate<F: Float>(
    alpha: F,
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    addend: Addend<'_, F>,
    mut c: ArrayViewMut2<'_, F>,
    route: Route,
) {
    let ((m, k), n) = (a.dim(), b.ncols());
    assert!(is_f32_or_f64::<F>() && b.nrows() == k && c.dim() == (m, n));
    let non_negative = |s: &[isize]| s.iter().all(|&s| s >= 0);
    if m == 0
        || n == 0
        || k == 0
        || !(non_negative(a.strides()) && non_negative(b.strides()) && non_negative(c.strides()))
    {
        let beta = addend.prepare(&mut c);
        general_mat_mul(alpha, &a, &b, beta, &mut c);
        return;
    }
    if route == Route::TransposedOutput && transposed_output(alpha, &a, &b, addend, &mut c) {
        return;
    }
    // The crate reads `c` only for a non-zero beta, so only a row needs writing in first.
    let beta = match addend {
        Addend::Scaled(beta) => beta,
        row => row.prepare(&mut c),
    };
    let ([a_rs, a_cs], [b_rs, b_cs], [c_rs, c_cs]) =
        (stride2(a.strides()), stride2(b.strides()), stride2(c.strides()));
    // SAFETY: see the function's documentation; every condition it lists was asserted or
    // branched on above. The crate computes dst := alpha·dst + beta·lhs·rhs, reading dst only
    // when `read_dst` is true, so our (alpha, beta) are passed as (beta, alpha).
    unsafe {
        gemm_kernels::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            beta != F::zero(),
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            beta,
            alpha,
            Parallelism::None,
        );
    }
}

fn stride2(strides: &[isize]) -> [isize; 2] {
    [strides[0], strides[1]]
}

/// Whether `c = a · b` is faster computed column-major into a scratch buffer and transposed
/// into `c`: when `c` and `a` are row-major, `b` is column-major (`b = Wᵀ` of a row-major
/// weight `W`, as in every layer's forward product) and `c` is at least four times as wide as
/// tall.
///
/// Called directly, the crate would pack `b` with a transposing copy; by this route it packs the
/// smaller `a` and reads `b` in place, and the transpose of `c` costs less than the difference.
/// Measured single-threaded on a 2-core AVX-512 machine (median of 20–1000 products, `f32`,
/// m×n×k): 256×1024×1024 0.64–0.86× the direct time, 128×1024×1024 0.68–0.69×,
/// 256×1024×784 0.88×, 32×256×256 0.64×, 64×256×256 0.78–0.79×, 128×256×256 0.97–0.98×,
/// 64×128×128 0.99–1.01×; and slower when `c` is not wide: 512×512×512 1.06×,
/// 2048×512×32 2.6×, 256×10×1024 2.3×. In whole training steps a product only twice as wide
/// gained nothing (the residual MLP of W3, 128×256×256) or lost (the deep MLP of W1,
/// 64×128×128: 2.15 → 2.32 ms per step), hence four times.
fn transposed_output_pays<F>(a: &ArrayView2<'_, F>, b: &ArrayView2<'_, F>, c: &ArrayViewMut2<'_, F>) -> bool {
    let (m, n) = c.dim();
    let unit = |strides: &[isize], axis: usize| strides[axis] == 1;
    4 * m <= n
        && unit(c.strides(), 1)
        && unit(a.strides(), 1)
        && !unit(a.strides(), 0)
        && unit(b.strides(), 0)
        && !unit(b.strides(), 1)
}

/// `c = alpha · a · b + addend` computed as `t = alpha · a · b` in this thread's column-major
/// scratch buffer and `c = t + addend` by a transposing pass (which reads `c` only for a
/// non-zero `beta`). Returns `false`, having done nothing, when the buffer is already in use.
///
/// Same preconditions as [`gemm_crate`], and the strides of [`transposed_output_pays`].
fn transposed_output<F: Float>(
    alpha: F,
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    addend: Addend<'_, F>,
    c: &mut ArrayViewMut2<'_, F>,
) -> bool {
    let ((m, k), n) = (a.dim(), b.ncols());
    let compute = |t: &mut [F]| {
        let ([a_rs, a_cs], [b_rs, b_cs]) = (stride2(a.strides()), stride2(b.strides()));
        // SAFETY: as in `gemm_crate`, whose checks the caller has made; `t` holds m·n entries,
        // written column-major (row stride 1, column stride m) and not read (`read_dst` false).
        unsafe {
            gemm_kernels::gemm(
                m,
                n,
                k,
                t.as_mut_ptr(),
                m as isize,
                1,
                false,
                a.as_ptr(),
                a_cs,
                a_rs,
                b.as_ptr(),
                b_cs,
                b_rs,
                F::zero(),
                alpha,
                Parallelism::None,
            );
        }
        add_transposed(t, addend, c);
    };
    crate::scratch::with_scratch(m * n, compute).is_some()
}

/// `c = t + addend` for a column-major `t` of `c`'s shape, `c` with unit column stride; `c` is
/// read only for a non-zero `beta`. Columns are taken [`BLOCK_ALIGN`] at a time, so that each row
/// of `c` is written a cache line at a time while `t` is read down that many columns at once.
fn add_transposed<F: Float>(t: &[F], addend: Addend<'_, F>, c: &mut ArrayViewMut2<'_, F>) {
    let (m, n) = c.dim();
    let row_addend = match addend {
        Addend::Row(row) => Some(row),
        Addend::Scaled(_) => None,
    };
    for first in (0..n).step_by(BLOCK_ALIGN) {
        let columns = first..(first + BLOCK_ALIGN).min(n);
        let mut added = [F::zero(); BLOCK_ALIGN];
        if let Some(row) = row_addend {
            for (slot, &value) in added.iter_mut().zip(row.slice(ndarray::s![columns.clone()])) {
                *slot = value;
            }
        }
        for (i, mut row) in c.rows_mut().into_iter().enumerate() {
            let row = row.as_slice_mut().expect("unit column stride");
            let (row, t) = (&mut row[columns.clone()], &t[first * m + i..]);
            match addend {
                Addend::Scaled(beta) if beta != F::zero() => {
                    for (j, out) in row.iter_mut().enumerate() {
                        *out = t[j * m] + beta * *out;
                    }
                }
                Addend::Scaled(_) => {
                    for (j, out) in row.iter_mut().enumerate() {
                        *out = t[j * m];
                    }
                }
                Addend::Row(_) => {
                    for (j, out) in row.iter_mut().enumerate() {
                        *out = t[j * m] + added[j];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use approx::assert_abs_diff_eq;

    use super::*;
    use ndarray::{Array1, Array2, s};

    /// The product by the definition, in f64.
    fn naive(a: &ArrayView2<'_, f64>, b: &ArrayView2<'_, f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|p| a[[i, p]] * b[[p, j]]).sum()
        })
    }

    fn filled(rows: usize, cols: usize, seed: usize) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            (((i * 31 + j * 17 + seed * 7) % 23) as f64 - 11.0) / 8.0
        })
    }

    #[test]
    fn every_transpose_combination_matches_the_definition_in_f64_and_f32() {
        // Sizes off the kernels' block sizes, and one large enough to be split across threads.
        // (2, 5, 9), (40, 50, 300) and (64, 130, 1100) are wide (the transposed route when b is
        // transposed), the last one also split across threads.
        for (m, k, n) in [
            (1, 1, 1),
            (2, 5, 9),
            (17, 33, 9),
            (64, 128, 128),
            (40, 50, 300),
            (64, 130, 1100),
            (320, 330, 340),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = if ta { filled(k, m, 1) } else { filled(m, k, 1) };
                let b = if tb { filled(n, k, 2) } else { filled(k, n, 2) };
                let c0 = filled(m, n, 3);
                let op = |x: &Array2<f64>, t: bool| if t { x.t().to_owned() } else { x.clone() };
                let expected = naive(&op(&a, ta).view(), &op(&b, tb).view()) * 0.5 + &c0 * -2.0;

                let mut c = c0.clone();
                gemm(0.5, a.view(), ta, b.view(), tb, -2.0, c.view_mut());
                let err = (&c - &expected).iter().fold(0.0f64, |m, d| m.max(d.abs()));
                assert!(err < 1e-9, "f64 ({m},{k},{n}) ta={ta} tb={tb}: error {err}");

                let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
                let mut c32 = c0.mapv(|v| v as f32);
                gemm(0.5f32, a32.view(), ta, b32.view(), tb, -2.0, c32.view_mut());
                let err = c32
                    .iter()
                    .zip(&expected)
                    .fold(0.0f64, |m, (&x, &y)| m.max((x as f64 - y).abs() / y.abs().max(1.0)));
                assert!(err < 1e-4, "f32 ({m},{k},{n}) ta={ta} tb={tb}: error {err}");
            }
        }
    }

    #[test]
    fn product_plus_row_matches_the_definition_on_every_route() {
        // Direct (not wide, or b not transposed), transposed into the output (wide, b
        // transposed), and both split across threads (the last two: at least 2²³ multiply-adds).
        for (m, k, n, tb) in [
            (3, 4, 5, false),
            (17, 33, 9, true),
            (40, 50, 300, true),
            (40, 50, 300, false),
            (64, 130, 1100, true),
            (300, 300, 100, true),
        ] {
            let a = filled(m, k, 1);
            let b = if tb { filled(n, k, 2) } else { filled(k, n, 2) };
            let b_op = if tb { b.t().to_owned() } else { b.clone() };
            let row = Array1::from_shape_fn(n, |j| j as f64 / 7.0 - 3.0);
            let expected = naive(&a.view(), &b_op.view()) + &row;

            // The output's previous contents, NaN here, are ignored.
            let mut c = Array2::from_elem((m, n), f64::NAN);
            gemm_plus_row(a.view(), false, b.view(), tb, row.view(), c.view_mut());
            let err = (&c - &expected).iter().fold(0.0f64, |m, d| m.max(d.abs()));
            assert!(err < 1e-9, "f64 ({m},{k},{n}) tb={tb}: error {err}");

            let mut c32 = Array2::from_elem((m, n), f32::NAN);
            let (a32, b32, row32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32), row.mapv(|v| v as f32));
            gemm_plus_row(a32.view(), false, b32.view(), tb, row32.view(), c32.view_mut());
            let err = c32
                .iter()
                .zip(&expected)
                .fold(0.0f64, |m, (&x, &y)| m.max((x as f64 - y).abs() / y.abs().max(1.0)));
            assert!(err < 1e-4, "f32 ({m},{k},{n}) tb={tb}: error {err}");
        }
    }

    #[test]
    fn beta_zero_overwrites_nan_and_strided_views_work() {
        let a = filled(6, 4, 1);
        let b = filled(8, 10, 2);
        // Every other row and column of b: a non-unit-stride view.
        let b_view = b.slice(s![..;2, ..;2]);
        let mut big = Array2::from_elem((12, 10), f64::NAN);
        let c = big.slice_mut(s![..;2, ..;2]);
        gemm(1.0, a.view(), false, b_view, false, 0.0, c);
        let expected = naive(&a.view(), &b_view);
        assert_eq!(big.slice(s![..;2, ..;2]), expected);
        assert!(big[[1, 0]].is_nan(), "entries outside the view are untouched");
    }

    #[test]
    fn the_transposed_route_applies_to_wide_forward_products_and_overwrites_nan() {
        let x = filled(20, 30, 1);
        let w = filled(90, 30, 2);
        let mut y = Array2::from_elem((20, 90), f64::NAN);
        assert!(transposed_output_pays(&x.view(), &w.t(), &y.view_mut()));
        let tall = filled(30, 30, 3);
        assert!(!transposed_output_pays(&tall.view(), &w.t(), &Array2::zeros((30, 90)).view_mut()));
        assert!(!transposed_output_pays(&x.view(), &w.t().as_standard_layout().view(), &y.view_mut()));
        gemm(1.0, x.view(), false, w.view(), true, 0.0, y.view_mut());
        assert_eq!(y, naive(&x.view(), &w.t()));
        // A second product on the same thread reuses the (now larger) scratch buffer.
        let mut y2 = Array2::from_elem((4, 90), 1.0);
        gemm(2.0, x.slice(s![..4, ..]), false, w.view(), true, 0.5, y2.view_mut());
        let expected = naive(&x.slice(s![..4, ..]), &w.t()) * 2.0 + 0.5;
        assert_abs_diff_eq!(y2, expected, epsilon = 1e-12);
    }

    #[test]
    fn negative_strides_and_empty_products_are_handled() {
        let a = filled(5, 3, 1);
        let b = filled(3, 4, 2);
        let a_flipped = a.slice(s![..;-1, ..]);
        let mut c = Array2::zeros((5, 4));
        gemm(1.0, a_flipped, false, b.view(), false, 0.0, c.view_mut());
        assert_eq!(c, naive(&a_flipped, &b.view()));

        let empty_a = Array2::<f64>::zeros((5, 0));
        let empty_b = Array2::<f64>::zeros((0, 4));
        let mut c = Array2::from_elem((5, 4), 3.0);
        gemm(1.0, empty_a.view(), false, empty_b.view(), false, 0.5, c.view_mut());
        assert_eq!(c, Array2::from_elem((5, 4), 1.5));
        gemm(1.0, empty_a.view(), false, empty_b.view(), false, 0.0, c.view_mut());
        assert_eq!(c, Array2::<f64>::zeros((5, 4)));
    }
}
