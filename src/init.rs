//! Weight initializers: the [`Initializer`] trait and the schemes of `torch.nn.init`.
//!
//! Why initialization decides whether a deep network can learn at all: with `n` inputs per unit,
//! a weight variance of `1/n` keeps the variance of the *forward* signal constant from layer to
//! layer (LeCun), `1/n_out` keeps the variance of the *backward* gradient constant, and Glorot &
//! Bengio (2010) compromise with `2/(n_in + n_out)`. Rectifiers zero half their inputs, so He et
//! al. (2015) double it: `2/n_in`. Any other scale multiplies the signal by a constant factor per
//! layer, which over 30 layers is vanishing or explosion.

use ndarray::Array2;
use rand::RngCore;

use crate::{Float, Result};

/// The fans of a weight tensor and the gain of the activation that follows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fans {
    /// Number of inputs per output unit (`in_features` for `Linear`).
    pub fan_in: usize,
    /// Number of outputs per input unit (`out_features` for `Linear`).
    pub fan_out: usize,
    /// The gain of the activation that follows (`calculate_gain`), used by initializers whose
    /// gain is not set explicitly (He/Kaiming). 1.0 when there is no activation.
    pub activation_gain: f64,
}

impl Fans {
    /// Fans of a `(out, in)` weight matrix followed by an activation of gain `activation_gain`.
    pub fn new(fan_in: usize, fan_out: usize, activation_gain: f64) -> Self {
        Fans { fan_in, fan_out, activation_gain }
    }
}

/// A scheme for drawing initial weights. The RNG is always the caller's: the same seed gives
/// the same weights.
pub trait Initializer: std::fmt::Debug + Send + Sync {
    /// The scheme's name with its settings, e.g. `"kaiming_uniform(fan_in, gain=1.414)"`.
    fn name(&self) -> String;

    /// Draws a `shape` = `(rows, cols)` tensor in f64.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when the fans are zero or a setting is out of range.
    fn sample(&self, shape: (usize, usize), fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>>;
}

/// Draws a tensor with `init` and converts it to `F`.
pub fn sample_as<F: Float>(
    init: &dyn Initializer,
    shape: (usize, usize),
    fans: Fans,
    rng: &mut dyn RngCore,
) -> Result<Array2<F>> {
    Ok(init.sample(shape, fans, rng)?.mapv(F::lit))
}

/// PyTorch's default for `nn.Linear` (and the recurrent layers): U(−1/√fan_in, 1/√fan_in) for
/// both weight and bias. (`reset_parameters` in `torch/nn/modules/linear.py` calls
/// `kaiming_uniform_(a=√5)`, whose bound √(6/((1+5)·fan_in)) is exactly 1/√fan_in.)
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinearDefault;

impl Initializer for LinearDefault {
    fn name(&self) -> String {
        "uniform(±1/sqrt(fan_in))".into()
    }

    fn sample(&self, shape: (usize, usize), fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        if fans.fan_in == 0 {
            return Err(crate::Error::config("LinearDefault", "fan_in", "must be at least 1, got 0"));
        }
        let bound = 1.0 / (fans.fan_in as f64).sqrt();
        let dist = rand_distr::Uniform::new_inclusive(-bound, bound)
            .map_err(|e| crate::Error::config("LinearDefault", "fan_in", e.to_string()))?;
        Ok(Array2::from_shape_simple_fn(shape, || rand::Rng::sample(rng, dist)))
    }
}

/// Glorot/Xavier uniform (`torch.nn.init.xavier_uniform_`): U(−a, a) with
/// a = gain·√(6/(fan_in + fan_out)). Gain defaults to 1, as in PyTorch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlorotUniform {
    /// Multiplier of the bound (PyTorch's `gain`).
    pub gain: f64,
}

impl Default for GlorotUniform {
    fn default() -> Self {
        GlorotUniform { gain: 1.0 }
    }
}

impl Initializer for GlorotUniform {
    fn name(&self) -> String {
        format!("xavier_uniform(gain={})", self.gain)
    }

    fn sample(&self, shape: (usize, usize), fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        if fans.fan_in + fans.fan_out == 0 {
            return Err(crate::Error::config("GlorotUniform", "fans", "fan_in + fan_out must be positive"));
        }
        let bound = self.gain * (6.0 / (fans.fan_in + fans.fan_out) as f64).sqrt();
        let dist = rand_distr::Uniform::new_inclusive(-bound, bound)
            .map_err(|e| crate::Error::config("GlorotUniform", "gain", e.to_string()))?;
        Ok(Array2::from_shape_simple_fn(shape, || rand::Rng::sample(rng, dist)))
    }
}
