//! Test-only building blocks shared by the `hooks_*` and `diagnose_*` tests.

#![allow(dead_code)]

use gradflow::activation::Sigmoid;
use gradflow::hooks::{Recorder, RecorderConfig, Recording};
use gradflow::init::{GlorotUniform, Initializer, KaimingNormal, LinearDefault};
use gradflow::{Mode, Network, Sequential};
use ndarray::{Array2, ArrayView2};
use ndarray_rand::RandomExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;

pub const INPUTS: usize = 32;
pub const OUTPUTS: usize = 10;
pub const BATCH: usize = 64;

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A `(rows, cols)` array of standard normal draws.
pub fn normal(rng: &mut StdRng, rows: usize, cols: usize) -> Array2<f32> {
    Array2::random_using((rows, cols), StandardNormal, rng)
}

/// dL/dp of L = mean((p − t)²) (PyTorch's `MSELoss()`): 2(p − t)/N.
pub fn mse_grad(prediction: ArrayView2<'_, f32>, target: ArrayView2<'_, f32>) -> Array2<f32> {
    let n = prediction.len() as f32;
    (&prediction - &target).mapv(|d| 2.0 * d / n)
}

/// `depth` × (Linear(→width) + sigmoid) with Glorot uniform, then Linear(→OUTPUTS).
pub fn sigmoid_glorot(depth: usize, width: usize, seed: u64) -> Sequential<f32> {
    Sequential::builder(INPUTS)
        .init(GlorotUniform::default())
        .repeat(depth, width, Sigmoid)
        .linear(OUTPUTS)
        .build(&mut rng(seed))
        .unwrap()
}

/// `depth` × (Linear(→width) + ReLU) with He normal, then Linear(→OUTPUTS).
pub fn relu_he(depth: usize, width: usize, seed: u64) -> Sequential<f32> {
    relu_with(depth, width, seed, KaimingNormal::fan_in())
}

/// `depth` × (Linear(→width) + ReLU) with `init`, then Linear(→OUTPUTS).
pub fn relu_with(depth: usize, width: usize, seed: u64, init: impl Initializer + 'static) -> Sequential<f32> {
    Sequential::builder(INPUTS)
        .init(init)
        .repeat(depth, width, gradflow::activation::Relu)
        .linear(OUTPUTS)
        .build(&mut rng(seed))
        .unwrap()
}

/// `depth` × (Linear(→width) + tanh) with PyTorch's default U(±1/√fan_in), then Linear(→OUTPUTS).
pub fn tanh_default(depth: usize, width: usize, seed: u64) -> Sequential<f32> {
    tanh_default_with_bias(depth, width, seed, true)
}

/// [`tanh_default`], with or without biases.
pub fn tanh_default_with_bias(depth: usize, width: usize, seed: u64, bias: bool) -> Sequential<f32> {
    Sequential::builder(INPUTS)
        .init(LinearDefault)
        .bias(bias)
        .repeat(depth, width, gradflow::activation::Tanh)
        .linear(OUTPUTS)
        .build(&mut rng(seed))
        .unwrap()
}

/// Linear(INPUTS→width), then `depth` × ResidualBlock(Linear + sigmoid + Linear) with Glorot
/// uniform, then Linear(→OUTPUTS): the sigmoid network of [`sigmoid_glorot`] with skip
/// connections (ResNet's two-layer branch).
pub fn residual_sigmoid(depth: usize, width: usize, seed: u64) -> Sequential<f32> {
    residual(depth, width, seed, true)
}

/// Like [`residual_sigmoid`] but with the branch Linear + sigmoid: every block adds positive
/// values, so the residual stream grows and the sigmoids of the deeper blocks saturate.
pub fn residual_sigmoid_drifting(depth: usize, width: usize, seed: u64) -> Sequential<f32> {
    residual(depth, width, seed, false)
}

fn residual(depth: usize, width: usize, seed: u64, second_linear: bool) -> Sequential<f32> {
    let mut rng = rng(seed);
    let glorot = GlorotUniform::default();
    let mut builder = Sequential::builder(INPUTS).init(glorot).linear(width);
    for _ in 0..depth {
        builder = builder.residual(|b| {
            let b = b.init(glorot).dense(width, Sigmoid);
            if second_linear { b.linear(width) } else { b }
        });
    }
    builder.linear(OUTPUTS).build(&mut rng).unwrap()
}

/// One training step's forward and backward on a fixed random batch, recorded with `config`.
pub fn record_one_step(model: Sequential<f32>, config: RecorderConfig, seed: u64) -> Recording {
    let mut net = Network::new(model);
    let mut rng = rng(seed);
    let x = normal(&mut rng, BATCH, INPUTS);
    let target = normal(&mut rng, BATCH, OUTPUTS);
    let handle = net.attach_hook(Recorder::new(config).unwrap());
    let y = net.forward(x.view(), Mode::Train).unwrap().to_owned();
    net.backward(mse_grad(y.view(), target.view()).view()).unwrap();
    net.detach_hook(handle).unwrap().into_recording()
}
