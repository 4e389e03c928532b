//! [`Network`]: a model ready to train — its buffers, its hooks and its step counter.

use ndarray::{Array2, ArrayView2, ArrayView3};

use std::sync::atomic::{AtomicU64, Ordering};

use crate::hooks::{
    Context, Event, Hook, HookHandle, HookSet, LentHook, Numbering, ParamUpdate, UpdateEvent, collect_lent,
    lend,
};
use crate::layer::{Layer, Mode, ensure_shape};
use crate::layers::Sequential;
use crate::optim::Optimizer;
use crate::param::{BufferView, BufferViewMut, ParamView, ParamViewMut};
use crate::recurrent::{SequenceLayer, SequenceLayout, SequenceModel};
use crate::{Error, Float, Result};

/// A model with the buffers for its input, output and input gradient, the hooks attached to it,
/// and a step counter.
///
/// The model is a [`Sequential`] by default, and can be any [`Layer`] — a
/// [`crate::recurrent::SequenceModel`], a single [`crate::Highway`] layer, … —:
/// `Network::new(model)` wraps it, and its children are the top-level layers of the network's
/// paths, hooks and layer numbers (`"rnn"`, `"head"`, `"rnn"`'s time steps). The
/// [`crate::train::Trainer`] trains a network of any layer; [`crate::theory::network_jacobian`]
/// takes a network of a [`Sequential`]. Hooks see the model's descendants, not the model itself: a model without
/// children (a single `Linear`) trains, but shows hooks nothing; put it in a [`Sequential`] to
/// observe it.
///
/// # Steps
/// The step counter counts backward passes from 0: the first training step is step 0 (its
/// gradients are those of the initial weights), the next step 1, and so on. Events, recordings,
/// diagnoses, the [`crate::train::Trainer`]'s history and callbacks, and error messages all
/// number steps this way.
///
/// # Layer numbers
/// Events carry, besides the layer's path (`"4"`, `"3.branch.1"`), its layer number: "Linear +
/// tanh" is one layer, numbered from 1 at the input (see [`crate::hooks::layer_numbers`]). The
/// diagnosis tables and plots number rows the same way.
///
/// ```
/// use gradflow::{Network, Sequential, Mode};
/// use gradflow::activation::Relu;
/// use ndarray::Array2;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(7);
/// let model = Sequential::<f32>::builder(4).dense(8, Relu).linear(3).build(&mut rng).unwrap();
/// let mut net = Network::new(model);
/// let x = Array2::<f32>::ones((2, 4));
/// let y = net.forward(x.view(), Mode::Train).unwrap();
/// assert_eq!(y.dim(), (2, 3));
/// net.backward(Array2::ones((2, 3)).view()).unwrap();
/// assert_eq!(net.step_count(), 1);
/// ```
pub struct Network<F: Float, M: Layer<F> = Sequential<F>> {
    model: M,
    input: Array2<F>,
    output: Array2<F>,
    grad_input: Array2<F>,
    /// dL/d(output) given as a sequence, copied into rows ([`Network::backward_sequence`]).
    grad_rows: Array2<F>,
    /// The number of time steps of the last pass, when it was a [`Network::forward_sequence`].
    sequence_steps: Option<usize>,
    hooks: HookSet<F>,
    /// Identifies this network to the hooks lent with [`Network::with_hook`].
    id: u64,
    /// The hooks lent to this network, collected at the start of each observed pass and emptied
    /// at its end.
    lent: Vec<LentHook<F>>,
    numbering: Numbering,
    step: u64,
    /// The step of the last forward pass (the step its loss belongs to).
    forward_step: u64,
    forward_done: bool,
    /// Whether the last pass split work across threads: the next one then runs as a
    /// parallel region (see [`crate::threads`]).
    parallel: bool,
    /// The buffers (BatchNorm's running statistics and counters) as they were before the current
    /// training pass, restored if it fails: reused from pass to pass.
    saved_buffers: SavedBuffers<F>,
}

/// A copy of every buffer of a model, in visiting order (see [`Network::forward`]).
struct SavedBuffers<F> {
    tensors: Vec<F>,
    counts: Vec<u64>,
}

impl<F: Float> SavedBuffers<F> {
    /// Copies every buffer of `model` (no allocation once the vectors have grown to size).
    fn save(&mut self, model: &dyn Layer<F>) {
        self.tensors.clear();
        self.counts.clear();
        let (tensors, counts) = (&mut self.tensors, &mut self.counts);
        model.visit_buffers(&mut |b| match b {
            BufferView::Tensor { value, .. } => tensors.extend(value.iter().copied()),
            BufferView::Count { value, .. } => counts.push(value),
        });
    }

    /// Writes the saved values back into `model`'s buffers.
    fn restore(&self, model: &mut dyn Layer<F>) {
        let (mut tensors, mut counts) = (self.tensors.iter(), self.counts.iter());
        model.visit_buffers_mut(&mut |b| match b {
            BufferViewMut::Tensor { mut value, .. } => {
                value.iter_mut().zip(&mut tensors).for_each(|(v, &saved)| *v = saved);
            }
            BufferViewMut::Count { value, .. } => {
                if let Some(&saved) = counts.next() {
                    *value = saved;
                }
            }
        });
    }
}

/// Runs one pass, as a parallel region when the previous one split work across threads, and
/// returns the pass's result with whether this one did.
fn run_pass(parallel: bool, pass: impl FnOnce() -> Result<()> + Send) -> Result<bool> {
    let splits = crate::threads::split_count();
    if parallel { crate::threads::parallel_region(pass) } else { pass() }?;
    Ok(crate::threads::split_count() != splits)
}

impl<F: Float, M: Layer<F> + std::fmt::Debug> std::fmt::Debug for Network<F, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("model", &self.model)
            .field("hooks", &self.hooks)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// The hooks and numbering one pass needs: attached hooks, lent hooks (collected for this pass)
/// and the layer numbers, or nothing when nobody observes.
struct Observed<'n, F: Float> {
    hooks: &'n mut HookSet<F>,
    lent: &'n mut Vec<LentHook<F>>,
    numbering: &'n Numbering,
}

impl<F: Float> Observed<'_, F> {
    fn context(&mut self, step: u64) -> Context<'_, F> {
        Context::for_network(self.hooks, self.lent, self.numbering, step)
    }
}

impl<'n, F: Float> Observed<'n, F> {
    /// Collects the hooks lent to network `id` for one pass and brings the layer numbers up to
    /// date when anything observes it. Dropping the result empties the lent hooks.
    fn new(
        id: u64,
        hooks: &'n mut HookSet<F>,
        lent: &'n mut Vec<LentHook<F>>,
        numbering: &'n mut Numbering,
        model: &dyn Layer<F>,
    ) -> Self {
        collect_lent(id, lent);
        if !hooks.is_empty() || !lent.is_empty() {
            numbering.refresh(model);
        }
        Observed { hooks, lent, numbering }
    }
}

impl<F: Float> Observed<'_, F> {
    /// Whether a hook asks to see parameter updates ([`Hook::wants_updates`]).
    fn wants_updates(&mut self) -> bool {
        // SAFETY: the lent hooks were collected for the pass this value belongs to.
        self.hooks.wants_updates() || self.lent.iter_mut().any(|h| unsafe { h.hook() }.wants_updates())
    }
}

impl<F: Float> Drop for Observed<'_, F> {
    /// Lent hooks are only reachable during the pass that collected them.
    fn drop(&mut self) {
        self.lent.clear();
    }
}

impl<F: Float> Network<F> {
    /// Forgets the last forward pass, so that the next backward pass is refused until a new
    /// forward pass has run (used by [`crate::theory::network_jacobian`], whose passes overwrite
    /// the layers' caches).
    pub(crate) fn invalidate_forward(&mut self) {
        self.forward_done = false;
        self.model.invalidate_forward();
    }
}

impl<F: Float, M: Layer<F>> Network<F, M> {
    /// Wraps a model: a [`Sequential`], or any other [`Layer`] (see [`Network`]).
    ///
    /// ```
    /// use gradflow::{Linear, Mode, Network};
    /// use gradflow::recurrent::{GruConfig, Readout, SequenceLayer, SequenceModel};
    /// use ndarray::Array2;
    /// use rand::SeedableRng;
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let gru = GruConfig::new(2, 8).build::<f32>(&mut rng)?;
    /// let model = SequenceModel::new(gru, Readout::LastStep, Linear::new(8, 1, &mut rng)?)?;
    /// let mut net = Network::new(model); // a Network<f32, SequenceModel<f32>>
    /// let y = net.forward(Array2::from_elem((3, 5 * 2), 0.5).view(), Mode::Train)?; // 5 steps
    /// assert_eq!(y.dim(), (3, 1));
    /// net.backward(Array2::ones((3, 1)).view())?;
    /// assert_eq!(net.layer::<SequenceLayer<f32>>("rnn")?.recurrent().hidden_size(), 8);
    /// assert_eq!(net.model().head().describe(), "Linear(8→1)");
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    pub fn new(model: M) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Network {
            model,
            input: Array2::zeros((0, 0)),
            output: Array2::zeros((0, 0)),
            grad_input: Array2::zeros((0, 0)),
            grad_rows: Array2::zeros((0, 0)),
            sequence_steps: None,
            hooks: HookSet::new(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            lent: Vec::new(),
            numbering: Numbering::default(),
            step: 0,
            forward_step: 0,
            forward_done: false,
            parallel: false,
            saved_buffers: SavedBuffers { tensors: Vec::new(), counts: Vec::new() },
        }
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The model, mutably (for optimizers, clipping, editing weights).
    pub fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }

    /// Unwraps the model.
    pub fn into_model(self) -> M {
        self.model
    }

    /// The layer at a dotted path (`"3"`, `"fc1"`, `"2.branch.0"`) as its concrete type `T`: its
    /// typed state, e.g. a [`crate::Highway`] layer's last gate. See [`Sequential::layer`].
    ///
    /// ```
    /// use gradflow::{Highway, Mode, Network, Sequential};
    /// use gradflow::activation::Relu;
    /// use ndarray::Array2;
    /// use rand::SeedableRng;
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let model = Sequential::<f32>::builder(4).linear(6).repeat_highway(3, Relu, -2.0).build(&mut rng)?;
    /// let mut net = Network::new(model);
    /// net.forward(Array2::ones((2, 4)).view(), Mode::Eval)?;
    /// let gate = net.layer::<Highway<f32>>("2")?.last_gate();
    /// assert_eq!(gate.dim(), (2, 6));
    /// assert!(net.layer::<Highway<f32>>("0").is_err()); // a Linear
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NoSuchLayer`] or [`Error::WrongLayerType`] naming the path.
    pub fn layer<T: Layer<F>>(&self, path: &str) -> Result<&T> {
        crate::layers::find_typed::<F, T>(&self.model, path)
    }

    /// The layer at a dotted path as its concrete type `T`, mutably. See [`Network::layer`].
    ///
    /// # Errors
    /// As [`Network::layer`].
    pub fn layer_mut<T: Layer<F>>(&mut self, path: &str) -> Result<&mut T> {
        crate::layers::find_typed_mut::<F, T>(&mut self.model, path)
    }

    /// Runs the model on `input` (`(batch, features)`) and returns its output. The input is
    /// copied (into a reused buffer) because backward needs it.
    ///
    /// # Errors
    /// A shape mismatch naming the first layer that does not fit, or a hook error. A failed
    /// [`Mode::Train`] pass leaves every buffer (BatchNorm's running statistics and batch
    /// counters) as it was before the pass, whichever layer or hook failed.
    pub fn forward(&mut self, input: ArrayView2<'_, F>, mode: Mode) -> Result<ArrayView2<'_, F>> {
        self.forward_done = false;
        self.sequence_steps = None;
        ensure_shape(&mut self.input, input.dim());
        crate::elementwise::assign_array(&mut self.input.view_mut(), &input);
        self.run_forward(mode)
    }

    /// Runs the model on a sequence in PyTorch's layout — `(T, B, F)`, or `(B, T, F)` with
    /// [`SequenceLayout::BatchFirst`] (`batch_first=True`) — for a model that takes sequences as
    /// rows `(B, T·F)` (a [`crate::recurrent::SequenceModel`] or
    /// [`crate::recurrent::SequenceLayer`], alone or first in a [`Sequential`]). The sequence is
    /// copied into the rows the model reads (a buffer reused from pass to pass); the output is
    /// the model's rows, which [`Network::output_sequence`] shows in `layout` for a model with
    /// a [`crate::recurrent::Readout::EveryStep`] readout.
    ///
    /// ```
    /// use gradflow::{Linear, Mode, Network};
    /// use gradflow::recurrent::{LstmConfig, Readout, SequenceLayout, SequenceModel, sequence_to_rows};
    /// use ndarray::Array3;
    /// use rand::SeedableRng;
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let lstm = LstmConfig::new(3, 8).build::<f64>(&mut rng)?;
    /// let mut net = Network::new(SequenceModel::new(lstm, Readout::EveryStep, Linear::new(8, 2, &mut rng)?)?);
    /// let x = Array3::from_shape_fn((5, 4, 3), |(t, b, f)| (t + 2 * b + 3 * f) as f64 / 10.0); // (T, B, F)
    /// net.forward_sequence(x.view(), SequenceLayout::TimeMajor, Mode::Eval)?;
    /// let y = net.output_sequence(SequenceLayout::TimeMajor)?.to_owned(); // (T, B, 2)
    /// assert_eq!(y.dim(), (5, 4, 2));
    /// // The same as the rows layout.
    /// let rows = net.forward(sequence_to_rows(x.view()).view(), Mode::Eval)?.to_owned();
    /// assert_eq!(sequence_to_rows(y.view()), rows);
    /// // dL/dy in the same layout.
    /// net.forward_sequence(x.view(), SequenceLayout::TimeMajor, Mode::Train)?;
    /// net.backward_sequence(Array3::ones((5, 4, 2)).view(), SequenceLayout::TimeMajor)?;
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] naming the expected layout when the model is (or starts with) a
    /// [`crate::recurrent::SequenceModel`] or [`crate::recurrent::SequenceLayer`] whose input
    /// size is not the sequence's number of features; otherwise as [`Network::forward`].
    pub fn forward_sequence(
        &mut self,
        sequence: ArrayView3<'_, F>,
        layout: SequenceLayout,
        mode: Mode,
    ) -> Result<ArrayView2<'_, F>> {
        self.forward_done = false;
        self.sequence_steps = None;
        let time_major = layout.time_major(sequence);
        let (steps, batch, features) = time_major.dim();
        if let Some(expected) = sequence_input_size(&self.model)
            && expected != features
        {
            let expected = match layout {
                SequenceLayout::TimeMajor => format!("(time, batch, {expected})"),
                SequenceLayout::BatchFirst => format!("(batch, time, {expected})"),
            };
            return Err(Error::shape("Network", "input sequence", expected, sequence.shape()));
        }
        ensure_shape(&mut self.input, (batch, steps * features));
        crate::recurrent::layout::write_rows(time_major, &mut self.input);
        self.run_forward(mode)?;
        self.sequence_steps = Some(steps);
        Ok(self.output.view())
    }

    /// The output of the last [`Network::forward_sequence`] as a sequence in `layout`, without
    /// copying: rows `(B, T·H)` seen as `(T, B, H)` or `(B, T, H)`, for a model that returns
    /// every step's output (a [`crate::recurrent::Readout::EveryStep`] readout).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the last pass was not a [`Network::forward_sequence`] or
    /// its output is not `T` steps wide (a [`crate::recurrent::Readout::LastStep`] model
    /// returns `(B, out)`: use [`Network::output`]).
    pub fn output_sequence(&self, layout: SequenceLayout) -> Result<ArrayView3<'_, F>> {
        let width = self.output.ncols();
        let steps = match self.sequence_steps {
            Some(steps) if self.forward_done && steps > 0 && width.is_multiple_of(steps) && width > 0 => {
                steps
            }
            _ => {
                return Err(Error::shape(
                    "Network",
                    "output sequence",
                    "(batch, time · features) from a forward_sequence pass over time steps",
                    self.output.shape(),
                ));
            }
        };
        crate::recurrent::rows_as_sequence(self.output.view(), width / steps, layout)
    }

    /// Backpropagates dL/d(output) given as a sequence in `layout` (`(T, B, H)` or `(B, T, H)`,
    /// as [`Network::output_sequence`] shows the output), like [`Network::backward`]. The
    /// gradient is copied into rows (a buffer reused from step to step).
    ///
    /// # Errors
    /// As [`Network::backward`]; a shape mismatch when the gradient does not match the output.
    pub fn backward_sequence(
        &mut self,
        grad_output: ArrayView3<'_, F>,
        layout: SequenceLayout,
    ) -> Result<()> {
        let time_major = layout.time_major(grad_output);
        let (steps, batch, features) = time_major.dim();
        let mut rows = std::mem::take(&mut self.grad_rows);
        ensure_shape(&mut rows, (batch, steps * features));
        crate::recurrent::layout::write_rows(time_major, &mut rows);
        let result = self.backward_impl(rows.view(), false);
        self.grad_rows = rows;
        result
    }

    /// Runs the forward pass on `self.input`.
    fn run_forward(&mut self, mode: Mode) -> Result<ArrayView2<'_, F>> {
        let step = self.step;
        let mut observed =
            Observed::new(self.id, &mut self.hooks, &mut self.lent, &mut self.numbering, &self.model);
        // A training pass updates buffers (BatchNorm's running statistics) layer by layer: if it
        // fails at a later layer, or a hook fails, they are put back as they were.
        let has_buffers = mode == Mode::Train && {
            let mut any = false;
            self.model.visit_buffers(&mut |_| any = true);
            any
        };
        if has_buffers {
            self.saved_buffers.save(&self.model);
        }
        let (model, output, input) = (&mut self.model, &mut self.output, self.input.view());
        let result = run_pass(self.parallel, || {
            let mut ctx = observed.context(step);
            model.forward(input, output, mode, &mut ctx)
        });
        drop(observed);
        self.parallel = match result {
            Ok(parallel) => parallel,
            Err(e) => {
                if has_buffers {
                    self.saved_buffers.restore(&mut self.model);
                }
                return Err(e);
            }
        };
        self.forward_step = step;
        self.forward_done = true;
        Ok(self.output.view())
    }

    /// The output of the last forward pass.
    pub fn output(&self) -> ArrayView2<'_, F> {
        self.output.view()
    }

    /// Runs the model in [`Mode::Eval`] and returns an owned copy of the output.
    pub fn predict(&mut self, input: ArrayView2<'_, F>) -> Result<Array2<F>> {
        Ok(self.forward(input, Mode::Eval)?.to_owned())
    }

    /// Backpropagates `grad_output` = dL/d(output) of the last forward pass, adding into every
    /// parameter's gradient, and advances the step counter. The gradient with respect to the
    /// network's input is not computed (see [`Network::backward_with_input_grad`]).
    pub fn backward(&mut self, grad_output: ArrayView2<'_, F>) -> Result<()> {
        self.backward_impl(grad_output, false)
    }

    /// Like [`Network::backward`], and also returns dL/d(input).
    pub fn backward_with_input_grad(&mut self, grad_output: ArrayView2<'_, F>) -> Result<ArrayView2<'_, F>> {
        self.backward_impl(grad_output, true)?;
        Ok(self.grad_input.view())
    }

    fn backward_impl(&mut self, grad_output: ArrayView2<'_, F>, want_input_grad: bool) -> Result<()> {
        if !self.forward_done {
            return Err(Error::BackwardBeforeForward { layer: "Network".into() });
        }
        if grad_output.dim() != self.output.dim() {
            return Err(Error::shape(
                "Network",
                "grad_output",
                crate::error::format_shape(self.output.shape()),
                grad_output.shape(),
            ));
        }
        let step = self.step;
        let mut observed =
            Observed::new(self.id, &mut self.hooks, &mut self.lent, &mut self.numbering, &self.model);
        let (model, input, output) = (&mut self.model, self.input.view(), self.output.view());
        let grad_input = if want_input_grad { Some(&mut self.grad_input) } else { None };
        self.parallel = run_pass(self.parallel, || {
            let mut ctx = observed.context(step);
            model.backward(input, output, grad_output, grad_input, &mut ctx)
        })?;
        self.step += 1;
        Ok(())
    }

    /// Lets `optimizer` update the model from its accumulated gradients, as
    /// `optimizer.step(net.model_mut())` does, and, when an attached hook asks for it
    /// ([`Hook::wants_updates`]), shows the hooks each layer's update: one [`Event::Update`] per
    /// layer with parameters, carrying ‖W_after − W_before‖ of each (measured by
    /// [`Optimizer::step_observed`]; gradflow's optimizers measure inside their update loops).
    /// Otherwise it is exactly `optimizer.step`.
    ///
    /// A [`crate::hooks::Recorder`] takes its update-to-weight ratios from these events, which
    /// costs far less than the copy of every parameter it keeps otherwise.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use gradflow::{Network, Sequential, Mode};
    /// use gradflow::activation::Tanh;
    /// use gradflow::hooks::{Event, WithUpdates};
    /// use gradflow::optim::SgdConfig;
    /// use ndarray::Array2;
    /// use rand::SeedableRng;
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let model = Sequential::<f32>::builder(4).dense(8, Tanh).linear(2).build(&mut rng)?;
    /// let mut net = Network::new(model);
    /// let moved = Arc::new(Mutex::new(Vec::new()));
    /// let sink = moved.clone();
    /// net.attach_hook(WithUpdates(move |event: &mut Event<'_, f32>| {
    ///     if let Event::Update(e) = event {
    ///         let names = e.updates.iter().map(|u| (format!("{}.{}", e.path, u.name), u.norm));
    ///         sink.lock().unwrap().extend(names);
    ///     }
    /// }));
    /// let mut sgd = SgdConfig::new(0.1).build()?;
    /// net.forward(Array2::ones((3, 4)).view(), Mode::Train)?;
    /// net.backward(Array2::ones((3, 2)).view())?;
    /// net.step(&mut sgd)?;
    ///
    /// let moved = moved.lock().unwrap();
    /// let names: Vec<&str> = moved.iter().map(|(name, _)| name.as_str()).collect();
    /// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    /// assert!(moved.iter().all(|(_, norm)| *norm > 0.0));
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// The optimizer's errors, with nothing changed; [`Error::Hook`] when a hook panics or
    /// aborts at an update event (the update has been applied to every parameter by then).
    pub fn step(&mut self, optimizer: &mut dyn Optimizer<F>) -> Result<()> {
        let mut observed =
            Observed::new(self.id, &mut self.hooks, &mut self.lent, &mut self.numbering, &self.model);
        if !observed.wants_updates() {
            return optimizer.step(&mut self.model);
        }
        let mut norms = Vec::new();
        optimizer.step_observed(&mut self.model, &mut |index, distance_sq| {
            if norms.len() <= index {
                norms.resize(index + 1, f64::NAN);
            }
            norms[index] = distance_sq.sqrt();
        })?;
        // The optimizer numbers parameters in the model's visiting order; events go per leaf
        // layer. Matched by the address of each parameter's values.
        let mut order = Vec::with_capacity(norms.len());
        self.model.visit_parameters(&mut |p| order.push(p.value.as_ptr()));
        let layers = leaves(&self.model);
        let step = self.step.saturating_sub(1);
        let numbering = observed.numbering;
        let mut ctx = observed.context(step);
        let mut updates = Vec::new();
        let mut next = 0;
        for (path, layer) in layers {
            updates.clear();
            layer.visit_parameters(&mut |p| {
                let at = order[next.min(order.len())..]
                    .iter()
                    .position(|&q| q == p.value.as_ptr())
                    .map(|i| i + next)
                    .or_else(|| order.iter().position(|&q| q == p.value.as_ptr()));
                next = at.map_or(next, |i| i + 1);
                let norm = at.and_then(|i| norms.get(i).copied()).unwrap_or(f64::NAN);
                updates.push(ParamUpdate { name: p.name, norm });
            });
            if !updates.is_empty() {
                let layer_number = numbering.number_of(path.split('.').next().unwrap_or_default());
                let event =
                    UpdateEvent { path: &path, layer_number, layer, step, updates: &updates, error: None };
                ctx.emit(&mut Event::Update(event))?;
            }
        }
        Ok(())
    }

    /// Number of backward passes run so far: the step the next forward and backward passes belong
    /// to (see [Steps](Network#steps)).
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Shows every hook the loss of the last forward pass (its step), through
    /// [`Hook::on_loss`]: a [`crate::hooks::Recorder`] keeps it, so that
    /// [`crate::diagnose::diagnose`] can tell whether training makes progress. The
    /// [`crate::train::Trainer`] reports every step's loss; a hand-written loop calls this after
    /// computing the loss. Does nothing when no hook is attached or lent.
    pub fn report_loss(&mut self, loss: f64) {
        let step = self.forward_step;
        let observed =
            Observed::new(self.id, &mut self.hooks, &mut self.lent, &mut self.numbering, &self.model);
        for hook in observed.hooks.hooks_mut() {
            hook.on_loss(step, loss);
        }
        for lent in observed.lent.iter_mut() {
            // SAFETY: collected for this call, which is the pass they belong to.
            unsafe { lent.hook() }.on_loss(step, loss);
        }
    }

    /// Resets every parameter gradient to zero.
    pub fn zero_grad(&mut self) {
        self.model.zero_grad();
    }

    /// Total number of scalar parameters.
    pub fn num_parameters(&self) -> usize {
        self.model.num_parameters()
    }

    /// Visits every parameter (see [`Layer::visit_parameters`]).
    pub fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        self.model.visit_parameters(visitor);
    }

    /// Visits every parameter mutably.
    pub fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        self.model.visit_parameters_mut(visitor);
    }

    /// Attaches a hook that sees every following pass until it is removed with
    /// [`Network::detach_hook`].
    pub fn attach_hook<H: Hook<F> + 'static>(&mut self, hook: H) -> HookHandle<H> {
        self.hooks.attach(hook)
    }

    /// Removes a hook and returns it with whatever it collected.
    pub fn detach_hook<H: Hook<F> + 'static>(&mut self, handle: HookHandle<H>) -> Option<H> {
        self.hooks.detach(handle)
    }

    /// The attached hook, to read what it collected so far.
    pub fn hook<H: Hook<F> + 'static>(&self, handle: HookHandle<H>) -> Option<&H> {
        self.hooks.get(handle)
    }

    /// The attached hook, mutably.
    pub fn hook_mut<H: Hook<F> + 'static>(&mut self, handle: HookHandle<H>) -> Option<&mut H> {
        self.hooks.get_mut(handle)
    }

    /// Lends `hook` to the network while `f` runs, and gives it back with `f`'s result: every
    /// pass and step of this network that `f` runs (on this thread, with `f`'s `&mut Network`)
    /// shows the hook its events, after the attached hooks.
    ///
    /// Unlike [`Network::attach_hook`], the hook need not be `'static`: a closure may borrow
    /// local state, such as a table it fills during a training run, and the state is yours
    /// again as soon as `with_hook` returns.
    ///
    /// ```
    /// use gradflow::{Network, Sequential, Mode};
    /// use gradflow::activation::Tanh;
    /// use gradflow::hooks::Event;
    /// use gradflow::ndarray::Array2;
    /// use gradflow::rand::SeedableRng;
    ///
    /// let mut rng = gradflow::rand::rngs::StdRng::seed_from_u64(0);
    /// let mut net = Network::new(Sequential::<f32>::builder(4).repeat(3, 8, Tanh).linear(1).build(&mut rng)?);
    ///
    /// // ‖dL/dh‖ per layer number, collected into a local vector.
    /// let mut norms: Vec<(usize, f32)> = Vec::new();
    /// let (result, _) = net.with_hook(
    ///     |event: &mut Event<'_, f32>| {
    ///         if let Event::Backward(b) = event
    ///             && let Some(layer) = b.layer_number
    ///             && b.layer.as_activation().is_some()
    ///         {
    ///             norms.push((layer, b.grad_output.iter().map(|g| g * g).sum::<f32>().sqrt()));
    ///         }
    ///     },
    ///     |net| {
    ///         net.forward(Array2::ones((2, 4)).view(), Mode::Train)?;
    ///         net.backward(Array2::ones((2, 1)).view())
    ///     },
    /// );
    /// result?;
    /// let layers: Vec<usize> = norms.iter().map(|&(layer, _)| layer).collect();
    /// assert_eq!(layers, [3, 2, 1]); // backward runs from the output down
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    pub fn with_hook<H: Hook<F>, R>(&mut self, mut hook: H, f: impl FnOnce(&mut Self) -> R) -> (R, H) {
        let result = {
            let mut lent: &mut dyn Hook<F> = &mut hook;
            let _guard = lend(self.id, &mut lent);
            f(self)
        };
        (result, hook)
    }

    /// Parameters with their full PyTorch-style names (`"0.weight"`, `"3.branch.1.bias"`), in
    /// visiting order.
    pub fn named_parameters(&self) -> Vec<(String, ParamView<'_, F>)> {
        named_parameters(&self.model)
    }
}

/// The input size of the recurrent layer that reads a model's input, when the model is (or
/// starts with) a sequence model or layer.
fn sequence_input_size<F: Float>(model: &dyn Layer<F>) -> Option<usize> {
    if let Some(m) = model.downcast_ref::<SequenceModel<F>>() {
        return Some(m.recurrent().input_size());
    }
    if let Some(l) = model.downcast_ref::<SequenceLayer<F>>() {
        return Some(l.recurrent().input_size());
    }
    let first = model.downcast_ref::<Sequential<F>>()?.get(0)?;
    sequence_input_size(first)
}

/// Every buffer of `layer` and its descendants (e.g. `"1.running_mean"`) with its dotted name,
/// in visiting order.
pub fn named_buffers<F: Float>(layer: &dyn Layer<F>) -> Vec<(String, BufferView<'_, F>)> {
    let mut out = Vec::new();
    for (path, leaf) in leaves(layer) {
        leaf.visit_buffers(&mut |b| out.push((dotted(&path, b.name()), b)));
    }
    out
}

/// Every parameter of `layer` and its descendants with its dotted name, in visiting order.
pub fn named_parameters<F: Float>(layer: &dyn Layer<F>) -> Vec<(String, ParamView<'_, F>)> {
    let mut out = Vec::new();
    for (path, leaf) in leaves(layer) {
        leaf.visit_parameters(&mut |p| out.push((dotted(&path, p.name), p)));
    }
    out
}

/// `prefix.name`, or `name` when the prefix is empty.
fn dotted(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") }
}

/// The layers without children under `layer` (itself if it has none), with their dotted paths,
/// depth first.
fn leaves<F: Float>(layer: &dyn Layer<F>) -> Vec<(String, &dyn Layer<F>)> {
    fn collect<'a, F: Float>(
        layer: &'a dyn Layer<F>,
        path: String,
        out: &mut Vec<(String, &'a dyn Layer<F>)>,
    ) {
        let mut has_children = false;
        layer.visit_children(&mut |name, child| {
            has_children = true;
            collect(child, dotted(&path, name), out);
        });
        if !has_children {
            out.push((path, layer));
        }
    }
    let mut out = Vec::new();
    collect(layer, String::new(), &mut out);
    out
}
