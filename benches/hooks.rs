//! The cost of hooks on a training step: a 32-layer, width-128 tanh MLP, batch 64, f32, one
//! step = zero_grad + forward (Train) + MSE gradient + backward + SGD step through
//! `Network::step`, measured
//!
//! - `no_hooks`: nothing attached. The network's context then holds no hook set, and
//!   `Context::forward_child` / `backward_child` call the child and return: no path is built,
//!   nothing is copied or allocated;
//! - `noop_closure`: a closure that does nothing — the cost of the event machinery alone
//!   (dotted paths, events, one dynamic call per layer and direction);
//! - `recorder_gradients`: a `Recorder` with `RecorderConfig::gradients()`;
//! - `recorder_all`: a `Recorder` with `RecorderConfig::all()` (every built-in statistic:
//!   gradients, activations with saturation, parameter gradients, update ratios, the latter
//!   measured by the optimizer and reported by `Network::step`);
//! - `recorder_all_direct`: the same, with the optimizer called directly
//!   (`sgd.step(net.model_mut())`), so that the recorder copies the parameters to measure the
//!   updates itself.
//!
//! ```text
//! cargo bench --bench hooks -- --warm-up-time 1 --measurement-time 5
//! ```
//! Medians are in `target/criterion/hooks/<variant>/new/estimates.json`.
//!
//! On a shared machine, wall-clock times drift with the load between one variant's
//! measurement and the next. `GRADFLOW_BENCH_INTERLEAVED=ROUNDS cargo bench --bench hooks`
//! instead runs one step of each variant in turn, ROUNDS times, and prints the median step
//! time of each and the median of its per-round ratio to `no_hooks`, so that every variant
//! sees the same load.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use gradflow::activation::Tanh;
use gradflow::hooks::{Event, Hook, Recorder, RecorderConfig};
use gradflow::loss::{Loss, Mse, Targets};
use gradflow::optim::{Optimizer, Sgd, SgdConfig};
use gradflow::{Mode, Network, Sequential};
use ndarray::Array2;
use rand::SeedableRng;

const DEPTH: usize = 32;
const WIDTH: usize = 128;
const BATCH: usize = 64;

/// A network with its data, loss gradient buffer and optimizer.
struct Training {
    net: Network<f32>,
    x: Array2<f32>,
    target: Array2<f32>,
    grad: Array2<f32>,
    sgd: Sgd<f32>,
    /// Step the optimizer through `Network::step` (else directly on the model).
    through_network: bool,
}

impl Training {
    /// The same network (seed 0) for every variant, without hooks.
    fn new() -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let model =
            Sequential::builder(WIDTH).repeat(DEPTH, WIDTH, Tanh).build(&mut rng).expect("valid model");
        Training {
            net: Network::new(model),
            x: Array2::from_shape_fn((BATCH, WIDTH), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 5.5 - 1.0),
            target: Array2::from_shape_fn((BATCH, WIDTH), |(i, j)| ((i + 2 * j) % 5) as f32 / 2.5 - 1.0),
            grad: Array2::zeros((0, 0)),
            sgd: SgdConfig::new(1e-3).build().expect("valid learning rate"),
            through_network: true,
        }
    }

    /// The same network with `hook` attached.
    fn with<H: Hook<f32> + 'static>(hook: H) -> Self {
        let mut training = Self::new();
        training.net.attach_hook(hook);
        training
    }

    /// zero_grad + forward + MSE gradient + backward + SGD step.
    fn step(&mut self) -> f32 {
        self.net.zero_grad();
        let prediction = self.net.forward(self.x.view(), Mode::Train).expect("forward");
        let loss = Mse::default().compute(prediction, Targets::Values(self.target.view()), &mut self.grad);
        self.net.backward(self.grad.view()).expect("backward");
        if self.through_network {
            self.net.step(&mut self.sgd).expect("sgd step");
        } else {
            self.sgd.step(self.net.model_mut()).expect("sgd step");
        }
        loss.expect("finite loss")
    }
}

/// The variants, by name, `no_hooks` first.
fn variants() -> Vec<(&'static str, Training)> {
    let noop = |event: &mut Event<'_, f32>| {
        black_box(event);
    };
    vec![
        ("no_hooks", Training::new()),
        ("noop_closure", Training::with(noop)),
        ("recorder_gradients", Training::with(Recorder::new(RecorderConfig::gradients()).expect("valid"))),
        ("recorder_all", Training::with(Recorder::new(RecorderConfig::all()).expect("valid"))),
        ("recorder_all_direct", {
            let mut training = Training::with(Recorder::new(RecorderConfig::all()).expect("valid"));
            training.through_network = false;
            training
        }),
    ]
}

fn training_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("hooks");
    group.sample_size(30);
    for (name, mut training) in variants() {
        group.bench_function(name, |b| b.iter(|| black_box(training.step())));
    }
    group.finish();
}

/// One step of each variant in turn, `rounds` times; prints medians and ratios to `no_hooks`.
fn interleaved(rounds: usize) {
    let mut variants = variants();
    for (_, training) in &mut variants {
        for _ in 0..3 {
            training.step(); // warm up: buffers, optimizer and recorder state
        }
    }
    let mut times = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for ((_, training), times) in variants.iter_mut().zip(&mut times) {
            let start = Instant::now();
            black_box(training.step());
            times.push(start.elapsed());
        }
    }
    println!("hooks, interleaved: {rounds} rounds of one step per variant (median step time, median ratio)");
    for ((name, _), own) in variants.iter().zip(&times) {
        let mut ratios: Vec<f64> =
            own.iter().zip(&times[0]).map(|(t, base)| t.as_secs_f64() / base.as_secs_f64()).collect();
        println!(
            "  {name:<20} {:>9.3} ms  ×{:.3}",
            median(own.clone()).as_secs_f64() * 1e3,
            median(&mut ratios)
        );
    }
}

fn median<T: PartialOrd + Copy>(mut values: impl AsMut<[T]>) -> T {
    let values = values.as_mut();
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    values[values.len() / 2]
}

criterion_group!(benches, training_step);

fn main() {
    match std::env::var("GRADFLOW_BENCH_INTERLEAVED") {
        Ok(rounds) => interleaved(rounds.parse().expect("GRADFLOW_BENCH_INTERLEAVED is a number of rounds")),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
