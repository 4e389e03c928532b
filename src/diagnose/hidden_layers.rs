//! [`HiddenLayer`]: a recording seen as the network's layers in the textbook sense —
//! "Linear + tanh" is one hidden layer, not two — with the numbers that tell whether the
//! gradient flows through them.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::activation::ActivationFamily;
use crate::hooks::{LayerRecord, LayerStepRecord, Recording, is_transparent, layer_numbers};

/// One hidden layer (or the output layer) of a recorded network at one step.
///
/// # How layers are grouped
/// Only the top-level layers are grouped: the network's direct children (paths without a dot;
/// the children of a nested `Sequential` such as `blocks.0`, `blocks.1` count as direct children),
/// or, in a recording of a PyTorch model, every recorded module not nested in another recorded
/// one (`layers.3`, `fc1`). They are grouped in network order, by their layer number ([`crate::hooks::layer_numbers`], the number hook events carry):
/// - an activation child closes the open group ("Linear+tanh"), or forms a group of its own
///   when no group is open;
/// - normalization, dropout, pooling and flattening children join the open group (or the
///   previous one), so "Linear + BatchNorm1d + relu" is one hidden layer;
/// - any other child starts a new group ("Linear", a residual block, …).
///
/// The output of a group is the output of its last child: its gradient `‖dL/dh‖` is that
/// child's `grad_output` (for "Linear+tanh", the gradient with respect to the tanh output h).
/// The last group is the network's output layer (`is_output`); the vanishing and exploding
/// ratios compare the first and the last *hidden* layer, because the output layer's gradient is
/// the loss gradient itself, with a different width and scale.
///
/// Nested layers (inside residual blocks) count toward their top-level group: their weights go
/// into the weight norms and their activations into the saturation and dead-unit shares
/// (the largest share among them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HiddenLayer {
    /// Position from the input: 0 is the layer nearest the input. Reports print `index + 1`, its
    /// layer number (the number hook events carry in [`crate::hooks::Event::layer_number`]).
    pub index: usize,
    /// The kinds of the group's children joined by `+`, e.g. `"Linear+tanh"`.
    pub label: String,
    /// The paths of the group's children, e.g. `["0", "1"]`.
    pub paths: Vec<String>,
    /// True for the last group: the network's output layer.
    pub is_output: bool,
    /// ‖dL/dh‖: the L2 norm of the gradient with respect to the group's output (the batch's
    /// gradient, not divided by the batch size). `None` if no backward pass was recorded.
    pub grad_norm: Option<f64>,
    /// ‖dL/dW‖ over the group's weights (parameters whose name contains `weight`; all
    /// parameters when none does): √(Σ‖dL/dWᵢ‖²).
    pub weight_grad_norm: Option<f64>,
    /// ‖dL/dW‖ / ‖W‖ over the same weights.
    pub grad_to_weight_ratio: Option<f64>,
    /// ‖ΔW‖ / ‖W‖ of the optimizer step that followed this step, over the same weights.
    pub update_to_weight_ratio: Option<f64>,
    /// Standard deviation of the group's output over the batch and units: the forward signal's
    /// scale.
    pub activation_std: Option<f64>,
    /// The activation applied in the group (the first one, for nested groups), e.g. `"tanh"`.
    pub activation: Option<String>,
    /// The largest share of saturated units among the group's saturating activations.
    pub saturated_fraction: Option<f64>,
    /// The largest share of dead units among the group's rectifier activations (over images,
    /// of dead channels: [`crate::hooks::ChannelStats`]).
    pub dead_fraction: Option<f64>,
    /// The activation's family (saturating, rectifier, linear).
    pub activation_family: Option<ActivationFamily>,
    /// The activation's largest derivative (e.g. 0.25 for sigmoid).
    pub max_derivative: Option<f64>,
    /// The mean |f'| of the group's activation over the batch: the average factor by which it
    /// scales the gradient (the smallest among the group's activations).
    pub mean_derivative: Option<f64>,
    /// NaN and infinite entries seen in the group's outputs and gradients at this step.
    pub non_finite_count: u64,
    /// The mean value of the gates computed inside the group ([`crate::hooks::GateStats`]), when
    /// it has any: for a [`crate::Highway`] layer, the average transform gate `T` — near 0 the
    /// layer carries its input and its gradient through unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_mean: Option<f64>,
}

/// Groups the top-level layer records (indices into `recording.layers`) by layer number, in
/// network order. The numbers come from the recording when the recorder was attached to a
/// [`crate::Network`] (which numbers every event), and are worked out from the kinds otherwise,
/// by the same rule ([`crate::hooks::layer_numbers`]).
///
/// The top-level records are those not nested in another recorded layer: for a gradflow network
/// (every layer recorded, containers included) its direct children, and the children of nested
/// `Sequential`s, which are looked through as layer numbers are; for a recording of a PyTorch
/// model, the modules the recorder treats as layers (`layers.3`, `fc1`, a residual block).
/// Network order is the numeric order of the paths when every top-level path is a number (a
/// `Sequential`'s children, even when a recorder attached between a forward and a backward pass
/// saw them first in backward order), and otherwise the order of the records, which is the order
/// in which the layers first ran forward.
fn groups(recording: &Recording) -> Vec<Vec<usize>> {
    let layers = &recording.layers;
    // Nested `Sequential`s (`blocks`) are looked through: their children are top-level layers.
    let grouping = |i: usize| is_transparent(&layers[i].kind);
    let paths: HashSet<&str> =
        (0..layers.len()).filter(|&i| !grouping(i)).map(|i| layers[i].path.as_str()).collect();
    let mut top: Vec<usize> =
        (0..layers.len()).filter(|&i| !grouping(i) && !is_nested(&paths, &layers[i].path)).collect();
    let numeric = top.iter().all(|&i| layers[i].path.parse::<u64>().is_ok());
    let position =
        |i: usize| if numeric { (layers[i].path.parse::<u64>().unwrap_or(u64::MAX), i) } else { (0, i) };
    let numbers: Vec<usize> = if top.iter().all(|&i| layers[i].layer_number.is_some()) {
        top.sort_by_key(|&i| (layers[i].layer_number, position(i)));
        top.iter().filter_map(|&i| layers[i].layer_number).collect()
    } else {
        top.sort_by_key(|&i| position(i));
        let kinds = top.iter().map(|&i| (layers[i].kind.as_str(), layers[i].activation.is_some()));
        layer_numbers(kinds)
    };
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut last = None;
    for (&i, &number) in top.iter().zip(&numbers) {
        match groups.last_mut() {
            Some(group) if last == Some(number) => group.push(i),
            _ => groups.push(vec![i]),
        }
        last = Some(number);
    }
    groups
}

/// Whether `path` lies inside another recorded layer (`"3.branch.1"` inside `"3"`).
fn is_nested(paths: &HashSet<&str>, path: &str) -> bool {
    path.match_indices('.').any(|(dot, _)| paths.contains(&path[..dot]))
}

fn within<'a>(recording: &'a Recording, top: &'a LayerRecord) -> impl Iterator<Item = &'a LayerRecord> {
    recording.layers.iter().filter(move |l| {
        l.path == top.path
            || (l.path.starts_with(top.path.as_str()) && l.path[top.path.len()..].starts_with('.'))
    })
}

fn non_finite(r: &LayerStepRecord) -> u64 {
    let tensors = [r.grad_output, r.grad_input, r.activation.map(|a| a.output)];
    tensors.iter().flatten().map(|t| t.non_finite_count).sum::<u64>()
        + r.params.iter().map(|p| p.grad.non_finite_count).sum::<u64>()
}

impl Recording {
    /// The network's hidden layers and output layer at `step`, from the input to the output
    /// (see [`HiddenLayer`] for how layers are grouped). Quantities not recorded at that step
    /// are `None`.
    ///
    /// ```
    /// use gradflow::{Network, Sequential, Mode};
    /// use gradflow::activation::Tanh;
    /// use gradflow::hooks::Recorder;
    /// use ndarray::Array2;
    /// use rand::SeedableRng;
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let model = Sequential::<f32>::builder(8).repeat(3, 16, Tanh).linear(2).build(&mut rng)?;
    /// let mut net = Network::new(model);
    /// let (_, recorder) = net.with_hook(Recorder::default(), |net| {
    ///     net.forward(Array2::ones((4, 8)).view(), Mode::Train)?;
    ///     net.backward(Array2::ones((4, 2)).view())
    /// });
    /// let layers = recorder.recording().hidden_layers(0);
    /// let labels: Vec<&str> = layers.iter().map(|l| l.label.as_str()).collect();
    /// assert_eq!(labels, ["Linear+tanh", "Linear+tanh", "Linear+tanh", "Linear"]);
    /// assert!(layers[3].is_output && !layers[2].is_output);
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    pub fn hidden_layers(&self, step: u64) -> Vec<HiddenLayer> {
        let groups = groups(self);
        let count = groups.len();
        groups
            .into_iter()
            .enumerate()
            .map(|(index, members)| {
                let tops: Vec<&LayerRecord> = members.iter().map(|&i| &self.layers[i]).collect();
                let last = tops.last().and_then(|l| l.at_step(step));
                let mut layer = HiddenLayer {
                    index,
                    label: tops.iter().map(|l| l.kind.as_str()).collect::<Vec<_>>().join("+"),
                    paths: tops.iter().map(|l| l.path.clone()).collect(),
                    is_output: count > 1 && index + 1 == count,
                    grad_norm: last.and_then(|r| r.grad_output).map(|g| g.l2_norm),
                    weight_grad_norm: None,
                    grad_to_weight_ratio: None,
                    update_to_weight_ratio: None,
                    activation_std: last.and_then(|r| r.activation).map(|a| a.output.std),
                    activation: None,
                    saturated_fraction: None,
                    dead_fraction: None,
                    activation_family: None,
                    max_derivative: None,
                    mean_derivative: None,
                    non_finite_count: 0,
                    gate_mean: None,
                };
                let all: Vec<&LayerRecord> = tops.iter().flat_map(|top| within(self, top)).collect();
                for l in &all {
                    if let Some(info) = &l.activation {
                        layer.activation.get_or_insert_with(|| info.name.clone());
                        layer.activation_family.get_or_insert(info.family);
                        layer.max_derivative.get_or_insert(info.max_derivative);
                    }
                    let Some(r) = l.at_step(step) else { continue };
                    layer.non_finite_count += non_finite(r);
                    if let Some(a) = r.activation {
                        let pick =
                            |old: Option<f64>, new: Option<f64>, f: fn(f64, f64) -> f64| match (old, new) {
                                (Some(o), Some(n)) => Some(f(o, n)),
                                (o, n) => o.or(n),
                            };
                        layer.saturated_fraction =
                            pick(layer.saturated_fraction, a.saturated_fraction, f64::max);
                        // Over images, a unit is a channel (see hooks::ChannelStats).
                        let dead = a.channels.and_then(|c| c.dead_fraction).or(a.dead_fraction);
                        layer.dead_fraction = pick(layer.dead_fraction, dead, f64::max);
                        layer.mean_derivative = pick(layer.mean_derivative, a.mean_derivative, f64::min);
                    }
                }
                weight_norms(&all, step, &mut layer);
                layer.gate_mean = gate_mean(&all, step);
                layer
            })
            .collect()
    }
}

/// The mean of the gate values recorded in `all` at `step`, over all their entries.
fn gate_mean(all: &[&LayerRecord], step: u64) -> Option<f64> {
    let gates = all.iter().filter_map(|l| l.at_step(step)).flat_map(|r| &r.gates);
    let (sum, count) = gates
        .map(|g| &g.value)
        .filter(|v| v.non_finite_count == 0)
        .fold((0.0, 0u64), |(sum, count), v| (sum + v.mean * v.count as f64, count + v.count));
    (count > 0).then(|| sum / count as f64)
}

/// Fills the weight-gradient norm and the gradient and update ratios of `layer`.
fn weight_norms(all: &[&LayerRecord], step: u64, layer: &mut HiddenLayer) {
    let params: Vec<_> = all.iter().filter_map(|l| l.at_step(step)).flat_map(|r| &r.params).collect();
    if params.is_empty() {
        return;
    }
    let has_weights = params.iter().any(|p| p.name.contains("weight"));
    let weights = params.iter().filter(|p| !has_weights || p.name.contains("weight"));
    let (mut grad_sq, mut value_sq, mut update_sq, mut updates_known) = (0.0, 0.0, 0.0, true);
    for p in weights {
        grad_sq += p.grad.l2_norm * p.grad.l2_norm;
        value_sq += p.value_norm * p.value_norm;
        match p.update_to_value_ratio {
            Some(r) => update_sq += (r * p.value_norm).powi(2),
            None => updates_known = false,
        }
    }
    layer.weight_grad_norm = Some(grad_sq.sqrt());
    if value_sq > 0.0 {
        layer.grad_to_weight_ratio = Some((grad_sq / value_sq).sqrt());
        layer.update_to_weight_ratio = updates_known.then(|| (update_sq / value_sq).sqrt());
    }
}
