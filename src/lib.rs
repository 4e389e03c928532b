//! # gradflow — see where your gradient vanishes
//!
//! A deep network learns only if the gradient reaches its first layers. Backpropagation
//! multiplies it, layer after layer, by the transposed weights and by the derivative of each
//! activation; when those factors are below one, the gradient reaching layer 1 of a 30-layer
//! network is a product of thirty small numbers — it *vanishes*, and the early layers stop
//! learning. Above one, it *explodes*. gradflow is a neural-network library built to make this
//! visible: every layer's forward and backward can be observed with hooks, recorders turn them
//! into per-layer statistics, and a diagnosis names the problem and the remedy.
//!
//! ## Quick start
//!
//! ```
//! use gradflow::{Network, Sequential, Mode};
//! use gradflow::activation::Tanh;
//! use gradflow::init::GlorotUniform;
//! use ndarray::Array2;
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(42);
//! let model = Sequential::<f32>::builder(64)
//!     .init(GlorotUniform::default()).repeat(20, 64, Tanh).linear(10)
//!     .build(&mut rng)?;
//! let mut net = Network::new(model);
//! let x = Array2::<f32>::ones((8, 64));
//! let y = net.forward(x.view(), Mode::Train)?;
//! assert_eq!(y.dim(), (8, 10));
//! # Ok::<(), gradflow::Error>(())
//! ```
//!
//! ## Module map
//! - [`Layer`], [`Mode`]: the layer trait; [`layers`]: `Linear`, `Sequential` and its builder,
//!   `BatchNorm1d` (the [`BatchNorm`] trait), `LayerNorm`, `ResidualBlock` (the [`Residual`]
//!   trait), `Highway`, `PRelu`, `Scale`.
//! - [`activation`]: the [`Activation`] trait and the activation zoo; [`Act`] makes one a layer.
//! - [`init`]: the [`Initializer`] trait and `torch.nn.init`'s schemes.
//! - [`recurrent`]: RNN, LSTM and GRU over `(time, batch, features)` with backpropagation
//!   through time.
//! - [`loss`], [`optim`]: losses with their gradients; optimizers, schedules, clipping.
//! - [`train`]: the training loop; [`data`]: the embedded digits, MNIST, datasets.
//! - [`Network`]: a model with its buffers, hooks and step counter.
//! - [`hooks`]: observing and modifying what flows through every layer; recorders and the
//!   non-finite detector.
//! - [`diagnose`]: verdicts (vanishing, exploding, saturated, dead, non-finite) and remedies
//!   from a [`hooks::Recording`]; [`report`]: text tables, JSON, CSV and SVG plots.
//! - [`io`]: saving and loading a model's state as safetensors, with PyTorch's names; model specs.
//! - [`export`]: metrics as JSON lines and TensorBoard event files.
//! - [`gradcheck`]: the finite-difference checker every backward pass is tested with.
#![warn(missing_docs)]

pub mod activation;
pub mod data;
pub mod diagnose;
mod error;
pub mod export;
mod float;
pub mod gradcheck;
pub mod hooks;
pub mod init;
pub mod io;
mod kernels;
mod layer;
pub mod layers;
mod linalg;
pub mod loss;
mod network;
pub mod optim;
mod param;
pub mod recurrent;
pub mod report;
mod scratch;
pub mod threads;
pub mod train;
mod vectorize;

/// The `ndarray` version gradflow's arrays come from: use `gradflow::ndarray::Array2` and your
/// arrays are always the ones gradflow takes, whatever `ndarray` your crate depends on.
pub use ndarray;
/// The `rand` version gradflow's initializers and data splits draw from: seed a generator with
/// `gradflow::rand::SeedableRng` and it always fits gradflow's builders (a crate that adds its
/// own `rand` of another major version would otherwise meet "multiple different versions of
/// crate `rand`").
pub use rand;

pub use activation::{Act, Activation, ActivationFamily};
pub use error::{Error, Result};
pub use float::Float;
pub use init::Initializer;
pub use layer::{Layer, Mode, check_input_features, check_shape, ensure_shape};
pub use layers::{
    BatchNorm, BatchNorm1d, BatchNormConfig, BranchScale, Highway, HighwayConfig, LayerNorm, LayerNormConfig,
    Linear, LinearConfig, PRelu, Residual, ResidualBlock, Scale, Sequential, SequentialBuilder,
};
pub use loss::{Loss, Reduction, Targets};
pub use network::{Network, named_buffers, named_parameters};
pub use optim::Optimizer;
pub use param::{BufferView, BufferViewMut, Param, ParamView, ParamViewMut};

/// The README's code blocks, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
