//! Whole training steps (zero_grad, forward, loss, backward, SGD) of the peer benchmarks'
//! workloads W1, W3 and W5 (see `perf/README.md`), written with the public API.
//!
//! `cargo bench --bench training_step`; `RAYON_NUM_THREADS=1` for one thread.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gradflow::activation::{Relu, Tanh};
use gradflow::loss::{CrossEntropy, Loss, Mse, Targets};
use gradflow::optim::{Optimizer, Sgd, SgdConfig};
use gradflow::{Mode, Network, Sequential};
use ndarray::Array2;
use rand::SeedableRng;

struct Training {
    net: Network<f32>,
    x: Array2<f32>,
    values: Option<Array2<f32>>,
    classes: Vec<usize>,
    loss: Box<dyn Loss<f32>>,
    sgd: Sgd<f32>,
    grad: Array2<f32>,
}

impl Training {
    fn new(model: Sequential<f32>, batch: usize, inputs: usize, outputs: usize, mse: bool) -> Self {
        let x = Array2::from_shape_fn((batch, inputs), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 5.5 - 1.0);
        let (values, loss): (_, Box<dyn Loss<f32>>) = if mse {
            let t = Array2::from_shape_fn((batch, outputs), |(i, j)| ((i + 2 * j) % 5) as f32 / 2.5 - 1.0);
            (Some(t), Box::new(Mse::default()))
        } else {
            (None, Box::new(CrossEntropy::default()))
        };
        Training {
            net: Network::new(model),
            x,
            values,
            classes: (0..batch).map(|i| i * 7 % outputs).collect(),
            loss,
            sgd: SgdConfig::new(1e-3).build().unwrap(),
            grad: Array2::zeros((0, 0)),
        }
    }

    fn step(&mut self) -> f32 {
        self.net.zero_grad();
        let prediction = self.net.forward(self.x.view(), Mode::Train).unwrap();
        let target = match &self.values {
            Some(v) => Targets::Values(v.view()),
            None => Targets::Classes(&self.classes),
        };
        let loss = self.loss.compute(prediction, target, &mut self.grad).unwrap();
        self.net.backward(self.grad.view()).unwrap();
        self.sgd.step(self.net.model_mut()).unwrap();
        loss
    }
}

fn steps(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut group = c.benchmark_group("training_step");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));

    let w1 = Sequential::builder(128).repeat(32, 128, Tanh).build(&mut rng).unwrap();
    let mut w1 = Training::new(w1, 64, 128, 128, true);
    group.bench_function("W1_deep_tanh_mse", |b| b.iter(|| w1.step()));

    let mut builder = Sequential::builder(64).linear(256);
    for _ in 0..16 {
        builder = builder.residual(|b| b.linear(256).batch_norm().activation(Relu).linear(256));
    }
    let mut w3 = Training::new(builder.linear(10).build(&mut rng).unwrap(), 128, 64, 10, false);
    group.bench_function("W3_residual_batchnorm_ce", |b| b.iter(|| w3.step()));

    let w5 = Sequential::builder(64).dense(256, Relu).dense(256, Relu).linear(10).build(&mut rng).unwrap();
    let mut w5 = Training::new(w5, 32, 64, 10, false);
    group.bench_function("W5_small_relu_ce", |b| b.iter(|| w5.step()));
    group.finish();
}

criterion_group!(benches, steps);
criterion_main!(benches);
