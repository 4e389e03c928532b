//! [`accuracy`]: the fraction of rows whose largest logit is the target class.

use ndarray::{ArrayView2, Axis};

use crate::{Error, Float, Result};

/// The fraction of rows of `logits` whose largest entry (the first one on ties, as
/// `torch.argmax`) is at the column given in `classes`.
///
/// ```
/// use gradflow::loss::accuracy;
/// use ndarray::array;
///
/// let logits = array![[0.1, 2.0], [3.0, -1.0], [0.0, 0.5], [1.0, 1.0]];
/// // argmax: 1, 0, 1, 0 (first on a tie)
/// assert_eq!(accuracy(logits.view(), &[1, 0, 0, 0])?, 0.75);
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidTarget`] when the batch is empty, `classes` has the wrong length or an index
/// is out of range; [`Error::NonFinite`] when a logit is NaN.
pub fn accuracy<F: Float>(logits: ArrayView2<'_, F>, classes: &[usize]) -> Result<f64> {
    let invalid = |reason: String| Error::InvalidTarget { component: "accuracy".into(), reason };
    let (rows, n_classes) = logits.dim();
    if rows == 0 || n_classes == 0 {
        return Err(invalid(format!("logits of shape ({rows}, {n_classes}) are empty")));
    }
    if classes.len() != rows {
        return Err(invalid(format!("expected {rows} class indices (one per row), got {}", classes.len())));
    }
    if let Some((row, class)) = super::validate::first_class_out_of_range(classes, n_classes) {
        return Err(invalid(format!(
            "class index {class} at row {row} is out of range for {n_classes} classes"
        )));
    }
    if let Some((r, c)) = F::first_nan(logits) {
        return Err(Error::NonFinite {
            location: "accuracy".into(),
            detail: format!("logit at row {r}, column {c} is NaN"),
        });
    }
    Ok(count_correct(logits, classes) as f64 / rows as f64)
}

/// The number of rows whose largest logit (the first one, on ties, as `torch.argmax`) is at
/// the row's class index. Unchecked: the caller has validated lengths and ranges.
pub(crate) fn count_correct<F: Float>(logits: ArrayView2<'_, F>, classes: &[usize]) -> usize {
    F::count_correct(logits, classes)
}

/// [`count_correct`]'s kernel ([`crate::kernels`]).
pub(crate) fn count_correct_kernel<F: Float>(logits: ArrayView2<'_, F>, classes: &[usize]) -> usize {
    logits
        .axis_iter(Axis(0))
        .zip(classes)
        .filter(|(row, class)| {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            best == **class
        })
        .count()
}

/// The (row, column) of the first NaN, in row-major order. A kernel ([`crate::kernels`]).
pub(crate) fn first_nan<F: Float>(values: ArrayView2<'_, F>) -> Option<(usize, usize)> {
    values.indexed_iter().find(|(_, v)| v.is_nan()).map(|(at, _)| at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};

    #[test]
    fn counts_argmax_hits_with_first_index_on_ties() {
        let logits = array![[0.1f32, 2.0, -1.0], [5.0, 5.0, 1.0], [0.0, 0.0, 0.5], [-3.0, -2.0, -4.0]];
        // argmax: 1, 0 (tie → first), 2, 1
        assert_eq!(accuracy(logits.view(), &[1, 0, 2, 1]).unwrap(), 1.0);
        assert_eq!(accuracy(logits.view(), &[1, 1, 2, 0]).unwrap(), 0.5);
        assert_eq!(accuracy(logits.view(), &[0, 1, 0, 0]).unwrap(), 0.0);
    }

    #[test]
    fn bad_input_is_an_error() {
        let logits = array![[0.0, 1.0], [1.0, 0.0]];
        assert!(matches!(accuracy(logits.view(), &[0]), Err(Error::InvalidTarget { .. })));
        let err = accuracy(logits.view(), &[0, 2]).unwrap_err();
        assert!(err.to_string().contains("class index 2 at row 1"), "{err}");
        assert!(matches!(
            accuracy(Array2::<f64>::zeros((0, 2)).view(), &[]),
            Err(Error::InvalidTarget { .. })
        ));
        let nan = array![[0.0, f64::NAN]];
        assert!(matches!(accuracy(nan.view(), &[0]), Err(Error::NonFinite { .. })));
    }
}
