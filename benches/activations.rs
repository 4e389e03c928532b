//! Elementwise activations on 64 × 1024 `f32`s: the layers' vectorized `forward_slice` and
//! `backward_slice` against a plain loop over `f32::tanh` / the exact sigmoid / PyTorch's
//! tanh-form GELU formula (what they replaced), in elements per second; the exact GELU (`erfc`
//! entry by entry) for scale.
//!
//! `cargo bench --bench activations`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gradflow::Activation;
use gradflow::activation::{Gelu, GeluApproximation, Relu, Sigmoid, Tanh, stable_sigmoid};

const N: usize = 64 * 1024;

fn activations(c: &mut Criterion) {
    let mut group = c.benchmark_group("activation_f32");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(N as u64));
    let x: Vec<f32> = (0..N).map(|i| (i as f32 / N as f32 - 0.5) * 12.0).collect();
    let mut y = vec![0.0f32; N];
    let gy = vec![0.5f32; N];
    let mut gx = vec![0.0f32; N];

    group.bench_function(BenchmarkId::new("tanh_forward", "std_loop"), |b| {
        b.iter(|| y.iter_mut().zip(black_box(&x)).for_each(|(y, &x)| *y = x.tanh()))
    });
    group.bench_function(BenchmarkId::new("tanh_forward", "gradflow"), |b| {
        b.iter(|| Activation::<f32>::forward_slice(&Tanh, black_box(&x), &mut y))
    });
    group.bench_function(BenchmarkId::new("tanh_backward", "gradflow"), |b| {
        b.iter(|| Activation::<f32>::backward_slice(&Tanh, &x, black_box(&y), &gy, &mut gx))
    });
    group.bench_function(BenchmarkId::new("sigmoid_forward", "std_loop"), |b| {
        b.iter(|| y.iter_mut().zip(black_box(&x)).for_each(|(y, &x)| *y = stable_sigmoid(x)))
    });
    group.bench_function(BenchmarkId::new("sigmoid_forward", "gradflow"), |b| {
        b.iter(|| Activation::<f32>::forward_slice(&Sigmoid, black_box(&x), &mut y))
    });
    let gelu_tanh = Gelu::new(GeluApproximation::Tanh);
    group.bench_function(BenchmarkId::new("gelu_tanh_forward", "std_loop"), |b| {
        b.iter(|| {
            y.iter_mut()
                .zip(black_box(&x))
                .for_each(|(y, &x)| *y = 0.5 * x * (1.0 + (0.797_884_6 * (x + 0.044_715 * x * x * x)).tanh()))
        })
    });
    group.bench_function(BenchmarkId::new("gelu_tanh_forward", "gradflow"), |b| {
        b.iter(|| Activation::<f32>::forward_slice(&gelu_tanh, black_box(&x), &mut y))
    });
    group.bench_function(BenchmarkId::new("gelu_tanh_backward", "gradflow"), |b| {
        b.iter(|| Activation::<f32>::backward_slice(&gelu_tanh, &x, black_box(&y), &gy, &mut gx))
    });
    group.bench_function(BenchmarkId::new("gelu_exact_forward", "gradflow"), |b| {
        b.iter(|| Activation::<f32>::forward_slice(&Gelu::default(), black_box(&x), &mut y))
    });
    group.bench_function(BenchmarkId::new("relu_forward", "gradflow"), |b| {
        b.iter(|| Activation::<f32>::forward_slice(&Relu, black_box(&x), &mut y))
    });
    group.bench_function(BenchmarkId::new("relu_backward", "gradflow"), |b| {
        b.iter(|| Activation::<f32>::backward_slice(&Relu, black_box(&x), &y, &gy, &mut gx))
    });
    group.finish();
}

criterion_group!(benches, activations);
criterion_main!(benches);
