//! [`History`]: what a training run measured, per epoch and per step.

/// The measurements of one epoch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochStats {
    /// The epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch: the minibatch losses weighted by their number of
    /// samples (the exact mean for a mean-reduced loss). Measured during the epoch, in
    /// [`Mode::Train`](crate::Mode::Train), as the weights change — as Keras reports it.
    pub train_loss: f64,
    /// Fraction (0..=1) of training samples whose largest output is their class, measured like
    /// `train_loss`; `None` unless the targets are classes.
    pub train_accuracy: Option<f64>,
    /// Loss on the test set after the epoch, in [`Mode::Eval`](crate::Mode::Eval); `None` without a
    /// test set.
    pub test_loss: Option<f64>,
    /// Accuracy (0..=1) on the test set after the epoch; `None` without a test set or class
    /// targets.
    pub test_accuracy: Option<f64>,
    /// The optimizer's learning rate at the end of the epoch.
    pub learning_rate: f64,
}

/// Everything [`Trainer::fit`](super::Trainer::fit) measured, ready to print or plot.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct History {
    /// The network's step counter when training started: `step_losses[i]` is the loss of step
    /// `first_step + i` (0 for a fresh network).
    #[serde(default)]
    pub first_step: u64,
    /// One entry per completed epoch.
    pub epochs: Vec<EpochStats>,
    /// The loss of every minibatch step, in order.
    pub step_losses: Vec<f64>,
    /// With clipping configured: the global L2 norm of the gradients at every step *before*
    /// clipping (in order, one per step). Empty without clipping.
    pub grad_norms: Vec<f64>,
}

impl History {
    /// The statistics of the last completed epoch.
    pub fn last(&self) -> Option<&EpochStats> {
        self.epochs.last()
    }

    /// Training loss per epoch.
    pub fn train_losses(&self) -> Vec<f64> {
        self.epochs.iter().map(|e| e.train_loss).collect()
    }

    /// Test accuracy per epoch (empty without a test set or class targets).
    pub fn test_accuracies(&self) -> Vec<f64> {
        self.epochs.iter().filter_map(|e| e.test_accuracy).collect()
    }
}
