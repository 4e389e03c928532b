//! Theory beside measurement: what mean-field theory and random-matrix theory *predict* for a
//! network at initialization, before a single step is taken.
//!
//! gradflow measures how the gradient shrinks layer by layer. For a wide network with random
//! weights the number can be predicted:
//!
//! - [`MeanField`] — signal propagation (Poole et al. 2016; Schoenholz et al. 2017): for any
//!   activation and weight/bias variances `σ_w²`, `σ_b²`, the fixed point `q*` of the
//!   pre-activation variance ([`FixedPoint`], which says so when no finite one exists), the
//!   per-layer gradient factor `χ₁ = σ_w²·E[φ′(√q*·z)²]`, the correlation map and its slope, and
//!   the depth scales `ξ_q`, `ξ_c`, `ξ_∇` ([`Propagation`]). [`critical_weight_variance`] gives
//!   the edge of chaos, `χ₁ = 1`, for a bias variance.
//! - [`predict_model`] / [`predict`] — the per-layer gradient factors and the first/last
//!   gradient ratio of a real model, from its weights and activations, comparable with
//!   [`crate::diagnose::Diagnosis`] — [`crate::diagnose::Diagnosis::with_theory`] puts the two
//!   side by side and says whether they agree; layers the theory does not cover are named, with
//!   the reason.
//! - [`jacobian`], [`jacobian_spectra`] — the input–output Jacobian of a model at an input, built
//!   from backward passes, and the singular values ([`Spectrum`]) of it and of every hidden
//!   layer's Jacobian: whether the network is well conditioned in every direction (dynamical
//!   isometry, Pennington, Schoenholz & Ganguli 2017), not only on average.
//!
//! # Accuracy of the expectations
//! Every expectation over a Gaussian is computed by adaptive 15-point Gauss–Kronrod quadrature
//! on the real line, cut at 0 — where ReLU-like activations have their kink, so that the step
//! function `φ′` of a ReLU is integrated exactly instead of with the `n^(−1/2)` error plain
//! Gauss–Hermite quadrature would have — truncated where the Gaussian tail is negligible, and
//! refined until the error estimate is below 10⁻¹² of the integral of the absolute value. The
//! tests check 10⁻¹⁰ against closed forms (ReLU, identity, erf) and Monte-Carlo simulations of
//! networks of width 1000 and more. An expectation that diverges, an activation returning NaN
//! or a quadrature that does not converge is an error, never a silently wrong number.
//!
//! Nothing in the layers depends on this module.
//!
//! # What the prediction covers
//! Hidden layers are grouped by [`crate::hooks::layer_numbers`], as in the diagnosis ("Linear + tanh" is one).
//! A hidden layer is **covered** when it is a `Linear` (followed by an activation or not) whose
//! weights and biases look like independent zero-mean draws — the situation at initialization
//! — and the second moment of its input is known (the data's for the first layer, the
//! prediction's for the next ones). For it the theory gives the pre-activation variance `q`,
//! the output's standard deviation, and the gradient factor `√χ` with
//! `χ = σ_w²·E[φ′(√q·z)²]`: the predicted `‖∂L/∂h_{l−1}‖ / ‖∂L/∂h_l‖`, whatever the widths.
//!
//! **Not covered**, with the reason named in the result:
//! - normalization layers (`BatchNorm1d`, `LayerNorm`) and groups containing them: batch
//!   normalization couples the examples of a batch, and its mean-field theory (Yang, Pennington,
//!   Rao, Sohl-Dickstein & Schoenholz 2019, "A Mean Field Theory of Batch Normalization")
//!   predicts a gradient explosion that depends on the batch size, which gradflow does not
//!   compute;
//! - residual and highway blocks: their gradient factor `√(1 + χ_branch)` (Yang & Schoenholz
//!   2017, "Mean Field Residual Networks") needs the branch's own prediction, which gradflow
//!   does not yet assemble;
//! - any other layer kind, an activation with no `Linear` before it, weights or biases whose
//!   mean is far from zero (more than 4 standard errors, e.g. a constant bias of 0.1), and every
//!   layer after one that is not covered (its input's variance is then unknown).
//!
//! ## How well it agrees with a measurement
//! The theory is exact for infinitely wide layers with independent weights. At width 64–128 a
//! single batch's ‖∂L/∂h‖ fluctuates by a few per cent per layer around it. On the plain
//! networks of the `resnet_vs_plain` example (20 × Linear(64→64) + tanh, ReLU or sigmoid,
//! PyTorch's default init, the digits) and of the `initializers` example (30 × Linear(128→128) +
//! tanh or ReLU under six initializations, from ×0.08 to ×8 per layer), the measured per-layer
//! factor [`crate::diagnose::Diagnosis::per_layer_factor`] was within **3%** of
//! [`Prediction::per_layer_factor`] on every seed tried (measured/predicted 0.975–1.026; the
//! tests hold it to 4%), and the first/last gradient ratio over 19–29 layers within a factor
//! 1.7. A larger disagreement is a finding: a layer the theory does not cover, a narrow layer,
//! inputs far from the stated scale, or trained weights, which are no longer independent draws.

mod critical;
mod groups;
mod jacobian;
mod mean_field;
mod prediction;
mod quadrature;
mod roots;
mod spectrum;

pub use critical::critical_weight_variance;
pub use jacobian::{
    JACOBIAN_BLOCK, JacobianSpectra, LayerSpectrum, MAX_JACOBIAN_WIDTH, jacobian, jacobian_spectra,
    network_jacobian, network_jacobian_spectra,
};
pub use mean_field::{F32_TOLERANCE, F64_TOLERANCE, FixedPoint, MeanField, Phase, Propagation};
pub use prediction::{
    DescribedLayer, InputScale, LayerDescriptor, LayerPrediction, PredictedLayer, Prediction, describe_model,
    predict, predict_model,
};
pub use spectrum::Spectrum;

pub(crate) use prediction::UNKNOWN_INPUT;
