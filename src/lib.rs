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
//! use gradflow::ndarray::Array2;
//! use gradflow::rand::SeedableRng;
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
//! - [`export`]: metrics as JSON lines and TensorBoard event files; whole recordings as JSON
//!   lines, also of PyTorch runs recorded with the Python module `gradflow_torch` (in the
//!   repository's `python/`), which the `gradflow` binary diagnoses (`gradflow diagnose run.jsonl`).
//! - [`gradcheck`]: the finite-difference checker every backward pass is tested with.
//! - [`limits`]: the sizes gradflow refuses to allocate beyond.
//! - [`theory`]: what mean-field theory predicts for a network at initialization (signal
//!   propagation, the edge of chaos, per-layer gradient factors) and the singular values of its
//!   input–output Jacobian.
//!
//! ## Reliability
//! No public function panics, aborts or silently corrupts a model, whatever the input: invalid
//! sizes and settings are an [`Error`] naming the layer, field or file (sizes are checked against
//! [`limits`] before anything is allocated, settings in the model's float type); a failed load,
//! optimizer step (non-finite gradient, or an update that would overflow) or training pass
//! changes no parameter and no buffer. See the README's "Reliability" section for what is and is
//! not covered.
//!
//! ## The crates in gradflow's API
//! Arrays are [`ndarray`]'s, random draws come from a [`rand`] RNG, and recordings and
//! statistics compare approximately through [`approx`]. gradflow re-exports all three: write
//! `gradflow::ndarray::Array2`, `gradflow::rand::SeedableRng`, `gradflow::approx::assert_relative_eq`,
//! and your code uses exactly the versions gradflow was built with, whatever versions your own
//! `Cargo.toml` may pull in. gradflow's `ndarray` has its `approx` feature on, so arrays (a
//! parameter's [`ParamView::value`], two models' outputs) compare with
//! `assert_abs_diff_eq!(a, b, epsilon = 1e-6)` too.
//!
//! ## Cargo features
//! All on by default; `default-features = false` leaves them out of your build.
//! - `plots`: SVG charts, [`report::plot`] (the `plotters` crate).
//! - `progress`: the training progress bar, [`train::Progress::Bar`] (the `indicatif` crate);
//!   without it the trainer prints one line per epoch instead.
//! - `tensorboard`: TensorBoard event files, [`export::TensorBoardWriter`] (the `crc32c` crate).
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The [`ndarray`](https://docs.rs/ndarray/0.17) version gradflow is built on: every layer takes
/// and returns its arrays. Use it through `gradflow::ndarray` so that your arrays are the same
/// crate version as gradflow's; an `ndarray` of another version in your own `Cargo.toml` makes
/// errors such as "expected `ArrayBase<…>`, found `ArrayBase<…>`". Its `approx` feature is on.
pub use ndarray;

/// The [`rand`](https://docs.rs/rand/0.9) version gradflow draws from: builders, initializers
/// and recurrent layers take a `&mut dyn rand::RngCore` of this version. Write
/// `gradflow::rand::SeedableRng` and `gradflow::rand::rngs::StdRng`: a different `rand` in your
/// own `Cargo.toml` (`cargo add rand` may pick a newer one) would give "multiple different
/// versions of crate `rand`" errors at `.build(&mut rng)`.
pub use rand;

/// The [`approx`](https://docs.rs/approx/0.5) version whose `AbsDiffEq` and `RelativeEq` gradflow
/// implements for [`hooks::Recording`] and the statistics in it (and `ndarray` for arrays):
/// `gradflow::approx::assert_relative_eq!(a, b, max_relative = 1e-12)` needs no `approx` in your
/// own `Cargo.toml`.
pub use approx;

pub mod activation;
mod alloc;
mod checks;
pub mod data;
pub mod diagnose;
mod elementwise;
mod error;
pub mod export;
mod float;
mod gemm_kernels;
pub mod gradcheck;
pub mod hooks;
pub mod init;
pub mod io;
mod kernels;
mod layer;
pub mod layers;
pub mod limits;
mod linalg;
pub mod loss;
mod network;
pub mod optim;
mod param;
pub mod recurrent;
pub mod report;
mod scratch;
pub mod theory;
pub mod threads;
pub mod train;
mod vectorize;

pub use activation::{Act, Activation, ActivationFamily};
pub(crate) use checks::check_finite;
pub use error::{Error, Result};
pub use float::Float;
pub use init::Initializer;
pub use layer::{AsAny, Layer, Mode, check_input_features, check_shape, ensure_shape};
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
