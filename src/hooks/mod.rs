//! Gradient-inspection hooks: observe (and optionally modify) what flows through every layer.
//!
//! A [`Hook`] receives an [`Event`] for every layer, in forward and in backward, with the
//! layer's dotted path (`"12"`, `"3.branch.1"`), its kind, and the arrays that flow through it.
//! Any `FnMut(&mut Event<F>)` closure is a hook. When the optimizer is stepped through
//! [`crate::Network::step`], hooks that ask for it ([`Hook::wants_updates`], [`WithUpdates`])
//! also receive an [`UpdateEvent`] per layer with how far each parameter moved. Values computed
//! inside a layer that matter for gradient flow come in events of their own: a highway layer's
//! gate `T(x)` and dL/dT in a [`GateEvent`], a recurrent layer's states and gate activations at
//! every time step in a [`TimeStepEvent`].
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
//!
//! # A hook from user code
//!
//! A closure that prints, during backward, the norm of the gradient reaching each layer's
//! output, attached for one pass and removed with its handle:
//!
//! ```
//! use gradflow::{Mode, Network, Sequential, activation::Tanh, hooks::Event};
//! use ndarray::Array2;
//! use rand::SeedableRng;
//! # use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
//! # let (seen, counter) = { let c = Arc::new(AtomicUsize::new(0)); (c.clone(), c) };
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let mut net = Network::new(Sequential::<f32>::builder(8).repeat(4, 16, Tanh).linear(1).build(&mut rng)?);
//! let handle = net.attach_hook(move |event: &mut Event<'_, f32>| {
//!     if let Event::Backward(b) = event {
//! #       counter.fetch_add(1, Ordering::Relaxed);
//!         let norm = b.grad_output.iter().map(|g| g * g).sum::<f32>().sqrt();
//!         println!("layer {:>2} {:<6} ‖dL/d(output)‖ = {norm:.2e}", b.path, b.layer.kind());
//!     }
//! });
//! net.forward(Array2::ones((4, 8)).view(), Mode::Train)?;
//! net.backward(Array2::ones((4, 1)).view())?;
//! net.detach_hook(handle); // later passes run without it
//! # assert_eq!(seen.load(Ordering::Relaxed), 9); // 5 Linear + 4 tanh, each seen once
//! # net.forward(Array2::ones((4, 8)).view(), Mode::Train)?;
//! # net.backward(Array2::ones((4, 1)).view())?;
//! # assert_eq!(seen.load(Ordering::Relaxed), 9);
//! # Ok::<(), gradflow::Error>(())
//! ```
//!
//! The example `gradient_hooks` goes further: a [`Recorder`] and a [`NonFiniteDetector`] kept
//! over training steps, a hook that scales the gradient sent below one layer
//! ([`BackwardEvent::grad_input_mut`]), and the diagnosis.

mod approx_eq;
mod channel_stats;
mod context;
mod event;
mod lent;
pub(crate) mod nonfinite;
mod numbering;
pub(crate) mod recorder;
mod recording;
mod set;
pub(crate) mod stats;
mod time_step;

pub use channel_stats::ChannelStats;
pub use context::Context;
pub use event::{BackwardEvent, Event, ForwardEvent, GateEvent, ParamUpdate, UpdateEvent};
pub(crate) use lent::{LentHook, collect as collect_lent, lend};
pub use nonfinite::{Direction, NonFiniteDetector, NonFiniteReport};
pub use numbering::layer_numbers;
pub(crate) use numbering::{Numbering, is_companion, is_transparent, numbered_layers};
pub use recorder::{Recorder, RecorderConfig};
pub use recording::{
    ActivationInfo, GateStats, LayerRecord, LayerStepRecord, ParamStats, Recording, StepLoss,
};
pub use set::{Hook, HookHandle, HookSet, WithUpdates};
pub use stats::{ActivationStats, TensorStats};
pub(crate) use stats::{BLOCK, STAT_LANES};
pub use time_step::{Gate, GateFunction, TimeStepEvent, TimeStepPass};
