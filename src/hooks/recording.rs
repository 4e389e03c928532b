//! [`Recording`]: what a [`Recorder`](super::Recorder) collected, per layer and per step.
//!
//! The data model is plain data (serde), so a recording can be saved as JSON
//! ([`crate::report::json`]) or CSV ([`crate::report::csv`]), read back, diagnosed
//! ([`crate::diagnose`]) and plotted.

use serde::{Deserialize, Serialize};

use super::RecorderConfig;
use super::stats::{ActivationStats, TensorStats};
use crate::activation::ActivationFamily;

/// Everything a recorder saw: one [`LayerRecord`] per layer, at every depth, in the order the
/// layers first ran forward (post-order: `"3.branch.0"`, `"3.branch.1"`, `"3.branch"`, `"3"`).
///
/// Two recordings compare approximately with [`approx`]'s macros
/// (`gradflow::approx::assert_relative_eq!(read_back, recording, max_relative = 1e-15)`): every
/// float is compared with the tolerance, everything else exactly. The same holds for each part
/// of a recording ([`LayerRecord`], [`LayerStepRecord`], [`ParamStats`], [`TensorStats`], …).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Recording {
    /// The scalar type of the network (`"f32"` or `"f64"`); empty until the first event.
    pub float: String,
    /// The settings the recording was made with.
    pub config: RecorderConfig,
    /// One record per layer.
    pub layers: Vec<LayerRecord>,
    /// The training loss of each step reported to the recorder ([`crate::Network::report_loss`];
    /// the [`crate::train::Trainer`] reports every step), in step order.
    #[serde(default)]
    pub losses: Vec<StepLoss>,
}

/// The loss of one training step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepLoss {
    /// The step (see [`crate::Network`]'s step numbering).
    pub step: u64,
    /// The loss of the step's forward pass.
    pub loss: f64,
}

/// One layer and its statistics at every recorded step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Dotted path of the layer in the network, e.g. `"3"` or `"3.branch.1"`.
    pub path: String,
    /// The layer's kind, e.g. `"Linear"` or `"tanh"`.
    pub kind: String,
    /// The layer's one-line description, e.g. `"Linear(64→32)"`.
    pub description: String,
    /// The layer number of the layer (1 nearest the input; see
    /// [`crate::hooks::layer_numbers`]), shared by the children of a block. `None` in recordings
    /// made outside a [`crate::Network`] (layers are then numbered from their kinds).
    #[serde(default)]
    pub layer_number: Option<usize>,
    /// Nesting depth: the number of dots in `path` (0 for the network's direct children).
    pub depth: usize,
    /// True when the layer has children (its parameters are recorded under its leaves).
    pub is_container: bool,
    /// The activation the layer applies, for activation layers.
    pub activation: Option<ActivationInfo>,
    /// The layer's statistics, one entry per recorded step, in increasing step order.
    pub steps: Vec<LayerStepRecord>,
}

/// Which activation an activation layer applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationInfo {
    /// Its name, e.g. `"tanh"`.
    pub name: String,
    /// Saturating, rectifier or linear.
    pub family: ActivationFamily,
    /// The largest value of its derivative (e.g. 0.25 for sigmoid).
    pub max_derivative: f64,
}

/// One layer at one step.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LayerStepRecord {
    /// The network's step counter when the layer ran (0 for the first training step).
    pub step: u64,
    /// dL/d(output): the gradient that reached the layer from above. `None` until the layer's
    /// backward pass at this step has been recorded.
    pub grad_output: Option<TensorStats>,
    /// dL/d(input): the gradient the layer sent below (after the hooks attached before the
    /// recorder have changed it). `None` when it was not computed (the first layer of a network
    /// whose input gradient was not requested).
    pub grad_input: Option<TensorStats>,
    /// The scale of the layer's output in the last forward pass of this step, with saturation
    /// or dead-unit shares for activation layers (when activations are recorded).
    pub activation: Option<ActivationStats>,
    /// Each parameter of the layer (leaf layers only, when parameters are recorded).
    pub params: Vec<ParamStats>,
    /// The gates the layer computed inside its pass and showed the hooks
    /// ([`crate::hooks::GateEvent`]: a [`crate::Highway`] layer's transform gate `T`), with their
    /// gradients once the backward pass has run; empty for layers without gates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateStats>,
}

/// A gate of a layer at one step (see [`LayerStepRecord::gates`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateStats {
    /// The gate's name, e.g. `"T"`.
    pub name: String,
    /// Statistics of the gate's values over the batch and units: for a highway layer, `mean` is
    /// the average share of the transform (near 0: the layer carries its input, and the
    /// gradient, through unchanged; near 1: it transforms).
    pub value: TensorStats,
    /// Statistics of dL/d(gate) (`None` until the backward pass has been recorded): how much
    /// the loss still asks of the gate.
    pub grad: Option<TensorStats>,
}

/// One parameter of a layer at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamStats {
    /// The parameter's local name, e.g. `"weight"`.
    pub name: String,
    /// Statistics of its accumulated gradient dL/dW.
    pub grad: TensorStats,
    /// ‖W‖, the L2 norm of its value when the gradient was recorded.
    pub value_norm: f64,
    /// ‖dL/dW‖ / ‖W‖: how large the gradient is relative to the weights (`None` when ‖W‖ = 0).
    pub grad_to_value_ratio: Option<f64>,
    /// ‖W_after − W_before‖ / ‖W_before‖ for the optimizer step that followed this step's backward
    /// pass, measured at the layer's next forward pass (when updates are recorded; `None` before
    /// that pass, or when ‖W_before‖ = 0).
    pub update_to_value_ratio: Option<f64>,
}

impl Recording {
    /// The record of the layer at `path`.
    pub fn layer(&self, path: &str) -> Option<&LayerRecord> {
        self.layers.iter().find(|l| l.path == path)
    }

    /// Every recorded step, in increasing order.
    pub fn steps(&self) -> Vec<u64> {
        let mut steps: Vec<u64> = self.layers.iter().flat_map(|l| l.steps.iter().map(|s| s.step)).collect();
        steps.sort_unstable();
        steps.dedup();
        steps
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.layers.iter().all(|l| l.steps.is_empty())
    }
}

impl LayerRecord {
    /// The layer's statistics at `step`, if that step was recorded.
    pub fn at_step(&self, step: u64) -> Option<&LayerStepRecord> {
        self.steps.binary_search_by_key(&step, |s| s.step).ok().map(|i| &self.steps[i])
    }
}
