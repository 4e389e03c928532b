//! A steady-state training step allocates nothing of its own.
//!
//! A counting global allocator (this file is its own test binary, so it counts nothing else)
//! counts the allocations made on the test's thread during ten steps of workloads W1 (32 ×
//! (Linear 128→128 + tanh), batch 64, MSE, plain SGD) and W4 (LSTM 32→128 over 64 steps,
//! batch 32, a linear readout of the last step, MSE, plain SGD) of the peer benchmarks, after
//! warm-up, and W5's shapes (64→256→256→10 ReLU, batch 32, with MSE), whose wide forward
//! products go through a per-thread scratch buffer, and a small convolutional ResNet (its
//! column matrices live in a per-thread workspace, pooling keeps its indices in a reused buffer,
//! dropout recomputes its mask). W4 and W5 run in a one-thread rayon pool so that every product runs on the test's
//! thread (split across threads, the pieces are joined on the stack, which allocates nothing,
//! but their products would be counted on other threads).
//!
//! gradflow's buffers are all reused, but the matrix-product backend (the `gemm` crate) makes
//! a fixed number of small scratch allocations inside each product (its packing buffers). The
//! test therefore measures that number for each kind of product the step runs, by calling the
//! crate's kernels itself with the same shapes and layouts (through gradflow's own front end,
//! `src/gemm_kernels.rs`, included below), and asserts that the step allocates exactly that many
//! times: one allocation more anywhere in gradflow would fail it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use gradflow::activation::{Relu, Tanh};
use gradflow::loss::{Loss, Mse, Targets};
use gradflow::optim::{Optimizer, SgdConfig};
use gradflow::recurrent::{Lstm, Readout, SequenceModel};
use gradflow::{Linear, Mode, Network, Sequential};
use ndarray::Array2;
use rand::SeedableRng;

#[path = "../src/gemm_kernels.rs"]
mod gemm_kernels;
use gemm_kernels::Parallelism;

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

/// Trains `net` towards `target` with MSE and plain SGD: three steps of warm-up, then `steps`
/// steps during which allocations are counted. Returns the count and every step's loss.
fn count_training_allocations(
    net: &mut Network<f32>,
    x: &Array2<f32>,
    target: &Array2<f32>,
    learning_rate: f64,
    steps: usize,
) -> (usize, Vec<f32>) {
    let mse = Mse::default();
    let mut sgd = SgdConfig::new(learning_rate).build::<f32>().unwrap();
    let mut grad = Array2::zeros((0, 0));
    let mut losses = Vec::with_capacity(steps + 3);
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
    let counted = allocations_during(|| {
        for _ in 0..steps {
            step(&mut losses);
        }
    });
    (counted, losses)
}

const BATCH: usize = 64;
const WIDTH: usize = 128;
const LAYERS: usize = 32;

/// Steps counted by [`count_on_one_thread`].
const ONE_THREAD_STEPS: usize = 10;

/// Builds a network with its input and target inside a one-thread rayon pool, and counts its
/// training allocations there ([`count_training_allocations`] with learning rate 0.01 over
/// [`ONE_THREAD_STEPS`] steps): every product then runs on this thread, where it is counted.
fn count_on_one_thread(
    build: impl FnOnce() -> (Network<f32>, Array2<f32>, Array2<f32>) + Send,
) -> (usize, Vec<f32>) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(|| {
        let (mut net, x, target) = build();
        count_training_allocations(&mut net, &x, &target, 1e-2, ONE_THREAD_STEPS)
    })
}

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
    backend_allocations_into(m, n, k, lhs_strides, rhs_strides, [n as isize, 1], read_dst)
}

/// [`backend_allocations`] with the (row, column) strides of `dst` given: `[1, m]` is the
/// column-major scratch into which gradflow computes the wide forward products.
fn backend_allocations_into(
    m: usize,
    n: usize,
    k: usize,
    lhs_strides: [isize; 2],
    rhs_strides: [isize; 2],
    dst_strides: [isize; 2],
    read_dst: bool,
) -> usize {
    let lhs = vec![0.5f32; m * k];
    let rhs = vec![0.25f32; k * n];
    let mut dst = vec![0.0f32; m * n];
    // Warm up (the crate builds a per-thread cache the first time), then count one call.
    let mut call = || {
        // SAFETY: lhs, rhs and dst hold m·k, k·n and m·n contiguous floats and the strides
        // address exactly those ranges: row-major (k, 1) / (n, 1) / (n, 1), or their transposes.
        unsafe {
            gemm_kernels::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                dst_strides[1],
                dst_strides[0],
                read_dst,
                lhs.as_ptr(),
                lhs_strides[1],
                lhs_strides[0],
                rhs.as_ptr(),
                rhs_strides[1],
                rhs_strides[0],
                1.0,
                1.0,
                Parallelism::None,
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
    let steps = 10;
    let (counted, losses) = count_training_allocations(&mut net, &x, &target, 1e-3, steps);
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

#[test]
fn steady_state_w4_steps_allocate_only_inside_the_matrix_products() {
    const T: usize = 64;
    const B: usize = 32;
    const I: usize = 32;
    const H: usize = 128;
    const G: usize = 4 * H;
    let (i, h, g) = (I as isize, H as isize, G as isize);
    // The products of one training step, with the layouts gradflow uses (row-major buffers;
    // `[1, n]` strides are a transposed view):
    // forward: gates = b + X·W_ihᵀ for all steps at once (reads the bias), then per step
    // gates_t += h_{t−1}·W_hhᵀ (W_hhᵀ kept as a row-major copy), head y = b + h_T·wᵀ;
    let projection = backend_allocations(T * B, G, I, [i, 1], [1, i], true);
    let recurrent = backend_allocations(B, G, H, [h, 1], [g, 1], true);
    let head = backend_allocations(B, 1, H, [h, 1], [1, h], true);
    // backward: head dW += dyᵀ·h_T and dh_T = dy·w, per step dh_{t−1} = dPre_t·W_hh, then
    // dW_ih += dPreᵀ·X and dW_hh += dPreᵀ·H_{prev} over all steps (no input gradient: the
    // LSTM's input is the data).
    let head_weight_grad = backend_allocations(1, H, B, [1, 1], [h, 1], true);
    let head_input_grad = backend_allocations(B, H, 1, [1, 1], [h, 1], false);
    let recurrent_back = backend_allocations(B, H, G, [g, 1], [h, 1], false);
    let weight_ih_grad = backend_allocations(G, I, T * B, [1, g], [i, 1], true);
    let weight_hh_grad = backend_allocations(G, H, T * B, [1, g], [h, 1], true);
    let per_step = projection
        + T * recurrent
        + head
        + head_weight_grad
        + head_input_grad
        + T * recurrent_back
        + weight_ih_grad
        + weight_hh_grad;

    let steps = ONE_THREAD_STEPS;
    let (counted, losses) = count_on_one_thread(|| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let lstm = Lstm::<f32>::new(I, H, &mut rng).unwrap();
        let head = Linear::new(H, 1, &mut rng).unwrap();
        let mut model = Sequential::new();
        model.push(SequenceModel::new(lstm, Readout::LastStep, head).unwrap());
        let x = Array2::from_shape_fn((B, T * I), |(r, c)| ((r * 7 + c * 3) % 11) as f32 / 5.5 - 1.0);
        let target = Array2::from_shape_fn((B, 1), |(r, _)| (r % 5) as f32 / 2.5 - 1.0);
        (Network::new(model), x, target)
    });
    assert_eq!(
        counted,
        steps * per_step,
        "{steps} steps allocated {counted} times; the matrix products alone account for {} \
         (projection {projection}, recurrent {recurrent} × {T} + {recurrent_back} × {T}, head \
         {head} + {head_weight_grad} + {head_input_grad}, weight gradients {weight_ih_grad} + \
         {weight_hh_grad})",
        steps * per_step
    );
    assert!(losses.last().unwrap() < losses.first().unwrap(), "{losses:?}");
}

#[test]
fn steady_state_wide_steps_allocate_only_inside_the_matrix_products() {
    // W5's shapes (64→256→256→10 ReLU, batch 32; MSE here), whose first two forward products
    // are four times wider than tall: gradflow computes them column-major into a per-thread
    // scratch buffer that must be reused from step to step.
    const B: usize = 32;
    let layers = [(64usize, 256usize), (256, 256), (256, 10)];
    let mut per_step = 0;
    for (index, &(fan_in, fan_out)) in layers.iter().enumerate() {
        let (i, o) = (fan_in as isize, fan_out as isize);
        per_step += if 4 * B <= fan_out {
            // t = x·Wᵀ into the column-major scratch (not read), then y = b + tᵀ.
            backend_allocations_into(B, fan_out, fan_in, [i, 1], [1, i], [1, B as isize], false)
        } else {
            backend_allocations(B, fan_out, fan_in, [i, 1], [1, i], true)
        };
        per_step += backend_allocations(fan_out, fan_in, B, [1, o], [i, 1], true);
        if index > 0 {
            per_step += backend_allocations(B, fan_in, fan_out, [o, 1], [i, 1], false);
        }
    }

    let steps = ONE_THREAD_STEPS;
    let (counted, losses) = count_on_one_thread(|| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let model = Sequential::<f32>::builder(64)
            .dense(256, Relu)
            .dense(256, Relu)
            .linear(10)
            .build(&mut rng)
            .unwrap();
        let x = Array2::from_shape_fn((B, 64), |(r, c)| ((r * 7 + c * 3) % 11) as f32 / 5.5 - 1.0);
        let target = Array2::from_shape_fn((B, 10), |(r, c)| ((r + 2 * c) % 5) as f32 / 2.5 - 1.0);
        (Network::new(model), x, target)
    });
    assert_eq!(
        counted,
        steps * per_step,
        "{steps} steps allocated {counted} times; the matrix products alone account for {}",
        steps * per_step
    );
    assert!(losses.last().unwrap() < losses.first().unwrap(), "{losses:?}");
}

/// One convolution of the conv test below: input channels, output channels, kernel size, stride
/// and input height (= width), and whether its input gradient is computed (not for the first
/// layer, whose input is the data).
struct ConvShape {
    inputs: usize,
    outputs: usize,
    kernel: usize,
    stride: usize,
    size: usize,
    input_grad: bool,
}

#[test]
fn steady_state_conv_resnet_steps_allocate_only_inside_the_matrix_products() {
    // A small ResNet on 3×16×16 images, batch 8: stem conv–BN–ReLU, a basic block at 8 channels
    // (identity shortcut), one at 16 channels with stride 2 and a projection shortcut, max
    // pooling, global average pooling, dropout, a linear classifier. A convolution's products
    // take 1024 output positions (samples × positions) at a time (src/layers/conv/passes.rs):
    // 4 samples of 16×16, all 8 of 8×8.
    const B: usize = 8;
    let convs = [
        ConvShape { inputs: 3, outputs: 8, kernel: 3, stride: 1, size: 16, input_grad: false },
        ConvShape { inputs: 8, outputs: 8, kernel: 3, stride: 1, size: 16, input_grad: true },
        ConvShape { inputs: 8, outputs: 8, kernel: 3, stride: 1, size: 16, input_grad: true },
        ConvShape { inputs: 8, outputs: 16, kernel: 3, stride: 2, size: 16, input_grad: true },
        ConvShape { inputs: 16, outputs: 16, kernel: 3, stride: 1, size: 8, input_grad: true },
        ConvShape { inputs: 8, outputs: 16, kernel: 1, stride: 2, size: 16, input_grad: true },
    ];
    let mut per_step = 0;
    for c in &convs {
        let taps = c.kernel * c.kernel;
        let k = c.inputs * taps;
        let (positions, plane) = ((c.size / c.stride).pow(2), c.size * c.size);
        let samples = (1024 / positions).clamp(1, B);
        assert_eq!(B % samples, 0, "equal products");
        let (cols, in_cols) = (samples * positions, samples * plane);
        let (k_, cols_, out_) = (k as isize, cols as isize, c.outputs as isize);
        let mut per_product = 0;
        // Forward: Y (out, cols) = W (out, k) · columns (k, cols), into a buffer (not read).
        per_product += backend_allocations(c.outputs, cols, k, [k_, 1], [cols_, 1], false);
        // dW += dY · columnsᵀ: computed column-major into the product's scratch buffer when dW is
        // at least four times wider than tall (see src/linalg.rs), added to dW otherwise.
        per_product += if 4 * c.outputs <= k {
            backend_allocations_into(c.outputs, k, cols, [cols_, 1], [1, cols_], [1, out_], false)
        } else {
            backend_allocations(c.outputs, k, cols, [cols_, 1], [1, cols_], true)
        };
        if c.input_grad && c.stride == 1 {
            // dx = W' (in, out·taps) · columns of dY (out·taps, samples·H·W): the transposed
            // convolution.
            let k_t = c.outputs * taps;
            let (kt_, in_cols_) = (k_t as isize, in_cols as isize);
            per_product += backend_allocations(c.inputs, in_cols, k_t, [kt_, 1], [in_cols_, 1], false);
        } else if c.input_grad {
            // d(columns) = Wᵀ · dY, then col2im.
            per_product += backend_allocations(k, cols, c.outputs, [1, k_], [cols_, 1], false);
        }
        per_step += per_product * (B / samples);
    }
    // The classifier Linear(16 → 10): y = b + x·Wᵀ, dW += dyᵀ·x, dx = dy·W.
    per_step += backend_allocations(B, 10, 16, [16, 1], [1, 16], true);
    per_step += backend_allocations(10, 16, B, [1, 10], [16, 1], true);
    per_step += backend_allocations(B, 16, 10, [10, 1], [16, 1], false);

    let steps = ONE_THREAD_STEPS;
    let (counted, losses) = count_on_one_thread(|| {
        use gradflow::layers::{ImageShape, ShortcutKind};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let model = Sequential::<f32>::image_builder(ImageShape::new(3, 16, 16))
            .conv2d_with(8, 3, |c| c.padding(1).bias(false))
            .batch_norm2d()
            .activation(Relu)
            .basic_block(8, 1, ShortcutKind::ZeroPad)
            .basic_block(16, 2, ShortcutKind::Projection)
            .max_pool2d(2, 2)
            .global_avg_pool2d()
            .flatten()
            .dropout(0.1)
            .linear(10)
            .build(&mut rng)
            .unwrap();
        let x = Array2::from_shape_fn((B, 768), |(r, c)| ((r * 7 + c * 3) % 11) as f32 / 5.5 - 1.0);
        let target = Array2::from_shape_fn((B, 10), |(r, c)| ((r + 2 * c) % 5) as f32 / 2.5 - 1.0);
        (Network::new(model), x, target)
    });
    assert_eq!(
        counted,
        steps * per_step,
        "{steps} steps allocated {counted} times; the matrix products alone account for {}",
        steps * per_step
    );
    assert!(losses.last().unwrap() < losses.first().unwrap(), "{losses:?}");
}
