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

/// The length of the chunks that share `len` entries between rayon's threads, one chunk each,
/// or `None` when they are better processed whole on the calling thread (a short slice, or a
/// pool of one thread). Every sharing loop below cuts its slices this way.
fn shared_chunk_len(len: usize) -> Option<usize> {
    let threads = rayon::current_num_threads();
    (len >= PARALLEL_MIN_LEN && threads >= 2).then(|| len.div_ceil(threads))
}

/// Calls `kernel` on matching chunks of `a` and `b` (of equal length): on rayon's threads, one
/// chunk each, when the slices are long and the pool has more than one thread; on the calling
/// thread with the whole slices otherwise.
pub(crate) fn zip_chunks<A: Send, B: Sync>(a: &mut [A], b: &[B], kernel: impl Fn(&mut [A], &[B]) + Sync) {
    if a.len() != b.len() {
        return kernel(a, b);
    }
    chunks_at(a, |a, at| kernel(a, &b[at..at + a.len()]));
}

/// Calls `kernel(chunk, offset)` on chunks of `out` cut like [`zip_chunks`]'s (one per rayon
/// thread when `out` is long, the whole slice on the calling thread otherwise); `offset` is where
/// the chunk starts in `out`, so that the kernel can take the matching parts of other operands.
pub(crate) fn chunks_at<A: Send>(out: &mut [A], kernel: impl Fn(&mut [A], usize) + Sync) {
    use rayon::prelude::*;
    match shared_chunk_len(out.len()) {
        Some(chunk) => out.par_chunks_mut(chunk).enumerate().for_each(|(i, part)| kernel(part, i * chunk)),
        None => kernel(out, 0),
    }
}

/// [`zip_chunks`] for a kernel that returns a number: the chunks' results, added up (in chunk
/// order, so that the sum does not depend on which thread finished first).
pub(crate) fn zip_chunks_sum<A: Send, B: Sync>(
    a: &mut [A],
    b: &[B],
    kernel: impl Fn(&mut [A], &[B]) -> f64 + Sync,
) -> f64 {
    use rayon::prelude::*;
    /// Chunk results kept on the stack (one chunk per thread); larger pools use a `Vec`.
    const STACK_PARTS: usize = 16;
    match shared_chunk_len(a.len()) {
        Some(chunk) if a.len() == b.len() => {
            let count = a.len().div_ceil(chunk);
            let (mut on_stack, mut on_heap) = ([0.0; STACK_PARTS], Vec::new());
            let parts = if count <= STACK_PARTS {
                &mut on_stack[..count]
            } else {
                on_heap.resize(count, 0.0);
                &mut on_heap[..]
            };
            a.par_chunks_mut(chunk)
                .zip(b.par_chunks(chunk))
                .zip(parts.par_iter_mut())
                .for_each(|((a, b), part)| *part = kernel(a, b));
            parts.iter().sum()
        }
        _ => kernel(a, b),
    }
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
    chunks_at(values, |chunk, _| chunk.fill(F::zero()));
}

/// True when `entry` holds at every index of the slices `arrays` (one value of each per call;
/// `false` when their lengths differ). The loop has no early exit, so that it vectorizes (keep
/// `entry` small enough to be inlined and combine conditions with `&`, not `&&`); long slices are shared
/// between threads like [`zip_chunks`]. The optimizers' check that a step stays finite runs
/// every step over every parameter: it must cost no more than a memory pass.
#[inline(always)]
pub(crate) fn all_entries<T: Copy + Sync, const N: usize>(
    arrays: [&[T]; N],
    entry: impl Fn([T; N]) -> bool + Sync,
) -> bool {
    use rayon::prelude::*;
    let len = arrays.first().map_or(0, |a| a.len());
    if arrays.iter().any(|a| a.len() != len) {
        return false;
    }
    let check = |start: usize, end: usize| {
        let parts = arrays.map(|a| &a[start..end]);
        vectorized(
            #[inline(always)]
            || (0..end - start).fold(true, |ok, i| ok & entry(parts.map(|p| p[i]))),
        )
    };
    match shared_chunk_len(len) {
        Some(chunk) => {
            (0..len.div_ceil(chunk)).into_par_iter().all(|c| check(c * chunk, ((c + 1) * chunk).min(len)))
        }
        None => check(0, len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_entries_sees_every_entry_of_every_chunk() {
        let n = 2 * PARALLEL_MIN_LEN + 7;
        let a = vec![1.0f32; n];
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        for bad in [0, PARALLEL_MIN_LEN + 3, n - 1] {
            let mut b = vec![2.0f32; n];
            b[bad] = f32::MAX;
            let finite = |[a, b]: [f32; 2]| (a + 2.0 * b).is_finite();
            assert!(!all_entries([&a, &b], finite), "entry {bad}");
            assert!(!pool.install(|| all_entries([&a, &b], finite)), "entry {bad}, 3 threads");
            b[bad] = 2.0;
            assert!(pool.install(|| all_entries([&a, &b], finite)));
        }
        assert!(!all_entries([&a[1..], &a[..]], |_| true), "slices of different lengths");
        assert!(all_entries::<f32, 2>([&[], &[]], |_| false), "no entries");
    }

    #[test]
    fn long_slices_are_processed_whole_whatever_the_thread_count() {
        // Long enough to be split when the pool has two or more threads; odd, so that the
        // chunks are uneven.
        let n = 2 * PARALLEL_MIN_LEN + 7;
        let b: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let mut a = vec![1.0f32; n];
        zip_chunks(&mut a, &b, |a, b| a.iter_mut().zip(b).for_each(|(a, &b)| *a += 2.0 * b));
        assert!(a.iter().enumerate().all(|(i, &v)| v == 1.0 + 2.0 * i as f32));

        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let mut c = vec![1.0f64; n];
        let sum = pool.install(|| {
            zip_chunks_sum(&mut c, &b, |c, b| {
                c.iter_mut().zip(b).map(|(c, &b)| std::mem::replace(c, f64::from(b)) + f64::from(b)).sum()
            })
        });
        assert!(c.iter().zip(&b).all(|(&c, &b)| c == f64::from(b)));
        let expected = (n + n * (n - 1) / 2) as f64;
        assert_eq!(sum, expected, "Σ(1 + i) over every chunk");

        let mut values = vec![0.5f64; n];
        assert!(crate::float::all_finite(&values));
        values[n - 1] = f64::NAN;
        assert!(!crate::float::all_finite(&values));
        values[n - 1] = 0.0;
        values[3] = f64::NEG_INFINITY;
        assert!(!crate::float::all_finite(&values));
    }
}
