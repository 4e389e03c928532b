//! [`Window`]: where a sliding kernel reads in an image (kernel, stride, dilation, padding), and
//! the im2col / col2im passes that turn a convolution into a matrix product.
//!
//! im2col lays the input entries each output position reads side by side: for one sample and
//! `C` input channels, the column matrix has one row per `(c, ki, kj)` (in that order, the order
//! of a conv weight's `(in, kH, kW)` axes flattened) and one column per output position
//! `(oh, ow)`; entry `((c·kH + ki)·kW + kj, oh·OW + ow)` is
//! `x[c, oh·sH + ki·dH − padTop, ow·sW + kj·dW − padLeft]`, or 0 where that falls in the
//! padding. A convolution is then `weight (out, C·kH·kW) · columns (C·kH·kW, OH·OW)`, and its
//! input gradient is col2im of `weightᵀ · dY`: the same mapping run backwards, adding.

use crate::Float;
use crate::vectorize::vectorized;

/// The geometry of a 2-D sliding window over an `in_h × in_w` plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub in_h: usize,
    pub in_w: usize,
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub dilation: (usize, usize),
    /// Zero rows added above and below the input.
    pub pad_h: (usize, usize),
    /// Zero columns added left and right of the input.
    pub pad_w: (usize, usize),
    pub out_h: usize,
    pub out_w: usize,
}

/// A [`Window`] as the plain numbers the precompiled kernels ([`crate::kernels`]) take: their
/// signatures are public, so they cannot name crate-private types.
pub(crate) type PackedWindow = [usize; 14];

/// The span `d·(k − 1) + 1` a kernel of `k` taps with dilation `d` covers.
pub(crate) fn extent(kernel: usize, dilation: usize) -> usize {
    dilation.saturating_mul(kernel.saturating_sub(1)).saturating_add(1)
}

impl Window {
    /// The window, or `None` when the (dilated) kernel is larger than the padded input.
    /// Kernel, stride and dilation must be at least 1 (checked by the layers' configs).
    pub fn new(
        (in_h, in_w): (usize, usize),
        kernel: (usize, usize),
        stride: (usize, usize),
        dilation: (usize, usize),
        pad_h: (usize, usize),
        pad_w: (usize, usize),
    ) -> Option<Self> {
        let out = |len: usize, pad: (usize, usize), k: usize, d: usize, s: usize| {
            // Sizes that overflow are refused like a window that does not fit.
            let padded = len.checked_add(pad.0)?.checked_add(pad.1)?;
            let span = d.checked_mul(k.checked_sub(1)?)?.checked_add(1)?;
            (padded >= span && s > 0).then(|| (padded - span) / s + 1)
        };
        let out_h = out(in_h, pad_h, kernel.0, dilation.0, stride.0)?;
        let out_w = out(in_w, pad_w, kernel.1, dilation.1, stride.1)?;
        Some(Window { in_h, in_w, kernel, stride, dilation, pad_h, pad_w, out_h, out_w })
    }

    /// The window as plain numbers, for the kernels.
    pub fn pack(&self) -> PackedWindow {
        [
            self.in_h,
            self.in_w,
            self.kernel.0,
            self.kernel.1,
            self.stride.0,
            self.stride.1,
            self.dilation.0,
            self.dilation.1,
            self.pad_h.0,
            self.pad_h.1,
            self.pad_w.0,
            self.pad_w.1,
            self.out_h,
            self.out_w,
        ]
    }

    /// The window [`Window::pack`] packed.
    pub fn unpack(p: &PackedWindow) -> Self {
        Window {
            in_h: p[0],
            in_w: p[1],
            kernel: (p[2], p[3]),
            stride: (p[4], p[5]),
            dilation: (p[6], p[7]),
            pad_h: (p[8], p[9]),
            pad_w: (p[10], p[11]),
            out_h: p[12],
            out_w: p[13],
        }
    }

    /// Output positions `OH·OW`.
    pub fn out_len(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Kernel taps `kH·kW`.
    pub fn taps(&self) -> usize {
        self.kernel.0 * self.kernel.1
    }

    /// The input row that output row `oh` reads at kernel row `ki`, if it is not padding.
    #[inline(always)]
    pub fn input_row(&self, oh: usize, ki: usize) -> Option<usize> {
        let at = oh * self.stride.0 + ki * self.dilation.0;
        at.checked_sub(self.pad_h.0).filter(|&r| r < self.in_h)
    }

    /// The output columns `lo..hi` whose input column at kernel column `kj` is inside the input
    /// (the others read padding), and the input column of output column 0 as a signed offset:
    /// output column `ow` reads input column `ow·sW + offset`.
    #[inline(always)]
    pub fn valid_columns(&self, kj: usize) -> (usize, usize, isize) {
        let offset = (kj * self.dilation.1) as isize - self.pad_w.0 as isize;
        let s = self.stride.1 as isize;
        // lo: the first ow with ow·s + offset ≥ 0; hi: one past the last with ow·s + offset < in_w.
        let lo = if offset >= 0 { 0 } else { ((-offset + s - 1) / s) as usize };
        let last = self.in_w as isize - 1 - offset;
        let hi = if last < 0 { 0 } else { (last / s + 1) as usize };
        let hi = hi.min(self.out_w);
        (lo.min(hi), hi, offset)
    }

    /// Whether [`im2col`] lays this window out by shifting whole planes (see
    /// [`Window::flat_shift`]) rather than row by row.
    pub fn shifts_planes(&self) -> bool {
        self.flat_shift(0, 0).is_some()
    }

    /// For a window that slides one entry at a time and keeps the row length (stride 1,
    /// `OW = W`, e.g. a 3×3 convolution with padding 1), output position `p = oh·W + ow` of the
    /// kernel tap `(ki, kj)` reads input position `p + offset` — one shift of the flattened
    /// plane. Returns the output rows `r0..r1` whose input row is inside the image, and the
    /// offset; `None` for other windows.
    #[inline(always)]
    fn flat_shift(&self, ki: usize, kj: usize) -> Option<(usize, usize, isize)> {
        if self.stride != (1, 1) || self.out_w != self.in_w {
            return None;
        }
        let shift = (ki * self.dilation.0) as isize - self.pad_h.0 as isize;
        let r0 = (-shift).max(0) as usize;
        let r1 = (self.in_h as isize - shift).clamp(0, self.out_h as isize) as usize;
        let offset = shift * self.in_w as isize + (kj * self.dilation.1) as isize - self.pad_w.0 as isize;
        Some((r0.min(r1), r1, offset))
    }

    /// For each kernel tap `(ki, kj)` (in row-major order) and output position, the index in the
    /// input plane it reads, or `u32::MAX` where it reads padding: the table of
    /// [`im2col_gather`], for planes too small for the row copies of [`im2col`] to pay.
    pub fn gather_table(&self) -> Vec<u32> {
        let mut table = Vec::with_capacity(self.taps() * self.out_len());
        for ki in 0..self.kernel.0 {
            for kj in 0..self.kernel.1 {
                let (lo, hi, offset) = self.valid_columns(kj);
                for oh in 0..self.out_h {
                    let row = self.input_row(oh, ki);
                    for ow in 0..self.out_w {
                        let index = match row {
                            Some(ih) if (lo..hi).contains(&ow) => {
                                (ih * self.in_w) as u32
                                    + (ow as isize * self.stride.1 as isize + offset) as u32
                            }
                            _ => u32::MAX,
                        };
                        table.push(index);
                    }
                }
            }
        }
        table
    }

    /// The flat output range `[a, b)` of rows `r0..r1` whose shifted input position is inside the
    /// plane (the entries left out are in padding columns).
    #[inline(always)]
    fn flat_range(&self, r0: usize, r1: usize, offset: isize) -> (usize, usize) {
        let plane = (self.in_h * self.in_w) as isize;
        let a = ((r0 * self.out_w) as isize).max(-offset);
        let b = ((r1 * self.out_w) as isize).min(plane - offset);
        (a as usize, (b.max(a)) as usize)
    }
}

/// Writes the im2col columns of one sample's `channels` planes `x` (channel after channel, each
/// `in_h × in_w`) into `col`: the row of `(c, ki, kj)` is `col[row·row_stride..][..OH·OW]`, so
/// that several samples can sit side by side in one column matrix (`col` starts at this
/// sample's first column).
pub(crate) fn im2col<F: Float>(w: &PackedWindow, x: &[F], channels: usize, col: &mut [F], row_stride: usize) {
    let w = &Window::unpack(w);
    vectorized(
        #[inline(always)]
        || im2col_kernel(w, x, channels, col, row_stride),
    )
}

#[inline(always)]
fn im2col_kernel<F: Float>(w: &Window, x: &[F], channels: usize, col: &mut [F], row_stride: usize) {
    let (plane, positions) = (w.in_h * w.in_w, w.out_len());
    let mut row = 0;
    for c in 0..channels {
        let x = &x[c * plane..(c + 1) * plane];
        for ki in 0..w.kernel.0 {
            for kj in 0..w.kernel.1 {
                let out = &mut col[row * row_stride..row * row_stride + positions];
                let (lo, hi, offset) = w.valid_columns(kj);
                row += 1;
                if let Some((r0, r1, shift)) = w.flat_shift(ki, kj) {
                    // One copy of the shifted plane, then zeros in the padding rows and columns.
                    let (a, b) = w.flat_range(r0, r1, shift);
                    out[..a].fill(F::zero());
                    out[b..].fill(F::zero());
                    let first = (a as isize + shift) as usize;
                    out[a..b].copy_from_slice(&x[first..first + (b - a)]);
                    zero_columns(&mut out[r0 * w.out_w..r1 * w.out_w], w.out_w, lo, hi);
                    continue;
                }
                for (oh, out) in out.chunks_exact_mut(w.out_w).enumerate() {
                    let Some(ih) = w.input_row(oh, ki) else {
                        out.fill(F::zero());
                        continue;
                    };
                    let src = &x[ih * w.in_w..(ih + 1) * w.in_w];
                    out[..lo].fill(F::zero());
                    out[hi..].fill(F::zero());
                    if w.stride.1 == 1 {
                        let first = (lo as isize + offset) as usize;
                        out[lo..hi].copy_from_slice(&src[first..first + (hi - lo)]);
                    } else {
                        for (ow, o) in (lo..hi).zip(&mut out[lo..hi]) {
                            *o = src[(ow as isize * w.stride.1 as isize + offset) as usize];
                        }
                    }
                }
            }
        }
    }
}

/// [`im2col`] by a table ([`Window::gather_table`]) of `taps × positions` input indices:
/// faster for small planes, where the row copies are a few entries each.
pub(crate) fn im2col_gather<F: Float>(
    table: &[u32],
    positions: usize,
    x: &[F],
    channels: usize,
    col: &mut [F],
    row_stride: usize,
) {
    let plane = x.len() / channels.max(1);
    let taps = table.len() / positions.max(1);
    for (c, x) in x.chunks_exact(plane).enumerate() {
        for (t, table) in table.chunks_exact(positions).enumerate() {
            let row = (c * taps + t) * row_stride;
            for (out, &index) in col[row..row + positions].iter_mut().zip(table) {
                *out = x.get(index as usize).copied().unwrap_or(F::zero());
            }
        }
    }
}

/// [`col2im`] by the table of [`im2col_gather`].
pub(crate) fn col2im_gather<F: Float>(
    table: &[u32],
    positions: usize,
    col: &[F],
    row_stride: usize,
    channels: usize,
    dx: &mut [F],
) {
    let plane = dx.len() / channels.max(1);
    let taps = table.len() / positions.max(1);
    for (c, dx) in dx.chunks_exact_mut(plane).enumerate() {
        for (t, table) in table.chunks_exact(positions).enumerate() {
            let row = (c * taps + t) * row_stride;
            for (&g, &index) in col[row..row + positions].iter().zip(table) {
                if let Some(d) = dx.get_mut(index as usize) {
                    *d += g;
                }
            }
        }
    }
}

/// Sets the columns `..lo` and `hi..` of every row (of `width` entries) of `rows` to zero: the
/// padding columns of a shifted plane. They are one or two entries wide, so each is stored on
/// its own (a `fill` per row would call `memset` for one entry, thousands of times a pass).
#[inline(always)]
fn zero_columns<F: Float>(rows: &mut [F], width: usize, lo: usize, hi: usize) {
    if lo == 0 && hi == width {
        return;
    }
    for row in rows.chunks_exact_mut(width) {
        for j in (0..lo).chain(hi..width) {
            row[j] = F::zero();
        }
    }
}

/// The reverse of [`im2col`]: adds each column entry of `col` (laid out as `im2col` writes it)
/// into the input entry it was read from, in `dx` (one sample's `channels` planes); padding
/// entries are dropped — and may be overwritten with zeros in `col` on the way.
pub(crate) fn col2im<F: Float>(
    w: &PackedWindow,
    col: &mut [F],
    row_stride: usize,
    channels: usize,
    dx: &mut [F],
) {
    let w = &Window::unpack(w);
    vectorized(
        #[inline(always)]
        || col2im_kernel(w, col, row_stride, channels, dx),
    )
}

#[inline(always)]
fn col2im_kernel<F: Float>(w: &Window, col: &mut [F], row_stride: usize, channels: usize, dx: &mut [F]) {
    let (plane, positions) = (w.in_h * w.in_w, w.out_len());
    let mut row = 0;
    for c in 0..channels {
        let dx = &mut dx[c * plane..(c + 1) * plane];
        for ki in 0..w.kernel.0 {
            for kj in 0..w.kernel.1 {
                let src = &mut col[row * row_stride..row * row_stride + positions];
                let (lo, hi, offset) = w.valid_columns(kj);
                row += 1;
                if let Some((r0, r1, shift)) = w.flat_shift(ki, kj) {
                    // Zero the entries read from padding columns, then one shifted add.
                    zero_columns(&mut src[r0 * w.out_w..r1 * w.out_w], w.out_w, lo, hi);
                    let (a, b) = w.flat_range(r0, r1, shift);
                    let first = (a as isize + shift) as usize;
                    for (d, &s) in dx[first..first + (b - a)].iter_mut().zip(&src[a..b]) {
                        *d += s;
                    }
                    continue;
                }
                let src = &*src;
                for (oh, src) in src.chunks_exact(w.out_w).enumerate() {
                    let Some(ih) = w.input_row(oh, ki) else { continue };
                    let dst = &mut dx[ih * w.in_w..(ih + 1) * w.in_w];
                    if w.stride.1 == 1 {
                        let first = (lo as isize + offset) as usize;
                        for (d, &s) in dst[first..first + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                            *d += s;
                        }
                    } else {
                        for (ow, &s) in (lo..hi).zip(&src[lo..hi]) {
                            dst[(ow as isize * w.stride.1 as isize + offset) as usize] += s;
                        }
                    }
                }
            }
        }
    }
}

/// The window of a pooling layer named `name` over `input` images: every size at least 1, the
/// padding at most half the kernel (as PyTorch requires of its pooling layers), and a (dilated)
/// kernel that fits the padded input.
///
/// # Errors
/// [`crate::Error::InvalidConfig`] naming the field and its value, or
/// [`crate::Error::ShapeMismatch`] naming the layer and both shapes when the window does not fit.
pub(crate) fn pool_window(
    name: &str,
    input: super::ImageShape,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    dilation: (usize, usize),
) -> crate::Result<Window> {
    use crate::Error;
    input.check_not_empty(name)?;
    for (field, (a, b)) in [("kernel_size", kernel), ("stride", stride), ("dilation", dilation)] {
        if a == 0 || b == 0 {
            return Err(Error::config(name, field, format!("must be at least 1, got ({a}, {b})")));
        }
    }
    // A window of more than MAX_TENSOR_ELEMENTS taps: its area (an average's divisor) would
    // overflow, and a pass would visit every tap. With padding up to half the kernel, any kernel
    // fits a padded input, so the kernel's size is bounded here.
    crate::alloc::check_len(name, "kernel_size", &[kernel.0, kernel.1])?;
    if padding.0 > kernel.0 / 2 || padding.1 > kernel.1 / 2 {
        return Err(Error::config(
            name,
            "padding",
            format!("must be at most half the kernel size {kernel:?} (as in PyTorch), got {padding:?}"),
        ));
    }
    let pad_h = (padding.0, padding.0);
    let pad_w = (padding.1, padding.1);
    Window::new((input.height, input.width), kernel, stride, dilation, pad_h, pad_w).ok_or_else(|| {
        Error::ShapeMismatch {
            layer: name.to_string(),
            what: "input",
            expected: format!(
                "images of at least {}×{} once padded (the pooling window)",
                extent(kernel.0, dilation.0),
                extent(kernel.1, dilation.1)
            ),
            actual: format!(
                "{input} images, {}×{} once padded",
                input.height.saturating_add(padding.0.saturating_mul(2)),
                input.width.saturating_add(padding.1.saturating_mul(2))
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// im2col by its definition, entry by entry.
    fn naive(w: &Window, x: &[f64], channels: usize) -> Vec<f64> {
        let (kh, kw) = w.kernel;
        let mut col = vec![0.0; channels * kh * kw * w.out_len()];
        for c in 0..channels {
            for ki in 0..kh {
                for kj in 0..kw {
                    for oh in 0..w.out_h {
                        for ow in 0..w.out_w {
                            let ih = (oh * w.stride.0 + ki * w.dilation.0) as isize - w.pad_h.0 as isize;
                            let iw = (ow * w.stride.1 + kj * w.dilation.1) as isize - w.pad_w.0 as isize;
                            let inside =
                                (0..w.in_h as isize).contains(&ih) && (0..w.in_w as isize).contains(&iw);
                            let row = (c * kh + ki) * kw + kj;
                            col[row * w.out_len() + oh * w.out_w + ow] = if inside {
                                x[(c * w.in_h + ih as usize) * w.in_w + iw as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
        }
        col
    }

    /// Geometries on both paths: the flat shift (stride 1 and `OW = W`: the first and the
    /// fifth to ninth) and the row-by-row copy (the others).
    fn windows() -> Vec<Window> {
        let mut all = Vec::new();
        for (size, kernel, stride, dilation, pad_h, pad_w) in [
            ((5, 6), (3, 3), (1, 1), (1, 1), (1, 1), (1, 1)),
            ((5, 6), (3, 2), (2, 3), (1, 1), (0, 2), (1, 0)),
            ((7, 7), (3, 3), (1, 2), (2, 2), (2, 2), (1, 2)),
            ((4, 4), (1, 1), (2, 2), (1, 1), (0, 0), (0, 0)),
            ((3, 8), (2, 5), (1, 1), (1, 1), (3, 0), (0, 4)),
            ((2, 2), (3, 3), (1, 1), (1, 1), (1, 1), (1, 1)),
            ((6, 5), (3, 3), (1, 1), (2, 2), (2, 2), (2, 2)),
            ((4, 3), (1, 1), (1, 1), (1, 1), (0, 0), (0, 0)),
            ((4, 5), (4, 2), (1, 1), (1, 1), (1, 2), (0, 1)),
        ] {
            all.push(Window::new(size, kernel, stride, dilation, pad_h, pad_w).unwrap());
        }
        let flat: Vec<bool> = all.iter().map(|w| w.flat_shift(0, 0).is_some()).collect();
        assert_eq!(flat, [true, false, false, false, true, true, true, true, true]);
        all
    }

    #[test]
    fn output_sizes_follow_pytorchs_formula() {
        // floor((H + pads − d·(k − 1) − 1) / s) + 1, as in torch.nn.Conv2d's documentation.
        let w = Window::new((32, 32), (3, 3), (2, 2), (1, 1), (1, 1), (1, 1)).unwrap();
        assert_eq!((w.out_h, w.out_w), (16, 16));
        let w = Window::new((7, 9), (3, 3), (1, 2), (2, 1), (0, 0), (1, 1)).unwrap();
        assert_eq!((w.out_h, w.out_w), (3, 5));
        assert!(Window::new((4, 4), (5, 5), (1, 1), (1, 1), (0, 0), (0, 0)).is_none());
        assert!(Window::new((4, 4), (3, 3), (1, 1), (2, 2), (0, 0), (0, 0)).is_none());
        assert!(Window::new((4, 4), (3, 3), (1, 1), (2, 2), (1, 0), (1, 0)).is_some());
    }

    #[test]
    fn im2col_matches_the_definition_for_every_geometry() {
        for w in windows() {
            assert_eq!(Window::unpack(&w.pack()), w);
            let channels = 2;
            let x: Vec<f64> = (0..channels * w.in_h * w.in_w).map(|i| i as f64 + 1.0).collect();
            let expected = naive(&w, &x, channels);
            // Two samples side by side: the second sample's columns start at out_len.
            let row_stride = 2 * w.out_len();
            let mut col = vec![f64::NAN; channels * w.taps() * row_stride];
            im2col(&w.pack(), &x, channels, &mut col, row_stride);
            im2col(&w.pack(), &x, channels, &mut col[w.out_len()..], row_stride);
            for (row, expected) in expected.chunks(w.out_len()).enumerate() {
                let got = &col[row * row_stride..(row + 1) * row_stride];
                assert_eq!(&got[..w.out_len()], expected, "{w:?} row {row}");
                assert_eq!(&got[w.out_len()..], expected, "{w:?} row {row}, second sample");
            }
        }
    }

    #[test]
    fn the_gather_table_gives_the_same_columns_and_gradients() {
        for w in windows() {
            let channels = 2;
            let n = channels * w.in_h * w.in_w;
            let x: Vec<f64> = (0..n).map(|i| i as f64 + 1.0).collect();
            let k = channels * w.taps() * w.out_len();
            let (table, positions) = (w.gather_table(), w.out_len());
            let (mut by_rows, mut by_table) = (vec![f64::NAN; 2 * k], vec![f64::NAN; 2 * k]);
            im2col(&w.pack(), &x, channels, &mut by_rows[positions..], 2 * positions);
            im2col_gather(&table, positions, &x, channels, &mut by_table[positions..], 2 * positions);
            let same = by_rows.iter().zip(&by_table).all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
            assert!(same, "{w:?}");
            let c: Vec<f64> = (0..k).map(|i| ((i * 5) % 13) as f64 / 3.0 - 2.0).collect();
            let (mut dx_rows, mut dx_table) = (vec![0.5; n], vec![0.5; n]);
            col2im(&w.pack(), &mut c.clone(), positions, channels, &mut dx_rows);
            col2im_gather(&table, positions, &c, positions, channels, &mut dx_table);
            assert!(dx_rows.iter().zip(&dx_table).all(|(a, b)| (a - b).abs() < 1e-12), "{w:?}");
        }
    }

    #[test]
    fn col2im_is_the_transpose_of_im2col() {
        // <im2col(x), c> = <x, col2im(c)> for any x and c.
        for w in windows() {
            let channels = 3;
            let n = channels * w.in_h * w.in_w;
            let x: Vec<f64> = (0..n).map(|i| ((i * 7) % 11) as f64 - 5.0).collect();
            let k = channels * w.taps() * w.out_len();
            let c: Vec<f64> = (0..k).map(|i| ((i * 5) % 13) as f64 / 3.0 - 2.0).collect();
            let mut col = vec![0.0; k];
            im2col(&w.pack(), &x, channels, &mut col, w.out_len());
            let mut dx = vec![0.0; n];
            col2im(&w.pack(), &mut c.clone(), w.out_len(), channels, &mut dx);
            let left: f64 = col.iter().zip(&c).map(|(a, b)| a * b).sum();
            let right: f64 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            assert!((left - right).abs() < 1e-9, "{w:?}: {left} vs {right}");
        }
    }
}
