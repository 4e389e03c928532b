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
