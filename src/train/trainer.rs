//! [`Trainer`]: the minibatch training loop.

use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::batch::Batcher;
use super::clip::clip_gradients;
use super::evaluate::{check_data, evaluate_checked};
use super::progress::Reporter;
use super::{EpochStats, History, TrainConfig};
use crate::data::Dataset;
use crate::loss::count_correct;
use crate::loss::{Loss, Targets};
use crate::optim::{LrSchedule, Optimizer};
use crate::{Error, Float, Layer, Mode, Network, Result};

/// Trains a [`Network`] on an in-memory [`Dataset`] in shuffled minibatches.
///
/// Each step: zero the gradients, run the minibatch forward in [`Mode::Train`], compute the
/// loss and its gradient, show the loss to the network's hooks ([`Network::report_loss`]),
/// backpropagate, clip (if configured), and let the optimizer update the parameters through
/// [`Network::step`]. After each epoch the test set (if any) is evaluated in [`Mode::Eval`] and
/// one line of progress is reported. [`Trainer::fit_with`] also calls your code after every
/// step.
///
/// Steps are the network's ([`Network::step_count`], from 0): a second `fit` on the same
/// network continues the count, and error messages, [`History::first_step`] and
/// [`TrainStep::step`] use the same numbers as hooks and recordings.
///
/// Reproducible: the sample order comes from `StdRng::seed_from_u64(config.seed)` only, so the
/// same seed, model and optimizer give bit-identical weights.
///
/// ```
/// use gradflow::{Network, Sequential};
/// use gradflow::activation::Relu;
/// use gradflow::data::digits_split;
/// use gradflow::train::{Progress, TrainConfig, Trainer};
/// use gradflow::loss::{CrossEntropy, Reduction};
/// use gradflow::optim::SgdConfig;
/// use rand::SeedableRng;
///
/// let (train, test) = digits_split::<f32>(0.2, 0)?;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let model = Sequential::builder(64).dense(32, Relu).linear(10).build(&mut rng)?;
/// let mut net = Network::new(model);
/// let loss = CrossEntropy::new(Reduction::Mean);
/// let mut optimizer = SgdConfig::new(0.1).momentum(0.9).build()?;
///
/// let trainer = Trainer::new(TrainConfig::new(1, 64).seed(1).progress(Progress::Silent))?;
/// let history = trainer.fit(&mut net, &mut optimizer, &loss, &train, Some(&test))?;
/// assert_eq!(history.epochs.len(), 1);
/// assert_eq!(history.step_losses.len(), 1438_usize.div_ceil(64));
/// assert!(history.last().unwrap().test_accuracy.is_some());
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Trainer {
    config: TrainConfig,
    schedule: Option<std::sync::Arc<dyn LrSchedule>>,
}

impl Trainer {
    /// A trainer with a validated configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field, as [`TrainConfig::validate`].
    pub fn new(config: TrainConfig) -> Result<Self> {
        config.validate()?;
        Ok(Trainer { config, schedule: None })
    }

    /// Sets a learning-rate schedule: before epoch `e` (counted from 0) the optimizer's rate is
    /// set to `schedule.learning_rate(base, e)`, where `base` is the optimizer's rate when `fit`
    /// starts — the rate PyTorch's schedulers give epoch `e` after `e` calls of `scheduler.step()`.
    ///
    /// ```
    /// use gradflow::optim::StepLr;
    /// use gradflow::train::{TrainConfig, Trainer};
    /// let trainer = Trainer::new(TrainConfig::new(30, 32))?.with_schedule(StepLr::new(10, 0.1)?);
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    pub fn with_schedule(mut self, schedule: impl LrSchedule + 'static) -> Self {
        self.schedule = Some(std::sync::Arc::new(schedule));
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Trains `net` on `train` for the configured number of epochs and returns what was
    /// measured. When `test` is given it is evaluated after every epoch.
    ///
    /// The input and target minibatch buffers are allocated once; a step allocates nothing
    /// beyond what the network, loss and optimizer themselves do (the network's buffers follow
    /// the batch size, so a final partial batch resizes them; `drop_last` avoids that).
    ///
    /// # Errors
    /// - an error naming the training or test set when it is empty or inconsistent
    ///   ([`Dataset::check`]), when the model does not take its features, or when a class label
    ///   or target width does not fit the model's outputs — all before any step is taken;
    /// - [`Error::InvalidConfig`] naming `batch_size` when `drop_last` leaves no full batch;
    /// - [`Error::NonFinite`] naming the epoch, batch and step when the loss or the gradient norm
    ///   becomes NaN or infinite: training stops there (the weights keep the last finite update);
    /// - any error of the network's passes, the loss or the optimizer.
    pub fn fit<F: Float, M: Layer<F>>(
        &self,
        net: &mut Network<F, M>,
        optimizer: &mut dyn Optimizer<F>,
        loss: &dyn Loss<F>,
        train: &Dataset<F>,
        test: Option<&Dataset<F>>,
    ) -> Result<History> {
        self.fit_with(net, optimizer, loss, train, test, |_, _| Ok(()))
    }

    /// [`Trainer::fit`], calling `on_step` after every training step (after the optimizer's
    /// update) with the network and what the step measured. Returning an error from `on_step`
    /// stops training with that error.
    ///
    /// The network is yours inside `on_step`: read a hook attached to it (a
    /// [`crate::hooks::Recorder`]'s latest statistics, say), print every N steps, save a
    /// checkpoint.
    ///
    /// ```
    /// use gradflow::{Network, Sequential};
    /// use gradflow::activation::Relu;
    /// use gradflow::data::digits_split;
    /// use gradflow::hooks::{Recorder, RecorderConfig};
    /// use gradflow::loss::{CrossEntropy, Reduction};
    /// use gradflow::optim::SgdConfig;
    /// use gradflow::rand::SeedableRng;
    /// use gradflow::train::{Progress, TrainConfig, Trainer};
    ///
    /// let (train, _) = digits_split::<f32>(0.2, 0)?;
    /// let mut rng = gradflow::rand::rngs::StdRng::seed_from_u64(0);
    /// let mut net = Network::new(Sequential::builder(64).repeat(3, 32, Relu).linear(10).build(&mut rng)?);
    /// let recorder = net.attach_hook(Recorder::new(RecorderConfig::gradients())?);
    /// let mut sgd = SgdConfig::new(0.05).build()?;
    /// let trainer = Trainer::new(TrainConfig::new(1, 64).progress(Progress::Silent))?;
    ///
    /// let mut printed = Vec::new();
    /// trainer.fit_with(&mut net, &mut sgd, &CrossEntropy::new(Reduction::Mean), &train, None, |net, step| {
    ///     if step.step % 10 == 0 {
    ///         // ‖dL/dh‖ of each layer at this step, numbered from the input like every report.
    ///         let recording = net.hook(recorder).expect("attached above").recording();
    ///         let layers = recording.hidden_layers(step.step);
    ///         let norms: Vec<String> = layers.iter().filter_map(|l| Some(format!("{:.1e}", l.grad_norm?))).collect();
    ///         printed.push(format!("step {:>3} loss {:.3} ‖dL/dh‖ {}", step.step, step.loss, norms.join(" ")));
    ///     }
    ///     Ok(())
    /// })?;
    /// assert_eq!(printed.len(), 3); // steps 0, 10, 20 of 23
    /// assert!(printed[0].starts_with("step   0 loss"));
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Trainer::fit`], and whatever `on_step` returns.
    #[allow(clippy::too_many_arguments)]
    pub fn fit_with<F: Float, M: Layer<F>>(
        &self,
        net: &mut Network<F, M>,
        optimizer: &mut dyn Optimizer<F>,
        loss: &dyn Loss<F>,
        train: &Dataset<F>,
        test: Option<&Dataset<F>>,
        mut on_step: impl FnMut(&mut Network<F, M>, &TrainStep) -> Result<()>,
    ) -> Result<History> {
        let config = &self.config;
        check_data(net, train, "training set")?;
        if let Some(test) = test {
            check_data(net, test, "test set")?;
        }
        let mut batcher = Batcher::new(train, config.batch_size);
        let batches = batcher.num_batches(config.drop_last);
        if batches == 0 {
            return Err(Error::config(
                "TrainConfig",
                "batch_size",
                format!(
                    "with drop_last, a batch size of {} leaves no full batch of the {} training samples",
                    config.batch_size,
                    train.len()
                ),
            ));
        }

        // With a step budget, the epochs it takes (the last one perhaps partial), at most `epochs`.
        let epochs = match config.max_steps {
            Some(steps) => {
                config.epochs.min(usize::try_from(steps.div_ceil(batches as u64)).unwrap_or(usize::MAX))
            }
            None => config.epochs,
        };
        let total_steps = match config.max_steps {
            Some(steps) => usize::try_from(steps).unwrap_or(usize::MAX).min(epochs.saturating_mul(batches)),
            None => epochs.saturating_mul(batches),
        };
        // Room for what a budget asks, up to a bound: `epochs` or `max_steps` may be set far
        // beyond what will run (e.g. `TrainConfig::steps(u64::MAX, …)` stopped from `on_step`),
        // and reserving that much would abort the process; the vectors grow past it as needed.
        const RESERVE: usize = 1 << 20;
        let mut history = History {
            first_step: net.step_count(),
            epochs: Vec::with_capacity(epochs.min(RESERVE)),
            step_losses: Vec::with_capacity(total_steps.min(RESERVE)),
            grad_norms: Vec::with_capacity(if config.clip.is_some() { total_steps.min(RESERVE) } else { 0 }),
        };
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut grad = Array2::zeros((0, 0));
        let mut reporter = Reporter::new(config.progress, epochs, total_steps as u64);
        let result = self.run(
            &mut Run {
                net,
                optimizer,
                loss,
                train,
                test,
                batcher: &mut batcher,
                grad: &mut grad,
                batches,
                epochs,
                total_steps,
            },
            &mut rng,
            &mut history,
            &mut reporter,
            &mut on_step,
        );
        reporter.finish();
        result.map(|()| history)
    }

    fn run<F: Float, M: Layer<F>>(
        &self,
        run: &mut Run<'_, F, M>,
        rng: &mut StdRng,
        history: &mut History,
        reporter: &mut Reporter<'_>,
        on_step: &mut OnStep<'_, F, M>,
    ) -> Result<()> {
        let config = &self.config;
        let base_lr = run.optimizer.learning_rate();
        let mut steps_done = 0;
        for epoch in 1..=run.epochs {
            if let Some(schedule) = &self.schedule {
                run.optimizer.apply_schedule(schedule.as_ref(), base_lr, epoch - 1)?;
            }
            if config.replacement {
                run.batcher.resample(rng);
            } else if config.shuffle {
                run.batcher.shuffle(rng);
            }
            let mut loss_sum = 0.0;
            let mut correct = 0;
            let mut seen = 0;
            for batch in 0..run.batches {
                if steps_done == run.total_steps {
                    break;
                }
                steps_done += 1;
                let step = run.net.step_count();
                let at = |e: Error| with_step(e, epoch, run.epochs, batch + 1, step);
                let (inputs, targets) = run.batcher.batch(run.train, batch);
                let rows = inputs.nrows();

                run.net.zero_grad();
                let output = run.net.forward(inputs, Mode::Train)?;
                let value = run.loss.compute(output, targets, run.grad).map_err(at)?.as_f64();
                if let Targets::Classes(labels) = targets {
                    correct += count_correct(output, labels);
                }
                run.net.report_loss(value);
                if !value.is_finite() {
                    return Err(at(Error::NonFinite {
                        location: format!("loss {}", run.loss.name()),
                        detail: format!("the loss is {value}; training stopped before this step's update"),
                    }));
                }
                run.net.backward(run.grad.view()).map_err(at)?;
                let grad_norm = match config.clip {
                    Some(clip) => Some(clip_gradients(run.net.model_mut(), clip).map_err(at)?),
                    None => None,
                };
                history.grad_norms.extend(grad_norm);
                run.net.step(&mut *run.optimizer).map_err(at)?;

                loss_sum += value * rows as f64;
                seen += rows;
                history.step_losses.push(value);
                reporter.step();
                let report = TrainStep {
                    step,
                    epoch,
                    batch: batch + 1,
                    loss: value,
                    learning_rate: run.optimizer.learning_rate(),
                    grad_norm,
                };
                on_step(run.net, &report)?;
            }
            let evaluation = match run.test {
                Some(test) => Some(evaluate_checked(run.net, run.loss, test, config.batch_size, run.grad)?),
                None => None,
            };
            let stats = EpochStats {
                epoch,
                train_loss: loss_sum / seen as f64,
                train_accuracy: run.train.targets.classes().map(|_| correct as f64 / seen as f64),
                test_loss: evaluation.map(|e| e.loss),
                test_accuracy: evaluation.and_then(|e| e.accuracy),
                learning_rate: run.optimizer.learning_rate(),
            };
            reporter.epoch(&stats);
            history.epochs.push(stats);
        }
        Ok(())
    }
}

/// [`Trainer::fit_with`]'s callback, as `run` takes it.
type OnStep<'a, F, M> = dyn FnMut(&mut Network<F, M>, &TrainStep) -> Result<()> + 'a;

/// What one `fit` call works on.
struct Run<'a, F: Float, M: Layer<F>> {
    net: &'a mut Network<F, M>,
    optimizer: &'a mut dyn Optimizer<F>,
    loss: &'a dyn Loss<F>,
    train: &'a Dataset<F>,
    test: Option<&'a Dataset<F>>,
    batcher: &'a mut Batcher<F>,
    grad: &'a mut Array2<F>,
    batches: usize,
    /// Epochs to run (fewer than configured under a step budget).
    epochs: usize,
    /// Steps to run in all.
    total_steps: usize,
}

/// What one training step measured, shown to [`Trainer::fit_with`]'s callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainStep {
    /// The step, as the network counts it ([`Network::step_count`] before the step; from 0).
    pub step: u64,
    /// The epoch, from 1.
    pub epoch: usize,
    /// The minibatch within the epoch, from 1.
    pub batch: usize,
    /// The minibatch's loss.
    pub loss: f64,
    /// The optimizer's learning rate for this step.
    pub learning_rate: f64,
    /// With clipping: the global gradient norm before clipping.
    pub grad_norm: Option<f64>,
}

/// Adds the epoch, batch and step to a non-finite error's location.
fn with_step(error: Error, epoch: usize, epochs: usize, batch: usize, step: u64) -> Error {
    match error {
        Error::NonFinite { location, detail } => Error::NonFinite {
            location: format!("{location} at epoch {epoch}/{epochs}, batch {batch}, step {step}"),
            detail,
        },
        other => other,
    }
}
