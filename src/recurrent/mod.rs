//! Recurrent layers over sequences, with backpropagation through time: Elman [`Rnn`] (tanh
//! or ReLU), [`Lstm`] and [`Gru`], exactly as PyTorch's `nn.RNN`, `nn.LSTM` and `nn.GRU`.
//!
//! ## Why recurrent networks forget
//! A recurrent layer applies the same cell at every time step, so the gradient reaching the
//! state `h_t` from a loss `k` steps later is a product of `k` Jacobians
//! `∂h_{s+1}/∂h_s = diag(φ'(a_s)) W_hh`. For a tanh RNN with PyTorch's default initialization
//! the norm of each factor is well below one and the gradient decays geometrically with the
//! time lag: the layer cannot learn dependencies more than a few dozen steps long (Bengio,
//! Simard & Frasconi 1994; Hochreiter 1991). The LSTM adds a cell state updated *additively*,
//! `c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t`, whose Jacobian along the cell path is just `diag(f_t)`:
//! with the forget gate near one (a forget-gate bias of 1, Gers et al. 2000; Jozefowicz et al.
//! 2015) the gradient survives hundreds of steps. The GRU's interpolation
//! `h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}` plays the same role.
//!
//! ## Shapes and names
//! Sequences are `(time, batch, features)` (PyTorch's default, `batch_first=False`). Weights
//! have PyTorch's layout and names — `weight_ih_l0` `(G·hidden, input)`, `weight_hh_l0`
//! `(G·hidden, hidden)`, `bias_ih_l0`, `bias_hh_l0` `(G·hidden)`, then `…_l1` for a second
//! stacked layer — with the gates stacked in PyTorch's order (LSTM: i, f, g, o; GRU: r, z, n),
//! so a `state_dict` exported from PyTorch loads without transposes and gives the same outputs
//! and gradients.
//!
//! ## Using one
//! - Directly, through the [`Recurrent`] trait: [`Recurrent::forward_sequence`] over a whole
//!   sequence, then [`Recurrent::backward_sequence`] with dL/d(outputs) (full or truncated
//!   backpropagation through time), and the per-step accessors ([`Recurrent::grad_hidden`],
//!   [`Recurrent::gate_activations`], [`Recurrent::time_step_grad_norms`]).
//! - In a network, through [`SequenceModel`] (a recurrent layer plus a head applied to the last
//!   step or to every step) or [`SequenceLayer`], which are [`crate::Layer`]s: sequences are then
//!   rows `(batch, time · features)` — see [`SequenceLayer`] for why — and every loss,
//!   optimizer, hook and training helper of the crate applies unchanged; a
//!   [`crate::Network`] also takes and returns sequences in PyTorch's `(T, B, F)` or, with
//!   [`SequenceLayout::BatchFirst`], `(B, T, F)` ([`crate::Network::forward_sequence`]). When hooks are
//!   attached they also receive a [`crate::hooks::TimeStepEvent`] per time step, which
//!   [`TimeStepRecorder`] turns into gradient-by-time-lag and gate-saturation profiles.
//!
//! ```
//! use gradflow::recurrent::{LstmConfig, Recurrent};
//! use gradflow::Mode;
//! use ndarray::Array3;
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let mut lstm = LstmConfig::new(3, 8).forget_bias(1.0).build::<f64>(&mut rng)?;
//! let x = Array3::from_elem((20, 4, 3), 0.1); // 20 steps, batch 4, 3 features
//! lstm.forward_sequence(x.view(), None, Mode::Train)?;
//! let outputs = lstm.outputs().unwrap(); // (20, 4, 8)
//! // Loss = sum of the last step's outputs: dL/d(outputs) is 1 there, 0 elsewhere.
//! let mut grad = Array3::zeros(outputs.dim());
//! grad.index_axis_mut(ndarray::Axis(0), 19).fill(1.0);
//! lstm.backward_sequence(grad.view(), None, None)?;
//! let norms = lstm.time_step_grad_norms(); // ‖dL/dh_t‖ for t = 0..20
//! assert!(norms[0] < norms[19]);
//! # Ok::<(), gradflow::Error>(())
//! ```

pub(crate) mod engine;
mod gru;
mod init;
pub(crate) mod layout;
mod lstm;
mod nonlinearity;
mod rnn;
mod sequence_layer;
mod sequence_model;
mod state;
mod step_rows;
pub(crate) mod time_step_recorder;

pub use gru::{Gru, GruConfig};
pub use init::{RecurrentInit, RecurrentInits};
pub use layout::{SequenceLayout, rows_as_sequence, rows_to_sequence, sequence_to_rows};
pub use lstm::{Lstm, LstmConfig};
pub use nonlinearity::Nonlinearity;
pub use rnn::{Rnn, RnnConfig};
pub use sequence_layer::{Readout, SequenceLayer};
pub use sequence_model::SequenceModel;
pub use state::RecurrentState;
pub use time_step_recorder::{TimeProfile, TimeStepRecorder};

use ndarray::{ArrayView3, ArrayViewD, Ix3};

use crate::hooks::Gate;
use crate::layer::Mode;
use crate::param::{ParamView, ParamViewMut};
use crate::{Error, Float, Result};

/// A layer over sequences `(time, batch, features)`, trained by backpropagation through time.
///
/// The layer keeps what backward needs from the last forward pass (gate activations, states),
/// and its results are read back through accessors, which return `None` until the pass that
/// produces them has run: [`Recurrent::outputs`] and [`Recurrent::final_state`] after forward,
/// [`Recurrent::grad_input`], [`Recurrent::grad_initial_state`] and the per-step gradients
/// after backward. Buffers are reused from call to call, so repeated passes with the same
/// shapes allocate nothing.
///
/// Backward *adds* into the parameter gradients, like every layer; [`Recurrent::zero_grad`]
/// resets them.
pub trait Recurrent<F: Float>: Send {
    /// PyTorch's class name: `"RNN"`, `"LSTM"` or `"GRU"`.
    fn kind(&self) -> &'static str;

    /// A one-line description with the configuration, e.g. `"LSTM(3→8)"` or
    /// `"RNN(3→8, nonlinearity=relu, num_layers=2)"`; errors name the layer by it.
    fn describe(&self) -> String;

    /// Number of input features I.
    fn input_size(&self) -> usize;

    /// Number of hidden units H (the width of the outputs).
    fn hidden_size(&self) -> usize;

    /// Number of stacked layers (PyTorch's `num_layers`).
    fn num_layers(&self) -> usize;

    /// True for an LSTM, whose state includes a cell state c.
    fn has_cell_state(&self) -> bool;

    /// The gates, in the column order of [`Recurrent::gate_activations`].
    fn gates(&self) -> &'static [Gate];

    /// Runs the layer over `input` `(T, B, input_size)`, from `initial_state`
    /// (`(num_layers, B, hidden_size)`, zero when `None`), and keeps every step's output and
    /// the final state. The mode is accepted for uniformity; these layers behave the same in
    /// training and evaluation.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] naming the layer when the input is empty (T = 0 or B = 0), has
    /// the wrong number of features, or the initial state has the wrong shape (or a cell state
    /// is missing for an LSTM, or given to another cell).
    fn forward_sequence(
        &mut self,
        input: ArrayView3<'_, F>,
        initial_state: Option<&RecurrentState<F>>,
        mode: Mode,
    ) -> Result<()>;

    /// Like [`Recurrent::forward_sequence`] for an input of any rank: an error naming the layer
    /// (instead of a type error) when it is not `(time, batch, features)`.
    fn forward_sequence_dyn(
        &mut self,
        input: ArrayViewD<'_, F>,
        initial_state: Option<&RecurrentState<F>>,
        mode: Mode,
    ) -> Result<()> {
        let shape = input.shape().to_vec();
        let input = input.into_dimensionality::<Ix3>().map_err(|_| {
            Error::shape(self.describe(), "input", format!("(time, batch, {})", self.input_size()), &shape)
        })?;
        self.forward_sequence(input, initial_state, mode)
    }

    /// The top layer's output at every step, `(T, B, hidden_size)`, after a forward pass.
    fn outputs(&self) -> Option<ArrayView3<'_, F>>;

    /// The state after the last step (PyTorch's `h_n`, and `c_n` for an LSTM), after a forward
    /// pass.
    fn final_state(&self) -> Option<&RecurrentState<F>>;

    /// Backpropagates through time from `grad_outputs` = dL/d(outputs) `(T, B, hidden_size)`
    /// (zeros at the steps the loss does not read) and `grad_final_state` = dL/d(final state)
    /// (none when `None`), adding into every parameter's gradient and making dL/d(input) and
    /// dL/d(initial state) readable.
    ///
    /// `truncate = Some(k)` truncates backpropagation through time to `k` steps: the gradient
    /// of the output at step t (and of the final state, at step T−1) flows back to steps
    /// t, t−1, …, t−k+1 and no further (Williams & Peng 1990's BPTT(k) applied to every output),
    /// in every stacked layer: as if the states of all layers were detached before step t−k+1.
    /// With `k ≥ T` nothing is cut and the result is exactly that of `None` (full BPTT).
    /// Truncated backward costs O(T·k) steps when every step's output carries a gradient and
    /// O(k) when only the last one does.
    ///
    /// # Errors
    /// [`Error::BackwardBeforeForward`]; [`Error::ShapeMismatch`] when `grad_outputs` or
    /// `grad_final_state` do not match the last forward pass; [`Error::InvalidConfig`] for
    /// `truncate = Some(0)`.
    fn backward_sequence(
        &mut self,
        grad_outputs: ArrayView3<'_, F>,
        grad_final_state: Option<&RecurrentState<F>>,
        truncate: Option<usize>,
    ) -> Result<()>;

    /// [`Recurrent::backward_sequence`] for a layer whose input needs no gradient (it is the
    /// data): the parameter and state gradients are the same, dL/d(input) is not computed —
    /// one `(T·B) × (G·H) × input_size` matrix product less — and [`Recurrent::grad_input`]
    /// is `None` afterwards. [`crate::recurrent::SequenceLayer`] calls it when its caller
    /// asks for no input gradient. The provided implementation calls `backward_sequence`.
    ///
    /// # Errors
    /// As [`Recurrent::backward_sequence`].
    fn backward_sequence_without_input_grad(
        &mut self,
        grad_outputs: ArrayView3<'_, F>,
        grad_final_state: Option<&RecurrentState<F>>,
        truncate: Option<usize>,
    ) -> Result<()> {
        self.backward_sequence(grad_outputs, grad_final_state, truncate)
    }

    /// dL/d(input) `(T, B, input_size)`, after a backward pass that computed it.
    fn grad_input(&self) -> Option<ArrayView3<'_, F>>;

    /// dL/d(initial state) (`(num_layers, B, hidden_size)`), after a backward pass.
    fn grad_initial_state(&self) -> Option<&RecurrentState<F>>;

    /// The hidden states h_t of stacked layer `layer` (0 = the one reading the input),
    /// `(T, B, hidden_size)`, after a forward pass.
    fn hidden_states(&self, layer: usize) -> Option<ArrayView3<'_, F>>;

    /// The cell states c_t of an LSTM's stacked layer `layer`, `(T, B, hidden_size)`.
    fn cell_states(&self, layer: usize) -> Option<ArrayView3<'_, F>>;

    /// The activated gates of stacked layer `layer` at every step, `(T, B, G · hidden_size)`,
    /// side by side in the order of [`Recurrent::gates`] (for a plain RNN, whose only "gate" is
    /// the state itself, these are the hidden states).
    fn gate_activations(&self, layer: usize) -> Option<ArrayView3<'_, F>>;

    /// dL/dh_t of stacked layer `layer`, `(T, B, hidden_size)`, after a backward pass: the total
    /// gradient reaching the state at step t, from its own output and every later step.
    fn grad_hidden(&self, layer: usize) -> Option<ArrayView3<'_, F>>;

    /// dL/dc_t of an LSTM's stacked layer `layer`, `(T, B, hidden_size)`, after a backward pass.
    fn grad_cell(&self, layer: usize) -> Option<ArrayView3<'_, F>>;

    /// dL/d(gate pre-activations) of stacked layer `layer` at every step, `(T, B, G ·
    /// hidden_size)`, side by side as in [`Recurrent::gate_activations`], after a backward pass:
    /// the gradient each gate passes to its weights (`dL/dW_ih = Σ_t gradᵀ_t x_t`). For an LSTM
    /// the pre-activations are `W_i· x + b_i· + W_h· h + b_h·` of i, f, g, o; for a GRU, the
    /// input-side ones `W_i· x + b_i·` of r, z, n (the n gate's recurrent part is multiplied by
    /// r); for a plain RNN, the one pre-activation. `None` by default (a cell that does not keep
    /// them).
    fn grad_gate_preactivations(&self, _layer: usize) -> Option<ArrayView3<'_, F>> {
        None
    }

    /// ‖dL/dh_t‖ (Frobenius norm over batch and units) of the top layer for t = 0, …, T−1,
    /// after a backward pass (empty before). With the loss on the last step only, entry t is
    /// the gradient that survived a time lag of T−1−t steps.
    fn time_step_grad_norms(&self) -> Vec<f64> {
        let Some(grad) = self.grad_hidden(self.num_layers() - 1) else { return Vec::new() };
        let norm = |g: ndarray::ArrayView2<'_, F>| match g.as_slice() {
            Some(g) => F::sum_of_squares_f64(g).sqrt(),
            None => g.iter().map(|v| v.as_f64() * v.as_f64()).sum::<f64>().sqrt(),
        };
        grad.outer_iter().map(norm).collect()
    }

    /// Calls `visitor` with each parameter under its PyTorch name (`weight_ih_l0`,
    /// `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, then `…_l1`, …), in PyTorch's order.
    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>));

    /// Calls `visitor` with each parameter, mutably, in the same order.
    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>));

    /// Resets every parameter gradient to zero.
    fn zero_grad(&mut self) {
        self.visit_parameters_mut(&mut |mut p| match p.grad.as_slice_mut() {
            Some(grad) => F::fill_zero(grad),
            None => p.grad.fill(F::zero()),
        });
    }

    /// The total number of scalar parameters.
    fn num_parameters(&self) -> usize {
        let mut n = 0;
        self.visit_parameters(&mut |p| n += p.value.len());
        n
    }

    /// Sets the parameter called `name` (e.g. `"weight_hh_l0"`) to `value`, for instance from a
    /// PyTorch `state_dict`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when there is no such parameter, [`Error::ShapeMismatch`] when
    /// `value` does not have its shape.
    fn set_parameter(&mut self, name: &str, value: ArrayViewD<'_, F>) -> Result<()> {
        let describe = self.describe();
        let mut outcome =
            Err(Error::config(describe.clone(), "parameter", format!("no parameter named `{name}`")));
        self.visit_parameters_mut(&mut |mut p| {
            if p.name == name {
                outcome = if p.value.shape() == value.shape() {
                    p.value.assign(&value);
                    Ok(())
                } else {
                    let expected = crate::error::format_shape(p.value.shape());
                    Err(Error::shape(describe.clone(), "parameter value", expected, value.shape()))
                };
            }
        });
        outcome
    }
}

/// Implements [`Recurrent`] for a cell type whose `engine` field is an [`engine::Engine`].
macro_rules! recurrent_via_engine {
    ($cell:ident) => {
        impl<F: Float> $crate::recurrent::Recurrent<F> for $cell<F> {
            fn kind(&self) -> &'static str {
                self.engine.cell().kind()
            }
            fn describe(&self) -> String {
                self.engine.describe()
            }
            fn input_size(&self) -> usize {
                self.engine.input_size()
            }
            fn hidden_size(&self) -> usize {
                self.engine.hidden_size()
            }
            fn num_layers(&self) -> usize {
                self.engine.num_layers()
            }
            fn has_cell_state(&self) -> bool {
                self.engine.cell().has_cell_state()
            }
            fn gates(&self) -> &'static [$crate::hooks::Gate] {
                self.engine.cell().gate_layout()
            }
            fn forward_sequence(
                &mut self,
                input: ndarray::ArrayView3<'_, F>,
                initial_state: Option<&$crate::recurrent::RecurrentState<F>>,
                _mode: $crate::Mode,
            ) -> $crate::Result<()> {
                self.engine.forward(input, initial_state)
            }
            fn outputs(&self) -> Option<ndarray::ArrayView3<'_, F>> {
                self.engine.outputs()
            }
            fn final_state(&self) -> Option<&$crate::recurrent::RecurrentState<F>> {
                self.engine.final_state()
            }
            fn backward_sequence(
                &mut self,
                grad_outputs: ndarray::ArrayView3<'_, F>,
                grad_final_state: Option<&$crate::recurrent::RecurrentState<F>>,
                truncate: Option<usize>,
            ) -> $crate::Result<()> {
                self.engine.backward(grad_outputs, grad_final_state, truncate, true)
            }
            fn backward_sequence_without_input_grad(
                &mut self,
                grad_outputs: ndarray::ArrayView3<'_, F>,
                grad_final_state: Option<&$crate::recurrent::RecurrentState<F>>,
                truncate: Option<usize>,
            ) -> $crate::Result<()> {
                self.engine.backward(grad_outputs, grad_final_state, truncate, false)
            }
            fn grad_input(&self) -> Option<ndarray::ArrayView3<'_, F>> {
                self.engine.grad_input()
            }
            fn grad_initial_state(&self) -> Option<&$crate::recurrent::RecurrentState<F>> {
                self.engine.grad_initial_state()
            }
            fn hidden_states(&self, layer: usize) -> Option<ndarray::ArrayView3<'_, F>> {
                self.engine.hidden_states(layer)
            }
            fn cell_states(&self, layer: usize) -> Option<ndarray::ArrayView3<'_, F>> {
                self.engine.cell_states(layer)
            }
            fn gate_activations(&self, layer: usize) -> Option<ndarray::ArrayView3<'_, F>> {
                self.engine.gate_activations(layer)
            }
            fn grad_hidden(&self, layer: usize) -> Option<ndarray::ArrayView3<'_, F>> {
                self.engine.grad_hidden(layer)
            }
            fn grad_cell(&self, layer: usize) -> Option<ndarray::ArrayView3<'_, F>> {
                self.engine.grad_cell(layer)
            }
            fn grad_gate_preactivations(&self, layer: usize) -> Option<ndarray::ArrayView3<'_, F>> {
                self.engine.grad_gate_preactivations(layer)
            }
            fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut($crate::ParamView<'a, F>)) {
                self.engine.visit_parameters(visitor)
            }
            fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut($crate::ParamViewMut<'a, F>)) {
                self.engine.visit_parameters_mut(visitor)
            }
        }

        impl<F: Float> std::fmt::Debug for $cell<F> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.engine.describe())
            }
        }
    };
}
use recurrent_via_engine;
