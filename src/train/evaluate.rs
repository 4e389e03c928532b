//! [`evaluate`]: loss and accuracy of a network on a dataset, in evaluation mode.

use ndarray::{Array2, s};

use crate::loss::count_correct;

use crate::data::{Dataset, TargetData};
use crate::loss::{Loss, Targets};
use crate::{Error, Float, Layer, Mode, Network, Result};

/// The loss (and, for class targets, the accuracy) of a network on a dataset.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    /// The mean loss: minibatch losses weighted by their number of samples (exact for a
    /// mean-reduced loss).
    pub loss: f64,
    /// Fraction (0..=1) of samples whose largest output is their class; `None` unless the
    /// targets are classes.
    pub accuracy: Option<f64>,
}

/// Runs `net` over `data` in [`Mode::Eval`], `batch_size` samples at a time in order, and
/// returns the mean loss and the accuracy. No gradient is computed into the parameters and no
/// weight changes; hooks attached to the network do see these passes.
///
/// # Errors
/// [`Error::InvalidConfig`] naming `batch_size` when zero; the errors of
/// [`Dataset::check`]; an error naming the data set when it is empty, when the model does not
/// take its features, or when a target does not fit the model's outputs; a shape mismatch
/// naming the layer; [`Error::NonFinite`] when the loss is NaN or infinite.
pub fn evaluate<F: Float, M: Layer<F>>(
    net: &mut Network<F, M>,
    loss: &dyn Loss<F>,
    data: &Dataset<F>,
    batch_size: usize,
) -> Result<Evaluation> {
    if batch_size == 0 {
        return Err(Error::config("evaluate", "batch_size", "must be at least 1, got 0"));
    }
    check_data(net, data, "evaluation set")?;
    evaluate_checked(net, loss, data, batch_size, &mut Array2::zeros((0, 0)))
}

/// [`evaluate`] on data already checked, with a reusable gradient buffer.
pub(crate) fn evaluate_checked<F: Float, M: Layer<F>>(
    net: &mut Network<F, M>,
    loss: &dyn Loss<F>,
    data: &Dataset<F>,
    batch_size: usize,
    grad: &mut Array2<F>,
) -> Result<Evaluation> {
    let n = data.len();
    let mut loss_sum = 0.0;
    let mut correct = 0;
    for start in (0..n).step_by(batch_size) {
        let end = (start + batch_size).min(n);
        let inputs = data.inputs.slice(s![start..end, ..]);
        let targets = match &data.targets {
            TargetData::Classes(c) => Targets::Classes(&c[start..end]),
            TargetData::Values(v) => Targets::Values(v.slice(s![start..end, ..])),
        };
        let output = net.forward(inputs, Mode::Eval)?;
        let value = loss.compute(output, targets, grad)?.as_f64();
        if !value.is_finite() {
            return Err(Error::NonFinite {
                location: format!("loss {} in evaluation, samples {start}..{end}", loss.name()),
                detail: format!("the loss is {value}"),
            });
        }
        loss_sum += value * (end - start) as f64;
        if let Targets::Classes(labels) = targets {
            correct += count_correct(output, labels);
        }
    }
    Ok(Evaluation {
        loss: loss_sum / n as f64,
        accuracy: data.targets.classes().map(|_| correct as f64 / n as f64),
    })
}

/// Checks that `data` is consistent, non-empty, and fits `net`'s input and output widths.
pub(crate) fn check_data<F: Float, M: Layer<F>>(
    net: &Network<F, M>,
    data: &Dataset<F>,
    name: &str,
) -> Result<()> {
    data.check()?;
    let component = || format!("{name} of {} samples", data.len());
    if data.is_empty() {
        return Err(Error::InvalidTarget { component: component(), reason: "there are no samples".into() });
    }
    let outputs = net.model().output_features(data.num_features())?;
    match &data.targets {
        TargetData::Classes(labels) => {
            if let Some((sample, label)) = crate::loss::first_class_out_of_range(labels, outputs) {
                return Err(Error::InvalidTarget {
                    component: component(),
                    reason: format!(
                        "sample {sample} has class {label} but the model has {outputs} outputs (classes 0..{outputs})"
                    ),
                });
            }
        }
        TargetData::Values(values) if values.ncols() != outputs => {
            return Err(Error::InvalidTarget {
                component: component(),
                reason: format!(
                    "targets have {} columns but the model has {outputs} outputs",
                    values.ncols()
                ),
            });
        }
        TargetData::Values(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn counts_rows_whose_argmax_is_the_label() {
        let output = array![[0.1, 0.7, 0.2], [0.5, 0.4, 0.1], [0.3, 0.3, 0.3], [0.0, 0.0, 1.0]];
        // argmax: 1, 0, 0 (first of a tie), 2.
        assert_eq!(count_correct(output.view(), &[1, 0, 0, 1]), 3);
        assert_eq!(count_correct(output.view(), &[0, 1, 2, 0]), 0);
    }
}
