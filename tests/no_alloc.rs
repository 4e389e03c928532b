//! A steady-state training step allocates nothing of its own.
//!
//! A counting global allocator (this file is its own test binary, so it counts nothing else)
//! counts the allocations made on the test's thread during ten steps of workload W1 of the
//! peer benchmarks (32 × (Linear 128→128 + tanh), batch 64, MSE, plain SGD), after warm-up.
//!
//! gradflow's buffers are all reused, but the matrix-product backend (the `gemm` crate) makes
//! a fixed number of small scratch allocations inside each product (its packing buffers). The
//! test therefore measures that number for each kind of product the step runs, by calling the
//! `gemm` crate itself with the same shapes and layouts, and asserts that the step allocates
//! exactly that many times: one allocation more anywhere in gradflow would fail it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use gradflow::activation::Tanh;
use gradflow::loss::{Loss, Mse, Targets};
use gradflow::optim::{Optimizer, SgdConfig};
use gradflow::{Mode, Network, Sequential};
use ndarray::Array2;
use rand::SeedableRng;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is a
// const-initialized thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made on this thread while `f` runs.
fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const BATCH: usize = 64;
const WIDTH: usize = 128;
const LAYERS: usize = 32;

/// Allocations the `gemm` crate makes in one single-threaded product
/// `dst (m × n) = [dst +] lhs (m × k) · rhs (k × n)` with the given (row, column) strides.
fn backend_allocations(
    m: usize,
    n: usize,
    k: usize,
    lhs_strides: [isize; 2],
    rhs_strides: [isize; 2],
    read_dst: bool,
) -> usize {
    let lhs = vec![0.5f32; m * k];
    let rhs = vec![0.25f32; k * n];
    let mut dst = vec![0.0f32; m * n];
    // Warm up (the crate builds a per-thread cache the first time), then count one call.
    let mut call = || {
        // SAFETY: lhs, rhs and dst hold m·k, k·n and m·n contiguous floats and the strides
        // address exactly those ranges: row-major (k, 1) / (n, 1), or their transposes.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                read_dst,
                lhs.as_ptr(),
                lhs_strides[1],
                lhs_strides[0],
                rhs.as_ptr(),
                rhs_strides[1],
                rhs_strides[0],
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        }
    };
    call();
    allocations_during(call)
}

#[test]
fn steady_state_w1_steps_allocate_only_inside_the_matrix_products() {
    // Products of one Linear(128→128) layer in a training step, with the layouts gradflow
    // uses (weight stored (out, in) row-major, activations (batch, features) row-major):
    // forward y = b + x·Wᵀ (reads y, which holds the bias), weight gradient dW += dyᵀ·x,
    // input gradient dx = dy·W (not computed for the first layer, whose input is the data).
    let w = WIDTH as isize;
    let forward = backend_allocations(BATCH, WIDTH, WIDTH, [w, 1], [1, w], true);
    let weight_grad = backend_allocations(WIDTH, WIDTH, BATCH, [1, w], [w, 1], true);
    let input_grad = backend_allocations(BATCH, WIDTH, WIDTH, [w, 1], [w, 1], false);
    let per_step = LAYERS * (forward + weight_grad) + (LAYERS - 1) * input_grad;

    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let model = Sequential::<f32>::builder(WIDTH).repeat(LAYERS, WIDTH, Tanh).build(&mut rng).unwrap();
    let mut net = Network::new(model);
    let x = Array2::from_shape_fn((BATCH, WIDTH), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 5.5 - 1.0);
    let target = Array2::from_shape_fn((BATCH, WIDTH), |(i, j)| ((i + 2 * j) % 5) as f32 / 2.5 - 1.0);
    let mse = Mse::default();
    let mut sgd = SgdConfig::new(1e-3).build::<f32>().unwrap();
    let mut grad = Array2::zeros((0, 0));
    let mut losses = Vec::with_capacity(20);
    let mut step = |losses: &mut Vec<f32>| {
        net.zero_grad();
        let prediction = net.forward(x.view(), Mode::Train).unwrap();
        let loss = mse.compute(prediction, Targets::Values(target.view()), &mut grad).unwrap();
        net.backward(grad.view()).unwrap();
        sgd.step(net.model_mut()).unwrap();
        losses.push(loss);
    };
    for _ in 0..3 {
        step(&mut losses);
    }
    let steps = 10;
    let counted = allocations_during(|| {
        for _ in 0..steps {
            step(&mut losses);
        }
    });
    assert_eq!(
        counted,
        steps * per_step,
        "{steps} steps allocated {counted} times; the matrix products alone account for {} \
         ({forward} per forward, {weight_grad} per weight gradient, {input_grad} per input gradient)",
        steps * per_step
    );
    // The steps did train: the loss went down.
    assert!(losses.last().unwrap() < losses.first().unwrap(), "{losses:?}");
}
