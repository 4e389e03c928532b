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
//!   [`crate::diagnose::Diagnosis`]; layers the theory does not cover are named, with the reason.
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
