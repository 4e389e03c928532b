//! gradflow's peer for the side-by-side speed benchmarks (PyTorch, JAX, candle, burn, dfdx,
//! hand-written ndarray): the same training steps, written with gradflow's public API the way a
//! user would write them, behind the peers' stdin protocol.
//!
//! Protocol (one command per line on stdin, one answer per command on stdout):
//! - `prep W`: build workload `W` (fixed random data and weights) and warm it up; answers
//!   `OK prep W <ms>`.
//! - `run W MIN_SECS MIN_STEPS`: time single steps until both limits are met (at most 5000
//!   steps); answers `RES W <median_ms> <steps> <last_loss>`.
//! - `quit`. Anything else answers `ERR ...`.
//!
//! Workloads (f32; a step = zero_grad + forward + loss + backward + plain SGD, lr 1e-3):
//! - G1024: one 1024×1024×1024 matrix product (a bias-free `Linear(1024→1024)` forward on a
//!   batch of 1024).
//! - W1: 32 × (Linear 128→128 + tanh), batch 64, MSE.
//! - W2: 784→1024→1024→1024→10 ReLU, batch 256, cross-entropy.
//! - W3: Linear 64→256, 16 × [x + Linear(ReLU(BatchNorm(Linear(x))))] at 256, Linear 256→10,
//!   batch 128, cross-entropy.
//! - W4: LSTM input 32, hidden 128, 64 steps, batch 32 (PyTorch's default initialization),
//!   a `Linear(128→1)` on the last step, MSE, full backpropagation through time.
//! - W5: 64→256→256→10 ReLU, batch 32, cross-entropy.
//! - W6: ResNet-20 of He et al. for CIFAR-10 (`CifarResNet::new(20, &[16, 32, 64], 10)`: a 3×3
//!   convolution and 9 basic blocks, 3×3 convolutions without bias, BatchNorm2d in training mode,
//!   ReLU, option-A zero-padding shortcuts, global average pooling, Linear 64→10) on 3×32×32
//!   images, batch 64, cross-entropy. The PyTorch and JAX peers of W6 are in `perf/`.
//!
//! Build and run by hand:
//! ```text
//! cargo build --release --example perf_peer
//! printf 'prep W1\nrun W1 1 20\nquit\n' | target/release/examples/perf_peer
//! ```
//! See `perf/README.md` for the harness. Threads follow `RAYON_NUM_THREADS`, as for the other
//! Rust peers.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::Instant;

use gradflow::activation::{Relu, Tanh};
use gradflow::layers::{CifarResNet, ImageShape};
use gradflow::loss::{CrossEntropy, Loss, Mse, Targets};
use gradflow::optim::{Sgd, SgdConfig};
use gradflow::recurrent::{Lstm, Readout, SequenceModel};
use gradflow::{Layer, Linear, Mode, Network, Sequential};
use ndarray::Array2;
use ndarray_rand::RandomExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;

const LEARNING_RATE: f64 = 1e-3;

/// One timed unit of work; returns the loss (read back every step, as the other peers do).
trait Step {
    fn step(&mut self) -> gradflow::Result<f32>;
}

/// What a training step compares the network's output with.
enum Target {
    Values(Array2<f32>),
    Classes(Vec<usize>),
}

/// A model, its data, loss and optimizer: one training step per call.
struct Training {
    net: Network<f32>,
    input: Array2<f32>,
    target: Target,
    loss: Box<dyn Loss<f32>>,
    sgd: Sgd<f32>,
    grad: Array2<f32>,
}

impl Training {
    fn new(
        model: Sequential<f32>,
        input: Array2<f32>,
        target: Target,
        loss: Box<dyn Loss<f32>>,
    ) -> gradflow::Result<Self> {
        let sgd = SgdConfig::new(LEARNING_RATE).build()?;
        Ok(Training { net: Network::new(model), input, target, loss, sgd, grad: Array2::zeros((0, 0)) })
    }
}

impl Step for Training {
    fn step(&mut self) -> gradflow::Result<f32> {
        self.net.zero_grad();
        let prediction = self.net.forward(self.input.view(), Mode::Train)?;
        let targets = match &self.target {
            Target::Values(v) => Targets::Values(v.view()),
            Target::Classes(c) => Targets::Classes(c),
        };
        let loss = self.loss.compute(prediction, targets, &mut self.grad)?;
        self.net.backward(self.grad.view())?;
        self.net.step(&mut self.sgd)?;
        Ok(loss)
    }
}

/// G1024: a bias-free 1024→1024 linear layer on a batch of 1024 is one 1024³ matrix product.
struct Product {
    layer: Linear<f32>,
    input: Array2<f32>,
    output: Array2<f32>,
}

impl Step for Product {
    fn step(&mut self) -> gradflow::Result<f32> {
        let mut ctx = gradflow::hooks::Context::new();
        self.layer.forward(self.input.view(), &mut self.output, Mode::Eval, &mut ctx)?;
        Ok(self.output[[0, 0]])
    }
}

fn normal(rng: &mut StdRng, shape: (usize, usize)) -> Array2<f32> {
    Array2::random_using(shape, StandardNormal, rng)
}

fn classes(batch: usize, count: usize) -> Target {
    Target::Classes((0..batch).map(|i| i * 7 % count).collect())
}

fn build(workload: &str) -> gradflow::Result<Option<Box<dyn Step>>> {
    let mut rng = StdRng::seed_from_u64(0);
    let step: Box<dyn Step> = match workload {
        "G1024" => {
            let weight = normal(&mut rng, (1024, 1024));
            Box::new(Product {
                layer: Linear::from_weights(weight, None)?,
                input: normal(&mut rng, (1024, 1024)),
                output: Array2::zeros((0, 0)),
            })
        }
        "W1" => {
            let model = Sequential::builder(128).repeat(32, 128, Tanh).build(&mut rng)?;
            let input = normal(&mut rng, (64, 128));
            let target = Target::Values(normal(&mut rng, (64, 128)));
            Box::new(Training::new(model, input, target, Box::new(Mse::default()))?)
        }
        "W2" => {
            let model = Sequential::builder(784)
                .dense(1024, Relu)
                .dense(1024, Relu)
                .dense(1024, Relu)
                .linear(10)
                .build(&mut rng)?;
            let input = normal(&mut rng, (256, 784));
            Box::new(Training::new(model, input, classes(256, 10), Box::new(CrossEntropy::default()))?)
        }
        "W3" => {
            let mut builder = Sequential::builder(64).linear(256);
            for _ in 0..16 {
                builder = builder.residual(|b| b.linear(256).batch_norm().activation(Relu).linear(256));
            }
            let model = builder.linear(10).build(&mut rng)?;
            let input = normal(&mut rng, (128, 64));
            Box::new(Training::new(model, input, classes(128, 10), Box::new(CrossEntropy::default()))?)
        }
        "W4" => {
            // Sequences as rows: (batch, T · input_size), step-major within a row.
            let (batch, steps, inputs, hidden) = (32, 64, 32, 128);
            let lstm = Lstm::new(inputs, hidden, &mut rng)?;
            let head = Linear::new(hidden, 1, &mut rng)?;
            let mut model = Sequential::new();
            model.push(SequenceModel::new(lstm, Readout::LastStep, head)?);
            let input = normal(&mut rng, (batch, steps * inputs));
            let target = Target::Values(normal(&mut rng, (batch, 1)));
            Box::new(Training::new(model, input, target, Box::new(Mse::default()))?)
        }
        "W5" => {
            let model =
                Sequential::builder(64).dense(256, Relu).dense(256, Relu).linear(10).build(&mut rng)?;
            let input = normal(&mut rng, (32, 64));
            Box::new(Training::new(model, input, classes(32, 10), Box::new(CrossEntropy::default()))?)
        }
        "W6" => {
            let model =
                CifarResNet::new(20, &[16, 32, 64], 10).build(ImageShape::new(3, 32, 32), &mut rng)?;
            let input = normal(&mut rng, (64, 3 * 32 * 32));
            Box::new(Training::new(model, input, classes(64, 10), Box::new(CrossEntropy::default()))?)
        }
        _ => return Ok(None),
    };
    Ok(Some(step))
}

/// Times single steps until at least `min_secs` seconds and `min_steps` steps have passed (at
/// most 5000 steps); returns the median in milliseconds, the step count and the last loss.
fn run(step: &mut dyn Step, min_secs: f64, min_steps: usize) -> gradflow::Result<(f64, usize, f32)> {
    step.step()?;
    step.step()?;
    let mut times = Vec::with_capacity(5000);
    let start = Instant::now();
    let mut loss = 0.0;
    while times.len() < min_steps || start.elapsed().as_secs_f64() < min_secs {
        let t = Instant::now();
        loss = step.step()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if times.len() >= 5000 {
            break;
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times.len(), loss))
}

fn answer(line: &str, workloads: &mut HashMap<String, Box<dyn Step>>) -> String {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        ["prep", w] => {
            let t = Instant::now();
            let built = build(w).and_then(|step| {
                let Some(mut step) = step else { return Ok(None) };
                for _ in 0..3 {
                    step.step()?;
                }
                Ok(Some(step))
            });
            match built {
                Ok(Some(step)) => {
                    workloads.insert(w.to_string(), step);
                    format!("OK prep {w} {:.1}", t.elapsed().as_secs_f64() * 1e3)
                }
                Ok(None) => format!("ERR unknown workload {w}"),
                Err(e) => format!("ERR prep {w}: {e}"),
            }
        }
        ["run", w, secs, steps] => {
            let (Ok(secs), Ok(steps)) = (secs.parse::<f64>(), steps.parse::<usize>()) else {
                return format!("ERR bad numbers in '{line}'");
            };
            let Some(step) = workloads.get_mut(*w) else { return format!("ERR {w} not prepared") };
            match run(step.as_mut(), secs, steps) {
                Ok((median, count, loss)) => format!("RES {w} {median:.4} {count} {loss:.5}"),
                Err(e) => format!("ERR run {w}: {e}"),
            }
        }
        _ => format!("ERR {line}"),
    }
}

fn main() {
    // The training thread joins rayon's pool (see gradflow::threads): N threads in all, as the
    // OpenMP-based peers have, instead of N pool threads plus a waiting caller.
    if let Err(e) = gradflow::threads::init_thread_pool(None) {
        eprintln!("{e}");
    }
    let mut workloads: HashMap<String, Box<dyn Step>> = HashMap::new();
    let mut out = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "quit" {
            break;
        }
        let reply = answer(&line, &mut workloads);
        if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
}
