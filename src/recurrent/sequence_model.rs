//! [`SequenceModel`]: a recurrent layer followed by a head, as one trainable [`Layer`].

use ndarray::{Array2, ArrayView2};

use super::{Readout, Recurrent, SequenceLayer};
use crate::hooks::Context;
use crate::layer::{Layer, Mode, ensure_shape};
use crate::layers::child_names::ChildNames;
use crate::param::{BufferView, BufferViewMut, ParamView, ParamViewMut};
use crate::{Error, Float, Result};

/// A recurrent layer (child `"rnn"`) and a head (child `"head"`, any [`Layer`], typically a
/// `Linear` or a [`crate::Sequential`]) applied to the last step's output or to every step's,
/// as a single [`Layer`]: put it in a [`crate::Sequential`] / [`crate::Network`] and train it
/// with the crate's losses, optimizers and training helpers like any model. Parameter names
/// follow the usual PyTorch module (`self.rnn = nn.LSTM(…)`, `self.head = nn.Linear(…)`):
/// `rnn.weight_ih_l0`, …, `head.weight`, `head.bias`; a module that calls them otherwise
/// (`self.lstm`, `self.fc`) is mirrored with [`Layer::rename_child`]:
///
/// ```
/// use gradflow::recurrent::{LstmConfig, Readout, SequenceModel};
/// use gradflow::{Layer, Linear};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let lstm = LstmConfig::new(3, 5).num_layers(2).build::<f64>(&mut rng)?;
/// let mut model = SequenceModel::new(lstm, Readout::LastStep, Linear::new(5, 2, &mut rng)?)?;
/// model.rename_child("rnn", "lstm")?;
/// model.rename_child("head", "fc")?;
/// let names: Vec<String> = gradflow::named_parameters(&model).into_iter().map(|(n, _)| n).collect();
/// assert_eq!(&names[..2], ["lstm.weight_ih_l0", "lstm.weight_hh_l0"]);
/// assert_eq!(&names[names.len() - 2..], ["fc.weight", "fc.bias"]);
/// # Ok::<(), gradflow::Error>(())
/// ```
///
///
/// # Shapes
/// input `(batch, T · input_size)` (sequences as rows, see [`SequenceLayer`]) →
/// - [`Readout::LastStep`]: `head(h_{T−1})`, `(batch, out)`;
/// - [`Readout::EveryStep`]: the head applied to every step, `(batch, T · out)` with row b =
///   `[y_0[b], y_1[b], …]`. Viewed as `(batch · T, out)` (a free reshape), its rows are ordered
///   (sample, step): per-step class targets go in that order for a cross-entropy loss.
///
/// ```
/// use gradflow::recurrent::{LstmConfig, Readout, SequenceModel};
/// use gradflow::{Layer, Linear, Mode, hooks::Context};
/// use ndarray::Array2;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let lstm = LstmConfig::new(2, 16).forget_bias(1.0).build::<f64>(&mut rng)?;
/// let head = Linear::new(16, 1, &mut rng)?;
/// let mut model = SequenceModel::new(lstm, Readout::LastStep, head)?;
/// let x = Array2::from_elem((4, 30 * 2), 0.5); // batch 4, 30 steps of 2 features
/// let mut y = Array2::zeros((0, 0));
/// model.forward(x.view(), &mut y, Mode::Train, &mut Context::new())?;
/// assert_eq!(y.dim(), (4, 1));
/// model.backward(x.view(), y.view(), Array2::ones((4, 1)).view(), None, &mut Context::new())?;
/// assert_eq!(model.time_step_grad_norms().len(), 30);
/// # Ok::<(), gradflow::Error>(())
/// ```
pub struct SequenceModel<F: Float> {
    rnn: SequenceLayer<F>,
    head: Box<dyn Layer<F>>,
    /// The children's names, by role ([`RNN`], [`HEAD`]).
    names: ChildNames<2>,
    /// The recurrent layer's output, `(batch, H)` or `(batch, T·H)`.
    rnn_output: Array2<F>,
    /// dL/d(`rnn_output`).
    grad_rnn_output: Array2<F>,
    /// (batch, T) of the last forward pass.
    forward_shape: Option<(usize, usize)>,
}

impl<F: Float> std::fmt::Debug for SequenceModel<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl<F: Float> SequenceModel<F> {
    /// A recurrent layer with `readout` and `head`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] naming `head` when it does not take `hidden_size` features.
    pub fn new(
        recurrent: impl Recurrent<F> + 'static,
        readout: Readout,
        head: impl Layer<F> + 'static,
    ) -> Result<Self> {
        Self::from_parts(SequenceLayer::new(recurrent, readout), Box::new(head))
    }

    /// Assembles a model from a [`SequenceLayer`] (which carries the readout and truncation)
    /// and a boxed head.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] naming `head` when it does not take `hidden_size` features.
    pub fn from_parts(rnn: SequenceLayer<F>, head: Box<dyn Layer<F>>) -> Result<Self> {
        head.output_features(rnn.recurrent().hidden_size()).map_err(|e| e.at(&"head"))?;
        Ok(SequenceModel {
            rnn,
            head,
            names: ChildNames::new(["rnn", "head"]),
            rnn_output: Array2::zeros((0, 0)),
            grad_rnn_output: Array2::zeros((0, 0)),
            forward_shape: None,
        })
    }

    /// Truncates backpropagation through time to `k` steps (`None`: full BPTT, the default).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for `Some(0)`.
    pub fn with_truncation(mut self, k: Option<usize>) -> Result<Self> {
        self.rnn.set_truncation(k)?;
        Ok(self)
    }

    /// The recurrent layer (for its states, gates and per-step gradients).
    pub fn recurrent(&self) -> &dyn Recurrent<F> {
        self.rnn.recurrent()
    }

    /// The recurrent layer, mutably.
    pub fn recurrent_mut(&mut self) -> &mut dyn Recurrent<F> {
        self.rnn.recurrent_mut()
    }

    /// The recurrent layer as a network layer (readout and truncation included).
    pub fn sequence_layer(&self) -> &SequenceLayer<F> {
        &self.rnn
    }

    /// The recurrent layer as a network layer, mutably.
    pub fn sequence_layer_mut(&mut self) -> &mut SequenceLayer<F> {
        &mut self.rnn
    }

    /// The head.
    pub fn head(&self) -> &dyn Layer<F> {
        self.head.as_ref()
    }

    /// The head, mutably.
    pub fn head_mut(&mut self) -> &mut dyn Layer<F> {
        self.head.as_mut()
    }

    /// ‖dL/dh_t‖ of the recurrent layer's top layer for every step t after a backward pass: the
    /// "gradient norm by time step" profile (with a last-step readout, entry t has travelled
    /// T−1−t steps back in time).
    pub fn time_step_grad_norms(&self) -> Vec<f64> {
        self.rnn.time_step_grad_norms()
    }

    fn hidden_size(&self) -> usize {
        self.rnn.recurrent().hidden_size()
    }
}

/// Reshapes a standard-layout `(rows, cols)` view to `(rows · steps, cols / steps)`.
fn per_step<'a, F: Float>(view: ArrayView2<'a, F>, steps: usize) -> ArrayView2<'a, F> {
    let (rows, cols) = view.dim();
    view.into_shape_with_order((rows * steps, cols / steps))
        .expect("standard layout, width divisible by steps")
}

/// Runs `f` on `buffer` reshaped to `(rows · steps, cols)` and reshapes it back to
/// `(rows, steps · cols)`, without copying.
fn with_per_step_buffer<F: Float>(
    buffer: &mut Array2<F>,
    (rows, steps, cols): (usize, usize, usize),
    f: impl FnOnce(&mut Array2<F>) -> Result<()>,
) -> Result<()> {
    ensure_shape(buffer, (rows, steps * cols));
    let owned = std::mem::replace(buffer, Array2::zeros((0, 0)));
    let mut flat = owned.into_shape_with_order((rows * steps, cols)).expect("standard layout");
    let result = f(&mut flat);
    *buffer = flat
        .into_shape_with_order((rows, steps * cols))
        .unwrap_or_else(|_| Array2::zeros((rows, steps * cols)));
    result
}

/// The roles of a sequence model's children, in [`ChildNames`].
const RNN: usize = 0;
const HEAD: usize = 1;

impl<F: Float> Layer<F> for SequenceModel<F> {
    fn kind(&self) -> &'static str {
        "SequenceModel"
    }

    fn describe(&self) -> String {
        format!("SequenceModel({} → {})", self.rnn.describe(), self.head.describe())
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        let (rnn, head) = (self.names.get(RNN), self.names.get(HEAD));
        let rnn_width = self.rnn.output_features(input_features).map_err(|e| e.at(&rnn))?;
        let out = self.head.output_features(self.hidden_size()).map_err(|e| e.at(&head))?;
        Ok(match self.rnn.readout() {
            Readout::LastStep => out,
            Readout::EveryStep => rnn_width / self.hidden_size() * out,
        })
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        mode: Mode,
        ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        self.forward_shape = None;
        let (rnn, head_name) = (self.names.get(RNN), self.names.get(HEAD));
        ctx.forward_child(&rnn, &mut self.rnn, input, &mut self.rnn_output, mode)?;
        let batch = input.nrows();
        let steps = self.rnn_output.ncols() / self.hidden_size();
        match self.rnn.readout() {
            Readout::LastStep => {
                ctx.forward_child(&head_name, self.head.as_mut(), self.rnn_output.view(), output, mode)?
            }
            Readout::EveryStep => {
                let out = self.head.output_features(self.hidden_size()).map_err(|e| e.at(&head_name))?;
                let x = per_step(self.rnn_output.view(), steps);
                let head = self.head.as_mut();
                with_per_step_buffer(output, (batch, steps, out), |y| {
                    ctx.forward_child(&head_name, head, x, y, mode)
                })?;
            }
        }
        self.forward_shape = Some((batch, steps));
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        grad_input: Option<&mut Array2<F>>,
        ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        let Some((batch, steps)) = self.forward_shape.filter(|(b, _)| *b == input.nrows()) else {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        };
        if grad_output.dim() != output.dim() {
            let expected = crate::error::format_shape(output.shape());
            return Err(Error::shape(self.describe(), "grad_output", expected, grad_output.shape()));
        }
        let (rnn, head_name) = (self.names.get(RNN), self.names.get(HEAD));
        match self.rnn.readout() {
            Readout::LastStep => ctx.backward_child(
                &head_name,
                self.head.as_mut(),
                self.rnn_output.view(),
                output,
                grad_output,
                Some(&mut self.grad_rnn_output),
            )?,
            Readout::EveryStep => {
                let output = output.as_standard_layout();
                let grad_output = grad_output.as_standard_layout();
                let x = per_step(self.rnn_output.view(), steps);
                let (y, dy) = (per_step(output.view(), steps), per_step(grad_output.view(), steps));
                let shape = (batch, steps, self.hidden_size());
                let head = self.head.as_mut();
                with_per_step_buffer(&mut self.grad_rnn_output, shape, |dx| {
                    ctx.backward_child(&head_name, head, x, y, dy, Some(dx))
                })?;
            }
        }
        ctx.backward_child(
            &rnn,
            &mut self.rnn,
            input,
            self.rnn_output.view(),
            self.grad_rnn_output.view(),
            grad_input,
        )
    }

    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        self.rnn.visit_parameters(visitor);
        self.head.visit_parameters(visitor);
    }

    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        self.rnn.visit_parameters_mut(visitor);
        self.head.visit_parameters_mut(visitor);
    }

    /// The head's (a recurrent layer has no buffers), e.g. a BatchNorm's running statistics.
    fn visit_buffers<'a>(&'a self, visitor: &mut dyn FnMut(BufferView<'a, F>)) {
        self.head.visit_buffers(visitor);
    }

    fn visit_buffers_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(BufferViewMut<'a, F>)) {
        self.head.visit_buffers_mut(visitor);
    }

    fn visit_children<'a>(&'a self, visitor: &mut dyn FnMut(&str, &'a dyn Layer<F>)) {
        visitor(self.names.get(RNN), &self.rnn);
        visitor(self.names.get(HEAD), self.head.as_ref());
    }

    fn child_mut(&mut self, name: &str) -> Option<&mut dyn Layer<F>> {
        match self.names.index_of(name)? {
            RNN => Some(&mut self.rnn),
            _ => Some(self.head.as_mut()),
        }
    }

    fn rename_child(&mut self, from: &str, to: &str) -> Result<()> {
        self.names.rename(&self.describe(), from, to, [true; 2], &|_| false)
    }
}
