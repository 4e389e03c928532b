//! [`Network`]: a model ready to train — its buffers, its hooks and its step counter.

use ndarray::{Array2, ArrayView2};

use crate::hooks::{Context, Event, Hook, HookHandle, HookSet, ParamUpdate, UpdateEvent};
use crate::layer::{Layer, Mode, ensure_shape};
use crate::layers::Sequential;
use crate::optim::Optimizer;
use crate::param::{BufferView, ParamView, ParamViewMut};
use crate::{Error, Float, Result};

/// A [`Sequential`] model with the buffers for its input, output and input gradient, the hooks
/// attached to it, and a step counter (incremented by every backward pass).
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
#[derive(Debug)]
pub struct Network<F: Float> {
    model: Sequential<F>,
    input: Array2<F>,
    output: Array2<F>,
    grad_input: Array2<F>,
    hooks: HookSet<F>,
    step: u64,
    forward_done: bool,
    /// Whether the last pass split work across threads: the next one then runs as a
    /// parallel region (see [`crate::threads`]).
    parallel: bool,
}

/// Runs one pass, as a parallel region when the previous one split work across threads, and
/// returns the pass's result with whether this one did.
fn run_pass(parallel: bool, pass: impl FnOnce() -> Result<()> + Send) -> Result<bool> {
    let splits = crate::threads::split_count();
    if parallel { crate::threads::parallel_region(pass) } else { pass() }?;
    Ok(crate::threads::split_count() != splits)
}

impl<F: Float> Network<F> {
    /// Wraps a model.
    pub fn new(model: Sequential<F>) -> Self {
        Network {
            model,
            input: Array2::zeros((0, 0)),
            output: Array2::zeros((0, 0)),
            grad_input: Array2::zeros((0, 0)),
            hooks: HookSet::new(),
            step: 0,
            forward_done: false,
            parallel: false,
        }
    }

    /// The model.
    pub fn model(&self) -> &Sequential<F> {
        &self.model
    }

    /// The model, mutably (for optimizers, clipping, editing weights).
    pub fn model_mut(&mut self) -> &mut Sequential<F> {
        &mut self.model
    }

    /// Unwraps the model.
    pub fn into_model(self) -> Sequential<F> {
        self.model
    }

    /// Runs the model on `input` (`(batch, features)`) and returns its output. The input is
    /// copied (into a reused buffer) because backward needs it.
    ///
    /// # Errors
    /// A shape mismatch naming the first layer that does not fit, or a hook error.
    pub fn forward(&mut self, input: ArrayView2<'_, F>, mode: Mode) -> Result<ArrayView2<'_, F>> {
        self.forward_done = false;
        ensure_shape(&mut self.input, input.dim());
        self.input.assign(&input);
        let (model, hooks, output, step) = (&mut self.model, &mut self.hooks, &mut self.output, self.step);
        let input = self.input.view();
        self.parallel = run_pass(self.parallel, || {
            let mut ctx = Context::with_hooks(hooks, step);
            model.forward(input, output, mode, &mut ctx)
        })?;
        self.forward_done = true;
        Ok(self.output.view())
    }

    /// Forgets the last forward pass, so that the next backward pass is refused until a new
    /// forward pass has run (used by [`crate::theory::network_jacobian`], whose passes overwrite
    /// the layers' caches).
    pub(crate) fn invalidate_forward(&mut self) {
        self.forward_done = false;
        self.model.invalidate_forward();
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
        let (model, hooks, step) = (&mut self.model, &mut self.hooks, self.step);
        let (input, output) = (self.input.view(), self.output.view());
        let grad_input = if want_input_grad { Some(&mut self.grad_input) } else { None };
        self.parallel = run_pass(self.parallel, || {
            let mut ctx = Context::with_hooks(hooks, step);
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
        if !self.hooks.wants_updates() {
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
        let mut ctx = Context::with_hooks(&mut self.hooks, step);
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
                let event = UpdateEvent { path: &path, layer, step, updates: &updates, error: None };
                ctx.emit(&mut Event::Update(event))?;
            }
        }
        Ok(())
    }

    /// Number of backward passes run so far (the `step` that hooks see).
    pub fn step_count(&self) -> u64 {
        self.step
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
    pub fn attach_hook<H: Hook<F>>(&mut self, hook: H) -> HookHandle<H> {
        self.hooks.attach(hook)
    }

    /// Removes a hook and returns it with whatever it collected.
    pub fn detach_hook<H: Hook<F>>(&mut self, handle: HookHandle<H>) -> Option<H> {
        self.hooks.detach(handle)
    }

    /// The attached hook, to read what it collected so far.
    pub fn hook<H: Hook<F>>(&self, handle: HookHandle<H>) -> Option<&H> {
        self.hooks.get(handle)
    }

    /// The attached hook, mutably.
    pub fn hook_mut<H: Hook<F>>(&mut self, handle: HookHandle<H>) -> Option<&mut H> {
        self.hooks.get_mut(handle)
    }

    /// Runs `f` with `hook` attached and returns the hook afterwards: for observing a single
    /// pass (or a few).
    pub fn with_hook<H: Hook<F>, R>(&mut self, hook: H, f: impl FnOnce(&mut Self) -> R) -> (R, H) {
        let handle = self.attach_hook(hook);
        let result = f(self);
        let hook =
            self.detach_hook(handle).expect("attached above and not removable by f without its handle");
        (result, hook)
    }

    /// Parameters with their full PyTorch-style names (`"0.weight"`, `"3.branch.1.bias"`), in
    /// visiting order.
    pub fn named_parameters(&self) -> Vec<(String, ParamView<'_, F>)> {
        named_parameters(&self.model)
    }
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
