//! [`AvgPool2d`]: the mean of each window, per channel.

use ndarray::{Array2, ArrayView2};

use super::image::{ImageShape, check_image_features};
use super::image_pass;
use super::window::{PackedWindow, Window, pool_window};
use crate::hooks::Context;
use crate::layer::{Layer, Mode};
use crate::{Float, Result};

/// Average pooling over images in NCHW rows, as PyTorch's `nn.AvgPool2d(kernel_size, stride,
/// padding, count_include_pad)` with `ceil_mode=False`: each output entry is the sum of its
/// window divided by `kH·kW` (`count_include_pad = true`, PyTorch's default: padding counts as
/// zeros) or by the number of window entries inside the input (`false`).
///
/// # Shapes
/// input `(batch, C·H·W)` → output `(batch, C·OH·OW)`, `OH = ⌊(H + 2p − k)/s⌋ + 1`.
///
/// ```
/// use gradflow::layers::{AvgPool2d, ImageShape};
/// use gradflow::{Layer, Mode, hooks::Context};
/// use ndarray::array;
///
/// let mut pool = AvgPool2d::<f64>::new(ImageShape::new(1, 2, 4), 2, 2)?;
/// let mut y = ndarray::Array2::zeros((0, 0));
/// pool.forward(array![[1.0, 5.0, -1.0, 0.0, 3.0, 3.0, -2.0, -1.0]].view(), &mut y, Mode::Train, &mut Context::new())?;
/// assert_eq!(y, array![[3.0, -1.0]]);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AvgPool2d<F: Float> {
    window: Window,
    count_include_pad: bool,
    input: ImageShape,
    output: ImageShape,
    forward_batch: Option<usize>,
    _float: std::marker::PhantomData<F>,
}

impl<F: Float> AvgPool2d<F> {
    /// `nn.AvgPool2d(kernel_size, stride)` on `input` images (square window, no padding).
    ///
    /// # Errors
    /// As [`AvgPool2d::with_options`].
    pub fn new(input: ImageShape, kernel_size: usize, stride: usize) -> Result<Self> {
        Self::with_options(input, (kernel_size, kernel_size), (stride, stride), (0, 0), true)
    }

    /// `nn.AvgPool2d(kernel_size, stride, padding, count_include_pad=count_include_pad)`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the field when a size or stride is 0 or the padding
    /// exceeds half the kernel; [`crate::Error::ShapeMismatch`] naming the layer and both shapes when
    /// the window does not fit the padded input.
    pub fn with_options(
        input: ImageShape,
        kernel_size: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        count_include_pad: bool,
    ) -> Result<Self> {
        let name = format!("AvgPool2d({}×{} on {input})", kernel_size.0, kernel_size.1);
        let window = pool_window(&name, input, kernel_size, stride, padding, (1, 1))?;
        let output = ImageShape::new(input.channels, window.out_h, window.out_w);
        Ok(AvgPool2d {
            window,
            count_include_pad,
            input,
            output,
            forward_batch: None,
            _float: std::marker::PhantomData,
        })
    }

    /// The shape of the output images.
    pub fn output_shape(&self) -> ImageShape {
        self.output
    }
}

/// The rows `r0..r1` and columns `c0..c1` of output entry `(oh, ow)`'s window that are inside
/// the input, and the divisor of its sum.
fn cell<F: Float>(
    w: &Window,
    count_include_pad: bool,
    oh: usize,
    ow: usize,
) -> ((usize, usize), (usize, usize), F) {
    let span = |o: usize, s: usize, k: usize, pad: usize, len: usize| {
        let start = (o * s).saturating_sub(pad);
        let end = (o * s + k).saturating_sub(pad).min(len);
        (start, end)
    };
    let rows = span(oh, w.stride.0, w.kernel.0, w.pad_h.0, w.in_h);
    let cols = span(ow, w.stride.1, w.kernel.1, w.pad_w.0, w.in_w);
    let count = if count_include_pad { w.taps() } else { (rows.1 - rows.0) * (cols.1 - cols.0) };
    (rows, cols, F::one() / F::lit(count as f64))
}

/// Average pooling of every plane of `x` into `y`.
pub(crate) fn avg_pool<F: Float>(window: &PackedWindow, count_include_pad: bool, x: &[F], y: &mut [F]) {
    let w = Window::unpack(window);
    let (plane, out_plane) = (w.in_h * w.in_w, w.out_len());
    for (x, y) in x.chunks_exact(plane).zip(y.chunks_exact_mut(out_plane)) {
        for oh in 0..w.out_h {
            for ow in 0..w.out_w {
                let ((r0, r1), (c0, c1), scale) = cell::<F>(&w, count_include_pad, oh, ow);
                let sum = (r0..r1)
                    .flat_map(|r| &x[r * w.in_w + c0..r * w.in_w + c1])
                    .fold(F::zero(), |s, &v| s + v);
                y[oh * w.out_w + ow] = sum * scale;
            }
        }
    }
}

/// The gradient of [`avg_pool`] into `dx` (overwritten).
pub(crate) fn avg_pool_backward<F: Float>(
    window: &PackedWindow,
    count_include_pad: bool,
    dy: &[F],
    dx: &mut [F],
) {
    let w = Window::unpack(window);
    let (plane, out_plane) = (w.in_h * w.in_w, w.out_len());
    dx.fill(F::zero());
    for (dx, dy) in dx.chunks_exact_mut(plane).zip(dy.chunks_exact(out_plane)) {
        for oh in 0..w.out_h {
            for ow in 0..w.out_w {
                let ((r0, r1), (c0, c1), scale) = cell::<F>(&w, count_include_pad, oh, ow);
                let g = dy[oh * w.out_w + ow] * scale;
                for r in r0..r1 {
                    dx[r * w.in_w + c0..r * w.in_w + c1].iter_mut().for_each(|d| *d += g);
                }
            }
        }
    }
}

impl<F: Float> Layer<F> for AvgPool2d<F> {
    fn kind(&self) -> &'static str {
        "AvgPool2d"
    }

    /// E.g. `"AvgPool2d(2×2, stride=(2, 2); 16×8×8→16×4×4)"`.
    fn describe(&self) -> String {
        let w = &self.window;
        let mut s = format!("AvgPool2d({}×{}, stride={:?}", w.kernel.0, w.kernel.1, w.stride);
        if w.pad_h.0 != 0 || w.pad_w.0 != 0 {
            s += &format!(", padding=({}, {})", w.pad_h.0, w.pad_w.0);
            if !self.count_include_pad {
                s += ", count_include_pad=false";
            }
        }
        format!("{s}; {}→{})", self.input, self.output)
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        check_image_features(&|| self.describe(), self.input, input_features)?;
        Ok(self.output.features())
    }

    fn image_shape(&self) -> Option<ImageShape> {
        Some(self.output)
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        _mode: Mode,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        self.forward_batch = None;
        let (x, y) = image_pass::forward_io(&|| self.describe(), (self.input, self.output), input, output)?;
        F::avg_pool(&self.window.pack(), self.count_include_pad, x.as_slice().expect("contiguous"), y);
        self.forward_batch = Some(input.nrows());
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayView2<'_, F>,
        _output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        grad_input: Option<&mut Array2<F>>,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        let shapes = (self.input, self.output);
        let name = || self.describe();
        let io = image_pass::backward_io(&name, shapes, self.forward_batch, input, grad_output, grad_input)?;
        let Some((dy, dx)) = io else { return Ok(()) };
        F::avg_pool_backward(
            &self.window.pack(),
            self.count_include_pad,
            dy.as_slice().expect("contiguous"),
            dx,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use ndarray::array;

    #[test]
    fn padding_counts_as_zero_or_is_left_out() {
        // 1×2×2 [[1, 2], [3, 4]], kernel 2, stride 1, padding 1: a 3×3 output; the corner window
        // holds one input entry (1): 1/4 with the padding counted, 1/1 without.
        let x = array![[1.0, 2.0, 3.0, 4.0]];
        let image = ImageShape::new(1, 2, 2);
        let mut y = Array2::zeros((0, 0));
        let mut with = AvgPool2d::<f64>::with_options(image, (2, 2), (1, 1), (1, 1), true).unwrap();
        with.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        assert_eq!(y, array![[0.25, 0.75, 0.5, 1.0, 2.5, 1.5, 0.75, 1.75, 1.0]]);
        let mut without = AvgPool2d::<f64>::with_options(image, (2, 2), (1, 1), (1, 1), false).unwrap();
        without.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        assert_eq!(y, array![[1.0, 1.5, 2.0, 2.0, 2.5, 3.0, 3.0, 3.5, 4.0]]);
    }

    #[test]
    fn gradients_pass_finite_difference_check() {
        for (kernel, stride, padding, include) in
            [((2, 2), (2, 2), (0, 0), true), ((3, 2), (1, 2), (1, 1), true), ((3, 3), (2, 1), (1, 1), false)]
        {
            let image = ImageShape::new(2, 5, 4);
            let mut pool = AvgPool2d::with_options(image, kernel, stride, padding, include).unwrap();
            let x =
                Array2::from_shape_fn((3, image.features()), |(i, j)| ((i * 41 + j * 17) % 97) as f64 / 10.0);
            check_layer(&mut pool, &x, GradCheckConfig::default()).unwrap().within(1e-6).unwrap();
        }
    }

    #[test]
    fn a_window_larger_than_the_input_is_an_error() {
        let err = AvgPool2d::<f32>::new(ImageShape::new(4, 3, 3), 4, 4).unwrap_err().to_string();
        assert!(err.contains("AvgPool2d(4×4 on 4×3×3)") && err.contains("4×4 once padded"), "{err}");
    }
}
