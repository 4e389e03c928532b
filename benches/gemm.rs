//! Matrix products: gradflow's backend (the `gemm` crate's kernels, through a bias-free `Linear`
//! forward, which is exactly one product) against those kernels called directly on the same row-major
//! operands (`gemm_crate_direct`: what gradflow did before it routed wide products through a
//! column-major scratch buffer, see `src/linalg.rs`) and ndarray's `general_mat_mul`
//! (matrixmultiply), in FLOP/s (criterion reports "elements/s": one element is one
//! floating-point operation).
//!
//! `cargo bench --bench gemm`; `RAYON_NUM_THREADS=1` for one thread (`gemm_crate_direct` is
//! always single-threaded, so compare it with gradflow at one thread).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gradflow::hooks::Context;
use gradflow::{Layer, Linear, Mode};
use ndarray::Array2;
use ndarray::linalg::general_mat_mul;

// The kernels gradflow's layers call, through the same front end (`gemm::gemm`'s, without its
// complex-number kernels).
#[path = "../src/gemm_kernels.rs"]
mod gemm_kernels;
use gemm_kernels::Parallelism;

fn filled(rows: usize, cols: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(i, j)| ((i * 31 + j * 17) % 23) as f32 / 11.0 - 1.0)
}

fn products(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm_f32");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    // (batch, in, out): W1's layer, W5's hidden layer, W3's layer, W2's hidden layer, G1024.
    for (batch, inp, out) in
        [(64, 128, 128), (32, 256, 256), (128, 256, 256), (256, 1024, 1024), (1024, 1024, 1024)]
    {
        let label = format!("{batch}x{inp}x{out}");
        group.throughput(Throughput::Elements(2 * (batch * inp * out) as u64));
        let x = filled(batch, inp);
        let weight = filled(out, inp);
        let mut layer = Linear::from_weights(weight.clone(), None).unwrap();
        let mut y = Array2::zeros((batch, out));
        group.bench_function(BenchmarkId::new("gradflow", &label), |b| {
            b.iter(|| layer.forward(black_box(x.view()), &mut y, Mode::Eval, &mut Context::new()).unwrap())
        });
        let mut y1 = Array2::<f32>::zeros((batch, out));
        group.bench_function(BenchmarkId::new("gemm_crate_direct", &label), |b| {
            b.iter(|| {
                // SAFETY: x is (batch, inp), weight (out, inp) read as its transpose (inp, out),
                // y1 (batch, out): all contiguous row-major arrays that these strides stay inside.
                unsafe {
                    gemm_kernels::gemm(
                        batch,
                        out,
                        inp,
                        y1.as_mut_ptr(),
                        1,
                        out as isize,
                        false,
                        black_box(x.as_ptr()),
                        1,
                        inp as isize,
                        weight.as_ptr(),
                        inp as isize,
                        1,
                        0.0,
                        1.0,
                        Parallelism::None,
                    )
                }
            })
        });
        let mut y2 = Array2::zeros((batch, out));
        group.bench_function(BenchmarkId::new("matrixmultiply", &label), |b| {
            b.iter(|| general_mat_mul(1.0, black_box(&x), &weight.t(), 0.0, &mut y2))
        });
    }
    group.finish();
}

criterion_group!(benches, products);
criterion_main!(benches);
