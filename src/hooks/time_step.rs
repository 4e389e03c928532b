//! [`TimeStepEvent`]: what a hook is shown at every time step of a recurrent layer.

use ndarray::{ArrayView2, s};

use crate::Float;
use crate::layer::Layer;

/// Whether a [`TimeStepEvent`] comes from the forward or the backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TimeStepPass {
    /// The forward pass: states and gate activations are known, gradients are not.
    Forward,
    /// The backward pass: the gradients dL/dh_t (and dL/dc_t) are known as well.
    Backward,
}

/// The non-linearity a gate applies, which decides when it counts as saturated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum GateFunction {
    /// σ(x) ∈ (0, 1): the input, forget and output gates of an LSTM, the reset and update gates
    /// of a GRU.
    Sigmoid,
    /// tanh(x) ∈ (−1, 1): the LSTM's candidate `g`, the GRU's new state `n`, a tanh RNN's state.
    Tanh,
    /// max(0, x): a ReLU RNN's state.
    Relu,
}

/// One gate of a recurrent cell: its PyTorch letter (`"i"`, `"f"`, `"g"`, `"o"`, `"r"`, `"z"`,
/// `"n"`; `"h"` for the state of a plain RNN) and its non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gate {
    /// The gate's name, in PyTorch's notation.
    pub name: &'static str,
    /// The non-linearity that produced its activations.
    pub function: GateFunction,
}

/// One time step of one recurrent layer, in forward or in backward.
///
/// A recurrent layer inside a network emits, when hooks are attached, one event per stacked
/// layer and time step after its forward pass (with states and gates) and again after its
/// backward pass (adding dL/dh_t and, for an LSTM, dL/dc_t). These events come before the
/// layer's own [`super::ForwardEvent`] / [`super::BackwardEvent`]. They are read-only.
///
/// `grad_hidden` is the *total* gradient reaching h_t: from the output at step t and from every
/// later step (within the truncation window, if backpropagation through time is truncated).
/// Plotting its norm against the time lag shows how far back the gradient survives.
pub struct TimeStepEvent<'a, F: Float> {
    /// Dotted path of the recurrent layer within the network, e.g. `"0.rnn"`.
    pub path: &'a str,
    /// The layer number of the recurrent layer (see [`super::Event::layer_number`]).
    pub layer_number: Option<usize>,
    /// The recurrent layer (as a network layer), for its kind and description.
    pub layer: &'a dyn Layer<F>,
    /// The step (see [`super::Event::step`]).
    pub step: u64,
    /// Forward or backward.
    pub pass: TimeStepPass,
    /// Index of the stacked layer, 0 being the one that reads the input (PyTorch's `l0`).
    pub stack_index: usize,
    /// The time step t, 0 being the first.
    pub time: usize,
    /// The sequence length T.
    pub time_steps: usize,
    /// h_t, `(batch, hidden)`.
    pub hidden: ArrayView2<'a, F>,
    /// c_t for an LSTM, `(batch, hidden)`.
    pub cell: Option<ArrayView2<'a, F>>,
    /// The gate activations of step t, `(batch, gates · hidden)`, gates side by side in the
    /// order of [`TimeStepEvent::gates`] (PyTorch's order: i, f, g, o for an LSTM; r, z, n for
    /// a GRU; the state itself for a plain RNN).
    pub gate_activations: ArrayView2<'a, F>,
    /// The gates, in the column order of `gate_activations`.
    pub gates: &'static [Gate],
    /// dL/dh_t, `(batch, hidden)`, in backward only.
    pub grad_hidden: Option<ArrayView2<'a, F>>,
    /// dL/dc_t for an LSTM, `(batch, hidden)`, in backward only.
    pub grad_cell: Option<ArrayView2<'a, F>>,
    /// dL/d(gate pre-activations) of step t, `(batch, gates · hidden)`, in the column order of
    /// `gate_activations`, in backward only (see [`crate::recurrent::Recurrent::grad_gate_preactivations`]):
    /// e.g. how much gradient the forget gate's weights receive at step t.
    pub grad_gate_preactivations: Option<ArrayView2<'a, F>>,
    /// The error a hook asked to stop with ([`super::Event::abort`]).
    pub(crate) error: Option<crate::Error>,
}

impl<'a, F: Float> TimeStepEvent<'a, F> {
    /// The activations of the gate called `name` (e.g. `"f"`), `(batch, hidden)`, or `None` if
    /// the cell has no such gate.
    pub fn gate(&self, name: &str) -> Option<ArrayView2<'a, F>> {
        let index = self.gates.iter().position(|g| g.name == name)?;
        let width = self.hidden.ncols();
        Some(self.gate_activations.slice_move(s![.., index * width..(index + 1) * width]))
    }

    /// dL/d(pre-activation) of the gate called `name`, `(batch, hidden)`, in backward (`None` in
    /// forward, or if the cell has no such gate).
    pub fn gate_grad(&self, name: &str) -> Option<ArrayView2<'a, F>> {
        let index = self.gates.iter().position(|g| g.name == name)?;
        let width = self.hidden.ncols();
        Some(self.grad_gate_preactivations?.slice_move(s![.., index * width..(index + 1) * width]))
    }
}
