//! A [`Recording`] as rows: one per recorded step and layer (numbered as in every report), with
//! the statistics the diagnosis reads — what both writers export.

use crate::diagnose::HiddenLayer;
use crate::hooks::Recording;

/// The statistics of one layer at one step, by name, in a fixed order (only those recorded).
pub(crate) fn layer_stats(layer: &HiddenLayer) -> Vec<(&'static str, f64)> {
    let stats = [
        ("grad_norm", layer.grad_norm),
        ("weight_grad_norm", layer.weight_grad_norm),
        ("grad_to_weight_ratio", layer.grad_to_weight_ratio),
        ("update_to_weight_ratio", layer.update_to_weight_ratio),
        ("activation_std", layer.activation_std),
        ("saturated_fraction", layer.saturated_fraction),
        ("dead_fraction", layer.dead_fraction),
        ("mean_derivative", layer.mean_derivative),
    ];
    stats.into_iter().filter_map(|(name, value)| Some((name, value?))).collect()
}

/// Every recorded step with its layers (hidden layers and the output layer, from the input).
pub(crate) fn steps_and_layers(recording: &Recording) -> impl Iterator<Item = (u64, Vec<HiddenLayer>)> + '_ {
    recording.steps().into_iter().map(|step| (step, recording.hidden_layers(step)))
}
