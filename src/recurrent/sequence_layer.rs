//! [`SequenceLayer`]: a recurrent layer as a [`Layer`] of the crate, reading sequences as rows.

use ndarray::{Array2, Array3, ArrayView2, Axis};

use super::Recurrent;
use super::layout::{steps_in, write_rows, write_sequence};
use crate::elementwise::assign_array;
use crate::hooks::{Context, Event, TimeStepEvent, TimeStepPass};
use crate::layer::{Layer, Mode, ensure_shape};
use crate::param::{ParamView, ParamViewMut};
use crate::{Error, Float, Result};

/// Which outputs of a recurrent layer are passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum Readout {
    /// Only the last step's output h_{T−1}, `(batch, hidden)`: for classifying or regressing a
    /// whole sequence.
    #[default]
    LastStep,
    /// Every step's output, `(batch, time · hidden)` (row b = `[h_0[b], h_1[b], …]`): for
    /// sequence-to-sequence tasks.
    EveryStep,
}

/// A [`Recurrent`] layer wrapped as a [`Layer`], so that it can sit in a
/// [`crate::Sequential`] or a [`super::SequenceModel`], be trained by any optimizer and
/// observed by any hook.
///
/// # Shapes
/// input `(batch, T · input_size)`, each row a sample's steps one after another (see
/// [`super::sequence_to_rows`]) → output `(batch, hidden)` ([`Readout::LastStep`]) or
/// `(batch, T · hidden)` ([`Readout::EveryStep`]). T is the row width divided by
/// `input_size`, so sequences of different lengths can go through the same layer (one length
/// per batch).
///
/// Why rows and not `(time, batch, features)`: the [`Layer`] trait, the loss functions, the
/// data sets and the batching all work on `(samples, features)` matrices; writing a sequence
/// sample as one row lets every one of them handle sequences unchanged (a data set of
/// sequences is a plain [`crate::data::Dataset`], shuffling and batching keep each sequence
/// whole). The transposition to and from the recurrent layer's `(time, batch, features)`
/// costs one copy of the input and output per pass, in reused buffers.
///
/// The initial state is zero. Hooks receive, besides the usual layer events, one
/// [`TimeStepEvent`] per time step and stacked layer after forward (steps in order) and after
/// backward (steps from last to first, top layer first).
pub struct SequenceLayer<F: Float> {
    recurrent: Box<dyn Recurrent<F>>,
    readout: Readout,
    truncate: Option<usize>,
    /// `(T, B, I)`: the input as a sequence.
    sequence: Array3<F>,
    /// `(T, B, H)`: dL/d(outputs) as a sequence.
    grad_outputs: Array3<F>,
    /// (batch, T) of the last forward pass.
    forward_shape: Option<(usize, usize)>,
}

impl<F: Float> std::fmt::Debug for SequenceLayer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl<F: Float> SequenceLayer<F> {
    /// Wraps `recurrent`, passing on the outputs chosen by `readout`, with full
    /// backpropagation through time.
    ///
    /// ```
    /// use gradflow::recurrent::{GruConfig, Readout, SequenceLayer};
    /// use gradflow::Layer;
    /// use rand::SeedableRng;
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let layer = SequenceLayer::<f32>::new(GruConfig::new(3, 8).build(&mut rng)?, Readout::EveryStep);
    /// assert_eq!(layer.output_features(10 * 3)?, 10 * 8); // 10 steps of 3 features
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    pub fn new(recurrent: impl Recurrent<F> + 'static, readout: Readout) -> Self {
        Self::from_boxed(Box::new(recurrent), readout)
    }

    /// Wraps an already boxed recurrent layer.
    pub fn from_boxed(recurrent: Box<dyn Recurrent<F>>, readout: Readout) -> Self {
        SequenceLayer {
            recurrent,
            readout,
            truncate: None,
            sequence: Array3::zeros((0, 0, 0)),
            grad_outputs: Array3::zeros((0, 0, 0)),
            forward_shape: None,
        }
    }

    /// Truncates backpropagation through time to `k` steps (see
    /// [`Recurrent::backward_sequence`]); `None` for full BPTT (the default).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for `Some(0)`.
    pub fn set_truncation(&mut self, k: Option<usize>) -> Result<()> {
        if k == Some(0) {
            return Err(Error::config(self.describe(), "truncate", "must be at least 1 time step, got 0"));
        }
        self.truncate = k;
        Ok(())
    }

    /// The truncation of backpropagation through time, if any.
    pub fn truncation(&self) -> Option<usize> {
        self.truncate
    }

    /// Which outputs are passed on.
    pub fn readout(&self) -> Readout {
        self.readout
    }

    /// The wrapped recurrent layer (for its states, gates and per-step gradients).
    pub fn recurrent(&self) -> &dyn Recurrent<F> {
        self.recurrent.as_ref()
    }

    /// The wrapped recurrent layer, mutably (e.g. to set its weights).
    pub fn recurrent_mut(&mut self) -> &mut dyn Recurrent<F> {
        self.recurrent.as_mut()
    }

    /// ‖dL/dh_t‖ of the top layer for every step t after a backward pass (see
    /// [`Recurrent::time_step_grad_norms`]).
    pub fn time_step_grad_norms(&self) -> Vec<f64> {
        self.recurrent.time_step_grad_norms()
    }

    fn output_width(&self, steps: usize) -> usize {
        match self.readout {
            Readout::LastStep => self.recurrent.hidden_size(),
            Readout::EveryStep => steps * self.recurrent.hidden_size(),
        }
    }

    /// Shows hooks one event per stacked layer and time step (nothing when unobserved).
    fn emit_time_steps(&self, ctx: &mut Context<'_, F>, pass: TimeStepPass) -> Result<()> {
        if !ctx.is_observed() {
            return Ok(());
        }
        let path = ctx.path().to_string();
        let r = self.recurrent.as_ref();
        let layers: Vec<usize> = match pass {
            TimeStepPass::Forward => (0..r.num_layers()).collect(),
            TimeStepPass::Backward => (0..r.num_layers()).rev().collect(),
        };
        for l in layers {
            let (Some(hidden), Some(gates)) = (r.hidden_states(l), r.gate_activations(l)) else { continue };
            let cells = r.cell_states(l);
            let (grad_h, grad_c, grad_pre) = match pass {
                TimeStepPass::Forward => (None, None, None),
                TimeStepPass::Backward => (r.grad_hidden(l), r.grad_cell(l), r.grad_gate_preactivations(l)),
            };
            let t_len = hidden.dim().0;
            let order: Vec<usize> = match pass {
                TimeStepPass::Forward => (0..t_len).collect(),
                TimeStepPass::Backward => (0..t_len).rev().collect(),
            };
            for t in order {
                let mut event = Event::TimeStep(TimeStepEvent {
                    path: &path,
                    layer_number: ctx.layer_number(),
                    layer: self,
                    step: ctx.step(),
                    pass,
                    stack_index: l,
                    time: t,
                    time_steps: t_len,
                    hidden: hidden.index_axis_move(Axis(0), t),
                    cell: cells.map(|c| c.index_axis_move(Axis(0), t)),
                    gate_activations: gates.index_axis_move(Axis(0), t),
                    gates: r.gates(),
                    grad_hidden: grad_h.map(|g| g.index_axis_move(Axis(0), t)),
                    grad_cell: grad_c.map(|g| g.index_axis_move(Axis(0), t)),
                    grad_gate_preactivations: grad_pre.map(|g| g.index_axis_move(Axis(0), t)),
                    error: None,
                });
                ctx.emit(&mut event)?;
            }
        }
        Ok(())
    }
}

impl<F: Float> Layer<F> for SequenceLayer<F> {
    fn kind(&self) -> &'static str {
        self.recurrent.kind()
    }

    fn describe(&self) -> String {
        let readout = match self.readout {
            Readout::LastStep => "last step",
            Readout::EveryStep => "every step",
        };
        let truncate = self.truncate.map(|k| format!(", BPTT truncated to {k}")).unwrap_or_default();
        format!("{} ({readout}{truncate})", self.recurrent.describe())
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        let i = self.recurrent.input_size();
        if input_features == 0 || !input_features.is_multiple_of(i) {
            return Err(Error::ShapeMismatch {
                layer: self.describe(),
                what: "input",
                expected: format!("(batch, time · {i}) with time ≥ 1"),
                actual: format!("(batch, {input_features})"),
            });
        }
        Ok(self.output_width(input_features / i))
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        mode: Mode,
        ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        self.forward_shape = None;
        let t_len = steps_in(|| self.describe(), &input, self.recurrent.input_size())?;
        let batch = input.nrows();
        let shape = (t_len, batch, self.recurrent.input_size());
        if self.sequence.dim() != shape {
            self.sequence = Array3::zeros(shape);
        }
        write_sequence(input, &mut self.sequence);
        self.recurrent.forward_sequence(self.sequence.view(), None, mode)?;
        let outputs = self.recurrent.outputs().expect("forward succeeded");
        ensure_shape(output, (batch, self.output_width(t_len)));
        match self.readout {
            Readout::LastStep => {
                assign_array(&mut output.view_mut(), &outputs.index_axis(Axis(0), t_len - 1))
            }
            Readout::EveryStep => write_rows(outputs, output),
        }
        self.forward_shape = Some((batch, t_len));
        self.emit_time_steps(ctx, TimeStepPass::Forward)
    }

    fn backward(
        &mut self,
        input: ArrayView2<'_, F>,
        _output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        grad_input: Option<&mut Array2<F>>,
        ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        let Some((batch, t_len)) = self.forward_shape else {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        };
        let h = self.recurrent.hidden_size();
        let i = self.recurrent.input_size();
        if input.dim() != (batch, t_len * i) {
            return Err(Error::shape(
                self.describe(),
                "input",
                format!("({batch}, {})", t_len * i),
                input.shape(),
            ));
        }
        let width = self.output_width(t_len);
        if grad_output.dim() != (batch, width) {
            return Err(Error::shape(
                self.describe(),
                "grad_output",
                format!("({batch}, {width})"),
                grad_output.shape(),
            ));
        }
        if self.grad_outputs.dim() != (t_len, batch, h) {
            self.grad_outputs = Array3::zeros((t_len, batch, h));
        }
        match self.readout {
            Readout::LastStep => {
                F::fill_zero(self.grad_outputs.as_slice_mut().expect("buffers are standard layout"));
                assign_array(&mut self.grad_outputs.index_axis_mut(Axis(0), t_len - 1), &grad_output);
            }
            Readout::EveryStep => write_sequence(grad_output, &mut self.grad_outputs),
        }
        match grad_input {
            Some(grad_input) => {
                self.recurrent.backward_sequence(self.grad_outputs.view(), None, self.truncate)?;
                ensure_shape(grad_input, (batch, t_len * i));
                write_rows(self.recurrent.grad_input().expect("backward succeeded"), grad_input);
            }
            None => self.recurrent.backward_sequence_without_input_grad(
                self.grad_outputs.view(),
                None,
                self.truncate,
            )?,
        }
        self.emit_time_steps(ctx, TimeStepPass::Backward)
    }

    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        self.recurrent.visit_parameters(visitor);
    }

    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        self.recurrent.visit_parameters_mut(visitor);
    }
}
