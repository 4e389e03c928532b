//! Input checks shared by the losses: every loss runs them before computing anything, so that a
//! bad batch is reported with the loss's name and the first offending entry.

use ndarray::ArrayView2;

use crate::error::format_shape;
use crate::{Error, Float, Result};

/// Refuses an empty prediction (no rows or no columns).
pub(crate) fn non_empty<F>(loss: &str, prediction: &ArrayView2<'_, F>, columns: &str) -> Result<()> {
    let (rows, cols) = prediction.dim();
    if rows == 0 || cols == 0 {
        return Err(Error::ShapeMismatch {
            layer: loss.to_string(),
            what: "prediction",
            expected: format!("(batch ≥ 1, {columns} ≥ 1)"),
            actual: format_shape(prediction.shape()),
        });
    }
    Ok(())
}

/// The first non-finite entry of `array`, as `(row, column, value)`.
pub(crate) fn first_non_finite<F: Float>(array: &ArrayView2<'_, F>) -> Option<(usize, usize, F)> {
    if crate::float::all_finite_array(array) {
        return None;
    }
    array.indexed_iter().find(|(_, v)| !v.is_finite()).map(|((r, c), &v)| (r, c, v))
}

/// Refuses a prediction containing NaN or ±∞, naming the first such entry.
pub(crate) fn finite_prediction<F: Float>(loss: &str, prediction: &ArrayView2<'_, F>) -> Result<()> {
    match first_non_finite(prediction) {
        None => Ok(()),
        Some((r, c, v)) => Err(Error::NonFinite {
            location: format!("loss {loss}"),
            detail: format!("prediction at row {r}, column {c} is {v} (first non-finite entry)"),
        }),
    }
}

/// Unpacks [`Targets::Values`](super::Targets::Values) of the prediction's shape with every entry
/// finite.
pub(crate) fn value_targets<'a, F: Float>(
    loss: &str,
    prediction: &ArrayView2<'_, F>,
    target: super::Targets<'a, F>,
) -> Result<ArrayView2<'a, F>> {
    let values = match target {
        super::Targets::Values(v) => v,
        super::Targets::Classes(c) => {
            return Err(invalid(
                loss,
                format!(
                    "expected target values of shape {}, got {} class indices",
                    format_shape(prediction.shape()),
                    c.len()
                ),
            ));
        }
    };
    if values.dim() != prediction.dim() {
        return Err(invalid(
            loss,
            format!(
                "target shape {} differs from prediction shape {}",
                format_shape(values.shape()),
                format_shape(prediction.shape())
            ),
        ));
    }
    if let Some((r, c, v)) = first_non_finite(&values) {
        return Err(invalid(loss, format!("target at row {r}, column {c} is {v}")));
    }
    Ok(values)
}

/// Unpacks [`Targets::Classes`](super::Targets::Classes): one index per row, each below the
/// number of columns.
pub(crate) fn class_targets<'a, F: Float>(
    loss: &str,
    prediction: &ArrayView2<'_, F>,
    target: super::Targets<'a, F>,
) -> Result<&'a [usize]> {
    let (rows, n_classes) = prediction.dim();
    let classes = match target {
        super::Targets::Classes(c) => c,
        super::Targets::Values(v) => {
            return Err(invalid(
                loss,
                format!(
                    "expected {rows} class indices, got target values of shape {}",
                    format_shape(v.shape())
                ),
            ));
        }
    };
    if classes.len() != rows {
        return Err(invalid(
            loss,
            format!("expected {rows} class indices (one per row), got {}", classes.len()),
        ));
    }
    if let Some((row, class)) = first_class_out_of_range(classes, n_classes) {
        return Err(invalid(
            loss,
            format!("class index {class} at row {row} is out of range for {n_classes} classes"),
        ));
    }
    Ok(classes)
}

/// The first (row, class index) with an index of `n_classes` or more. Not generic, so compiled
/// inside gradflow; never inlined into a caller's crate (see [`crate::kernels`]).
#[inline(never)]
pub(crate) fn first_class_out_of_range(classes: &[usize], n_classes: usize) -> Option<(usize, usize)> {
    classes.iter().enumerate().find(|(_, c)| **c >= n_classes).map(|(row, &class)| (row, class))
}

/// Converts the reduced loss to `F`, refusing NaN and ±∞.
pub(crate) fn finite_loss<F: Float>(loss: &str, value: f64) -> Result<F> {
    let converted = F::lit(value);
    if converted.is_finite() {
        Ok(converted)
    } else {
        Err(Error::NonFinite {
            location: format!("loss {loss}"),
            detail: format!("the loss is {value} in {} (the prediction was finite)", F::NAME),
        })
    }
}

fn invalid(loss: &str, reason: String) -> Error {
    Error::InvalidTarget { component: loss.to_string(), reason }
}
