//! Per-thread scratch buffers, reused from call to call, for work that needs a temporary copy
//! in the middle of a training step (the column-major products of [`crate::linalg`], the
//! parameter values an observed optimizer step compares against) without allocating in steady
//! state.

use std::any::{Any, TypeId};
use std::cell::RefCell;

use crate::Float;

thread_local! {
    /// One buffer per thread and float type. They only grow (to the largest length asked for on
    /// the thread), so a training step allocates nothing once its shapes have been seen.
    static SCRATCH_F32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static SCRATCH_F64: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer of `F`, cut to `len` entries (their values are
/// left over from earlier use). Returns `None`, without calling `f`, when the buffer is already
/// in use further up the stack, or when `F` is neither `f32` nor `f64`: the caller then does
/// without it.
pub(crate) fn with_scratch<F: Float, R>(len: usize, f: impl FnOnce(&mut [F]) -> R) -> Option<R> {
    let t = TypeId::of::<F>();
    if t == TypeId::of::<f32>() {
        SCRATCH_F32.with(|scratch| run(scratch, len, f))
    } else if t == TypeId::of::<f64>() {
        SCRATCH_F64.with(|scratch| run(scratch, len, f))
    } else {
        None
    }
}

thread_local! {
    /// The workspace of layers that call the matrix product while holding their own temporary
    /// data (the column matrices of convolutions), which therefore cannot be the product's
    /// scratch buffer. Grows like the scratch buffers.
    static WORKSPACE_F32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static WORKSPACE_F64: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// [`with_scratch`] for this thread's workspace buffer, a second buffer that is free while the
/// matrix products called from `f` use the scratch buffer.
pub(crate) fn with_workspace<F: Float, R>(len: usize, f: impl FnOnce(&mut [F]) -> R) -> Option<R> {
    let t = TypeId::of::<F>();
    if t == TypeId::of::<f32>() {
        WORKSPACE_F32.with(|buffer| run(buffer, len, f))
    } else if t == TypeId::of::<f64>() {
        WORKSPACE_F64.with(|buffer| run(buffer, len, f))
    } else {
        None
    }
}

/// Borrows `buffer` (or returns `None` when it is borrowed further up the stack), grows it to
/// `len` entries and calls `f` with them as `F`s (`None` when `T` is not `F`).
fn run<T: Copy + Default + 'static, F: Float, R>(
    buffer: &RefCell<Vec<T>>,
    len: usize,
    f: impl FnOnce(&mut [F]) -> R,
) -> Option<R> {
    let mut buffer = buffer.try_borrow_mut().ok()?;
    if buffer.len() < len {
        buffer.resize(len, T::default());
    }
    let buffer: &mut dyn Any = &mut *buffer;
    let buffer = buffer.downcast_mut::<Vec<F>>()?;
    Some(f(&mut buffer[..len]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_reused_and_refused_while_in_use() {
        let first = with_scratch::<f32, _>(8, |b| {
            b.fill(1.5);
            // Nested use of the same type is refused; another type has its own buffer.
            assert!(with_scratch::<f32, _>(4, |_| ()).is_none());
            assert_eq!(with_scratch::<f64, _>(4, |b| b.len()), Some(4));
            b.as_ptr() as usize
        });
        let second = with_scratch::<f32, _>(6, |b| {
            assert_eq!(b, &[1.5; 6], "the same memory, values left over");
            b.as_ptr() as usize
        });
        assert_eq!(first, second);
    }
}
