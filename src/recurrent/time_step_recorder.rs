//! [`TimeStepRecorder`]: a hook that turns per-time-step events into profiles over time.

use std::collections::BTreeMap;

use crate::Float;
use crate::hooks::{Event, GateFunction, Hook, TimeStepEvent, TimeStepPass};

/// What [`TimeStepRecorder`] keeps for one recurrent layer (one path and stacked layer), from
/// the most recent forward and backward passes. Vectors are indexed by time step t.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeProfile {
    /// The gate names, in the order of `gate_saturation` and `gate_mean`.
    pub gate_names: Vec<&'static str>,
    /// ‖dL/dh_t‖ (Frobenius over batch and units) for every t.
    pub grad_hidden_norms: Vec<f64>,
    /// ‖dL/dc_t‖ for every t (LSTM; empty otherwise).
    pub grad_cell_norms: Vec<f64>,
    /// `[gate][t]`: the fraction of units (over batch and hidden) whose gate is saturated —
    /// derivative below 5% of its maximum, the crate's convention (σ: σ(1−σ) < 0.0125, i.e.
    /// σ < 0.0127 or σ > 0.9873; tanh: 1 − y² < 0.05, i.e. |y| > 0.975) — or, for a ReLU
    /// state, zero (inactive).
    pub gate_saturation: Vec<Vec<f64>>,
    /// `[gate][t]`: the mean activation.
    pub gate_mean: Vec<Vec<f64>>,
}

impl TimeProfile {
    /// ‖dL/dh‖ by time lag from the last step: entry k is ‖dL/dh_{T−1−k}‖. With the loss on the
    /// last step only, this is how much gradient survives k steps of backpropagation in time.
    pub fn grad_norms_by_lag(&self) -> Vec<f64> {
        self.grad_hidden_norms.iter().rev().copied().collect()
    }
}

/// A hook recording, for every recurrent layer in a network, the gradient norm and gate
/// statistics at every time step of the last pass.
///
/// ```
/// use gradflow::recurrent::{LstmConfig, Readout, SequenceLayer, TimeStepRecorder};
/// use gradflow::{Network, Sequential, Mode};
/// use ndarray::Array2;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut model = Sequential::<f64>::new();
/// model.push(SequenceLayer::new(LstmConfig::new(1, 4).build(&mut rng)?, Readout::LastStep));
/// let mut net = Network::new(model);
/// let recorder = net.attach_hook(TimeStepRecorder::new());
/// let x = Array2::from_elem((2, 12), 0.3); // batch 2, 12 steps of 1 feature
/// net.forward(x.view(), Mode::Train)?;
/// net.backward(Array2::ones((2, 4)).view())?;
/// let profile = net.hook(recorder).unwrap().profile("0", 0).unwrap();
/// assert_eq!(profile.grad_hidden_norms.len(), 12);
/// assert_eq!(profile.gate_names, ["i", "f", "g", "o"]);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct TimeStepRecorder {
    profiles: BTreeMap<(String, usize), TimeProfile>,
}

impl TimeStepRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The profile of the recurrent layer at `path` (as hooks report it, e.g. `"0.rnn"`),
    /// stacked layer `stack_index`.
    pub fn profile(&self, path: &str, stack_index: usize) -> Option<&TimeProfile> {
        self.profiles.get(&(path.to_string(), stack_index))
    }

    /// Every recorded profile with its path and stacked-layer index.
    pub fn profiles(&self) -> impl Iterator<Item = (&str, usize, &TimeProfile)> {
        self.profiles.iter().map(|((path, l), p)| (path.as_str(), *l, p))
    }

    /// Forgets everything recorded.
    pub fn clear(&mut self) {
        self.profiles.clear();
    }

    fn record<F: Float>(&mut self, e: &TimeStepEvent<'_, F>) {
        let key = (e.path.to_string(), e.stack_index);
        let profile = self.profiles.entry(key).or_default();
        let (t, t_len) = (e.time, e.time_steps);
        match e.pass {
            TimeStepPass::Forward => {
                profile.gate_names = e.gates.iter().map(|g| g.name).collect();
                profile.gate_saturation.resize(e.gates.len(), Vec::new());
                profile.gate_mean.resize(e.gates.len(), Vec::new());
                for (k, gate) in e.gates.iter().enumerate() {
                    let Some(values) = e.gate(gate.name) else { continue };
                    let n = values.len().max(1) as f64;
                    let (saturated, sum) = F::gate_saturation(values, gate.function);
                    let mean = sum / n;
                    set_at(&mut profile.gate_saturation[k], t, t_len, saturated as f64 / n);
                    set_at(&mut profile.gate_mean[k], t, t_len, mean);
                }
            }
            TimeStepPass::Backward => {
                if let Some(g) = &e.grad_hidden {
                    set_at(&mut profile.grad_hidden_norms, t, t_len, norm(g));
                }
                if let Some(g) = &e.grad_cell {
                    set_at(&mut profile.grad_cell_norms, t, t_len, norm(g));
                }
            }
        }
    }
}

impl<F: Float> Hook<F> for TimeStepRecorder {
    fn on_event(&mut self, event: &mut Event<'_, F>) {
        if let Event::TimeStep(e) = event {
            self.record(e);
        }
    }
}

/// √(Σ x²), summed in `f64` from the first entry to the last.
fn norm<F: Float>(values: &ndarray::ArrayView2<'_, F>) -> f64 {
    match values.as_slice() {
        Some(values) => F::sum_of_squares_f64(values).sqrt(),
        None => values.iter().map(|v| v.as_f64() * v.as_f64()).sum::<f64>().sqrt(),
    }
}

/// The number of saturated entries of one gate's activations ([`is_saturated`]) and their sum in
/// `f64`, in the order of the entries. A kernel ([`crate::kernels`]).
pub(crate) fn gate_saturation<F: Float>(
    values: ndarray::ArrayView2<'_, F>,
    function: GateFunction,
) -> (usize, f64) {
    let saturated = values.iter().filter(|v| is_saturated(function, v.as_f64())).count();
    (saturated, values.iter().map(|v| v.as_f64()).sum::<f64>())
}

fn set_at(series: &mut Vec<f64>, t: usize, len: usize, value: f64) {
    series.resize(len, 0.0);
    series[t] = value;
}

/// Derivative below 5% of its maximum (σ' ≤ 1/4, tanh' ≤ 1), or an inactive ReLU.
fn is_saturated(function: GateFunction, y: f64) -> bool {
    match function {
        GateFunction::Sigmoid => y * (1.0 - y) < 0.05 * 0.25,
        GateFunction::Tanh => 1.0 - y * y < 0.05,
        GateFunction::Relu => y <= 0.0,
    }
}
