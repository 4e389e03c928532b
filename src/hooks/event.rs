//! The events a hook receives.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::error::format_shape;
use crate::layer::{Layer, Mode};
use crate::param::ParamView;
use crate::{Error, Float, Result};

/// What a hook is shown: one layer's forward or backward pass.
#[non_exhaustive]
pub enum Event<'a, F: Float> {
    /// A layer has computed its output.
    Forward(ForwardEvent<'a, F>),
    /// A layer has computed its input gradient (and accumulated its parameter gradients).
    Backward(BackwardEvent<'a, F>),
    /// One time step of a recurrent layer, in forward or in backward.
    TimeStep(super::TimeStepEvent<'a, F>),
    /// An optimizer step has updated a layer's parameters (through [`crate::Network::step`]).
    Update(UpdateEvent<'a, F>),
    /// A gate computed inside a layer, which no child's event shows (a highway layer's
    /// transform gate `T(x)`, with dL/dT in backward).
    Gate(GateEvent<'a, F>),
}

impl<'a, F: Float> Event<'a, F> {
    /// The dotted path of the layer, e.g. `"3.branch.1"`.
    pub fn path(&self) -> &str {
        match self {
            Event::Forward(e) => e.path,
            Event::Backward(e) => e.path,
            Event::TimeStep(e) => e.path,
            Event::Update(e) => e.path,
            Event::Gate(e) => e.path,
        }
    }

    /// The layer number of the layer (1 nearest the input, the output layer last; see
    /// [`crate::hooks::layer_numbers`]): the number the diagnosis tables and plots show. `None`
    /// outside a [`crate::Network`] pass. Layers inside a block share the block's number.
    pub fn layer_number(&self) -> Option<usize> {
        match self {
            Event::Forward(e) => e.layer_number,
            Event::Backward(e) => e.layer_number,
            Event::TimeStep(e) => e.layer_number,
            Event::Update(e) => e.layer_number,
            Event::Gate(e) => e.layer_number,
        }
    }

    /// The layer's kind, e.g. `"Linear"`.
    pub fn kind(&self) -> &'static str {
        self.layer().kind()
    }

    /// The layer the event is about.
    pub fn layer(&self) -> &'a dyn Layer<F> {
        match self {
            Event::Forward(e) => e.layer,
            Event::Backward(e) => e.layer,
            Event::TimeStep(e) => e.layer,
            Event::Update(e) => e.layer,
            Event::Gate(e) => e.layer,
        }
    }

    /// The step: the network's step counter, which counts backward passes from 0 (so the first
    /// training step is step 0, with the initial weights).
    pub fn step(&self) -> u64 {
        match self {
            Event::Forward(e) => e.step,
            Event::Backward(e) => e.step,
            Event::TimeStep(e) => e.step,
            Event::Update(e) => e.step,
            Event::Gate(e) => e.step,
        }
    }

    /// Stops the pass with `error`: the remaining hooks still see this event, then the pass
    /// returns `error` from `Network::forward` / `Network::backward` (for a backward pass, the
    /// layers below this one have not accumulated their gradients: call `zero_grad` before the
    /// next step). When several hooks abort, the first error is kept.
    ///
    /// This is how a hook that cannot return an error refuses to go on, e.g.
    /// [`crate::hooks::NonFiniteDetector`] in fail-fast mode.
    pub fn abort(&mut self, error: Error) {
        let slot = match self {
            Event::Forward(e) => &mut e.error,
            Event::Backward(e) => &mut e.error,
            Event::TimeStep(e) => &mut e.error,
            Event::Update(e) => &mut e.error,
            Event::Gate(e) => &mut e.error,
        };
        slot.get_or_insert(error);
    }

    /// Takes the error a hook asked to stop with, if any.
    pub(crate) fn take_error(&mut self) -> Option<Error> {
        match self {
            Event::Forward(e) => e.error.take(),
            Event::Backward(e) => e.error.take(),
            Event::TimeStep(e) => e.error.take(),
            Event::Update(e) => e.error.take(),
            Event::Gate(e) => e.error.take(),
        }
    }
}

/// A layer has run forward.
pub struct ForwardEvent<'a, F: Float> {
    /// Dotted path of the layer within the network.
    pub path: &'a str,
    /// The layer number (see [`Event::layer_number`]).
    pub layer_number: Option<usize>,
    /// The layer itself (for its kind, description, parameters or activation).
    pub layer: &'a dyn Layer<F>,
    /// The step (see [`Event::step`]).
    pub step: u64,
    /// Train or Eval.
    pub mode: Mode,
    /// The layer's input, `(batch, in)`.
    pub input: ArrayView2<'a, F>,
    /// The layer's output, `(batch, out)`.
    pub output: ArrayView2<'a, F>,
    pub(crate) error: Option<Error>,
}

/// A layer has run backward. The hook may change the gradient sent to the layers below with
/// [`BackwardEvent::grad_input_mut`] or [`BackwardEvent::set_grad_input`].
pub struct BackwardEvent<'a, F: Float> {
    /// Dotted path of the layer within the network.
    pub path: &'a str,
    /// The layer number (see [`Event::layer_number`]).
    pub layer_number: Option<usize>,
    /// The layer itself; its parameter gradients are already accumulated.
    pub layer: &'a dyn Layer<F>,
    /// The step (see [`Event::step`]).
    pub step: u64,
    /// The layer's input in the forward pass.
    pub input: ArrayView2<'a, F>,
    /// The layer's output in the forward pass.
    pub output: ArrayView2<'a, F>,
    /// dL/d(output): the gradient arriving from above.
    pub grad_output: ArrayView2<'a, F>,
    pub(crate) grad_input: Option<&'a mut Array2<F>>,
    pub(crate) error: Option<Error>,
}

impl<'a, F: Float> BackwardEvent<'a, F> {
    /// dL/d(input): the gradient this layer sends below, or `None` when nobody below needs it
    /// (the first layer of a network whose input gradient was not requested).
    pub fn grad_input(&self) -> Option<ArrayView2<'_, F>> {
        self.grad_input.as_ref().map(|g| g.view())
    }

    /// The gradient sent below, to modify in place (scale, clip, zero). The change reaches every
    /// layer below and their parameter updates.
    pub fn grad_input_mut(&mut self) -> Option<ArrayViewMut2<'_, F>> {
        self.grad_input.as_mut().map(|g| g.view_mut())
    }

    /// Replaces the gradient sent below. Fails (and fails the backward pass, naming this layer)
    /// when `new` does not have the shape of the input, or when there is no input gradient.
    pub fn set_grad_input(&mut self, new: ArrayView2<'_, F>) -> Result<()> {
        let result = match self.grad_input.as_mut() {
            Some(g) if g.dim() == new.dim() => {
                g.assign(&new);
                Ok(())
            }
            Some(g) => Err(Error::Hook {
                path: self.path.to_string(),
                reason: format!(
                    "replacement gradient has shape {}, the layer's input gradient has {}",
                    format_shape(new.shape()),
                    format_shape(g.shape())
                ),
            }),
            None => Err(Error::Hook {
                path: self.path.to_string(),
                reason: "no input gradient is computed for this layer".into(),
            }),
        };
        if let Err(e) = &result {
            self.error.get_or_insert(Error::Hook { path: self.path.to_string(), reason: e.to_string() });
        }
        result
    }

    /// Calls `visitor` with each of the layer's parameters and their accumulated gradients.
    pub fn visit_parameters(&self, visitor: &mut dyn FnMut(ParamView<'_, F>)) {
        self.layer.visit_parameters(visitor);
    }
}

/// An optimizer step has updated a layer's parameters: what [`crate::Network::step`] shows the
/// hooks after the update, once per layer that has parameters (containers excluded), in
/// visiting order.
pub struct UpdateEvent<'a, F: Float> {
    /// Dotted path of the layer within the network.
    pub path: &'a str,
    /// The layer number (see [`Event::layer_number`]).
    pub layer_number: Option<usize>,
    /// The layer itself, holding the updated values.
    pub layer: &'a dyn Layer<F>,
    /// The step whose gradients the optimizer applied: that of the last backward pass (the
    /// step that its [`BackwardEvent`]s carried).
    pub step: u64,
    /// How far each of the layer's parameters moved, in visiting order.
    pub updates: &'a [ParamUpdate],
    pub(crate) error: Option<Error>,
}

/// A gate computed inside a layer, which the events of the layer's children do not show: the
/// transform gate `T(x) = σ(W_T x + b_T)` of a [`crate::Highway`] layer (its child `"gate"` is
/// the linear part, whose events carry `W_T x + b_T` and its gradient), in forward; in backward
/// also dL/dT, the gradient of the loss with respect to the gate's value.
///
/// A layer emits it from inside its pass, before its own [`ForwardEvent`] / [`BackwardEvent`]
/// (after those of its children), and only when hooks observe the pass: with no hook attached
/// nothing is computed or copied (dL/dT is computed, into a buffer reused from step to step, only
/// for an observed backward pass). It is read-only.
///
/// ```
/// use gradflow::{Mode, Network, Sequential};
/// use gradflow::activation::Relu;
/// use gradflow::hooks::{Direction, Event};
/// use ndarray::Array2;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut net = Network::new(Sequential::<f32>::builder(4).repeat_highway(3, Relu, -2.0).build(&mut rng)?);
/// // The mean of T(x) and ‖dL/dT‖ of every highway layer.
/// let mut seen = Vec::new();
/// let (result, _) = net.with_hook(
///     |event: &mut Event<'_, f32>| {
///         if let Event::Gate(g) = event {
///             let mean = g.value.mean().unwrap();
///             let grad_norm = g.grad.map(|d| d.iter().map(|v| v * v).sum::<f32>().sqrt());
///             seen.push((g.path.to_string(), g.pass, mean, grad_norm));
///         }
///     },
///     |net| {
///         net.forward(Array2::ones((2, 4)).view(), Mode::Train)?;
///         net.backward(Array2::ones((2, 4)).view())
///     },
/// );
/// result?;
/// let order: Vec<(&str, Direction)> = seen.iter().map(|(p, d, _, _)| (p.as_str(), *d)).collect();
/// use Direction::{Backward, Forward};
/// assert_eq!(order, [("0", Forward), ("1", Forward), ("2", Forward), ("2", Backward), ("1", Backward), ("0", Backward)]);
/// assert!(seen.iter().all(|&(_, pass, mean, grad)| mean > 0.0 && mean < 0.5 && grad.is_some() == (pass == Backward)));
/// # Ok::<(), gradflow::Error>(())
/// ```
pub struct GateEvent<'a, F: Float> {
    /// Dotted path of the layer that computed the gate, e.g. `"3"`.
    pub path: &'a str,
    /// The layer number (see [`Event::layer_number`]).
    pub layer_number: Option<usize>,
    /// The layer that computed the gate.
    pub layer: &'a dyn Layer<F>,
    /// The step (see [`Event::step`]).
    pub step: u64,
    /// The pass: forward, or backward (when `grad` is known).
    pub pass: super::Direction,
    /// Which gate, and its non-linearity (`"T"`, [`super::GateFunction::Sigmoid`], for a highway
    /// layer).
    pub gate: super::Gate,
    /// The gate's values, `(batch, width)`: `T(x)` for a highway layer.
    pub value: ArrayView2<'a, F>,
    /// dL/d(value), `(batch, width)`, in backward only: for a highway layer
    /// `dL/dT = dL/dy ⊙ (H(x) − x)`.
    pub grad: Option<ArrayView2<'a, F>>,
    pub(crate) error: Option<Error>,
}

/// How far one parameter moved in an optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamUpdate {
    /// The parameter's name within its layer, e.g. `"weight"`.
    pub name: &'static str,
    /// ‖W_after − W_before‖, the L2 norm of the update over all entries.
    pub norm: f64,
}
