//! Gradient-inspection hooks: observe (and optionally modify) what flows through every layer.
//!
//! A [`Hook`] receives an [`Event`] for every layer, in forward and in backward, with the
//! layer's dotted path (`"12"`, `"3.branch.1"`), its kind, and the arrays that flow through it.
//! Any `FnMut(&mut Event<F>)` closure is a hook.
//!
//! Events are emitted in one place only: containers call [`Context::forward_child`] and
//! [`Context::backward_child`] for each child. When no hook is attached, the context carries
//! no hook set and these helpers do nothing beyond calling the child: no path string is built,
//! nothing is copied or allocated.
//!
//! Built-in hooks: [`Recorder`] keeps per-layer, per-step statistics ([`TensorStats`],
//! [`ActivationStats`]) in a [`Recording`] for [`crate::diagnose`] and [`crate::report`];
//! [`NonFiniteDetector`] names the layer, direction and step where a NaN or infinity first
//! appeared. A hook that must stop the pass calls [`Event::abort`].

mod context;
mod event;
mod nonfinite;
mod recorder;
mod recording;
mod set;
mod stats;
mod time_step;

pub use context::Context;
pub use event::{BackwardEvent, Event, ForwardEvent};
pub use nonfinite::{Direction, NonFiniteDetector, NonFiniteReport};
pub use recorder::{Recorder, RecorderConfig};
pub use recording::{ActivationInfo, LayerRecord, LayerStepRecord, ParamStats, Recording};
pub use set::{Hook, HookHandle, HookSet};
pub use stats::{ActivationStats, TensorStats};
pub use time_step::{Gate, GateFunction, TimeStepEvent, TimeStepPass};
