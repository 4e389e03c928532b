//! Training: minibatches from an in-memory [`Dataset`](crate::data::Dataset), shuffled with a
//! seeded generator, for a number of epochs, with loss and accuracy per epoch, evaluation in
//! [`Mode::Eval`](crate::Mode::Eval), optional gradient clipping, and progress on standard error.
//!
//! - [`TrainConfig`] and [`Trainer`]: configure (validated at construction) and run
//!   [`Trainer::fit`], which returns a [`History`].
//! - [`evaluate`]: loss and accuracy of a network on a dataset.
//! - [`Clip`]: PyTorch's gradient-norm and gradient-value clipping.
//! - [`Progress`]: a bar on a terminal, one [`epoch_line`] per epoch otherwise, or nothing.

mod batch;
mod clip;
mod config;
mod evaluate;
mod history;
mod progress;
mod trainer;

pub use config::{Clip, Progress, TrainConfig};
pub use evaluate::{Evaluation, evaluate};
pub use history::{EpochStats, History};
pub use progress::epoch_line;
pub use trainer::{TrainStep, Trainer};
