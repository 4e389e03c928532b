//! Runtime CPU dispatch for elementwise loops.

use std::sync::OnceLock;

/// Runs `kernel` compiled for the widest SIMD instruction set this CPU offers (AVX-512 or
/// AVX2 + FMA on x86-64, NEON on aarch64, the baseline elsewhere), detected once per process.
///
/// Plain loops written to be auto-vectorized (no early exit, no calls that cannot be inlined)
/// then use the widest vectors, provided that `kernel` and every function it calls are inlined
/// into the dispatching function: mark the closure `#[inline(always)] || …` and its helpers
/// `#[inline(always)]` (otherwise they are compiled for the baseline instruction set). The results do not depend on the
/// instruction set: Rust never contracts `a * b + c` into a fused multiply-add on its own.
#[inline(always)]
pub(crate) fn vectorized<R>(kernel: impl FnOnce() -> R) -> R {
    static ARCH: OnceLock<pulp::Arch> = OnceLock::new();
    ARCH.get_or_init(pulp::Arch::new).dispatch(kernel)
}

/// Slices shorter than this are processed on the calling thread: below about a megabyte of
/// `f32`s, waking a second thread costs more than the memory-bound loop it would share.
pub(crate) const PARALLEL_MIN_LEN: usize = 1 << 18;

/// Calls `kernel` on matching chunks of `a` and `b` (of equal length): on rayon's threads, one
/// chunk each, when the slices are long and the pool has more than one thread; on the calling
/// thread with the whole slices otherwise.
pub(crate) fn zip_chunks<A: Send, B: Sync>(a: &mut [A], b: &[B], kernel: impl Fn(&mut [A], &[B]) + Sync) {
    use rayon::prelude::*;
    let threads = rayon::current_num_threads();
    if a.len() < PARALLEL_MIN_LEN || threads < 2 || a.len() != b.len() {
        return kernel(a, b);
    }
    let chunk = a.len().div_ceil(threads);
    a.par_chunks_mut(chunk).zip(b.par_chunks(chunk)).for_each(|(a, b)| kernel(a, b));
}

/// Calls `kernel(chunk, offset)` on chunks of `out` cut like [`zip_chunks`]'s (one per rayon
/// thread when `out` is long, the whole slice on the calling thread otherwise); `offset` is where
/// the chunk starts in `out`, so that the kernel can take the matching parts of other operands.
pub(crate) fn chunks_at<A: Send>(out: &mut [A], kernel: impl Fn(&mut [A], usize) + Sync) {
    use rayon::prelude::*;
    let threads = rayon::current_num_threads();
    if out.len() < PARALLEL_MIN_LEN || threads < 2 {
        return kernel(out, 0);
    }
    let chunk = out.len().div_ceil(threads);
    out.par_chunks_mut(chunk).enumerate().for_each(|(i, part)| kernel(part, i * chunk));
}

/// [`zip_chunks`] for a kernel that returns a number: the chunks' results, added up.
pub(crate) fn zip_chunks_sum<A: Send, B: Sync>(
    a: &mut [A],
    b: &[B],
    kernel: impl Fn(&mut [A], &[B]) -> f64 + Sync,
) -> f64 {
    use rayon::prelude::*;
    let threads = rayon::current_num_threads();
    if a.len() < PARALLEL_MIN_LEN || threads < 2 || a.len() != b.len() {
        return kernel(a, b);
    }
    let chunk = a.len().div_ceil(threads);
    let parts: Vec<f64> =
        a.par_chunks_mut(chunk).zip(b.par_chunks(chunk)).map(|(a, b)| kernel(a, b)).collect();
    parts.iter().sum()
}

/// `sums[j] += Σᵢ matrix[i, j]` for a row-major `matrix` with `sums.len()` columns (a bias
/// gradient from the gradients of a batch), vectorized.
pub(crate) fn add_column_sums<F: crate::Float>(sums: &mut [F], matrix: &[F]) {
    let width = sums.len();
    if width == 0 {
        return;
    }
    vectorized(
        #[inline(always)]
        || {
            for row in matrix.chunks_exact(width) {
                sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
            }
        },
    )
}

/// Sets every value to zero; long slices are cut into one chunk per thread, like
/// [`zip_chunks`] (a memory-bound loop that one core cannot saturate the memory bus with).
pub(crate) fn fill_zero<F: crate::Float>(values: &mut [F]) {
    use rayon::prelude::*;
    let threads = rayon::current_num_threads();
    if values.len() < PARALLEL_MIN_LEN || threads < 2 {
        return values.fill(F::zero());
    }
    values.par_chunks_mut(values.len().div_ceil(threads)).for_each(|chunk| chunk.fill(F::zero()));
}

/// True when `predicate` holds for every chunk of `values`, evaluated like [`zip_chunks`].
pub(crate) fn all_chunks<T: Sync>(values: &[T], predicate: impl Fn(&[T]) -> bool + Sync) -> bool {
    use rayon::prelude::*;
    let threads = rayon::current_num_threads();
    if values.len() < PARALLEL_MIN_LEN || threads < 2 {
        return predicate(values);
    }
    values.par_chunks(values.len().div_ceil(threads)).all(&predicate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_slices_are_processed_whole_whatever_the_thread_count() {
        // Long enough to be split when the pool has two or more threads; odd, so that the
        // chunks are uneven.
        let n = 2 * PARALLEL_MIN_LEN + 7;
        let b: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let mut a = vec![1.0f32; n];
        zip_chunks(&mut a, &b, |a, b| a.iter_mut().zip(b).for_each(|(a, &b)| *a += 2.0 * b));
        assert!(a.iter().enumerate().all(|(i, &v)| v == 1.0 + 2.0 * i as f32));

        let mut values = vec![0.5f64; n];
        assert!(all_chunks(&values, |c| c.iter().all(|v| v.is_finite())));
        values[n - 1] = f64::NAN;
        assert!(!all_chunks(&values, |c| c.iter().all(|v| v.is_finite())));
        assert!(!crate::float::all_finite(&values));
        values[n - 1] = 0.0;
        values[3] = f64::NEG_INFINITY;
        assert!(!crate::float::all_finite(&values));
    }
}
