//! [`Diagnosis`]: verdicts per layer and for the model, the evidence behind them, and the
//! remedies the evidence points at.

use serde::{Deserialize, Serialize};

use super::training::{TrainingDiagnosis, diagnose_training};
use super::{HiddenLayer, Remedy, TheoryComparison, Thresholds, Verdict};
use crate::activation::ActivationFamily;
use crate::hooks::Recording;
use crate::theory::Prediction;
use crate::{Error, Result};

/// One hidden layer (or the output layer) with its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerDiagnosis {
    /// The layer's statistics.
    pub layer: HiddenLayer,
    /// What is wrong with it, most specific first: non-finite, then the layer's own state
    /// (saturated, dead), then what reaches it (exploding, vanishing), else healthy.
    pub verdict: Verdict,
    /// The numbers behind the verdict (empty when healthy).
    pub evidence: Vec<String>,
}

/// The diagnosis of a recorded network: its gradient flow at one step and, when the recording
/// covers training, how training went.
///
/// Built by [`diagnose`] / [`diagnose_step`] from a [`Recording`]. The gradient-flow verdict
/// at the step ([`Diagnosis::flow_verdict`]) is, in this order: non-finite if any NaN or ∞ was
/// recorded; exploding or vanishing when ‖dL/dh‖ at the first hidden layer is above
/// [`Thresholds::exploding_ratio`] or below [`Thresholds::vanishing_ratio`] times the last
/// hidden layer's; saturated or dead when any hidden layer is; healthy otherwise. The model's
/// [`Diagnosis::verdict`] is that verdict when it names a problem, and otherwise the verdict of
/// training ([`TrainingDiagnosis::verdict`]), so that a network that starts healthy but does not
/// train is not called healthy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The step whose gradient flow is diagnosed (the first recorded one for [`diagnose`]).
    pub step: u64,
    /// The model's verdict: the gradient flow's at `step` if not healthy, else training's.
    pub verdict: Verdict,
    /// The verdict of the gradient flow at `step` alone.
    pub flow_verdict: Verdict,
    /// ‖dL/dh‖ at the first hidden layer divided by the last hidden layer's.
    pub gradient_ratio: Option<f64>,
    /// The geometric mean of that ratio per layer: `gradient_ratio^(1/(hidden layers − 1))`.
    pub per_layer_factor: Option<f64>,
    /// Every hidden layer and the output layer, from the input.
    pub layers: Vec<LayerDiagnosis>,
    /// The numbers behind the model's verdict, e.g. "gradient norm ‖dL/dh‖ falls ×1.4e-7
    /// (10^-6.9) from layer 30 to layer 1, about ×0.58 per layer".
    pub evidence: Vec<String>,
    /// What to do, the remedy the evidence points at most directly first (empty when healthy):
    /// those of the gradient flow at `step`, then those of training.
    pub remedies: Vec<Remedy>,
    /// How training went over the whole recording ([`diagnose`] only, when at least two steps
    /// with a backward pass were recorded).
    pub training: Option<TrainingDiagnosis>,
    /// The thresholds applied.
    pub thresholds: Thresholds,
    /// The mean-field prediction beside the measured gradient flow, once added with
    /// [`Diagnosis::with_theory`] (`None` otherwise).
    #[serde(default)]
    pub theory: Option<TheoryComparison>,
}

impl Diagnosis {
    /// The diagnosis with the mean-field prediction beside its measurement
    /// ([`Diagnosis::theory`]): the predicted and measured per-layer gradient factor and
    /// first/last ratio, whether they agree within [`Thresholds::theory_tolerance`] (default
    /// ×1.1 per layer; on the plain networks of the `resnet_vs_plain` and `initializers`
    /// examples they agree within 3%), and, when they do not, the likely causes — or "not
    /// covered" with the layers the theory has no statement for (residual blocks, batch
    /// normalization, …). [`crate::report::table`] prints it and [`crate::report::json`] saves it.
    ///
    /// Make the prediction with [`crate::theory::predict_model`] while the network is at
    /// initialization — it reads the weights — and compare it with the diagnosis of the first
    /// recorded step, which [`diagnose`] gives: the prediction describes independent random
    /// weights, which training no longer are. Neither the verdict nor the remedies change.
    ///
    /// ```
    /// use gradflow::{Network, Sequential, Mode};
    /// use gradflow::activation::Tanh;
    /// use gradflow::init::LinearDefault;
    /// use gradflow::hooks::Recorder;
    /// use gradflow::diagnose::{diagnose, TheoryAgreement, Thresholds};
    /// use gradflow::theory::{predict_model, InputScale};
    /// use gradflow::ndarray::Array2;
    /// use gradflow::rand::{Rng, SeedableRng, rngs::StdRng};
    ///
    /// // 20 tanh layers of width 128 with PyTorch's default init, inputs of second moment 1/3.
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let model = Sequential::<f32>::builder(128)
    ///     .init(LinearDefault).repeat(20, 128, Tanh).linear(10).build(&mut rng)?;
    /// let mut net = Network::new(model);
    /// let x = Array2::from_shape_simple_fn((64, 128), || rng.random_range(-1.0f32..1.0));
    /// // Before any step: the theory's prediction from the weights and the input scale.
    /// let prediction = predict_model(net.model(), InputScale::SecondMoment(1.0 / 3.0))?;
    /// let (result, recorder) = net.with_hook(Recorder::default(), |net| {
    ///     let rows = net.forward(x.view(), Mode::Train)?.nrows();
    ///     net.backward(Array2::from_elem((rows, 10), 0.1).view())
    /// });
    /// result?;
    /// let diagnosis = diagnose(recorder.recording(), &Thresholds::default())?.with_theory(&prediction);
    /// let theory = diagnosis.theory.as_ref().unwrap();
    /// assert_eq!(theory.agreement, TheoryAgreement::Agree, "{theory}");
    /// // "theory (mean field, at initialization): ×0.58 per layer, first/last …; measured at step 0: …"
    /// println!("{theory}");
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    pub fn with_theory(mut self, prediction: &Prediction) -> Diagnosis {
        self.theory = Some(TheoryComparison::new(&self, prediction));
        self
    }
}

/// Diagnoses the first recorded step that has a backward pass — the network at initialization,
/// when recording started with training, the state that decides whether training can start at
/// all — and, when the recording goes on, how training went over every recorded step
/// ([`TrainingDiagnosis`]: the loss trend, the update-to-weight ratios, the gradient flow's
/// changes). Use [`diagnose_step`] to look at one later step alone.
///
/// # Errors
/// [`Error::InvalidConfig`] for invalid `thresholds` (naming the field) or a recording without
/// any recorded backward pass.
///
/// ```
/// use gradflow::{Network, Sequential, Mode};
/// use gradflow::activation::Tanh;
/// use gradflow::init::LinearDefault;
/// use gradflow::hooks::Recorder;
/// use gradflow::diagnose::{diagnose, Thresholds, Verdict, Remedy};
/// use ndarray::Array2;
/// use rand::SeedableRng;
///
/// // 30 tanh layers with PyTorch's default U(±1/√fan_in): the signal shrinks ×0.58 per layer.
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let model = Sequential::<f32>::builder(64)
///     .init(LinearDefault).repeat(30, 64, Tanh).linear(1).build(&mut rng)?;
/// let mut net = Network::new(model);
/// let x = Array2::from_shape_fn((32, 64), |(i, j)| ((i * 7 + j * 13) % 17) as f32 / 8.0 - 1.0);
/// let (result, recorder) = net.with_hook(Recorder::default(), |net| {
///     net.forward(x.view(), Mode::Train)?;
///     net.backward(Array2::ones((32, 1)).view())
/// });
/// result?;
/// let diagnosis = diagnose(recorder.recording(), &Thresholds::default())?;
/// assert_eq!(diagnosis.verdict, Verdict::Vanishing);
/// assert_eq!(diagnosis.remedies[0], Remedy::Initialization);
/// # Ok::<(), gradflow::Error>(())
/// ```
pub fn diagnose(recording: &Recording, thresholds: &Thresholds) -> Result<Diagnosis> {
    let step = recording
        .steps()
        .into_iter()
        .find(|&s| recording.layers.iter().any(|l| l.at_step(s).is_some_and(|r| r.grad_output.is_some())))
        .ok_or_else(|| Error::config("diagnose", "recording", "has no recorded backward pass"))?;
    let mut diagnosis = diagnose_step(recording, step, thresholds)?;
    if let Some(training) = diagnose_training(recording, thresholds) {
        if diagnosis.verdict == Verdict::Healthy {
            diagnosis.verdict = training.verdict;
        }
        for &r in &training.remedies {
            if !diagnosis.remedies.contains(&r) {
                diagnosis.remedies.push(r);
            }
        }
        diagnosis.training = Some(training);
    }
    Ok(diagnosis)
}

/// The gradient-flow diagnosis at `step`, or `None` when no backward pass was recorded there.
pub(crate) fn flow_at(recording: &Recording, step: u64, thresholds: &Thresholds) -> Option<Diagnosis> {
    let layers = recording.hidden_layers(step);
    layers.iter().any(|l| l.grad_norm.is_some()).then(|| Analysis::new(layers, step, *thresholds).finish())
}

/// Diagnoses the recording at `step`.
///
/// # Errors
/// [`Error::InvalidConfig`] for invalid `thresholds` (naming the field), or when no backward
/// pass was recorded at `step` (the message lists the recorded steps).
pub fn diagnose_step(recording: &Recording, step: u64, thresholds: &Thresholds) -> Result<Diagnosis> {
    thresholds.validate()?;
    let layers = recording.hidden_layers(step);
    if !layers.iter().any(|l| l.grad_norm.is_some()) {
        let steps = recording.steps();
        let shown: Vec<String> = steps.iter().take(10).map(|s| s.to_string()).collect();
        let more = if steps.len() > 10 { ", …" } else { "" };
        return Err(Error::config(
            "diagnose",
            "step",
            format!(
                "no backward pass was recorded at step {step} (recorded steps: [{}{more}])",
                shown.join(", ")
            ),
        ));
    }
    Ok(Analysis::new(layers, step, *thresholds).finish())
}

/// `1.2e-3` style.
fn sci(x: f64) -> String {
    format!("{x:.1e}")
}

fn percent(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

/// "layer 4: 83% of tanh units saturated".
fn units_text(index: usize, layer: &HiddenLayer, share: f64, what: &str) -> String {
    let act = layer.activation.as_deref().unwrap_or("activation");
    let why = if what == "dead" { " (zero for every sample of the batch)" } else { "" };
    format!("layer {}: {} of {act} units {what}{why}", index + 1, percent(share))
}

struct Analysis {
    step: u64,
    t: Thresholds,
    layers: Vec<HiddenLayer>,
    /// Number of hidden layers (all but the output layer).
    hidden: usize,
    evidence: Vec<String>,
}

impl Analysis {
    fn new(layers: Vec<HiddenLayer>, step: u64, t: Thresholds) -> Self {
        let hidden = layers.iter().filter(|l| !l.is_output).count();
        Analysis { step, t, layers, hidden, evidence: Vec::new() }
    }

    /// ‖dL/dh‖ of hidden layer `i` relative to the last hidden layer's.
    fn relative_grad(&self, i: usize) -> Option<f64> {
        let top = self.layers.get(self.hidden.checked_sub(1)?)?.grad_norm?;
        let g = self.layers[i].grad_norm?;
        (top > 0.0).then(|| g / top)
    }

    /// The layer's verdict; `flow` is the model's gradient trend (vanishing, exploding or
    /// neither), which lowers the bar for labelling a layer part of it ([`Thresholds::layer_ratio`]).
    fn layer_verdict(&self, i: usize, flow: Option<Verdict>) -> (Verdict, Vec<String>) {
        let l = &self.layers[i];
        let n = i + 1;
        let mut found = Vec::new();
        if l.non_finite_count > 0 {
            found.push((
                Verdict::NonFinite,
                format!(
                    "layer {n}: {} NaN or infinite values in its outputs or gradients",
                    l.non_finite_count
                ),
            ));
        }
        if let Some(s) = l.saturated_fraction.filter(|&s| s > self.t.saturated_fraction) {
            found.push((Verdict::Saturated, units_text(i, l, s, "saturated")));
        }
        if let Some(d) = l.dead_fraction.filter(|&d| d > self.t.dead_fraction) {
            found.push((Verdict::Dead, units_text(i, l, d, "dead")));
        }
        if let Some(r) = self.relative_grad(i).filter(|_| !l.is_output) {
            let text = format!("layer {n}: ‖dL/dh‖ is {} times the last hidden layer's", sci(r));
            let (low, high) = match flow {
                Some(Verdict::Vanishing) => (self.t.layer_ratio, self.t.exploding_ratio),
                Some(Verdict::Exploding) => (self.t.vanishing_ratio, 1.0 / self.t.layer_ratio),
                _ => (self.t.vanishing_ratio, self.t.exploding_ratio),
            };
            if r > high {
                found.push((Verdict::Exploding, text));
            } else if r < low {
                found.push((Verdict::Vanishing, text));
            }
        }
        let verdict = found.first().map_or(Verdict::Healthy, |f| f.0);
        (verdict, found.into_iter().map(|f| f.1).collect())
    }

    fn finish(mut self) -> Diagnosis {
        let (gradient_ratio, per_layer_factor) = self.gradient_ratio();
        let flow = if gradient_ratio.is_some_and(|r| r > self.t.exploding_ratio) {
            Some(Verdict::Exploding)
        } else if gradient_ratio.is_some_and(|r| r < self.t.vanishing_ratio) || self.no_gradient_at_top() {
            Some(Verdict::Vanishing)
        } else {
            None
        };
        let per_layer: Vec<(Verdict, Vec<String>)> =
            (0..self.layers.len()).map(|i| self.layer_verdict(i, flow)).collect();
        let hidden_verdicts = || per_layer[..self.hidden].iter().map(|v| v.0);
        let any = |v: Verdict| per_layer.iter().any(|p| p.0 == v);
        let verdict = if any(Verdict::NonFinite) {
            Verdict::NonFinite
        } else if let Some(flow) = flow {
            flow
        } else if hidden_verdicts().any(|v| v == Verdict::Saturated) {
            Verdict::Saturated
        } else if self.mostly_dead() {
            Verdict::Dead
        } else {
            Verdict::Healthy
        };
        let remedies = self.gather_evidence(verdict, gradient_ratio, per_layer_factor, &per_layer);
        let layers = self
            .layers
            .into_iter()
            .zip(per_layer)
            .map(|(layer, (verdict, evidence))| LayerDiagnosis { layer, verdict, evidence })
            .collect();
        Diagnosis {
            step: self.step,
            verdict,
            flow_verdict: verdict,
            gradient_ratio,
            per_layer_factor,
            layers,
            evidence: self.evidence,
            remedies,
            training: None,
            thresholds: self.t,
            theory: None,
        }
    }

    /// Whether the hidden layers' rectifier units are dead on average beyond
    /// [`Thresholds::dead_fraction`], or one layer's beyond [`Thresholds::dead_fraction_severe`].
    /// One layer just beyond the first is labelled dead but does not make the model dead: it can
    /// be chance in a healthy deep ReLU stack (see the threshold).
    fn mostly_dead(&self) -> bool {
        let shares: Vec<f64> = self.layers[..self.hidden].iter().filter_map(|l| l.dead_fraction).collect();
        let mean = shares.iter().sum::<f64>() / shares.len().max(1) as f64;
        !shares.is_empty()
            && (mean > self.t.dead_fraction || shares.iter().any(|&s| s > self.t.dead_fraction_severe))
    }

    fn no_gradient_at_top(&self) -> bool {
        self.hidden > 0 && self.layers[self.hidden - 1].grad_norm == Some(0.0)
    }

    fn gradient_ratio(&self) -> (Option<f64>, Option<f64>) {
        if self.hidden < 2 {
            return (None, None);
        }
        let ratio = self.relative_grad(0);
        let factor = ratio.map(|r| r.powf(1.0 / (self.hidden - 1) as f64));
        (ratio, factor)
    }

    /// Writes the model-level evidence and returns the remedies, ordered by that evidence.
    fn gather_evidence(
        &mut self,
        verdict: Verdict,
        ratio: Option<f64>,
        factor: Option<f64>,
        per_layer: &[(Verdict, Vec<String>)],
    ) -> Vec<Remedy> {
        let hidden = self.hidden;
        let saturated = self.worst("saturated", self.t.saturated_fraction, |l| l.saturated_fraction);
        let dead = if self.mostly_dead() {
            self.worst("dead", self.t.dead_fraction, |l| l.dead_fraction)
        } else {
            None
        };
        let non_finite: Vec<usize> =
            (0..per_layer.len()).filter(|&i| per_layer[i].0 == Verdict::NonFinite).collect();
        if let Some(&first) = non_finite.first() {
            self.evidence.push(format!(
                "{} of {} layers hold NaN or infinite values at step {}, the first from the input being \
                 layer {}; attach gradflow::hooks::NonFiniteDetector to find where they first appear",
                non_finite.len(),
                per_layer.len(),
                self.step,
                first + 1
            ));
        }
        if ratio == Some(0.0) {
            self.evidence.push(format!(
                "gradient norm ‖dL/dh‖ falls to 0 from layer {hidden} to layer 1: no gradient reaches the \
                 first hidden layer"
            ));
        } else if let (Some(r), Some(f)) = (ratio, factor) {
            let moves = if r < 1.0 { "falls" } else { "grows" };
            self.evidence.push(format!(
                "gradient norm ‖dL/dh‖ {moves} ×{} (10^{:.1}) from layer {hidden} to layer 1, about ×{f:.2} per layer",
                sci(r),
                r.log10(),
            ));
        } else if self.no_gradient_at_top() {
            self.evidence
                .push(format!("no gradient reaches the last hidden layer (layer {hidden}): ‖dL/dh‖ = 0"));
        }
        if let Some(evidence) = self.forward_scale() {
            self.evidence.push(evidence);
        }
        let steep_activation = self.small_derivative_activation();
        if matches!(verdict, Verdict::Vanishing | Verdict::Exploding) {
            self.derivative_evidence(&steep_activation);
            self.weight_ratio_evidence();
        }
        let shares =
            [("saturated", &saturated, self.t.saturated_fraction), ("dead", &dead, self.t.dead_fraction)];
        for (label, found, threshold) in shares {
            if let Some((count, text)) = found {
                self.evidence.push(format!(
                    "{count} of {hidden} hidden layers have more than {} of their units {label}; the most: {text}",
                    percent(threshold)
                ));
            }
        }

        use Remedy::*;
        let recurrent = self.layers.iter().any(|l| l.label.to_lowercase().contains("rnn"));
        let mut remedies: Vec<Remedy> = match verdict {
            Verdict::Healthy => vec![],
            Verdict::NonFinite => vec![LowerLearningRate, ClipGradients, Initialization],
            Verdict::Exploding if recurrent => vec![ClipGradients, GatedRecurrentCells, Initialization],
            Verdict::Exploding => vec![ClipGradients, Initialization, BatchNorm, LowerLearningRate],
            Verdict::Vanishing if recurrent => vec![GatedRecurrentCells, Initialization, ClipGradients],
            Verdict::Vanishing if dead.is_some() => {
                vec![LeakyRelu, Initialization, LowerLearningRate, BatchNorm]
            }
            Verdict::Vanishing if saturated.is_some() || steep_activation.is_some() => {
                vec![RectifierActivations, ResidualConnections, BatchNorm, Initialization]
            }
            // The activations pass the gradient on: the weights' scale shrinks it.
            Verdict::Vanishing if self.saturating_activations() => {
                vec![Initialization, ResidualConnections, BatchNorm, RectifierActivations]
            }
            Verdict::Vanishing => vec![Initialization, ResidualConnections, BatchNorm],
            Verdict::Saturated => vec![RectifierActivations, Initialization, BatchNorm],
            Verdict::Dead => vec![LeakyRelu, LowerLearningRate, Initialization],
            // Judged over training, not at one step (see `training`).
            Verdict::Unstable | Verdict::Stalled => vec![],
        };
        // Problems beyond the main one add their own remedies after it.
        if saturated.is_some() {
            remedies.extend([RectifierActivations, Initialization, BatchNorm]);
        }
        if dead.is_some() {
            remedies.extend([LeakyRelu, LowerLearningRate]);
        }
        let mut unique = Vec::with_capacity(remedies.len());
        for r in remedies {
            if !unique.contains(&r) {
                unique.push(r);
            }
        }
        unique
    }

    /// How many hidden layers have more than `threshold` of their units in state `what`, and the
    /// evidence for the one with the largest share.
    fn worst(
        &self,
        what: &str,
        threshold: f64,
        share: impl Fn(&HiddenLayer) -> Option<f64>,
    ) -> Option<(usize, String)> {
        let matching: Vec<(usize, f64)> = (0..self.hidden)
            .filter_map(|i| share(&self.layers[i]).filter(|&s| s > threshold).map(|s| (i, s)))
            .collect();
        let &(worst, s) = matching.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
        Some((matching.len(), units_text(worst, &self.layers[worst], s, what)))
    }

    /// Evidence when the forward signal shrinks or grows by more than the threshold from the
    /// first to the last hidden layer.
    fn forward_scale(&self) -> Option<String> {
        if self.hidden < 2 {
            return None;
        }
        let first = self.layers[0].activation_std?;
        let last = self.layers[self.hidden - 1].activation_std?;
        if first <= 0.0 {
            return None;
        }
        let r = last / first;
        let describe = |how: &str, cause: &str| {
            format!(
                "activation std {how} from {} at layer 1 to {} at layer {}: the forward signal {cause}",
                sci(first),
                sci(last),
                self.hidden
            )
        };
        if r < self.t.forward_shrink_ratio {
            Some(describe("falls", "shrinks, a sign of too small initial weights"))
        } else if r > 1.0 / self.t.forward_shrink_ratio {
            Some(describe("grows", "grows, a sign of too large initial weights"))
        } else {
            None
        }
    }

    /// True when the hidden layers use saturating activations (sigmoid, tanh).
    fn saturating_activations(&self) -> bool {
        self.layers[..self.hidden].iter().any(|l| l.activation_family == Some(ActivationFamily::Saturating))
    }

    /// How much of the per-layer change the activations explain (their mean derivative), and so
    /// how much is left to the weights.
    fn derivative_evidence(&mut self, steep: &Option<(String, f64)>) {
        let derivatives: Vec<f64> =
            self.layers[..self.hidden].iter().filter_map(|l| l.mean_derivative).collect();
        let name = self.layers[..self.hidden].iter().find_map(|l| l.activation.clone());
        match (name, derivatives.is_empty()) {
            (Some(name), false) => {
                let mean = derivatives.iter().sum::<f64>() / derivatives.len() as f64;
                let limit = match steep {
                    Some((_, max)) => format!(" (its derivative is at most {max})"),
                    None => String::new(),
                };
                let cause = if steep.is_some() || mean < 0.5 {
                    "the activation shrinks the gradient at every layer"
                } else {
                    "the rest of the change per layer comes from the weights' scale, i.e. the initialization"
                };
                self.evidence.push(format!(
                    "{name} units scale the gradient by ×{mean:.2} on average{limit}: {cause}"
                ));
            }
            _ => {
                if let Some((name, max)) = steep {
                    self.evidence.push(format!(
                        "the derivative of {name} is at most {max}: each {name} layer shrinks the gradient"
                    ));
                }
            }
        }
    }

    /// The hidden layers' saturating activation whose largest derivative is below 1 (sigmoid).
    fn small_derivative_activation(&self) -> Option<(String, f64)> {
        self.layers[..self.hidden].iter().find_map(|l| {
            let max = l.max_derivative.filter(|&m| m < 1.0)?;
            Some((l.activation.clone()?, max))
        })
    }

    /// Compares ‖dL/dW‖/‖W‖ at the first and last hidden layers.
    fn weight_ratio_evidence(&mut self) {
        if self.hidden < 2 {
            return;
        }
        let (Some(first), Some(last)) =
            (self.layers[0].grad_to_weight_ratio, self.layers[self.hidden - 1].grad_to_weight_ratio)
        else {
            return;
        };
        let spread = if first > 0.0 && last > 0.0 { (first / last).max(last / first) } else { f64::INFINITY };
        let note = if spread < 10.0 {
            "; weight-gradient norms alone would hide the problem, judge by ‖dL/dh‖"
        } else {
            ""
        };
        self.evidence.push(format!(
            "‖dL/dW‖/‖W‖ is {} at layer 1 and {} at layer {}{note}",
            sci(first),
            sci(last),
            self.hidden
        ));
    }
}
