//! Diagnosis: from a [`Recording`](crate::hooks::Recording), a verdict per layer and for the
//! model — healthy, vanishing, exploding, saturated, dead, non-finite — with the numbers behind
//! it and the remedies gradflow offers, ordered by what the evidence points at.
//!
//! # What is judged
//! The network is seen as hidden layers ([`HiddenLayer`]: "Linear+tanh" is one). The diagnosis
//! looks at three things, at one step (by default the first recorded one — the network at
//! initialization):
//! - **‖dL/dh‖**, the gradient with respect to each hidden layer's output. Its ratio between the
//!   first and the last hidden layer decides *vanishing* (below [`Thresholds::vanishing_ratio`],
//!   default 1e-2) and *exploding* (above [`Thresholds::exploding_ratio`], default 1e2).
//!   Per-layer *weight*-gradient norms understate the problem: dL/dW = (dL/dz)ᵀ h also scales
//!   with each layer's input h, which is largest near the input, so in the plain 20-layer tanh
//!   network of the `resnet_vs_plain` example (PyTorch's default U(±1/√fan_in) init, seed 0)
//!   ‖dL/dW‖ spans ×1,700 across the layers while ‖dL/dh‖ spans ×45,000 (×0.57 per layer).
//! - **The forward activation scale** (std of each hidden layer's output): a signal that
//!   shrinks or grows from layer to layer points at the initialization.
//! - **‖dL/dW‖/‖W‖**, and the share of **saturated** (sigmoid/tanh) and **dead** (ReLU) units.
//!
//! # Remedies, by evidence
//! Saturated units → non-saturating activations first; vanishing with a shrinking forward
//! signal → initialization first, then residual connections; vanishing through sigmoid-like
//! activations (derivative ≤ 1/4) → ReLU-family activations; vanishing otherwise → residual
//! connections; exploding → gradient clipping, then initialization; dead units → LeakyReLU and a
//! lower learning rate; recurrent layers → LSTM/GRU.
//!
//! # Theory beside measurement
//! [`Diagnosis::with_theory`] puts the mean-field prediction for the network at initialization
//! ([`crate::theory::predict_model`]) beside the measured per-layer factor and first/last ratio,
//! and says whether they agree within [`Thresholds::theory_tolerance`] ([`TheoryComparison`]).
//!
//! Reports: [`crate::report::table`] prints a [`Diagnosis`]; [`crate::report::json`] saves it.

mod diagnosis;
mod hidden_layers;
mod remedy;
mod theory;
mod thresholds;
mod training;
mod verdict;

pub use diagnosis::{Diagnosis, LayerDiagnosis, diagnose, diagnose_step};
pub use hidden_layers::HiddenLayer;
pub use remedy::Remedy;
pub use theory::{TheoryAgreement, TheoryComparison};
pub use thresholds::Thresholds;
pub use training::{FlowChange, LossTrend, TrainingDiagnosis};
pub use verdict::Verdict;
