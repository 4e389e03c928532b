//! [`TrainConfig`]: how long, in which batches, with which clipping and which progress output.

use crate::{Error, Result};

/// Gradient clipping applied after each backward pass, before the optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Clip {
    /// Rescales all gradients together so that their global L2 norm is at most `max_norm`, as
    /// PyTorch's `torch.nn.utils.clip_grad_norm_(parameters, max_norm)`: with `total` the norm of
    /// all gradients concatenated, every gradient is multiplied by `max_norm / (total + 1e-6)`
    /// when that is below 1. (The norm is accumulated in `f64`.)
    Norm(f64),
    /// Clamps every gradient entry into `[-value, value]`, as PyTorch's
    /// `torch.nn.utils.clip_grad_value_(parameters, clip_value)`.
    Value(f64),
}

/// Where training progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Progress {
    /// A progress bar when standard error is a terminal, otherwise [`Progress::Lines`].
    #[default]
    Auto,
    /// A progress bar on standard error (with one line kept per epoch above it). Nothing is
    /// drawn when standard error is not a terminal. Without the `progress` feature (on by
    /// default), [`Progress::Lines`] instead.
    Bar,
    /// One plain line per epoch on standard error, e.g.
    /// `epoch 3/20  train loss 0.4123  acc 88.1%  test loss 0.5012  acc 85.3%`.
    Lines,
    /// Nothing (for tests and libraries).
    Silent,
}

/// How [`Trainer::fit`](super::Trainer::fit) trains: epochs, minibatch size, shuffling, seed,
/// clipping and progress output. Validated by [`Trainer::new`](super::Trainer::new).
///
/// ```
/// use gradflow::train::{Clip, Progress, TrainConfig, Trainer};
///
/// let config = TrainConfig::new(20, 32).seed(7).clip(Clip::Norm(1.0)).progress(Progress::Silent);
/// let trainer = Trainer::new(config)?;
/// assert_eq!(trainer.config().batch_size, 32);
///
/// // A batch size of zero is refused, naming the field.
/// let err = Trainer::new(TrainConfig::new(20, 0)).unwrap_err();
/// assert!(err.to_string().contains("batch_size"));
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set (at least 1).
    pub epochs: usize,
    /// Samples per minibatch (at least 1).
    pub batch_size: usize,
    /// Seed of the generator that shuffles the samples (`StdRng::seed_from_u64`): the same seed
    /// gives the same batches, hence bit-identical weights. Default 0.
    pub seed: u64,
    /// Reshuffle the training samples at the start of every epoch (default `true`, as Keras's
    /// `Model.fit`; PyTorch's `DataLoader` leaves it to the caller).
    pub shuffle: bool,
    /// Drop the last batch of an epoch when it is smaller than `batch_size` (default `false`,
    /// as PyTorch's `DataLoader`).
    pub drop_last: bool,
    /// Gradient clipping after each backward pass (default none).
    pub clip: Option<Clip>,
    /// Progress output (default [`Progress::Auto`]).
    pub progress: Progress,
    /// A budget of optimizer steps (default none): training stops after this many steps, in the
    /// middle of an epoch if need be (that epoch's statistics cover the batches it ran), or
    /// after `epochs` epochs, whichever comes first. [`TrainConfig::steps`] sets a budget of
    /// steps alone.
    #[serde(default)]
    pub max_steps: Option<u64>,
    /// Draw each epoch's samples *with* replacement (default `false`): an epoch is as many
    /// samples as the training set has, each drawn uniformly from it by the seeded generator, as
    /// PyTorch's `RandomSampler(data, replacement=True)`; some samples then come twice in an
    /// epoch, others not at all. Ignores [`TrainConfig::shuffle`].
    #[serde(default)]
    pub replacement: bool,
}

impl TrainConfig {
    /// `epochs` passes in minibatches of `batch_size`, shuffled with seed 0, no clipping,
    /// automatic progress output.
    pub fn new(epochs: usize, batch_size: usize) -> Self {
        TrainConfig {
            epochs,
            batch_size,
            seed: 0,
            shuffle: true,
            drop_last: false,
            clip: None,
            progress: Progress::Auto,
            max_steps: None,
            replacement: false,
        }
    }

    /// `max_steps` optimizer steps in minibatches of `batch_size`, however many epochs that
    /// takes, shuffled with seed 0 (a step budget, as research code often counts training).
    ///
    /// ```
    /// use gradflow::train::{Progress, TrainConfig, Trainer};
    /// # use gradflow::{Network, Sequential, data::digits_split, loss::{CrossEntropy, Reduction}, optim::SgdConfig};
    /// # use gradflow::rand::{SeedableRng, rngs::StdRng};
    /// # let (train, _) = digits_split::<f32>(0.25, 0)?;
    /// # let mut net = Network::new(Sequential::builder(64).linear(10).build(&mut StdRng::seed_from_u64(0))?);
    /// # let mut sgd = SgdConfig::new(0.05).build()?;
    /// // 100 steps of 32 samples drawn with replacement (1348 samples: 43 batches an epoch).
    /// let config = TrainConfig::steps(100, 32).replacement(true).progress(Progress::Silent);
    /// let history = Trainer::new(config)?.fit(&mut net, &mut sgd, &CrossEntropy::new(Reduction::Mean), &train, None)?;
    /// assert_eq!(history.step_losses.len(), 100);
    /// assert_eq!(history.epochs.len(), 3); // 43 + 43 + 14 steps
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    pub fn steps(max_steps: u64, batch_size: usize) -> Self {
        TrainConfig { max_steps: Some(max_steps), ..TrainConfig::new(usize::MAX, batch_size) }
    }

    /// Sets [`TrainConfig::max_steps`].
    pub fn max_steps(mut self, max_steps: u64) -> Self {
        self.max_steps = Some(max_steps);
        self
    }

    /// Sets [`TrainConfig::replacement`].
    pub fn replacement(mut self, replacement: bool) -> Self {
        self.replacement = replacement;
        self
    }

    /// Sets the shuffling seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets whether samples are reshuffled every epoch.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Sets whether a final partial batch is dropped.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Sets gradient clipping.
    pub fn clip(mut self, clip: Clip) -> Self {
        self.clip = Some(clip);
        self
    }

    /// Sets the progress output.
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `epochs`, `batch_size` or `max_steps` when zero, or `clip` when its
    /// threshold is not positive and finite.
    pub fn validate(&self) -> Result<()> {
        const COMPONENT: &str = "TrainConfig";
        if self.epochs == 0 {
            return Err(Error::config(COMPONENT, "epochs", "must be at least 1, got 0"));
        }
        if self.batch_size == 0 {
            return Err(Error::config(COMPONENT, "batch_size", "must be at least 1, got 0"));
        }
        if self.max_steps == Some(0) {
            return Err(Error::config(COMPONENT, "max_steps", "must be at least 1, got 0"));
        }
        match self.clip {
            Some(clip @ (Clip::Norm(v) | Clip::Value(v))) if !(v.is_finite() && v > 0.0) => {
                Err(Error::config(
                    COMPONENT,
                    "clip",
                    format!("the threshold must be positive and finite, got {clip:?}"),
                ))
            }
            _ => Ok(()),
        }
    }
}
