//! Approximate equality for recordings and their statistics, through the `approx` crate's
//! [`AbsDiffEq`] and [`RelativeEq`]: every floating-point field is compared with the given
//! tolerance, everything else (paths, names, counts, steps, flags, settings other than floats,
//! `None` against `Some`, the number of layers, steps, parameters and losses) exactly. A NaN equals
//! nothing, as for `f64`.
//!
//! What this is for: a recording read back from JSON (whose float parser may differ from the
//! written value in the last bit), or the same network recorded in f32 and in f64.
//!
//! ```
//! use approx::assert_relative_eq;
//! use gradflow::hooks::{ParamStats, TensorStats};
//!
//! let stats = TensorStats::of([3.0f32, -4.0]);
//! let mut nudged = stats;
//! nudged.l2_norm *= 1.0 + 1e-12;
//! assert_relative_eq!(stats, nudged, max_relative = 1e-9);
//! assert!(!approx::relative_eq!(stats, nudged, max_relative = 1e-15));
//!
//! // Anything that is not a float must match exactly.
//! let weight = ParamStats { name: "weight".into(), grad: stats, value_norm: 1.0,
//!     grad_to_value_ratio: Some(5.0), update_to_value_ratio: None };
//! let bias = ParamStats { name: "bias".into(), ..weight.clone() };
//! assert!(!approx::abs_diff_eq!(weight, bias, epsilon = 1.0));
//! ```

use approx::{AbsDiffEq, RelativeEq};

use super::ChannelStats;
use super::recorder::RecorderConfig;
use super::recording::{
    ActivationInfo, GateStats, LayerRecord, LayerStepRecord, ParamStats, Recording, StepLoss,
};
use super::stats::{ActivationStats, TensorStats};

/// The one comparison behind both traits: `close` decides each pair of float fields.
trait FieldsClose {
    /// True when `close` holds for every pair of float fields and all other fields are equal.
    fn fields_close(&self, other: &Self, close: &dyn Fn(f64, f64) -> bool) -> bool;
}

fn option_close(a: Option<f64>, b: Option<f64>, close: &dyn Fn(f64, f64) -> bool) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => close(a, b),
        (None, None) => true,
        _ => false,
    }
}

fn nested_option_close<T: FieldsClose>(
    a: &Option<T>,
    b: &Option<T>,
    close: &dyn Fn(f64, f64) -> bool,
) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.fields_close(b, close),
        (None, None) => true,
        _ => false,
    }
}

fn all_close<T: FieldsClose>(a: &[T], b: &[T], close: &dyn Fn(f64, f64) -> bool) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.fields_close(b, close))
}

impl FieldsClose for TensorStats {
    fn fields_close(&self, other: &Self, close: &dyn Fn(f64, f64) -> bool) -> bool {
        self.count == other.count
            && self.non_finite_count == other.non_finite_count
            && close(self.l2_norm, other.l2_norm)
            && close(self.mean, other.mean)
            && close(self.std, other.std)
            && close(self.max_abs, other.max_abs)
    }
}

impl FieldsClose for ActivationStats {
    fn fields_close(&self, other: &Self, close: &dyn Fn(f64, f64) -> bool) -> bool {
        self.output.fields_close(&other.output, close)
            && option_close(self.saturated_fraction, other.saturated_fraction, close)
            && option_close(self.dead_fraction, other.dead_fraction, close)
            && option_close(self.mean_derivative, other.mean_derivative, close)
            && nested_option_close(&self.channels, &other.channels, close)
    }
}

impl FieldsClose for ChannelStats {
    fn fields_close(&self, other: &Self, close: &dyn Fn(f64, f64) -> bool) -> bool {
        self.channels == other.channels
            && option_close(self.dead_fraction, other.dead_fraction, close)
            && option_close(self.saturated_fraction, other.saturated_fraction, close)
            && option_close(self.max_channel_saturation, other.max_channel_saturation, close)
    }
}

impl FieldsClose for ParamStats {
    fn fields_close(&self, other: &Self, close: &dyn Fn(f64, f64) -> bool) -> bool {
        self.name == other.name
            && self.grad.fields_close(&other.grad, close)
            && close(self.value_norm, other.value_norm)
            && option_close(self.grad_to_value_ratio, other.grad_to_value_ratio, close)
            && option_close(self.update_to_value_ratio, other.update_to_value_ratio, close)
    }
}

impl FieldsClose for LayerStepRecord {
    fn fields_close(&self, other: &Self, close: &dyn Fn(f64, f64) -> bool) -> bool {
        self.step == other.step
            && nested_option_close(&self.grad_output, &other.grad_output, close)
            && nested_option_close(&self.grad_input, &other.grad_input, close)
            && nested_option_close(&self.activation, &other.activation, close)
            && all_close(&self.params, &other.params, close)
            && all_close(&self.gates, &other.gates, close)
    }
}

impl FieldsClose for GateStats {
    fn fields_close(&self, other: &Self, close: &dyn Fn(f64, f64) -> bool) -> bool {
        self.name == other.name
            && self.value.fields_close(&other.value, close)
            && nested_option_close(&self.grad, &other.grad, close)
    }
}

impl FieldsClose for ActivationInfo {
    fn fields_close(&self, other: &Self, close: &dyn Fn(f64, f64) -> bool) -> bool {
        self.name == other.name
            && self.family == other.family
            && close(self.max_derivative, other.max_derivative)
    }
}

impl FieldsClose for LayerRecord {
    fn fields_close(&self, other: &Self, close: &dyn Fn(f64, f64) -> bool) -> bool {
        self.path == other.path
            && self.kind == other.kind
            && self.description == other.description
            && self.depth == other.depth
            && self.layer_number == other.layer_number
            && self.is_container == other.is_container
            && nested_option_close(&self.activation, &other.activation, close)
            && all_close(&self.steps, &other.steps, close)
    }
}

impl FieldsClose for RecorderConfig {
    fn fields_close(&self, other: &Self, close: &dyn Fn(f64, f64) -> bool) -> bool {
        self.every_n_steps == other.every_n_steps
            && self.activations == other.activations
            && self.parameters == other.parameters
            && self.updates == other.updates
            && close(self.saturation_level, other.saturation_level)
    }
}

impl FieldsClose for StepLoss {
    fn fields_close(&self, other: &Self, close: &dyn Fn(f64, f64) -> bool) -> bool {
        self.step == other.step && close(self.loss, other.loss)
    }
}

impl FieldsClose for Recording {
    fn fields_close(&self, other: &Self, close: &dyn Fn(f64, f64) -> bool) -> bool {
        self.float == other.float
            && self.config.fields_close(&other.config, close)
            && all_close(&self.layers, &other.layers, close)
            && all_close(&self.losses, &other.losses, close)
    }
}

/// [`AbsDiffEq`] and [`RelativeEq`] with `f64` tolerances, through [`FieldsClose`].
macro_rules! approx_through_fields {
    ($($t:ty),* $(,)?) => {$(
        /// Float fields within `epsilon` of each other; every other field equal.
        impl AbsDiffEq for $t {
            type Epsilon = f64;

            fn default_epsilon() -> f64 {
                f64::default_epsilon()
            }

            fn abs_diff_eq(&self, other: &Self, epsilon: f64) -> bool {
                self.fields_close(other, &|a, b| a.abs_diff_eq(&b, epsilon))
            }
        }

        /// Float fields within `epsilon`, or within `max_relative` of the larger magnitude, of
        /// each other; every other field equal.
        impl RelativeEq for $t {
            fn default_max_relative() -> f64 {
                f64::default_max_relative()
            }

            fn relative_eq(&self, other: &Self, epsilon: f64, max_relative: f64) -> bool {
                self.fields_close(other, &|a, b| a.relative_eq(&b, epsilon, max_relative))
            }
        }
    )*};
}

approx_through_fields!(
    TensorStats,
    ActivationStats,
    ChannelStats,
    ParamStats,
    LayerStepRecord,
    ActivationInfo,
    LayerRecord,
    RecorderConfig,
    StepLoss,
    Recording,
);

#[cfg(test)]
mod tests {
    use approx::{abs_diff_eq, relative_eq};

    use super::*;
    use crate::activation::ActivationFamily;

    fn stats(l2_norm: f64) -> TensorStats {
        TensorStats { count: 4, l2_norm, mean: 0.5, std: 1.5, max_abs: 2.0, non_finite_count: 0 }
    }

    fn recording(l2_norm: f64, saturated: Option<f64>) -> Recording {
        let step = LayerStepRecord {
            step: 3,
            grad_output: Some(stats(l2_norm)),
            grad_input: None,
            activation: Some(ActivationStats {
                output: stats(1.0),
                saturated_fraction: saturated,
                dead_fraction: None,
                mean_derivative: Some(0.2),
                channels: None,
            }),
            params: vec![ParamStats {
                name: "weight".into(),
                grad: stats(2.0),
                value_norm: 4.0,
                grad_to_value_ratio: Some(0.5),
                update_to_value_ratio: None,
            }],
            gates: Vec::new(),
        };
        Recording {
            float: "f32".into(),
            config: RecorderConfig::all(),
            layers: vec![LayerRecord {
                path: "1".into(),
                kind: "sigmoid".into(),
                description: "sigmoid".into(),
                depth: 0,
                layer_number: Some(1),
                is_container: false,
                activation: Some(ActivationInfo {
                    name: "sigmoid".into(),
                    family: ActivationFamily::Saturating,
                    max_derivative: 0.25,
                }),
                steps: vec![step],
            }],
            losses: vec![StepLoss { step: 3, loss: 2.5 }],
        }
    }

    #[test]
    fn float_fields_deep_in_a_recording_are_compared_with_the_tolerance() {
        let a = recording(1.0, Some(0.25));
        assert!(relative_eq!(a, recording(1.0 + 1e-13, Some(0.25)), max_relative = 1e-12));
        assert!(!relative_eq!(a, recording(1.0 + 1e-11, Some(0.25)), max_relative = 1e-12));
        assert!(abs_diff_eq!(a, recording(1.0, Some(0.25 + 1e-9)), epsilon = 1e-8));
        assert!(!abs_diff_eq!(a, recording(1.0, Some(0.25 + 1e-7)), epsilon = 1e-8));
    }

    #[test]
    fn everything_but_floats_must_match_exactly() {
        let a = recording(1.0, Some(0.25));
        let close = |b: &Recording| abs_diff_eq!(a, b, epsilon = 1e9);
        assert!(close(&a.clone()));
        assert!(!close(&recording(1.0, None)), "None against Some");
        let mut b = a.clone();
        b.layers[0].steps[0].step = 4;
        assert!(!close(&b), "step");
        let mut b = a.clone();
        b.layers[0].steps[0].params[0].name = "bias".into();
        assert!(!close(&b), "parameter name");
        let mut b = a.clone();
        b.layers[0].steps[0].params.clear();
        assert!(!close(&b), "number of parameters");
        let mut b = a.clone();
        b.layers[0].steps[0].grad_output.as_mut().unwrap().count = 5;
        assert!(!close(&b), "count");
        let mut b = a.clone();
        b.config.updates = false;
        assert!(!close(&b), "settings");
        let mut b = a.clone();
        b.float = "f64".into();
        assert!(!close(&b), "float type");
        let mut b = a.clone();
        b.layers[0].layer_number = None;
        assert!(!close(&b), "layer number");
        let mut b = a.clone();
        b.losses[0].step = 4;
        assert!(!close(&b), "loss step");
    }

    #[test]
    fn nan_equals_nothing() {
        let a = recording(f64::NAN, Some(0.25));
        assert!(!abs_diff_eq!(a, a.clone(), epsilon = f64::INFINITY));
    }
}
