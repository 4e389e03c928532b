//! The per-pass context that carries attached hooks down through nested containers.

use std::fmt::{Display, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use ndarray::{Array2, ArrayView2};

use super::lent::LentHook;
use super::numbering::Numbering;
use super::{BackwardEvent, Direction, Event, ForwardEvent, Gate, GateEvent, Hook, HookSet};
use crate::layer::{Layer, Mode};
use crate::{Error, Float, Result};

/// Carries the hooks of one pass (if any), the dotted path of the layer being run and its layer
/// number.
///
/// Containers run each child through [`Context::forward_child`] / [`Context::backward_child`];
/// that is the only place where events are emitted. With no hooks (`Context::new()`) both simply
/// call the child.
pub struct Context<'h, F: Float> {
    hooks: Option<&'h mut HookSet<F>>,
    lent: &'h mut [LentHook<F>],
    numbering: Option<&'h Numbering>,
    path: String,
    /// The layer number of the numbered layer being run (and of everything inside it; see
    /// [`crate::hooks::layer_numbers`]).
    number: Option<usize>,
    step: u64,
}

impl<F: Float> Default for Context<'_, F> {
    fn default() -> Self {
        Context { hooks: None, lent: &mut [], numbering: None, path: String::new(), number: None, step: 0 }
    }
}

impl<'h, F: Float> Context<'h, F> {
    /// A context without hooks: nothing is observed.
    pub fn new() -> Self {
        Self::default()
    }

    /// A context that shows every layer to `hooks` (when the set is not empty).
    pub fn with_hooks(hooks: &'h mut HookSet<F>, step: u64) -> Self {
        let hooks = if hooks.is_empty() { None } else { Some(hooks) };
        Context { hooks, step, ..Self::default() }
    }

    /// The context of a [`crate::Network`] pass: its attached and lent hooks, and the layer
    /// numbers of its top-level children.
    pub(crate) fn for_network(
        hooks: &'h mut HookSet<F>,
        lent: &'h mut [LentHook<F>],
        numbering: &'h Numbering,
        step: u64,
    ) -> Self {
        let hooks = if hooks.is_empty() { None } else { Some(hooks) };
        Context { hooks, lent, numbering: Some(numbering), path: String::new(), number: None, step }
    }

    /// True when hooks are attached and events will be emitted.
    pub fn is_observed(&self) -> bool {
        self.hooks.is_some() || !self.lent.is_empty()
    }

    /// The layer number of the layer being run (1 nearest the input; see
    /// [`crate::hooks::layer_numbers`]), when the pass is observed and run by a
    /// [`crate::Network`].
    pub fn layer_number(&self) -> Option<usize> {
        self.number
    }

    /// The dotted path of the container currently running (empty at the top, and always empty
    /// when nothing is observed).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The training step counter.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Appends `name` to the path (and, for a numbered layer, sets its layer number); returns
    /// what [`Context::leave`] needs to restore.
    fn enter(&mut self, name: &dyn Display) -> (usize, Option<usize>) {
        let len = self.path.len();
        let number = self.number;
        if len > 0 {
            self.path.push('.');
        }
        let _ = write!(self.path, "{name}");
        // A numbered layer's number holds for everything inside it; a top-level child or a
        // child of a transparent container (no number) may be a numbered layer itself.
        if len == 0 || self.number.is_none() {
            self.number = self.numbering.and_then(|n| n.number_of(&self.path));
        }
        (len, number)
    }

    fn leave(&mut self, (len, number): (usize, Option<usize>)) {
        self.path.truncate(len);
        self.number = number;
    }

    /// Runs `child.forward` as the child called `name`, then shows the event to the hooks.
    /// Errors from the child are annotated with `name`.
    pub fn forward_child(
        &mut self,
        name: &dyn Display,
        child: &mut dyn Layer<F>,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        mode: Mode,
    ) -> Result<()> {
        if !self.is_observed() {
            return child.forward(input, output, mode, self).map_err(|e| e.at(name));
        }
        let saved = self.enter(name);
        let result = child.forward(input.view(), output, mode, self).map_err(|e| e.at(name));
        let result = result.and_then(|()| {
            let mut event = Event::Forward(ForwardEvent {
                path: &self.path,
                layer_number: self.number,
                layer: &*child,
                step: self.step,
                mode,
                input,
                output: output.view(),
                error: None,
            });
            emit(self.hooks.as_deref_mut(), self.lent, &mut event)
        });
        self.leave(saved);
        result
    }

    /// Runs `child.backward` as the child called `name`, then shows the event to the hooks,
    /// which may modify `grad_input`. Errors from the child are annotated with `name`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_child(
        &mut self,
        name: &dyn Display,
        child: &mut dyn Layer<F>,
        input: ArrayView2<'_, F>,
        output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        mut grad_input: Option<&mut Array2<F>>,
    ) -> Result<()> {
        if !self.is_observed() {
            return child.backward(input, output, grad_output, grad_input, self).map_err(|e| e.at(name));
        }
        let saved = self.enter(name);
        let result = child
            .backward(input, output, grad_output, grad_input.as_deref_mut(), self)
            .map_err(|e| e.at(name));
        let result = result.and_then(|()| {
            let mut event = Event::Backward(BackwardEvent {
                path: &self.path,
                layer_number: self.number,
                layer: &*child,
                step: self.step,
                input,
                output,
                grad_output,
                grad_input,
                error: None,
            });
            emit(self.hooks.as_deref_mut(), self.lent, &mut event)
        });
        self.leave(saved);
        result
    }
}

impl<F: Float> Context<'_, F> {
    /// Shows `event` to every hook. For layers that report events of their own from inside
    /// their pass, such as the per-time-step events of recurrent layers; does nothing when
    /// nothing is observed.
    ///
    /// # Errors
    /// [`Error::Hook`] when a hook panics.
    pub fn emit(&mut self, event: &mut Event<'_, F>) -> Result<()> {
        emit(self.hooks.as_deref_mut(), self.lent, event)
    }
}

impl<F: Float> Context<'_, F> {
    /// Shows the hooks a gate that `layer`, the layer being run, computed inside its pass (see
    /// [`GateEvent`]), as the layer at the current path. Does nothing when nothing is observed;
    /// allocates nothing.
    ///
    /// # Errors
    /// [`Error::Hook`] when a hook panics or aborts.
    pub fn emit_gate(
        &mut self,
        layer: &dyn Layer<F>,
        pass: Direction,
        gate: Gate,
        value: ArrayView2<'_, F>,
        grad: Option<ArrayView2<'_, F>>,
    ) -> Result<()> {
        if !self.is_observed() {
            return Ok(());
        }
        let mut event = Event::Gate(GateEvent {
            path: &self.path,
            layer_number: self.number,
            layer,
            step: self.step,
            pass,
            gate,
            value,
            grad,
            error: None,
        });
        emit(self.hooks.as_deref_mut(), self.lent, &mut event)
    }
}

/// Shows `event` to every hook (the attached ones in the order they were attached, then the lent
/// ones); a panicking hook aborts the pass with an error naming the layer, and so does a hook
/// that called [`Event::abort`] (after the remaining hooks have run).
fn emit<F: Float>(
    hooks: Option<&mut HookSet<F>>,
    lent: &mut [LentHook<F>],
    event: &mut Event<'_, F>,
) -> Result<()> {
    let attached = hooks.into_iter().flat_map(|h| h.hooks_mut());
    // SAFETY: the context of a pass holds only the lent hooks collected for that pass.
    let lent = lent.iter_mut().map(|h| unsafe { h.hook() });
    for hook in attached.chain(lent) {
        let hook: &mut dyn Hook<F> = hook;
        let outcome = catch_unwind(AssertUnwindSafe(|| hook.on_event(event)));
        if let Err(panic) = outcome {
            let message = crate::error::panic_message(panic.as_ref());
            return Err(Error::Hook {
                path: event.path().to_string(),
                reason: format!(
                    "hook panicked ({message}); the pass stopped at this layer, so gradients of \
                     the layers below are incomplete: call zero_grad before the next step"
                ),
            });
        }
    }
    event.take_error().map_or(Ok(()), Err)
}
