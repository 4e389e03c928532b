//! [`predict`] and [`predict_model`]: the per-layer gradient factors mean-field theory predicts
//! for a real model, from its weights' variances and its activations.
//!
//! What is covered and how well it agrees with a measurement: see the [`crate::theory`] docs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::MeanField;
use super::groups::{children, group};
use crate::activation::{Activation, Identity, by_name};
use crate::{Error, Float, Layer, Result};

/// A layer as mean-field theory sees it: what [`predict`] needs to know about it. Build these
/// from a [`crate::hooks::Recording`] (weights' norms and activation names) or by hand;
/// [`describe_model`] builds them from a model.
#[derive(Debug, Clone)]
pub enum DescribedLayer {
    /// A fully connected layer: `σ_w² = fan_in·E[W²]`, `σ_b² = E[b²]` (0 without a bias).
    Linear {
        /// Input features of the layer.
        fan_in: usize,
        /// `σ_w²`.
        weight_variance: f64,
        /// `σ_b²`.
        bias_variance: f64,
    },
    /// An activation layer.
    Activation(Arc<dyn Activation<f64>>),
    /// A layer the theory does not cover, with the reason.
    NotCovered {
        /// Why not, e.g. "batch normalization couples the examples of a batch".
        reason: String,
    },
}

/// One direct child of a model, described for [`predict`].
#[derive(Debug, Clone)]
pub struct LayerDescriptor {
    /// The child's path, e.g. `"3"`.
    pub path: String,
    /// Its kind, e.g. `"Linear"`, `"tanh"`, `"BatchNorm1d"` (decides the grouping into hidden
    /// layers, as in the diagnosis).
    pub kind: String,
    /// What the theory knows of it.
    pub layer: DescribedLayer,
}

impl LayerDescriptor {
    /// A `Linear` layer with the given fan-in and variances.
    pub fn linear(path: impl Into<String>, fan_in: usize, weight_variance: f64, bias_variance: f64) -> Self {
        LayerDescriptor {
            path: path.into(),
            kind: "Linear".into(),
            layer: DescribedLayer::Linear { fan_in, weight_variance, bias_variance },
        }
    }

    /// A `Linear` layer from what a recording keeps: the weight's L2 norm and number of
    /// entries (`σ_w² = fan_in·‖W‖²/count`, with `fan_in = count / out_features`), and the
    /// bias's, if any (`σ_b² = ‖b‖²/count`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a count is zero or `out_features` does not divide the
    /// weight count.
    pub fn linear_from_norms(
        path: impl Into<String>,
        out_features: usize,
        weight_norm: f64,
        weight_count: u64,
        bias: Option<(f64, u64)>,
    ) -> Result<Self> {
        let path = path.into();
        let out = out_features as u64;
        if out == 0 || weight_count == 0 || !weight_count.is_multiple_of(out) {
            return Err(Error::config(
                format!("LayerDescriptor {path}"),
                "weight_count",
                format!("{weight_count} weights do not make {out_features} rows"),
            ));
        }
        let fan_in = (weight_count / out) as usize;
        let weight_variance = fan_in as f64 * weight_norm * weight_norm / weight_count as f64;
        let bias_variance = match bias {
            Some((_, 0)) => {
                return Err(Error::config(format!("LayerDescriptor {path}"), "bias_count", "is 0"));
            }
            Some((norm, count)) => norm * norm / count as f64,
            None => 0.0,
        };
        Ok(Self::linear(path, fan_in, weight_variance, bias_variance))
    }

    /// An activation layer.
    pub fn activation(path: impl Into<String>, activation: Arc<dyn Activation<f64>>) -> Self {
        LayerDescriptor {
            path: path.into(),
            kind: activation.name().into(),
            layer: DescribedLayer::Activation(activation),
        }
    }

    /// An activation layer by name (see [`crate::activation::by_name`]; PyTorch's default
    /// parameters).
    ///
    /// # Errors
    /// As [`crate::activation::by_name`].
    pub fn activation_named(path: impl Into<String>, name: &str) -> Result<Self> {
        Ok(Self::activation(path, by_name::<f64>(name)?))
    }

    /// Any other layer by its kind (e.g. `"BatchNorm1d"`, `"Residual"`, as a recording names
    /// it): not covered, with the reason gradflow gives for that kind.
    pub fn other(path: impl Into<String>, kind: impl Into<String>) -> Self {
        let kind = kind.into();
        let reason = not_covered_reason(&kind);
        LayerDescriptor { path: path.into(), kind, layer: DescribedLayer::NotCovered { reason } }
    }

    /// A layer the theory does not cover, with your reason.
    pub fn not_covered(path: impl Into<String>, kind: impl Into<String>, reason: impl Into<String>) -> Self {
        LayerDescriptor {
            path: path.into(),
            kind: kind.into(),
            layer: DescribedLayer::NotCovered { reason: reason.into() },
        }
    }
}

/// The scale of the signal entering the first hidden layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum InputScale {
    /// The mean of `x²` over the input features and examples (1 for standardized data; about
    /// 0.19 for gradflow's embedded digits, whose pixels are in [0, 1]).
    SecondMoment(f64),
    /// The variance `q¹` of the first hidden layer's pre-activations (e.g. measured).
    FirstPreactivationVariance(f64),
}

/// What the theory predicts for one covered hidden layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LayerPrediction {
    /// `σ_w²` of the layer's weights.
    pub weight_variance: f64,
    /// `σ_b²` of its bias.
    pub bias_variance: f64,
    /// `q`, the variance of its pre-activations (over random weights; over units in a wide
    /// layer).
    pub q: f64,
    /// The standard deviation of its output over units and examples (what
    /// [`crate::diagnose::HiddenLayer::activation_std`] measures).
    pub output_std: f64,
    /// `χ = σ_w²·E[φ′(√q·z)²]`.
    pub chi: f64,
    /// `√χ`: the predicted `‖∂L/∂h_{l−1}‖ / ‖∂L/∂h_l‖` — how the gradient norm changes from this
    /// layer's output to the previous layer's.
    pub gradient_factor: f64,
}

/// A hidden layer (or the output layer) with its prediction, or the reason there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictedLayer {
    /// Position from the input (0 = nearest the input), as in the diagnosis.
    pub index: usize,
    /// The kinds of its children joined by `+`, e.g. `"Linear+tanh"`.
    pub label: String,
    /// The paths of its children.
    pub paths: Vec<String>,
    /// True for the last layer: the network's output layer.
    pub is_output: bool,
    /// The activation's description (`"identity"` for a `Linear` alone), when covered.
    pub activation: Option<String>,
    /// The prediction, or `None` when the layer is not covered.
    pub prediction: Option<LayerPrediction>,
    /// Why the layer is not covered (`None` when it is).
    pub not_covered: Option<String>,
}

/// The prediction for a whole model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Every hidden layer and the output layer, from the input.
    pub layers: Vec<PredictedLayer>,
    /// The predicted `‖∂L/∂h‖` at the first hidden layer divided by the last hidden layer's —
    /// the product of the gradient factors of hidden layers 2 … last — comparable with
    /// [`crate::diagnose::Diagnosis::gradient_ratio`]. `None` when one of them is not covered or
    /// there are fewer than two hidden layers; 0 or ∞ when it is beyond the range of `f64` (the
    /// per-layer factor is still exact: the factors are multiplied as logarithms).
    pub gradient_ratio: Option<f64>,
    /// Its geometric mean per layer, comparable with
    /// [`crate::diagnose::Diagnosis::per_layer_factor`].
    pub per_layer_factor: Option<f64>,
    /// `"path: reason"` for the first layer not covered, if any.
    pub first_not_covered: Option<String>,
}

/// A child as seen by the prediction, borrowing its activation.
enum Seen<'a, F: Float> {
    Linear { weight_variance: f64, bias_variance: f64 },
    Activation(&'a dyn Activation<F>),
    NotCovered(String),
}

struct SeenLayer<'a, F: Float> {
    path: String,
    kind: String,
    seen: Seen<'a, F>,
}

/// True when the mean of `values` is more than 4 standard errors away from 0 (and not 0).
fn mean_is_not_zero(values: &[f64]) -> Option<(f64, f64)> {
    let n = values.len() as f64;
    if n == 0.0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n;
    let second = values.iter().map(|v| v * v).sum::<f64>() / n;
    let std = (second - mean * mean).max(0.0).sqrt();
    (mean != 0.0 && mean.abs() > 4.0 * std / n.sqrt()).then_some((mean, second.sqrt()))
}

/// How a layer after one not covered says why it is not covered either (the comparison in
/// [`crate::diagnose::TheoryComparison`] tells these apart from the layers with a reason of their own).
pub(crate) const UNKNOWN_INPUT: &str = "the variance of its input is unknown";

fn not_covered_reason(kind: &str) -> String {
    match kind {
        k if k.contains("BatchNorm") => {
            "batch normalization couples the examples of a batch; its mean-field theory \
             (Yang et al. 2019) is not computed by gradflow"
                .into()
        }
        k if k.contains("Norm") => format!("{k} rescales each example by its own statistics; not covered"),
        "Residual" => {
            "residual blocks (gradient factor √(1 + χ_branch), Yang & Schoenholz 2017) are not yet \
                       assembled from their branch"
                .into()
        }
        "Highway" => "highway gates are not covered by the mean-field prediction".into(),
        other => format!("no mean-field statement for a {other} layer"),
    }
}

/// How the theory sees a model's direct child.
fn see<'a, F: Float>(path: String, layer: &'a dyn Layer<F>) -> SeenLayer<'a, F> {
    let kind = layer.kind().to_string();
    if let Some(activation) = layer.as_activation() {
        return SeenLayer { path, kind, seen: Seen::Activation(activation) };
    }
    if kind != "Linear" {
        let reason = not_covered_reason(&kind);
        return SeenLayer { path, kind, seen: Seen::NotCovered(reason) };
    }
    let (mut weight, mut bias, mut fan_in) = (Vec::new(), Vec::new(), 0);
    layer.visit_parameters(&mut |p| match p.name {
        "weight" => {
            fan_in = p.value.shape().get(1).copied().unwrap_or(0);
            weight = p.value.iter().map(|v| v.as_f64()).collect();
        }
        "bias" => bias = p.value.iter().map(|v| v.as_f64()).collect(),
        _ => {}
    });
    for (name, values) in [("weights", &weight), ("biases", &bias)] {
        if let Some((mean, rms)) = mean_is_not_zero(values) {
            let reason = format!(
                "its {name} have mean {mean:.3e} (root mean square {rms:.3e}): the theory assumes independent \
                 zero-mean draws"
            );
            return SeenLayer { path, kind, seen: Seen::NotCovered(reason) };
        }
    }
    let moment =
        |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64 };
    let seen =
        Seen::Linear { weight_variance: fan_in as f64 * moment(&weight), bias_variance: moment(&bias) };
    SeenLayer { path, kind, seen }
}

/// Describes `model`'s direct children for [`predict`] (a model without children is described
/// as one layer). Activations are evaluated through `f64` (exactly for an `f64` model); they
/// are looked up by name, so a configured activation of an `f32` model (e.g. a LeakyReLU with
/// slope 0.2) loses its configuration — [`predict_model`] keeps it.
///
/// # Errors
/// [`Error::InvalidConfig`] when an `f32` model's activation has a name
/// [`crate::activation::by_name`] does not know.
pub fn describe_model<F: Float>(model: &dyn Layer<F>) -> Result<Vec<LayerDescriptor>> {
    children(model)
        .into_iter()
        .map(|(path, layer)| {
            let seen = see(path, layer);
            let layer = match seen.seen {
                Seen::Linear { weight_variance, bias_variance } => {
                    let fan_in = {
                        let mut f = 0;
                        layer.visit_parameters(&mut |p| {
                            if p.name == "weight" {
                                f = p.value.shape().get(1).copied().unwrap_or(0);
                            }
                        });
                        f
                    };
                    DescribedLayer::Linear { fan_in, weight_variance, bias_variance }
                }
                Seen::Activation(a) => DescribedLayer::Activation(by_name::<f64>(a.name())?),
                Seen::NotCovered(reason) => DescribedLayer::NotCovered { reason },
            };
            Ok(LayerDescriptor { path: seen.path, kind: seen.kind, layer })
        })
        .collect()
}

/// The prediction for described layers (see [what the prediction covers](crate::theory#what-the-prediction-covers)).
///
/// ```
/// use gradflow::theory::{predict, InputScale, LayerDescriptor};
///
/// // Two hidden layers Linear(σ_w² = 2) + ReLU and a linear output layer: ReLU with He's
/// // variance keeps the gradient norm (factor √(2·½) = 1 per layer).
/// let layers = vec![
///     LayerDescriptor::linear("0", 64, 2.0, 0.0),
///     LayerDescriptor::activation_named("1", "relu")?,
///     LayerDescriptor::linear("2", 64, 2.0, 0.0),
///     LayerDescriptor::activation_named("3", "relu")?,
///     LayerDescriptor::linear("4", 64, 1.0, 0.0),
/// ];
/// let prediction = predict(&layers, InputScale::SecondMoment(1.0))?;
/// assert_eq!(prediction.layers.len(), 3);
/// assert!((prediction.gradient_ratio.unwrap() - 1.0).abs() < 1e-10);
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] for a negative or non-finite input scale or variance;
/// [`Error::NonFinite`] when an activation's expectations diverge, or when the signal's
/// variance grows beyond the range of `f64` (e.g. hundreds of ReLU layers with `σ_w²` far above
/// 2). Both name the hidden layer (number and path) where it happened.
pub fn predict(layers: &[LayerDescriptor], input: InputScale) -> Result<Prediction> {
    let seen: Vec<SeenLayer<'_, f64>> = layers
        .iter()
        .map(|d| SeenLayer {
            path: d.path.clone(),
            kind: d.kind.clone(),
            seen: match &d.layer {
                DescribedLayer::Linear { weight_variance, bias_variance, .. } => {
                    Seen::Linear { weight_variance: *weight_variance, bias_variance: *bias_variance }
                }
                DescribedLayer::Activation(a) => Seen::Activation(a.as_ref()),
                DescribedLayer::NotCovered { reason } => Seen::NotCovered(reason.clone()),
            },
        })
        .collect();
    predict_seen(&seen, input)
}

/// The prediction for `model`'s direct children, read from its weights and activations (see
/// [what the prediction covers](crate::theory#what-the-prediction-covers)). Activations are used as they are, evaluated
/// in `F` (so an `f32` model's prediction is accurate to about 10⁻⁶).
///
/// ```
/// use gradflow::Sequential;
/// use gradflow::activation::Tanh;
/// use gradflow::init::LinearDefault;
/// use gradflow::theory::{predict_model, InputScale};
/// use rand::SeedableRng;
///
/// // PyTorch's default init U(±1/√fan_in) has σ_w² = 1/3: with tanh the gradient norm
/// // shrinks by about √(1/3) ≈ 0.58 per layer.
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let model = Sequential::<f32>::builder(256).init(LinearDefault).repeat(10, 256, Tanh).linear(10)
///     .build(&mut rng)?;
/// let prediction = predict_model(&model, InputScale::SecondMoment(1.0))?;
/// let factor = prediction.per_layer_factor.unwrap();
/// assert!((factor - 0.577).abs() < 0.02, "{factor}");
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// As [`predict`].
pub fn predict_model<F: Float>(model: &dyn Layer<F>, input: InputScale) -> Result<Prediction> {
    let seen: Vec<SeenLayer<'_, F>> =
        children(model).into_iter().map(|(path, layer)| see(path, layer)).collect();
    predict_seen(&seen, input)
}

fn predict_seen<F: Float>(layers: &[SeenLayer<'_, F>], input: InputScale) -> Result<Prediction> {
    let (scale, field) = match input {
        InputScale::SecondMoment(m) => (m, "input second moment"),
        InputScale::FirstPreactivationVariance(q) => (q, "first pre-activation variance"),
    };
    if !(scale.is_finite() && scale >= 0.0) {
        return Err(Error::config(
            "theory::predict",
            "input",
            format!("the {field} must be finite and ≥ 0, got {scale}"),
        ));
    }
    let kinds: Vec<(&str, bool)> =
        layers.iter().map(|l| (l.kind.as_str(), matches!(l.seen, Seen::Activation(_)))).collect();
    let groups = group(&kinds);
    let count = groups.len();
    let identity = Identity;
    // The second moment of the current layer's input, while it is known.
    let mut input_moment = Some(scale);
    let mut first_not_covered = None;
    let mut predicted = Vec::with_capacity(count);
    for (index, range) in groups.into_iter().enumerate() {
        let members = &layers[range];
        let label = members.iter().map(|l| l.kind.as_str()).collect::<Vec<_>>().join("+");
        let paths: Vec<String> = members.iter().map(|l| l.path.clone()).collect();
        let mut layer = PredictedLayer {
            index,
            label,
            paths,
            is_output: index + 1 == count,
            activation: None,
            prediction: None,
            not_covered: None,
        };
        let shape = match members {
            [SeenLayer { seen: Seen::Linear { weight_variance, bias_variance }, .. }] => {
                Ok((*weight_variance, *bias_variance, &identity as &dyn Activation<F>))
            }
            [
                SeenLayer { seen: Seen::Linear { weight_variance, bias_variance }, .. },
                SeenLayer { seen: Seen::Activation(a), .. },
            ] => Ok((*weight_variance, *bias_variance, *a)),
            _ => Err(members
                .iter()
                .find_map(|l| match &l.seen {
                    Seen::NotCovered(reason) => Some(format!("{}: {reason}", l.path)),
                    _ => None,
                })
                .unwrap_or_else(|| {
                    format!("{}: only Linear or Linear + activation is covered", members[0].path)
                })),
        };
        match (shape, input_moment) {
            (Ok((weight_variance, bias_variance, activation)), Some(moment)) => {
                let at = |e| in_layer(e, index, &layer.paths[0]);
                let field = MeanField::new_in(activation, weight_variance, bias_variance).map_err(at)?;
                let q = match (index, input) {
                    (0, InputScale::FirstPreactivationVariance(q)) => q,
                    _ => weight_variance * moment + bias_variance,
                };
                if !q.is_finite() {
                    return Err(Error::NonFinite {
                        location: format!("theory::predict, layer {} (path {})", index + 1, layer.paths[0]),
                        detail: format!(
                            "the pre-activation variance grows beyond the f64 range (σ_w² = {weight_variance}, input \
                             second moment {moment}): the signal explodes before this layer"
                        ),
                    });
                }
                let (mean, second) = field.output_moments(q).map_err(at)?;
                let chi = field.gradient_factor(q).map_err(at)?;
                layer.activation = Some(activation.describe());
                layer.prediction = Some(LayerPrediction {
                    weight_variance,
                    bias_variance,
                    q,
                    output_std: (second - mean * mean).max(0.0).sqrt(),
                    chi,
                    gradient_factor: chi.sqrt(),
                });
                input_moment = Some(second);
            }
            (Err(reason), _) => {
                layer.not_covered = Some(reason);
                input_moment = None;
            }
            (Ok(_), None) => {
                let after = first_not_covered.clone().unwrap_or_default();
                layer.not_covered = Some(format!(
                    "{}: {UNKNOWN_INPUT} (after the layer not covered, {after})",
                    layer.paths[0]
                ));
            }
        }
        if first_not_covered.is_none() {
            first_not_covered = layer.not_covered.clone();
        }
        predicted.push(layer);
    }
    let hidden = count.saturating_sub(1);
    // Summed in logarithms, so that the per-layer factor of a very deep network stays right
    // where the product itself leaves the f64 range (the ratio is then 0 or ∞).
    let log_ratio = if hidden >= 2 {
        predicted[1..hidden].iter().map(|l| l.prediction.map(|p| p.gradient_factor.ln())).sum::<Option<f64>>()
    } else {
        None
    };
    let gradient_ratio = log_ratio.map(f64::exp);
    let per_layer_factor = log_ratio.map(|r| (r / (hidden - 1) as f64).exp());
    Ok(Prediction { layers: predicted, gradient_ratio, per_layer_factor, first_not_covered })
}

/// `error` with the hidden layer it arose in named.
fn in_layer(error: Error, index: usize, path: &str) -> Error {
    let at = format!("layer {} (path {path})", index + 1);
    match error {
        Error::InvalidConfig { component, field, reason } => {
            Error::InvalidConfig { component: format!("theory::predict, {at}, {component}"), field, reason }
        }
        Error::NonFinite { location, detail } => {
            Error::NonFinite { location: format!("{location} at {at}"), detail }
        }
        other => other,
    }
}
