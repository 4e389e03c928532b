//! Summary statistics of a tensor, computed in one pass with `f64` accumulators.
//!
//! These are the numbers the [`Recorder`](super::Recorder) keeps for every gradient, activation
//! and parameter. They are computed over the *finite* entries only; NaN and ±∞ entries are
//! counted in `non_finite_count` instead, so that one bad value does not hide the scale of the
//! rest and every statistic stays a finite number (JSON has no NaN).

use serde::{Deserialize, Serialize};

use crate::Float;
use crate::activation::{Activation, ActivationFamily};
use crate::vectorize::vectorized;

/// L2 norm, mean, standard deviation and largest magnitude of a tensor.
///
/// `std` is the *population* standard deviation (`torch.std(x, correction=0)`,
/// `numpy.std(x)`): √(mean(x²) − mean(x)²). All statistics ignore non-finite entries, which are
/// counted in `non_finite_count`; a tensor with no finite entry has all statistics 0.
///
/// Two statistics compare approximately with [`approx`]'s macros: the float fields with the
/// tolerance, the counts exactly.
///
/// Precision: the sums run in the tensor's own type within blocks of 1024 entries (so that an
/// `f32` gradient is read at full SIMD width, without conversions) and in `f64` across blocks.
/// For `f32` tensors the norm and std carry a relative error near 10⁻⁷ and the mean an error
/// below 4·10⁻⁶ of mean(|x|); `f64` tensors are summed in `f64` throughout.
///
/// ```
/// use gradflow::hooks::TensorStats;
///
/// let s = TensorStats::of([3.0f32, -4.0, f32::NAN]);
/// assert_eq!(s.count, 3);
/// assert_eq!(s.non_finite_count, 1);
/// assert_eq!(s.l2_norm, 5.0);          // √(9 + 16)
/// assert_eq!(s.mean, -0.5);
/// assert_eq!(s.std, 3.5);              // √((9 + 16)/2 − 0.25)
/// assert_eq!(s.max_abs, 4.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TensorStats {
    /// Number of entries, finite or not.
    pub count: u64,
    /// √(Σ x²) over the finite entries.
    pub l2_norm: f64,
    /// Mean of the finite entries.
    pub mean: f64,
    /// Population standard deviation of the finite entries.
    pub std: f64,
    /// max |x| over the finite entries.
    pub max_abs: f64,
    /// Number of NaN or infinite entries.
    pub non_finite_count: u64,
}

/// Running sums for [`TensorStats`], with a finiteness test per entry: the careful pass.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    count: u64,
    finite: u64,
    sum: f64,
    sum_sq: f64,
    max_abs: f64,
}

impl Sums {
    #[inline]
    fn add(&mut self, x: f64) {
        self.count += 1;
        if x.is_finite() {
            self.finite += 1;
            self.sum += x;
            self.sum_sq += x * x;
            self.max_abs = self.max_abs.max(x.abs());
        }
    }
}

/// Lanes of the statistics pass: entry `i` of a chunk goes to lane `i % STAT_LANES`, which
/// breaks the add-latency chain and lets the compiler vectorize; lanes are combined in a fixed
/// order. The pass accumulates in the tensor's own type (16 `f32`s fill an AVX-512 register,
/// without conversions).
pub(crate) const STAT_LANES: usize = 16;

/// The statistics pass sums blocks of this many entries in the tensor's type, and the blocks'
/// sums in `f64`: each lane of a block adds 64 entries, so an `f32` sum keeps a relative error
/// near 64 · 2⁻²⁴ ≈ 4·10⁻⁶ of Σ|x| (checked against `f64` by a test below).
pub(crate) const BLOCK: usize = 64 * STAT_LANES;

/// Σx, Σx², max|x| of one block (at most [`BLOCK`] entries), in the tensor's type.
#[inline(always)]
pub(crate) fn block_sums<F: Float>(values: &[F]) -> (F, F, F) {
    let (mut sum, mut sum_sq, mut max_abs) =
        ([F::zero(); STAT_LANES], [F::zero(); STAT_LANES], [F::zero(); STAT_LANES]);
    let chunks = values.chunks_exact(STAT_LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for lane in 0..STAT_LANES {
            let x = chunk[lane];
            // A plain comparison (not `max`, which handles NaN) keeps this one instruction; NaN
            // entries are dealt with by the careful pass.
            let a = x.abs();
            max_abs[lane] = if a > max_abs[lane] { a } else { max_abs[lane] };
            sum[lane] += x;
            sum_sq[lane] += x * x;
        }
    }
    for (lane, &x) in rest.iter().enumerate() {
        let a = x.abs();
        max_abs[lane] = if a > max_abs[lane] { a } else { max_abs[lane] };
        sum[lane] += x;
        sum_sq[lane] += x * x;
    }
    let total = |v: [F; STAT_LANES]| v.iter().fold(F::zero(), |a, &b| a + b);
    (total(sum), total(sum_sq), max_abs.iter().fold(F::zero(), |a, &b| if b > a { b } else { a }))
}

/// Σx² of one block, summed exactly as [`block_sums`] sums it (the same bits).
#[inline(always)]
pub(crate) fn block_sum_sq<F: Float>(values: &[F]) -> F {
    let mut sum_sq = [F::zero(); STAT_LANES];
    let chunks = values.chunks_exact(STAT_LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for lane in 0..STAT_LANES {
            sum_sq[lane] += chunk[lane] * chunk[lane];
        }
    }
    for (lane, &x) in rest.iter().enumerate() {
        sum_sq[lane] += x * x;
    }
    sum_sq.iter().fold(F::zero(), |a, &b| a + b)
}

/// Σ(a − b)² of one block (at most [`BLOCK`] entries of each), in the tensor's type.
#[inline(always)]
pub(crate) fn block_distance_sq<F: Float>(a: &[F], b: &[F]) -> F {
    let mut lanes = [F::zero(); STAT_LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(STAT_LANES), b.chunks_exact(STAT_LANES));
    let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
    for (a, b) in a_chunks.zip(b_chunks) {
        for lane in 0..STAT_LANES {
            let d = a[lane] - b[lane];
            lanes[lane] += d * d;
        }
    }
    for (lane, (&a, &b)) in a_rest.iter().zip(b_rest).enumerate() {
        lanes[lane] += (a - b) * (a - b);
    }
    lanes.iter().fold(F::zero(), |sum, &x| sum + x)
}

/// The fast pass's running totals over blocks.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    sum: f64,
    sum_sq: f64,
    max_abs: f64,
    count: u64,
}

impl Totals {
    #[inline(always)]
    fn add_block<F: Float>(&mut self, block: &[F]) {
        let (sum, sum_sq, max_abs) = block_sums(block);
        self.sum += sum.as_f64();
        self.sum_sq += sum_sq.as_f64();
        self.max_abs = self.max_abs.max(max_abs.as_f64());
        self.count += block.len() as u64;
    }

    /// Over a slice, compiled for the widest SIMD instructions of the CPU.
    fn of_slice<F: Float>(values: &[F]) -> Self {
        vectorized(
            #[inline(always)]
            || {
                let mut totals = Totals::default();
                for block in values.chunks(BLOCK) {
                    totals.add_block(block);
                }
                totals
            },
        )
    }

    /// Over an iterator, in the same blocks as [`Totals::of_slice`] (so the same result).
    fn of_iter<F: Float>(values: impl Iterator<Item = F>) -> Self {
        let mut totals = Totals::default();
        let mut block = [F::zero(); BLOCK];
        let mut filled = 0;
        for x in values {
            block[filled] = x;
            filled += 1;
            if filled == BLOCK {
                totals.add_block(&block);
                filled = 0;
            }
        }
        if filled > 0 {
            totals.add_block(&block[..filled]);
        }
        totals
    }

    /// The sums, or `None` when an entry was NaN or infinite or a square overflowed (in the
    /// tensor's type: the careful pass then works in `f64`).
    fn finish(&self) -> Option<Sums> {
        (self.sum_sq.is_finite() && self.sum.is_finite()).then_some(Sums {
            count: self.count,
            finite: self.count,
            sum: self.sum,
            sum_sq: self.sum_sq,
            max_abs: self.max_abs,
        })
    }
}

impl TensorStats {
    /// Statistics of the values produced by `values`.
    ///
    /// One pass when every entry is finite. Otherwise a careful pass skips the non-finite
    /// entries, and only when the sum of squares overflows `f64` (entries beyond ~1e154,
    /// possible in `f64` networks that explode) a last pass divides every value by the largest
    /// magnitude, so that the statistics stay finite.
    pub fn of<F: Float, I>(values: I) -> Self
    where
        I: IntoIterator<Item = F>,
        I::IntoIter: Clone,
    {
        let iter = values.into_iter();
        match Totals::of_iter(iter.clone()).finish() {
            Some(sums) => Self::from_sums(sums, 1.0),
            None => Self::careful(iter),
        }
    }

    /// Statistics of an array of any shape: [`TensorStats::of`] with a faster pass over
    /// contiguous arrays (same result).
    pub fn of_array<F: Float, D: ndarray::Dimension>(values: &ndarray::ArrayView<'_, F, D>) -> Self {
        match values.as_slice() {
            Some(slice) => F::tensor_stats(slice),
            None => Self::of(values.iter().copied()),
        }
    }

    /// [`TensorStats::of_array`] on a contiguous tensor. A kernel ([`crate::kernels`]).
    pub(crate) fn of_slice<F: Float>(slice: &[F]) -> Self {
        match Totals::of_slice(slice).finish() {
            Some(sums) => Self::from_sums(sums, 1.0),
            None => Self::careful(slice.iter().copied()),
        }
    }

    fn careful<F: Float>(values: impl Iterator<Item = F> + Clone) -> Self {
        let mut s = Sums::default();
        for x in values.clone() {
            s.add(x.as_f64());
        }
        if s.sum_sq.is_finite() && s.sum.is_finite() {
            return Self::from_sums(s, 1.0);
        }
        let scale = s.max_abs;
        let mut scaled = Sums::default();
        for x in values {
            scaled.add(x.as_f64() / scale);
        }
        Self::from_sums(scaled, scale)
    }

    fn from_sums(s: Sums, scale: f64) -> Self {
        let non_finite_count = s.count - s.finite;
        if s.finite == 0 {
            return TensorStats { count: s.count, non_finite_count, ..Default::default() };
        }
        let n = s.finite as f64;
        let mean = s.sum / n;
        let var = (s.sum_sq / n - mean * mean).max(0.0);
        TensorStats {
            count: s.count,
            l2_norm: scale * s.sum_sq.sqrt(),
            mean: scale * mean,
            std: scale * var.sqrt(),
            max_abs: scale * s.max_abs,
            non_finite_count,
        }
    }

    /// Root mean square of the finite entries: √(mean(x²)) = √(std² + mean²).
    pub fn rms(&self) -> f64 {
        self.std.hypot(self.mean)
    }

    /// True when every entry is finite.
    pub fn is_finite(&self) -> bool {
        self.non_finite_count == 0
    }
}

/// The scale of a layer's output and, for activation layers, the share of saturated or dead
/// units.
///
/// ```
/// use gradflow::hooks::ActivationStats;
/// use gradflow::activation::Relu;
/// use ndarray::array;
///
/// // Two samples, three units: unit 1 outputs 0 for both samples, so it is dead.
/// let x = array![[1.0f64, -1.0, 2.0], [-1.0, -3.0, 1.0]];
/// let y = x.mapv(|v: f64| v.max(0.0));
/// let s = ActivationStats::of(x.view(), y.view(), Some(&Relu), 0.05);
/// assert_eq!(s.dead_fraction, Some(1.0 / 3.0));
/// assert_eq!(s.saturated_fraction, None); // ReLU does not saturate
/// assert_eq!(s.output.mean, 4.0 / 6.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ActivationStats {
    /// Statistics of the layer's output: its mean, std and (with [`ActivationStats::rms`]) RMS.
    pub output: TensorStats,
    /// For saturating activations (sigmoid, tanh, …): the share of entries whose derivative is
    /// below `saturation_level` × the activation's largest derivative (for tanh with the default
    /// level 0.05: |tanh(x)| > 0.975). `None` for other layers.
    pub saturated_fraction: Option<f64>,
    /// For rectifiers (ReLU family): the share of units (columns) whose derivative is 0 for every
    /// sample of the batch; for ReLU, units that output 0 for every sample. `None` for other
    /// layers.
    pub dead_fraction: Option<f64>,
    /// For activation layers: the mean of |f'(x)|, the average factor by which the activation
    /// scales the gradient passing through it (about 0.2 for sigmoid near 0, 1 for tanh near 0,
    /// the active share for ReLU). `None` for other layers, and when a derivative is not finite.
    pub mean_derivative: Option<f64>,
    /// For activation layers over images ([`crate::Layer::image_shape`]): the same questions
    /// asked per channel, where the per-entry view misleads ([`super::ChannelStats`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<super::ChannelStats>,
}

impl ActivationStats {
    /// √(mean(y²)) of the output: the scale of the forward signal.
    pub fn rms(&self) -> f64 {
        self.output.rms()
    }

    /// Statistics of a layer with `input` and `output` (same shape when `activation` is given),
    /// which applies `activation` if it is an activation layer.
    pub fn of<F: Float>(
        input: ndarray::ArrayView2<'_, F>,
        output: ndarray::ArrayView2<'_, F>,
        activation: Option<&dyn Activation<F>>,
        saturation_level: f64,
    ) -> Self {
        let mut scratch = Vec::new();
        Self::of_with_scratch(input, output, activation, saturation_level, &mut scratch)
    }

    /// [`ActivationStats::of`], reusing `scratch` for the per-unit flags of the dead-unit count
    /// (so that a recorder allocates nothing in steady state).
    pub(crate) fn of_with_scratch<F: Float>(
        input: ndarray::ArrayView2<'_, F>,
        output: ndarray::ArrayView2<'_, F>,
        activation: Option<&dyn Activation<F>>,
        saturation_level: f64,
        scratch: &mut Vec<bool>,
    ) -> Self {
        F::activation_stats(input, output, activation, saturation_level, scratch)
    }

    /// [`ActivationStats::of_with_scratch`]'s kernel ([`crate::kernels`]).
    pub(crate) fn of_with_scratch_kernel<F: Float>(
        input: ndarray::ArrayView2<'_, F>,
        output: ndarray::ArrayView2<'_, F>,
        activation: Option<&dyn Activation<F>>,
        saturation_level: f64,
        scratch: &mut Vec<bool>,
    ) -> Self {
        let stats = TensorStats::of_array(&output);
        let mut result = ActivationStats {
            output: stats,
            saturated_fraction: None,
            dead_fraction: None,
            mean_derivative: None,
            channels: None,
        };
        let Some(act) = activation else { return result };
        if input.dim() != output.dim() || output.is_empty() {
            return result;
        }
        let family = act.family();
        let bound = F::lit(saturation_level * act.max_derivative());
        // scratch[j]: unit j had a non-zero derivative for some sample (used for rectifiers).
        scratch.clear();
        scratch.resize(output.ncols(), false);
        // The derivatives come from `backward_slice` with a gradient of ones (one call per chunk
        // instead of one per entry), into a buffer on the stack. Rectifiers mark alive units by
        // column, so they go row by row; the others take the whole tensor in long chunks.
        const CHUNK: usize = 1024;
        let ones = [F::one(); CHUNK];
        let mut derivative = [F::zero(); CHUNK];
        let (x, y) = (input.as_standard_layout(), output.as_standard_layout());
        let (mut sum, mut saturated) = (0.0, 0usize);
        let mut chunk_stats = |x: &[F], y: &[F], alive: Option<&mut [bool]>| {
            let d = &mut derivative[..x.len()];
            act.backward_slice(x, y, &ones[..x.len()], d);
            let (chunk_sum, chunk_saturated) = match (family, alive) {
                (ActivationFamily::Rectifier, Some(alive)) => sum_and_mark_alive(d, alive),
                (ActivationFamily::Saturating, _) => sum_and_count_below(d, bound),
                _ => sum_and_count_below(d, F::zero()),
            };
            sum += chunk_sum.as_f64();
            saturated += chunk_saturated;
        };
        let (x_all, y_all) = (x.as_slice().expect("standard layout"), y.as_slice().expect("standard layout"));
        if family == ActivationFamily::Rectifier {
            for (x_row, y_row) in x_all.chunks_exact(output.ncols()).zip(y_all.chunks_exact(output.ncols())) {
                for start in (0..x_row.len()).step_by(CHUNK) {
                    let end = (start + CHUNK).min(x_row.len());
                    chunk_stats(&x_row[start..end], &y_row[start..end], Some(&mut scratch[start..end]));
                }
            }
        } else {
            for (x, y) in x_all.chunks(CHUNK).zip(y_all.chunks(CHUNK)) {
                chunk_stats(x, y, None);
            }
        }
        let mean = sum / output.len() as f64;
        result.mean_derivative = mean.is_finite().then_some(mean);
        match family {
            ActivationFamily::Saturating => {
                result.saturated_fraction = Some(saturated as f64 / output.len() as f64);
            }
            ActivationFamily::Rectifier => {
                let dead = scratch.iter().filter(|alive| !**alive).count();
                result.dead_fraction = Some(dead as f64 / output.ncols() as f64);
            }
            ActivationFamily::Linear => {}
        }
        result
    }
}

/// Lanes of the derivative loops: independent accumulators so that they vectorize.
const DERIVATIVE_LANES: usize = 8;

/// Σ|d| and the number of entries with |d| < `bound`.
fn sum_and_count_below<F: Float>(d: &[F], bound: F) -> (F, usize) {
    vectorized(
        #[inline(always)]
        || sum_and_count_below_kernel(d, bound),
    )
}

#[inline(always)]
fn sum_and_count_below_kernel<F: Float>(d: &[F], bound: F) -> (F, usize) {
    let (mut sum, mut below) = ([F::zero(); DERIVATIVE_LANES], [0u32; DERIVATIVE_LANES]);
    let chunks = d.chunks_exact(DERIVATIVE_LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for lane in 0..DERIVATIVE_LANES {
            let a = chunk[lane].abs();
            sum[lane] += a;
            below[lane] += u32::from(a < bound);
        }
    }
    for (lane, &x) in rest.iter().enumerate() {
        sum[lane] += x.abs();
        below[lane] += u32::from(x.abs() < bound);
    }
    (sum.iter().fold(F::zero(), |a, &b| a + b), below.iter().map(|&b| b as usize).sum())
}

/// Σ|d|, marking `alive[j]` for every non-zero `d[j]`.
fn sum_and_mark_alive<F: Float>(d: &[F], alive: &mut [bool]) -> (F, usize) {
    vectorized(
        #[inline(always)]
        || {
            let mut sum = [F::zero(); DERIVATIVE_LANES];
            for (j, (&x, alive)) in d.iter().zip(alive).enumerate() {
                sum[j % DERIVATIVE_LANES] += x.abs();
                *alive |= x != F::zero();
            }
            (sum.iter().fold(F::zero(), |a, &b| a + b), 0)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::{Relu, Tanh};
    use ndarray::array;

    #[test]
    fn tensor_stats_match_hand_computation() {
        // 1, 2, 3, 6: Σx = 12, Σx² = 50, mean 3, var 50/4 − 9 = 3.5.
        let s = TensorStats::of([1.0f64, 2.0, 3.0, 6.0]);
        assert_eq!(s.count, 4);
        assert_eq!(s.l2_norm, 50f64.sqrt());
        assert_eq!(s.mean, 3.0);
        assert_eq!(s.std, 3.5f64.sqrt());
        assert_eq!(s.max_abs, 6.0);
        assert!((s.rms() - 12.5f64.sqrt()).abs() < 1e-15);
        assert!(s.is_finite());
    }

    #[test]
    fn non_finite_entries_are_counted_not_summed() {
        let s = TensorStats::of([f32::INFINITY, 2.0, f32::NAN, -2.0]);
        assert_eq!((s.count, s.non_finite_count), (4, 2));
        assert_eq!(s.l2_norm, 8f64.sqrt());
        assert_eq!((s.mean, s.std, s.max_abs), (0.0, 2.0, 2.0));
        let none = TensorStats::of([f64::NAN]);
        assert_eq!((none.l2_norm, none.mean, none.non_finite_count), (0.0, 0.0, 1));
        let empty = TensorStats::of(Vec::<f32>::new());
        assert_eq!(empty, TensorStats::default());
    }

    #[test]
    fn arrays_in_any_layout_give_the_same_statistics_as_their_iterator() {
        let a = ndarray::Array2::from_shape_fn((7, 5), |(i, j)| (i as f32 * 0.37 - j as f32 * 1.3).sin());
        let expected = TensorStats::of(a.iter().copied());
        assert_eq!(TensorStats::of_array(&a.view()), expected);
        let t = a.t();
        assert_eq!(TensorStats::of_array(&t), TensorStats::of(t.iter().copied()));
        let column = a.column(2);
        assert_eq!(TensorStats::of_array(&column), TensorStats::of(column.iter().copied()));
        let mut b = a.clone();
        b[[3, 1]] = f32::NAN;
        let s = TensorStats::of_array(&b.view());
        assert_eq!((s.non_finite_count, s.count), (1, 35));
        let finite: Vec<f32> = b.iter().copied().filter(|x| x.is_finite()).collect();
        // The careful pass (taken because of the NaN) sums in f64, the fast one in f32 blocks.
        assert!((s.l2_norm - TensorStats::of(finite).l2_norm).abs() < 1e-6 * s.l2_norm);
    }

    #[test]
    fn f32_statistics_summed_in_blocks_agree_with_f64_sums() {
        // 100 000 entries of mixed sign and scale: the f32 block sums must stay within the
        // documented error of exact f64 sums.
        let values: Vec<f32> =
            (0..100_000).map(|i| ((i as f32) * 0.618).sin() * (1.0 + (i % 7) as f32) + 0.01).collect();
        let s = TensorStats::of_array(&ndarray::ArrayView1::from(&values[..]));
        let n = values.len() as f64;
        let sum: f64 = values.iter().map(|&v| v as f64).sum();
        let sum_sq: f64 = values.iter().map(|&v| (v as f64).powi(2)).sum();
        let abs_sum: f64 = values.iter().map(|&v| (v as f64).abs()).sum();
        assert!((s.l2_norm - sum_sq.sqrt()).abs() < 1e-6 * sum_sq.sqrt(), "{}", s.l2_norm);
        assert!((s.mean - sum / n).abs() < 4e-6 * abs_sum / n, "{} vs {}", s.mean, sum / n);
        let std = (sum_sq / n - (sum / n).powi(2)).sqrt();
        assert!((s.std - std).abs() < 1e-6 * std, "{} vs {std}", s.std);
        assert_eq!(s.max_abs, values.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64);
    }

    #[test]
    fn huge_f64_values_do_not_overflow_the_norm() {
        let s = TensorStats::of([3e200f64, -4e200]);
        assert!((s.l2_norm / 5e200 - 1.0).abs() < 1e-12, "{s:?}");
        assert!((s.mean / -0.5e200 - 1.0).abs() < 1e-12, "{s:?}");
        assert!((s.std / 3.5e200 - 1.0).abs() < 1e-12, "{s:?}");
        assert_eq!(s.max_abs, 4e200);
    }

    #[test]
    fn tanh_saturation_counts_derivatives_below_five_percent() {
        // tanh'(x) = 1 − tanh²(x): 1 at 0, 0.42 at 1, 0.0099 at ±3 (< 0.05): two of four saturated.
        let x = array![[0.0f64, 1.0], [3.0, -3.0]];
        let y = x.mapv(f64::tanh);
        let s = ActivationStats::of(x.view(), y.view(), Some(&Tanh), 0.05);
        assert_eq!(s.saturated_fraction, Some(0.5));
        assert_eq!(s.dead_fraction, None);
        let derivatives: f64 = y.iter().map(|y| 1.0 - y * y).sum();
        assert_eq!(s.mean_derivative, Some(derivatives / 4.0));
        // With a 50% level, tanh'(1) = 0.42 also counts.
        let s = ActivationStats::of(x.view(), y.view(), Some(&Tanh), 0.5);
        assert_eq!(s.saturated_fraction, Some(0.75));
    }

    #[test]
    fn relu_dead_units_need_zero_for_every_sample() {
        let x = array![[-1.0f32, 2.0, -0.5, 0.0], [-2.0, -1.0, 0.5, -1.0], [-3.0, -1.0, -0.5, 0.0]];
        let y = x.mapv(|v| v.max(0.0));
        let s = ActivationStats::of(x.view(), y.view(), Some(&Relu), 0.05);
        // Units 0 and 3 are never positive (ReLU'(0) = 0, as in PyTorch); 1 and 2 are alive once.
        assert_eq!(s.dead_fraction, Some(0.5));
        assert_eq!(s.mean_derivative, Some(2.0 / 12.0));
        let rms = (y.iter().map(|v| (v * v) as f64).sum::<f64>() / 12.0).sqrt();
        assert!((s.rms() - rms).abs() < 1e-12);
    }

    #[test]
    fn non_activation_layers_get_scale_only() {
        let y = array![[1.0f64, -1.0]];
        let s = ActivationStats::of(y.view(), y.view(), None, 0.05);
        assert_eq!((s.rms(), s.output.mean, s.saturated_fraction, s.dead_fraction), (1.0, 0.0, None, None));
        assert_eq!(s.mean_derivative, None);
    }
}
