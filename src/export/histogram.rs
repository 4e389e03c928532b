//! [`Histogram`]: the summary of a set of values that TensorBoard's histogram dashboard shows.

use crate::{Error, Result};

/// A histogram in the form of TensorBoard's `HistogramProto`: `bucket[i]` counts the values
/// `v` with `bucket_limit[i - 1] <= v < bucket_limit[i]` (the last bucket also holds the
/// maximum), as TensorFlow's `Histogram::Add` and `numpy.histogram` place them.
///
/// [`Histogram::from_values`] uses equal-width buckets between the smallest and the largest
/// value, preceded by an empty bucket whose limit is the smallest value (as
/// `torch.utils.tensorboard` does, so that the left edge is known).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// The number of values.
    pub num: f64,
    /// The sum of the values.
    pub sum: f64,
    /// The sum of their squares.
    pub sum_squares: f64,
    /// The right edge of each bucket, increasing.
    pub bucket_limit: Vec<f64>,
    /// The number of values in each bucket.
    pub bucket: Vec<f64>,
}

impl Histogram {
    /// Summarizes `values` in `bins` equal-width buckets (when all values are equal, the
    /// buckets span that value ± 0.5, as `numpy.histogram` does).
    ///
    /// ```
    /// use gradflow::export::Histogram;
    /// let h = Histogram::from_values([0.0, 1.0, 1.0, 4.0], 4)?;
    /// assert_eq!(h.bucket_limit, [0.0, 1.0, 2.0, 3.0, 4.0]);
    /// assert_eq!(h.bucket, [0.0, 1.0, 2.0, 0.0, 1.0]);
    /// assert_eq!((h.num, h.sum, h.sum_squares), (4.0, 6.0, 18.0));
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `bins` is 0 or there are no values; [`Error::NonFinite`]
    /// when a value is NaN or infinite (it could not be placed in a bucket).
    pub fn from_values(values: impl IntoIterator<Item = f64>, bins: usize) -> Result<Self> {
        if bins == 0 {
            return Err(Error::config("Histogram", "bins", "must be at least 1, got 0"));
        }
        if bins > crate::limits::MAX_HISTOGRAM_BUCKETS {
            return Err(Error::config(
                "Histogram",
                "bins",
                format!(
                    "{bins} is over the limit of {} (gradflow::limits::MAX_HISTOGRAM_BUCKETS)",
                    crate::limits::MAX_HISTOGRAM_BUCKETS
                ),
            ));
        }
        let values: Vec<f64> = values.into_iter().collect();
        if values.is_empty() {
            return Err(Error::config("Histogram", "values", "is empty"));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                location: "histogram".into(),
                detail: format!("value {} at index {i} of {}", values[i], values.len()),
            });
        }
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if min == max { (min - 0.5, max + 0.5) } else { (min, max) };
        // Values spanning more than f64::MAX (from −1e308 to 1e308) are placed at half scale,
        // where the range is finite; halving is exact, so the edges are the same numbers.
        let scale = if (hi - lo).is_finite() { 1.0 } else { 0.5 };
        let (lo_s, hi_s) = (lo * scale, hi * scale);
        let width = (hi_s - lo_s) / bins as f64;
        let mut edges: Vec<f64> = (0..bins).map(|i| (lo_s + width * i as f64) / scale).collect();
        edges.push(hi);
        let mut bucket = vec![0.0; bins + 1];
        for &v in &values {
            // Buckets are half-open [left, right) except the last, which includes `hi`. The
            // division can land one bucket off for a value on an edge; the edges decide, as in
            // numpy.histogram.
            let mut index = (((v * scale - lo_s) / width) as usize).min(bins - 1);
            if v < edges[index] {
                index -= 1;
            } else if index + 1 < bins && v >= edges[index + 1] {
                index += 1;
            }
            bucket[index + 1] += 1.0;
        }
        // The leading empty bucket's limit is the left edge.
        let bucket_limit = edges;
        Ok(Histogram {
            min,
            max,
            num: values.len() as f64,
            sum: values.iter().sum(),
            sum_squares: values.iter().map(|v| v * v).sum(),
            bucket_limit,
            bucket,
        })
    }
}
