//! Test-only building blocks shared by the `hooks_*` and `diagnose_*` tests.
//!
//! TEST-ONLY STAND-INS (to be replaced by the crate's own items when they land):
//! - [`Sigmoid`] → `gradflow::activation::Sigmoid`
//! - [`HeNormal`] → `gradflow::init::KaimingNormal`
//! - [`TestResidual`] → `gradflow::layers::ResidualBlock` / `SequentialBuilder::repeat_residual`
#![allow(dead_code)]

use gradflow::hooks::{Context, Recorder, RecorderConfig, Recording};
use gradflow::init::{Fans, GlorotUniform, Initializer, LinearDefault};
use gradflow::{Activation, ActivationFamily, Layer, Mode, Network, Sequential};
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

/// TEST-ONLY: logistic sigmoid 1/(1+e^−x), derivative y(1−y) ≤ 1/4, gain 1 (PyTorch's
/// `calculate_gain("sigmoid")`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sigmoid;

impl<F: gradflow::Float> Activation<F> for Sigmoid {
    fn name(&self) -> &'static str {
        "sigmoid"
    }
    fn value(&self, x: F) -> F {
        if x >= F::zero() {
            F::one() / (F::one() + (-x).exp())
        } else {
            let e = x.exp();
            e / (F::one() + e)
        }
    }
    fn derivative(&self, _x: F, y: F) -> F {
        y * (F::one() - y)
    }
    fn gain(&self) -> f64 {
        1.0
    }
    fn max_derivative(&self) -> f64 {
        0.25
    }
    fn family(&self) -> ActivationFamily {
        ActivationFamily::Saturating
    }
}

/// TEST-ONLY: He/Kaiming normal, N(0, gain²/fan_in) with the gain of the activation that
/// follows (√2 for ReLU), as `torch.nn.init.kaiming_normal_(mode="fan_in")`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeNormal;

impl Initializer for HeNormal {
    fn name(&self) -> String {
        "kaiming_normal(fan_in)".into()
    }
    fn sample(
        &self,
        shape: (usize, usize),
        fans: Fans,
        rng: &mut dyn rand::RngCore,
    ) -> gradflow::Result<Array2<f64>> {
        let std = fans.activation_gain / (fans.fan_in as f64).sqrt();
        Ok(Array2::from_shape_simple_fn(shape, || {
            let z: f64 = StandardNormal.sample(rng);
            std * z
        }))
    }
}

/// TEST-ONLY: y = x + branch(x), running the branch through the context so that hooks see
/// `"<i>.branch"` and its children.
pub struct TestResidual {
    pub branch: Sequential<f32>,
    branch_out: Array2<f32>,
    branch_grad: Array2<f32>,
}

impl TestResidual {
    pub fn new(branch: Sequential<f32>) -> Self {
        TestResidual { branch, branch_out: Array2::zeros((0, 0)), branch_grad: Array2::zeros((0, 0)) }
    }
}

impl Layer<f32> for TestResidual {
    fn kind(&self) -> &'static str {
        "Residual"
    }
    fn output_features(&self, input_features: usize) -> gradflow::Result<usize> {
        self.branch.output_features(input_features)
    }
    fn forward(
        &mut self,
        input: ArrayView2<'_, f32>,
        output: &mut Array2<f32>,
        mode: Mode,
        ctx: &mut Context<'_, f32>,
    ) -> gradflow::Result<()> {
        ctx.forward_child(&"branch", &mut self.branch, input, &mut self.branch_out, mode)?;
        *output = &self.branch_out + &input;
        Ok(())
    }
    fn backward(
        &mut self,
        input: ArrayView2<'_, f32>,
        _output: ArrayView2<'_, f32>,
        grad_output: ArrayView2<'_, f32>,
        grad_input: Option<&mut Array2<f32>>,
        ctx: &mut Context<'_, f32>,
    ) -> gradflow::Result<()> {
        ctx.backward_child(
            &"branch",
            &mut self.branch,
            input,
            self.branch_out.view(),
            grad_output,
            Some(&mut self.branch_grad),
        )?;
        if let Some(g) = grad_input {
            *g = &self.branch_grad + &grad_output;
        }
        Ok(())
    }
    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(gradflow::ParamView<'a, f32>)) {
        self.branch.visit_parameters(visitor);
    }
    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(gradflow::ParamViewMut<'a, f32>)) {
        self.branch.visit_parameters_mut(visitor);
    }
    fn visit_children<'a>(&'a self, visitor: &mut dyn FnMut(&str, &'a dyn Layer<f32>)) {
        visitor("branch", &self.branch);
    }
    fn child_mut(&mut self, name: &str) -> Option<&mut dyn Layer<f32>> {
        (name == "branch").then_some(&mut self.branch as &mut dyn Layer<f32>)
    }
}

pub const INPUTS: usize = 32;
pub const OUTPUTS: usize = 10;
pub const BATCH: usize = 64;

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A `(rows, cols)` array of standard normal draws.
pub fn normal(rng: &mut StdRng, rows: usize, cols: usize) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || {
        let z: f32 = StandardNormal.sample(rng);
        z
    })
}

/// dL/dp of L = mean((p − t)²) (PyTorch's `MSELoss()`): 2(p − t)/N.
pub fn mse_grad(prediction: ArrayView2<'_, f32>, target: ArrayView2<'_, f32>) -> Array2<f32> {
    let n = prediction.len() as f32;
    (&prediction - &target).mapv(|d| 2.0 * d / n)
}

/// `depth` × (Linear(→width) + sigmoid) with Glorot uniform, then Linear(→OUTPUTS).
pub fn sigmoid_glorot(depth: usize, width: usize, seed: u64) -> Sequential<f32> {
    Sequential::builder(INPUTS)
        .init(GlorotUniform { gain: 1.0 })
        .repeat(depth, width, Sigmoid)
        .linear(OUTPUTS)
        .build(&mut rng(seed))
        .unwrap()
}

/// `depth` × (Linear(→width) + ReLU) with He normal, then Linear(→OUTPUTS).
pub fn relu_he(depth: usize, width: usize, seed: u64) -> Sequential<f32> {
    relu_with(depth, width, seed, HeNormal)
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

/// Linear(INPUTS→width), then `depth` × TestResidual(Linear + sigmoid + Linear) with Glorot
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
    let glorot = GlorotUniform { gain: 1.0 };
    let mut builder = Sequential::builder(INPUTS).init(glorot).linear(width);
    for _ in 0..depth {
        let mut branch = Sequential::builder(width).init(glorot).dense(width, Sigmoid);
        if second_linear {
            branch = branch.linear(width);
        }
        builder = builder.layer(TestResidual::new(branch.build(&mut rng).unwrap()));
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
