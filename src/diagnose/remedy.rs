//! [`Remedy`]: the fixes gradflow itself offers, named by the item that provides them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A change to the network or its training that addresses a gradient-flow problem.
/// [`Remedy::text`] says how, naming the gradflow item to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Remedy {
    /// Replace sigmoid/tanh with ReLU-family activations, initialized with He's scheme.
    RectifierActivations,
    /// Initialize with Glorot (with the activation's gain) or He, so that every layer keeps
    /// the variance of the signal.
    Initialization,
    /// Add batch normalization after each Linear.
    BatchNorm,
    /// Add residual (skip) connections.
    ResidualConnections,
    /// Clip the gradient norm before each update.
    ClipGradients,
    /// Replace a plain recurrent layer with an LSTM or GRU.
    GatedRecurrentCells,
    /// Replace ReLU with LeakyReLU, whose units cannot die.
    LeakyRelu,
    /// Lower the learning rate.
    LowerLearningRate,
    /// Raise the learning rate.
    RaiseLearningRate,
}

impl Remedy {
    /// What to do, naming the gradflow item that does it.
    pub fn text(self) -> &'static str {
        match self {
            Remedy::RectifierActivations => {
                "switch to ReLU-family activations (gradflow::activation::Relu) with He initialization \
                 (gradflow::init::KaimingNormal): their derivative is 1 wherever a unit is active"
            }
            Remedy::Initialization => {
                "use Glorot initialization with the activation's gain (gradflow::init::GlorotUniform) or He \
                 initialization for ReLU (gradflow::init::KaimingNormal), so that every layer keeps the \
                 signal's variance"
            }
            Remedy::BatchNorm => {
                "add batch normalization after each Linear (gradflow::layers::BatchNorm1d) to re-center and \
                 re-scale every layer's input"
            }
            Remedy::ResidualConnections => {
                "add residual connections (gradflow::layers::ResidualBlock, \
                 SequentialBuilder::repeat_residual): the identity path carries the gradient past every block"
            }
            Remedy::ClipGradients => {
                "clip the gradient norm before each optimizer step (gradflow::optim::clip_grad_norm)"
            }
            Remedy::GatedRecurrentCells => {
                "use gated recurrent cells (gradflow::recurrent::Lstm or Gru) instead of a plain RNN"
            }
            Remedy::LeakyRelu => "use LeakyReLU (gradflow::activation::LeakyRelu), whose units cannot die",
            Remedy::LowerLearningRate => {
                "lower the learning rate (the `lr` of SgdConfig/AdamConfig, or Optimizer::set_learning_rate), \
                 e.g. 3 to 10 times, or add a decaying schedule (gradflow::optim::StepLr, CosineAnnealingLr)"
            }
            Remedy::RaiseLearningRate => {
                "raise the learning rate (the `lr` of SgdConfig/AdamConfig, or Optimizer::set_learning_rate), \
                 e.g. 10 times: each update moves the weights by a tiny fraction of their size"
            }
        }
    }
}

impl fmt::Display for Remedy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}
