//! [`TheoryComparison`]: the mean-field prediction for a model at initialization
//! ([`crate::theory::Prediction`]) beside the gradient flow a [`Diagnosis`] measured, and whether
//! the two agree.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Diagnosis;
use crate::theory::{Prediction, UNKNOWN_INPUT};

/// Whether the measured gradient flow agrees with the mean-field prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TheoryAgreement {
    /// The measured per-layer factor is within [`Thresholds::theory_tolerance`] of the
    /// predicted one.
    ///
    /// [`Thresholds::theory_tolerance`]: super::Thresholds::theory_tolerance
    Agree,
    /// It is not, or the prediction describes another model: a finding in itself
    /// ([`TheoryComparison::causes`] lists what can explain it).
    Disagree,
    /// The theory makes no prediction for this model (residual blocks, normalization, …: see
    /// [`TheoryComparison::not_covered`]), so there is no number to compare.
    NotCovered,
    /// There is a prediction but the diagnosis has no per-layer factor to compare it with (no
    /// gradient reached the last hidden layer).
    NotMeasured,
}

impl TheoryAgreement {
    /// Lower-case name, as in reports: `"agree"`, `"disagree"`, `"not covered"`, `"not measured"`.
    pub fn name(self) -> &'static str {
        match self {
            TheoryAgreement::Agree => "agree",
            TheoryAgreement::Disagree => "disagree",
            TheoryAgreement::NotCovered => "not covered",
            TheoryAgreement::NotMeasured => "not measured",
        }
    }
}

impl fmt::Display for TheoryAgreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The mean-field prediction beside the measurement: built by [`Diagnosis::with_theory`], kept in
/// [`Diagnosis::theory`], printed by [`crate::report::table`] and saved with the diagnosis by
/// [`crate::report::json`].
///
/// The prediction ([`crate::theory::predict_model`]) describes the network *at initialization*,
/// when its weights are independent zero-mean draws; it is compared with the gradient flow the
/// diagnosis measured at its step — the first recorded one for [`super::diagnose`], the network
/// at initialization when recording started with training. The per-layer factors are geometric
/// means over the hidden layers 2 … last (`‖dL/dh‖` first/last `^(1/(hidden layers − 1))`), so
/// the first/last ratios agree exactly when the per-layer factors do, to the power of the number
/// of layers.
///
/// # How close they come
/// For the plain networks of the `resnet_vs_plain` example (20 × Linear(64→64) + tanh, ReLU or
/// sigmoid, PyTorch's default init, 256 digits; seeds 0–4) measured/predicted per-layer factor
/// was 0.987–1.026, and for those of the `initializers` example (30 × Linear(128→128) + tanh or
/// ReLU under six initializations from ×0.08 to ×8 per layer, 256 standard normal inputs; seeds
/// 1–4 and 42) 0.975–1.019: within **3%** on all 75 networks. The first/last ratios, compounded
/// over 19 layers, were within a factor 0.78–1.64 of the prediction. The default
/// [`Thresholds::theory_tolerance`] of 1.1 (10% per layer) leaves room for narrower layers,
/// smaller batches and fewer layers, whose single-batch measurement scatters more; a
/// prediction for another initialization or trained weights is far outside it (×0.60 and
/// ×0.12 per layer in this crate's tests).
///
/// [`Thresholds::theory_tolerance`]: super::Thresholds::theory_tolerance
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TheoryComparison {
    /// The step whose measurement is compared (the diagnosis's step).
    pub step: u64,
    /// The predicted per-layer factor ([`Prediction::per_layer_factor`]).
    pub predicted_per_layer_factor: Option<f64>,
    /// The predicted first/last ratio of `‖dL/dh‖` ([`Prediction::gradient_ratio`]).
    pub predicted_gradient_ratio: Option<f64>,
    /// The measured per-layer factor ([`Diagnosis::per_layer_factor`]).
    pub measured_per_layer_factor: Option<f64>,
    /// The measured first/last ratio ([`Diagnosis::gradient_ratio`]).
    pub measured_gradient_ratio: Option<f64>,
    /// Measured over predicted per-layer factor, when both exist.
    pub factor_ratio: Option<f64>,
    /// The verdict.
    pub agreement: TheoryAgreement,
    /// The tolerance applied ([`Thresholds::theory_tolerance`]): they agree when
    /// [`TheoryComparison::factor_ratio`] is in `[1/tolerance, tolerance]`.
    ///
    /// [`Thresholds::theory_tolerance`]: super::Thresholds::theory_tolerance
    pub tolerance: f64,
    /// The layers the theory does not cover, with the reason, e.g. `"layers 1–20 (paths 0–19):
    /// residual blocks (…) are not yet assembled from their branch"`; runs of layers with the same
    /// reason are merged, and the layers after one not covered (whose input's variance is then
    /// unknown) are named in one line. Empty when the prediction covers every layer.
    pub not_covered: Vec<String>,
    /// When they disagree, what can explain it, the most specific first (a prediction for
    /// another model, trained weights, layers not covered, finite width, the input scale, a
    /// bug); when there is nothing to compare, why. Empty when they agree.
    pub causes: Vec<String>,
}

impl TheoryComparison {
    /// Compares `prediction` with what `diagnosis` measured, applying the diagnosis's
    /// [`Thresholds::theory_tolerance`](super::Thresholds::theory_tolerance).
    pub fn new(diagnosis: &Diagnosis, prediction: &Prediction) -> Self {
        let finite = |x: Option<f64>| x.filter(|v| v.is_finite());
        let predicted = finite(prediction.per_layer_factor);
        let measured = finite(diagnosis.per_layer_factor);
        let tolerance = diagnosis.thresholds.theory_tolerance;
        let not_covered = not_covered(prediction);
        let mut comparison = TheoryComparison {
            step: diagnosis.step,
            predicted_per_layer_factor: predicted,
            predicted_gradient_ratio: finite(prediction.gradient_ratio),
            measured_per_layer_factor: measured,
            measured_gradient_ratio: finite(diagnosis.gradient_ratio),
            factor_ratio: None,
            agreement: TheoryAgreement::Agree,
            tolerance,
            not_covered,
            causes: Vec::new(),
        };
        if let Some(mismatch) = structure_mismatch(diagnosis, prediction) {
            comparison.agreement = TheoryAgreement::Disagree;
            comparison.causes.push(mismatch);
            comparison.causes.extend(trained_weights(diagnosis.step));
            return comparison;
        }
        let (Some(p), Some(m)) = (predicted, measured) else {
            if predicted.is_none() {
                comparison.agreement = TheoryAgreement::NotCovered;
                if comparison.not_covered.is_empty() {
                    let why = if prediction.per_layer_factor.is_some() {
                        "the predicted factor is not a finite number"
                    } else {
                        "there are fewer than two hidden layers, so no per-layer factor"
                    };
                    comparison.not_covered.push(why.into());
                }
            } else {
                comparison.agreement = TheoryAgreement::NotMeasured;
                comparison.causes.push(
                    "the diagnosis has no per-layer factor: no finite, non-zero ‖dL/dh‖ was recorded at the last \
                     hidden layer"
                        .into(),
                );
            }
            return comparison;
        };
        let ratio = if p > 0.0 {
            m / p
        } else if m == 0.0 {
            1.0
        } else {
            f64::INFINITY
        };
        comparison.factor_ratio = Some(ratio).filter(|r| r.is_finite());
        if ratio.is_finite() && ratio >= 1.0 / tolerance && ratio <= tolerance {
            return comparison;
        }
        comparison.agreement = TheoryAgreement::Disagree;
        let causes = &mut comparison.causes;
        causes.extend(trained_weights(diagnosis.step));
        if !comparison.not_covered.is_empty() {
            causes.push(format!("a layer the theory does not cover: {}", comparison.not_covered.join("; ")));
        }
        let finite_width = "finite width and batch: the theory is exact for infinitely wide layers; at width \
             64–128 one batch's ‖dL/dh‖ scatters by a few per cent per layer around it, more for narrower layers, \
             fewer examples or fewer layers — measure on more examples or several seeds";
        // Within the square of the tolerance, scatter is the first suspect; beyond it, it cannot
        // explain the gap alone.
        let near = ratio.is_finite() && ratio >= tolerance.powi(-2) && ratio <= tolerance.powi(2);
        if near {
            causes.push(finite_width.into());
        }
        causes.push(
            "a prediction from other weights than the measured network's: another model, seed or initializer, or \
             weights that are not independent zero-mean draws (loaded, pruned, edited, or trained before the \
             prediction was made)"
                .into(),
        );
        causes.push(
            "an input scale (theory::InputScale) that is not the data's: it sets the first layers' variance, which \
             decides how far saturating activations saturate"
                .into(),
        );
        if !near {
            causes.push(format!("{finite_width} (a few per cent per layer, not ×{ratio:.2})"));
        }
        causes.push(
            "a bug, in the model's set-up or in gradflow (please report it with the model and the seed)"
                .into(),
        );
        comparison
    }

    /// The comparison in one line, e.g. "theory (mean field, at initialization): ×0.57 per layer,
    /// first/last 1.2e-5; measured at step 0: ×0.57, 1.1e-5 — agree (measured/predicted 1.00 per
    /// layer, within ×1.10)", or "theory (mean field, at initialization): not covered — …".
    pub fn summary(&self) -> String {
        let head = "theory (mean field, at initialization)";
        if self.agreement == TheoryAgreement::NotCovered {
            return format!("{head}: not covered — {}", self.not_covered.join("; "));
        }
        let factor = |f: Option<f64>| f.map_or_else(|| "-".into(), |f| format!("×{f:.2}"));
        let ratio = |r: Option<f64>| r.map_or_else(|| "-".into(), |r| format!("{r:.1e}"));
        let predicted = format!(
            "{} per layer, first/last {}",
            factor(self.predicted_per_layer_factor),
            ratio(self.predicted_gradient_ratio)
        );
        let measured =
            format!("{}, {}", factor(self.measured_per_layer_factor), ratio(self.measured_gradient_ratio));
        let verdict = match (self.agreement, self.factor_ratio) {
            (TheoryAgreement::Agree, Some(r)) => {
                format!("agree (measured/predicted {r:.2} per layer, within ×{:.2})", self.tolerance)
            }
            (TheoryAgreement::Disagree, Some(r)) => {
                format!("DISAGREE (measured/predicted {r:.2} per layer, beyond ×{:.2})", self.tolerance)
            }
            (TheoryAgreement::Disagree, None) if self.measured_per_layer_factor.is_some() => {
                "DISAGREE".to_string()
            }
            (TheoryAgreement::Disagree, None) => "DISAGREE: the prediction is for another model".into(),
            (agreement, _) => agreement.name().to_string(),
        };
        format!("{head}: {predicted}; measured at step {}: {measured} — {verdict}", self.step)
    }
}

impl fmt::Display for TheoryComparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// Why a measurement after training need not match a prediction for initialization.
fn trained_weights(step: u64) -> Option<String> {
    (step > 0).then(|| {
        format!(
            "the measurement is at step {step}: if the network was trained before it, its weights are no longer \
             the independent draws the theory assumes — compare with the first recorded step (diagnose does)"
        )
    })
}

/// A prediction with other layers than the recording: it is for another model.
fn structure_mismatch(diagnosis: &Diagnosis, prediction: &Prediction) -> Option<String> {
    let (recorded, predicted) = (diagnosis.layers.len(), prediction.layers.len());
    if recorded != predicted {
        return Some(format!(
            "the prediction describes {predicted} layers and the recording has {recorded}: the prediction is for \
             another model"
        ));
    }
    diagnosis.layers.iter().zip(&prediction.layers).find(|(d, p)| d.layer.label != p.label).map(|(d, p)| {
        format!(
            "layer {} is {} in the prediction and {} in the recording: the prediction is for another model",
            d.layer.index.saturating_add(1),
            p.label,
            d.layer.label
        )
    })
}

/// `"3"`, `"3–7"` or `"1, 3–7"`: layer numbers, runs merged.
fn number_ranges(numbers: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let mut j = i;
        while j + 1 < numbers.len() && numbers[j].checked_add(1) == Some(numbers[j + 1]) {
            j += 1;
        }
        parts.push(if i == j { numbers[i].to_string() } else { format!("{}–{}", numbers[i], numbers[j]) });
        i = j + 1;
    }
    parts.join(", ")
}

/// The prediction's layers not covered, runs with the same reason merged (see
/// [`TheoryComparison::not_covered`]).
fn not_covered(prediction: &Prediction) -> Vec<String> {
    // (first layer number, last layer number, first path, last path, reason)
    let mut runs: Vec<(usize, usize, String, String, String)> = Vec::new();
    let mut after: Vec<usize> = Vec::new();
    for layer in &prediction.layers {
        let Some(text) = &layer.not_covered else { continue };
        // Saturating: a prediction's fields are public (and deserializable), so any index can
        // arrive here.
        let number = layer.index.saturating_add(1);
        if text.contains(UNKNOWN_INPUT) {
            after.push(number);
            continue;
        }
        let (path, reason) = text.split_once(": ").unwrap_or(("", text.as_str()));
        match runs.last_mut() {
            Some(run) if run.4 == reason && run.1.checked_add(1) == Some(number) => {
                run.1 = number;
                run.3 = path.to_string();
            }
            _ => runs.push((number, number, path.to_string(), path.to_string(), reason.to_string())),
        }
    }
    let mut lines: Vec<String> = runs
        .into_iter()
        .map(|(first, last, first_path, last_path, reason)| {
            if first == last {
                format!("layer {first} (path {first_path}): {reason}")
            } else {
                format!("layers {first}–{last} (paths {first_path}–{last_path}): {reason}")
            }
        })
        .collect();
    if !after.is_empty() {
        let s = if after.len() == 1 { "" } else { "s" };
        lines.push(format!("layer{s} {}: {UNKNOWN_INPUT}, after a layer not covered", number_ranges(&after)));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::number_ranges;

    #[test]
    fn layer_numbers_are_merged_into_ranges() {
        assert_eq!(number_ranges(&[3]), "3");
        assert_eq!(number_ranges(&[3, 4, 5, 6, 7]), "3–7");
        assert_eq!(number_ranges(&[1, 3, 4, 5, 9]), "1, 3–5, 9");
    }
}
