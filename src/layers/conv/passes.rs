//! The forward and backward passes of [`super::Conv2d`] over a batch: im2col and matrix
//! products, a few samples at a time, with the batch split between threads.
//!
//! # Per group and per product
//! The samples of a batch are taken a few at a time (a *product*: about
//! [`COLUMNS_PER_PRODUCT`] output positions, so that its column matrix stays in the core's L2
//! cache while the product reads it). For one product and one group `g`:
//! - forward: `columns = im2col(x)` (`in/groups·kH·kW` rows, one column per sample and output
//!   position), `y_g = W_g · columns`;
//! - backward: `dW_g += dY_g · columnsᵀ` (the columns recomputed), `db += Σ dY`, and `dx` either
//!   as the transposed convolution — for stride 1, `dx_g = W'_g · im2col'(dY_g)` with `W'` the
//!   weight flipped in space and with input and output channels swapped, and `im2col'` the
//!   window that pads `dY` by `d·(k − 1) − padding` — or, for other strides, as
//!   `col2im(W_gᵀ · dY_g)`. The transposed convolution's product sums over `out/groups·kH·kW`
//!   terms where `W_gᵀ · dY_g` sums over only `out/groups`, which a matrix product does poorly
//!   (measured below).
//!
//! With one sample per product (large images), the products read and write the rows of `x`,
//! `y`, `dY` and `dx` in place: a sample's channels `g·C/groups ..` are one contiguous block of
//! its row, laid out `(channels, positions)` like the product. With several samples per
//! product the results go through the workspace and are copied (with the bias) into the rows.
//!
//! # Threads
//! When a pass has at least [`crate::linalg::PARALLEL_MIN_WORK`] multiply-adds, its samples are
//! cut into one part per thread (rayon joins, each part with its own per-thread workspace).
//! Forward parts write disjoint rows; backward parts write disjoint rows of `dx` and accumulate
//! `dW` and `db` into their own buffers, added up in a fixed order afterwards — so the result
//! depends on the number of threads only through f32 round-off in those sums.
//!
//! # Measured
//! One 16→16 3×3 convolution of W6 (64 images of 32×32, f32, one thread, CPU time of the
//! pass, `examples/perf_peer.rs`'s shapes): TODO

use super::window::{PackedWindow, Window};
use crate::Float;
use crate::layers::ImageShape;
use crate::linalg::gemm;
use crate::threads::{busy, note_split};
use ndarray::{ArrayView2, ArrayViewMut2};

/// The output positions (samples × positions) one product takes when the batch has them.
pub(super) const COLUMNS_PER_PRODUCT: usize = 1024;

/// Output planes of fewer positions than this are laid out by table (`Window::gather_table`)
/// even when whole planes could be shifted: the copies are too short to pay. Windows that
/// cannot shift whole planes (strides above 1) always go by table, which takes one lookup per
/// entry where the row copies took a strided loop per row (the stride-2 convolutions of W6:
/// TODO).
pub(super) const GATHER_BELOW_POSITIONS: usize = 256;

/// How one window reads its input: by rows or, for small planes, by table.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub window: Window,
    pub packed: PackedWindow,
    pub gather: Option<Vec<u32>>,
}

impl Layout {
    pub fn new(window: Window) -> Self {
        let by_table = window.out_len() < GATHER_BELOW_POSITIONS || !window.shifts_planes();
        let gather = by_table.then(|| window.gather_table());
        Layout { window, packed: window.pack(), gather }
    }

    /// im2col of one sample's `channels` planes `x` into `col` (rows `row_stride` apart).
    #[inline]
    fn im2col<F: Float>(&self, x: &[F], channels: usize, col: &mut [F], row_stride: usize) {
        match &self.gather {
            Some(table) => F::im2col_gather(table, self.window.out_len(), x, channels, col, row_stride),
            None => F::im2col(&self.packed, x, channels, col, row_stride),
        }
    }

    /// col2im of one sample's columns `col` onto its `channels` planes `dx`.
    #[inline]
    fn col2im<F: Float>(&self, col: &mut [F], row_stride: usize, channels: usize, dx: &mut [F]) {
        match &self.gather {
            Some(table) => F::col2im_gather(table, self.window.out_len(), col, row_stride, channels, dx),
            None => F::col2im(&self.packed, col, row_stride, channels, dx),
        }
    }
}

/// Everything a pass needs to know about the convolution.
#[derive(Debug, Clone)]
pub(super) struct Geometry {
    pub input: ImageShape,
    pub output: ImageShape,
    pub groups: usize,
    /// The forward window over the input.
    pub forward: Layout,
    /// For stride 1 (and padding at most `d·(k − 1)`): the window of the transposed
    /// convolution over `dY`, whose output is the input's plane. `None` also when its column
    /// matrix (`out/groups·kH·kW × H·W`) would exceed [`crate::limits::MAX_TENSOR_ELEMENTS`]
    /// (e.g. 1 → 1024 channels, 7×7, on 256×256 images: 3.3·10⁹ entries): the input gradient is
    /// then computed by col2im, whose columns the layer's constructor has bounded.
    pub transposed: Option<Layout>,
}

impl Geometry {
    pub fn new(input: ImageShape, output: ImageShape, groups: usize, window: Window) -> Self {
        let columns = [output.channels / groups, window.taps(), input.spatial()]
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d));
        let transposed = transposed_window(&window)
            .filter(|_| columns.is_some_and(|n| n <= crate::limits::MAX_TENSOR_ELEMENTS))
            .map(Layout::new);
        Geometry { input, output, groups, forward: Layout::new(window), transposed }
    }

    /// Input channels, output channels and rows of the column matrix (`in·kH·kW`) of one group.
    pub fn per_group(&self) -> (usize, usize, usize) {
        let in_g = self.input.channels / self.groups;
        (in_g, self.output.channels / self.groups, in_g * self.forward.window.taps())
    }

    /// Samples per product for a batch of `batch`.
    pub fn samples_per_product(&self, batch: usize) -> usize {
        (COLUMNS_PER_PRODUCT / self.output.spatial()).clamp(1, batch.max(1))
    }

    /// How many parts a pass over `batch` samples is cut into: one per thread when it is large
    /// enough to pay for the split, never more than it has products.
    pub(super) fn parts(&self, batch: usize) -> usize {
        let (_, _, k) = self.per_group();
        let work = batch * self.output.channels * k * self.output.spatial();
        let threads = rayon::current_num_threads();
        if threads < 2 || work < crate::linalg::PARALLEL_MIN_WORK {
            return 1;
        }
        threads.min(batch.div_ceil(self.samples_per_product(batch)))
    }

    /// The length of the per-part gradient buffers a backward pass over `batch` samples uses
    /// (for every part but the first, which adds into the layer's own gradients).
    pub fn partial_len(&self, batch: usize, weights: usize, bias: usize) -> usize {
        (self.parts(batch) - 1) * (weights + bias)
    }
}

/// The window of the transposed convolution of a stride-1 `window`: over the output plane,
/// padded by `d·(k − 1) − padding` on each side, giving back the input plane. `None` for other
/// strides, or padding beyond `d·(k − 1)`.
fn transposed_window(w: &Window) -> Option<Window> {
    if w.stride != (1, 1) {
        return None;
    }
    let span = |k: usize, d: usize| d * (k - 1);
    let (sh, sw) = (span(w.kernel.0, w.dilation.0), span(w.kernel.1, w.dilation.1));
    let pads = |span: usize, (a, b): (usize, usize)| Some((span.checked_sub(a)?, span.checked_sub(b)?));
    let (pad_h, pad_w) = (pads(sh, w.pad_h)?, pads(sw, w.pad_w)?);
    let t = Window::new((w.out_h, w.out_w), w.kernel, (1, 1), w.dilation, pad_h, pad_w)?;
    ((t.out_h, t.out_w) == (w.in_h, w.in_w)).then_some(t)
}

/// `W'`: for each group, `(in/groups, out/groups·kH·kW)` with
/// `W'[c, (o, ki, kj)] = W[g·out/groups + o, c, kH − 1 − ki, kW − 1 − kj]`: the weight of the
/// transposed convolution, written into `flipped` (the weight's size).
pub(super) fn flip_weight<F: Float>(geometry: &Geometry, weight: &[F], flipped: &mut [F]) {
    let (in_g, out_g, k) = geometry.per_group();
    let (kh, kw) = geometry.forward.window.kernel;
    let taps = kh * kw;
    for g in 0..geometry.groups {
        let (w, f) =
            (&weight[g * out_g * k..(g + 1) * out_g * k], &mut flipped[g * out_g * k..(g + 1) * out_g * k]);
        for o in 0..out_g {
            for c in 0..in_g {
                for t in 0..taps {
                    f[(c * out_g + o) * taps + (taps - 1 - t)] = w[(o * in_g + c) * taps + t];
                }
            }
        }
    }
}

/// The forward pass: `y` (rows of `out·OH·OW`) from `x` (rows of `in·H·W`).
pub(super) fn forward<F: Float>(geometry: &Geometry, weight: &[F], bias: Option<&[F]>, x: &[F], y: &mut [F]) {
    let batch = x.len() / geometry.input.features();
    split_forward(geometry, weight, bias, x, y, geometry.parts(batch));
}

fn split_forward<F: Float>(
    geometry: &Geometry,
    weight: &[F],
    bias: Option<&[F]>,
    x: &[F],
    y: &mut [F],
    parts: usize,
) {
    let batch = x.len() / geometry.input.features();
    if parts < 2 || batch < 2 {
        return forward_part(geometry, weight, bias, x, y);
    }
    let left = parts / 2;
    let at = batch * left / parts;
    let (x1, x2) = x.split_at(at * geometry.input.features());
    let (y1, y2) = y.split_at_mut(at * geometry.output.features());
    note_split();
    rayon::join(
        || busy(|| split_forward(geometry, weight, bias, x1, y1, left)),
        || busy(|| split_forward(geometry, weight, bias, x2, y2, parts - left)),
    );
}

/// The forward pass of some samples, on this thread.
fn forward_part<F: Float>(geometry: &Geometry, weight: &[F], bias: Option<&[F]>, x: &[F], y: &mut [F]) {
    let (in_f, out_f) = (geometry.input.features(), geometry.output.features());
    let batch = x.len() / in_f;
    let (in_g, out_g, k) = geometry.per_group();
    let (plane, positions) = (geometry.input.spatial(), geometry.output.spatial());
    let chunk = geometry.samples_per_product(batch);
    let product_len = if chunk > 1 { out_g * chunk * positions } else { 0 };
    super::conv2d::with_buffer::<F, _>(k * chunk * positions + product_len, |buffer| {
        for first in (0..batch).step_by(chunk) {
            let samples = chunk.min(batch - first);
            let columns = samples * positions;
            let (col, product) = buffer.split_at_mut(k * columns);
            let rows = &mut y[first * out_f..(first + samples) * out_f];
            for g in 0..geometry.groups {
                for b in 0..samples {
                    let x = &x[(first + b) * in_f + g * in_g * plane..][..in_g * plane];
                    geometry.forward.im2col(x, in_g, &mut col[b * positions..], columns);
                }
                let w = ArrayView2::from_shape((out_g, k), &weight[g * out_g * k..(g + 1) * out_g * k])
                    .expect("out/groups × k");
                let cols = ArrayView2::from_shape((k, columns), &col[..k * columns]).expect("k × columns");
                if samples == 1 {
                    // The product is the sample's block of channels.
                    let block = &mut rows[g * out_g * positions..(g + 1) * out_g * positions];
                    let out = ArrayViewMut2::from_shape((out_g, positions), &mut *block).expect("sizes");
                    gemm(F::one(), w, false, cols, false, F::zero(), out);
                    if let Some(bias) = bias {
                        F::add_channel_bias(block, positions, &bias[g * out_g..(g + 1) * out_g]);
                    }
                } else {
                    let product = &mut product[..out_g * columns];
                    let out = ArrayViewMut2::from_shape((out_g, columns), &mut *product).expect("sizes");
                    gemm(F::one(), w, false, cols, false, F::zero(), out);
                    F::scatter_product(product, samples, positions, g * out_g, bias, rows);
                }
            }
        }
    });
}

/// Where a backward pass accumulates the parameter gradients.
pub(super) struct Grads<'a, F> {
    pub weight: &'a mut [F],
    pub bias: Option<&'a mut [F]>,
}

impl<F: Float> Grads<'_, F> {
    /// `self += other`.
    fn add(&mut self, other: &Grads<'_, F>) {
        self.weight.iter_mut().zip(&*other.weight).for_each(|(a, &b)| *a += b);
        if let (Some(a), Some(b)) = (self.bias.as_deref_mut(), other.bias.as_deref()) {
            a.iter_mut().zip(b).for_each(|(a, &b)| *a += b);
        }
    }
}

/// What a backward pass reads: the weight and, for the transposed convolution, the flipped
/// weight ([`flip_weight`]).
pub(super) struct Weights<'a, F> {
    pub weight: &'a [F],
    pub flipped: &'a [F],
}

/// The backward pass: adds the parameter gradients into `grads` and writes `dx` (when given).
/// `partials` holds [`Geometry::partial_len`] entries for the gradients of the other threads.
pub(super) fn backward<F: Float>(
    geometry: &Geometry,
    weights: &Weights<'_, F>,
    x: &[F],
    dy: &[F],
    dx: Option<&mut [F]>,
    grads: &mut Grads<'_, F>,
    partials: &mut [F],
) {
    let batch = x.len() / geometry.input.features();
    split_backward(geometry, weights, x, dy, dx, grads, partials, geometry.parts(batch));
}

#[allow(clippy::too_many_arguments)]
fn split_backward<F: Float>(
    geometry: &Geometry,
    weights: &Weights<'_, F>,
    x: &[F],
    dy: &[F],
    dx: Option<&mut [F]>,
    grads: &mut Grads<'_, F>,
    partials: &mut [F],
    parts: usize,
) {
    let (in_f, out_f) = (geometry.input.features(), geometry.output.features());
    let batch = x.len() / in_f;
    if parts < 2 || batch < 2 {
        return backward_part(geometry, weights, x, dy, dx, grads);
    }
    let left = parts / 2;
    let at = batch * left / parts;
    let (x1, x2) = x.split_at(at * in_f);
    let (dy1, dy2) = dy.split_at(at * out_f);
    let (dx1, dx2) = match dx {
        Some(dx) => {
            let (a, b) = dx.split_at_mut(at * in_f);
            (Some(a), Some(b))
        }
        None => (None, None),
    };
    // The right half's first part accumulates into the first partial buffer.
    let (w_len, b_len) = (grads.weight.len(), grads.bias.as_ref().map_or(0, |b| b.len()));
    let (own, rest) = partials.split_at_mut(w_len + b_len);
    own.fill(F::zero());
    let (own_w, own_b) = own.split_at_mut(w_len);
    let mut right = Grads { weight: own_w, bias: grads.bias.is_some().then_some(own_b) };
    let (left_partials, right_partials) = rest.split_at_mut((left - 1) * (w_len + b_len));
    note_split();
    rayon::join(
        || busy(|| split_backward(geometry, weights, x1, dy1, dx1, grads, left_partials, left)),
        || busy(|| split_backward(geometry, weights, x2, dy2, dx2, &mut right, right_partials, parts - left)),
    );
    grads.add(&right);
}

/// The backward pass of some samples, on this thread.
fn backward_part<F: Float>(
    geometry: &Geometry,
    weights: &Weights<'_, F>,
    x: &[F],
    dy: &[F],
    mut dx: Option<&mut [F]>,
    grads: &mut Grads<'_, F>,
) {
    let (in_f, out_f) = (geometry.input.features(), geometry.output.features());
    let batch = x.len() / in_f;
    let (in_g, out_g, k) = geometry.per_group();
    let (plane, positions) = (geometry.input.spatial(), geometry.output.spatial());
    let taps = geometry.forward.window.taps();
    let chunk = geometry.samples_per_product(batch);
    let transposed = geometry.transposed.as_ref().filter(|_| dx.is_some());
    let several = chunk > 1;
    // The workspace: the columns of x; dY laid out as a product (several samples); for dx, the
    // columns of dY and the product (transposed) or the columns' gradient (col2im).
    let k_t = out_g * taps;
    let dx_len = match (dx.is_some(), transposed) {
        (false, _) => 0,
        (true, Some(_)) => k_t * chunk * plane + if several { in_g * chunk * plane } else { 0 },
        (true, None) => k * chunk * positions,
    };
    let len = k * chunk * positions + if several { out_g * chunk * positions } else { 0 } + dx_len;
    let mut dw =
        ArrayViewMut2::from_shape((geometry.output.channels, k), &mut *grads.weight).expect("out × k");
    super::conv2d::with_buffer::<F, _>(len, |buffer| {
        for first in (0..batch).step_by(chunk) {
            let samples = chunk.min(batch - first);
            let (columns, in_columns) = (samples * positions, samples * plane);
            let (col, rest) = buffer.split_at_mut(k * columns);
            let (dy_product, rest) = rest.split_at_mut(if several { out_g * columns } else { 0 });
            let dy_rows = &dy[first * out_f..(first + samples) * out_f];
            if transposed.is_none()
                && let Some(dx) = dx.as_deref_mut()
            {
                F::fill_zero(&mut dx[first * in_f..(first + samples) * in_f]);
            }
            for g in 0..geometry.groups {
                for b in 0..samples {
                    let x = &x[(first + b) * in_f + g * in_g * plane..][..in_g * plane];
                    geometry.forward.im2col(x, in_g, &mut col[b * positions..], columns);
                }
                // dY of this group as an (out/groups, columns) matrix, and the bias gradient.
                let channels = g * out_g..(g + 1) * out_g;
                let bias = grads.bias.as_deref_mut();
                let dy_g: &[F] = if several {
                    F::gather_product(dy_rows, samples, positions, g * out_g, dy_product, bias);
                    dy_product
                } else {
                    let block = &dy_rows[g * out_g * positions..(g + 1) * out_g * positions];
                    if let Some(db) = bias {
                        F::add_channel_sums(block, positions, &mut db[channels.clone()]);
                    }
                    block
                };
                let dy_g = ArrayView2::from_shape((out_g, columns), dy_g).expect("sizes");
                let cols = ArrayView2::from_shape((k, columns), &col[..k * columns]).expect("k × columns");
                // dW_g += dY_g · columnsᵀ
                let dw_g = dw.slice_mut(ndarray::s![channels.clone(), ..]);
                gemm(F::one(), dy_g, false, cols, true, F::one(), dw_g);
                let Some(dx) = dx.as_deref_mut() else { continue };
                let dx_rows = &mut dx[first * in_f..(first + samples) * in_f];
                match transposed {
                    Some(layout) => {
                        // dx_g = W'_g · im2col'(dY_g): a convolution of dY with the flipped weight.
                        let (col_t, dx_product) = rest.split_at_mut(k_t * in_columns);
                        for b in 0..samples {
                            let dy = &dy_rows[b * out_f + g * out_g * positions..][..out_g * positions];
                            layout.im2col(dy, out_g, &mut col_t[b * plane..], in_columns);
                        }
                        let w_t = ArrayView2::from_shape(
                            (in_g, k_t),
                            &weights.flipped[g * out_g * k..(g + 1) * out_g * k],
                        )
                        .expect("in/groups × out/groups·taps");
                        let cols_t = ArrayView2::from_shape((k_t, in_columns), &col_t[..k_t * in_columns])
                            .expect("sizes");
                        if several {
                            let product = &mut dx_product[..in_g * in_columns];
                            let out =
                                ArrayViewMut2::from_shape((in_g, in_columns), &mut *product).expect("sizes");
                            gemm(F::one(), w_t, false, cols_t, false, F::zero(), out);
                            F::scatter_product(product, samples, plane, g * in_g, None, dx_rows);
                        } else {
                            let block = &mut dx_rows[g * in_g * plane..(g + 1) * in_g * plane];
                            let out = ArrayViewMut2::from_shape((in_g, plane), block).expect("sizes");
                            gemm(F::one(), w_t, false, cols_t, false, F::zero(), out);
                        }
                    }
                    None => {
                        // d(columns) = W_gᵀ · dY_g, then back onto the input planes.
                        let dcol = &mut rest[..k * columns];
                        let w = ArrayView2::from_shape(
                            (out_g, k),
                            &weights.weight[g * out_g * k..(g + 1) * out_g * k],
                        )
                        .expect("out/groups × k");
                        let out = ArrayViewMut2::from_shape((k, columns), &mut *dcol).expect("k × columns");
                        gemm(F::one(), w, true, dy_g, false, F::zero(), out);
                        for b in 0..samples {
                            let dx = &mut dx_rows[b * in_f + g * in_g * plane..][..in_g * plane];
                            geometry.forward.col2im(&mut dcol[b * positions..], columns, in_g, dx);
                        }
                    }
                }
            }
        }
    });
}

/// `values[c·positions + p] += bias[c]`: a bias added to each channel of a block.
pub(crate) fn add_channel_bias<F: Float>(values: &mut [F], positions: usize, bias: &[F]) {
    crate::vectorize::vectorized(
        #[inline(always)]
        || {
            for (run, &b) in values.chunks_exact_mut(positions).zip(bias) {
                run.iter_mut().for_each(|v| *v += b);
            }
        },
    )
}

/// `sums[c] += Σ_p values[c·positions + p]`: each channel's sum added to a bias gradient.
pub(crate) fn add_channel_sums<F: Float>(values: &[F], positions: usize, sums: &mut [F]) {
    crate::vectorize::vectorized(
        #[inline(always)]
        || {
            for (run, s) in values.chunks_exact(positions).zip(sums.iter_mut()) {
                let mut lanes = [F::zero(); 8];
                for (i, &v) in run.iter().enumerate() {
                    lanes[i % 8] += v;
                }
                *s += lanes.iter().fold(F::zero(), |a, &b| a + b);
            }
        },
    )
}
