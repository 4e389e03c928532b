//! [`MaxPool2d`]: the largest entry of each window, per channel.

use ndarray::{Array2, ArrayView2};

use super::image::{ImageShape, check_image_features};
use super::image_pass;
use super::window::{PackedWindow, Window, pool_window};
use crate::hooks::Context;
use crate::layer::{Layer, Mode};
use crate::{Error, Float, Result};

/// Max pooling over images in NCHW rows, as PyTorch's `nn.MaxPool2d(kernel_size, stride,
/// padding, dilation)` with `ceil_mode=False`: each output entry is the largest input entry of
/// its window in its channel; padding never wins (it counts as −∞).
///
/// Ties go to the first entry of the window in row-major order, and a NaN wins over any number,
/// as in PyTorch's CPU kernel (`val > max || isnan(val)`). The gradient goes to the entry that
/// won, whose index the forward pass keeps.
///
/// # Shapes
/// input `(batch, C·H·W)` → output `(batch, C·OH·OW)`, `OH = ⌊(H + 2p − d·(k − 1) − 1)/s⌋ + 1`.
///
/// ```
/// use gradflow::layers::{ImageShape, MaxPool2d};
/// use gradflow::{Layer, Mode, hooks::Context};
/// use ndarray::array;
///
/// // One 1×2×4 image: two 2×2 windows.
/// let mut pool = MaxPool2d::<f64>::new(ImageShape::new(1, 2, 4), 2, 2)?;
/// let mut y = ndarray::Array2::zeros((0, 0));
/// pool.forward(array![[1.0, 5.0, -1.0, 0.0, 3.0, 2.0, -2.0, -3.0]].view(), &mut y, Mode::Train, &mut Context::new())?;
/// assert_eq!(y, array![[5.0, 0.0]]);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MaxPool2d<F: Float> {
    window: Window,
    input: ImageShape,
    output: ImageShape,
    /// For each output entry of the last forward pass, the index within its input plane of the
    /// entry that won (`u32::MAX` when the window held padding only).
    argmax: Vec<u32>,
    forward_batch: Option<usize>,
    _float: std::marker::PhantomData<F>,
}

impl<F: Float> MaxPool2d<F> {
    /// `nn.MaxPool2d(kernel_size, stride)` on `input` images (square window, no padding).
    ///
    /// # Errors
    /// As [`MaxPool2d::with_options`].
    pub fn new(input: ImageShape, kernel_size: usize, stride: usize) -> Result<Self> {
        Self::with_options(input, (kernel_size, kernel_size), (stride, stride), (0, 0), (1, 1))
    }

    /// `nn.MaxPool2d(kernel_size, stride, padding, dilation)` on `input` images.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field when a size, stride or dilation is 0 or the
    /// padding exceeds half the kernel; [`Error::ShapeMismatch`] naming the layer and both shapes
    /// when the window does not fit the padded input.
    pub fn with_options(
        input: ImageShape,
        kernel_size: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
    ) -> Result<Self> {
        let name = format!("MaxPool2d({}×{} on {input})", kernel_size.0, kernel_size.1);
        let window = pool_window(&name, input, kernel_size, stride, padding, dilation)?;
        let output = ImageShape::new(input.channels, window.out_h, window.out_w);
        if input.spatial() >= u32::MAX as usize {
            return Err(Error::config(name, "input", "an image plane must have fewer than 2³² entries"));
        }
        Ok(MaxPool2d {
            window,
            input,
            output,
            argmax: Vec::new(),
            forward_batch: None,
            _float: std::marker::PhantomData,
        })
    }

    /// The shape of the output images.
    pub fn output_shape(&self) -> ImageShape {
        self.output
    }
}

/// Max pooling of every plane of `x` (each `in_h × in_w`) into `y`, keeping the winners' indices
/// within their plane in `argmax`.
pub(crate) fn max_pool<F: Float>(window: &PackedWindow, x: &[F], y: &mut [F], argmax: &mut [u32]) {
    let w = Window::unpack(window);
    let (plane, out_plane) = (w.in_h * w.in_w, w.out_len());
    let planes =
        x.chunks_exact(plane).zip(y.chunks_exact_mut(out_plane)).zip(argmax.chunks_exact_mut(out_plane));
    for ((x, y), argmax) in planes {
        for oh in 0..w.out_h {
            for ow in 0..w.out_w {
                let (mut best, mut at) = (F::neg_infinity(), u32::MAX);
                for ki in 0..w.kernel.0 {
                    let Some(ih) = w.input_row(oh, ki) else { continue };
                    for kj in 0..w.kernel.1 {
                        let iw = (ow * w.stride.1 + kj * w.dilation.1).checked_sub(w.pad_w.0);
                        let Some(iw) = iw.filter(|&c| c < w.in_w) else { continue };
                        let v = x[ih * w.in_w + iw];
                        if v > best || v.is_nan() || at == u32::MAX {
                            (best, at) = (v, (ih * w.in_w + iw) as u32);
                        }
                    }
                }
                y[oh * w.out_w + ow] = best;
                argmax[oh * w.out_w + ow] = at;
            }
        }
    }
}

/// The gradient of [`max_pool`]: each output gradient goes to its winner (planes of `plane`
/// entries in `dx`, which is overwritten).
pub(crate) fn max_pool_backward<F: Float>(dy: &[F], argmax: &[u32], plane: usize, dx: &mut [F]) {
    dx.fill(F::zero());
    let out_plane = dy.len() / (dx.len() / plane).max(1);
    for ((dx, dy), argmax) in
        dx.chunks_exact_mut(plane).zip(dy.chunks_exact(out_plane)).zip(argmax.chunks_exact(out_plane))
    {
        for (&g, &at) in dy.iter().zip(argmax) {
            if let Some(d) = dx.get_mut(at as usize) {
                *d += g;
            }
        }
    }
}

impl<F: Float> Layer<F> for MaxPool2d<F> {
    fn kind(&self) -> &'static str {
        "MaxPool2d"
    }

    /// E.g. `"MaxPool2d(2×2, stride=2; 16×32×32→16×16×16)"`.
    fn describe(&self) -> String {
        let w = &self.window;
        let mut s = format!("MaxPool2d({}×{}, stride={:?}", w.kernel.0, w.kernel.1, w.stride);
        if w.pad_h.0 != 0 || w.pad_w.0 != 0 {
            s += &format!(", padding=({}, {})", w.pad_h.0, w.pad_w.0);
        }
        if w.dilation != (1, 1) {
            s += &format!(", dilation={:?}", w.dilation);
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
        self.argmax.resize(y.len(), 0);
        F::max_pool(&self.window.pack(), x.as_slice().expect("contiguous"), y, &mut self.argmax);
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
        F::max_pool_backward(dy.as_slice().expect("contiguous"), &self.argmax, self.input.spatial(), dx);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use ndarray::array;

    fn run(pool: &mut MaxPool2d<f64>, x: &Array2<f64>) -> Array2<f64> {
        let mut y = Array2::zeros((0, 0));
        pool.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        y
    }

    #[test]
    fn forward_takes_window_maxima_with_padding_and_dilation() {
        // 1×3×3: [[1, 2, 3], [4, 5, 6], [7, 8, 9]]; kernel 2, stride 1, padding 1: 4×4 windows.
        let x = Array2::from_shape_fn((1, 9), |(_, j)| j as f64 + 1.0);
        let mut pool =
            MaxPool2d::with_options(ImageShape::new(1, 3, 3), (2, 2), (1, 1), (1, 1), (1, 1)).unwrap();
        let y = run(&mut pool, &x);
        let expected =
            array![[1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 6.0, 6.0, 7.0, 8.0, 9.0, 9.0, 7.0, 8.0, 9.0, 9.0]];
        assert_eq!(y, expected);
        // Dilation 2, kernel 2 on a 1×3×3: one window reading the corners.
        let mut pool =
            MaxPool2d::with_options(ImageShape::new(1, 3, 3), (2, 2), (1, 1), (0, 0), (2, 2)).unwrap();
        assert_eq!(run(&mut pool, &(-&x)), array![[-1.0]]);
    }

    #[test]
    fn ties_go_to_the_first_entry_and_nan_wins() {
        let mut pool = MaxPool2d::new(ImageShape::new(1, 2, 2), 2, 2).unwrap();
        let x = array![[3.0, 3.0, 1.0, 3.0]];
        let y = run(&mut pool, &x);
        let mut dx = Array2::zeros((0, 0));
        pool.backward(x.view(), y.view(), array![[1.0]].view(), Some(&mut dx), &mut Context::new()).unwrap();
        assert_eq!(dx, array![[1.0, 0.0, 0.0, 0.0]]);
        assert!(run(&mut pool, &array![[1.0, f64::NAN, 5.0, 2.0]])[[0, 0]].is_nan());
    }

    #[test]
    fn gradients_pass_finite_difference_check() {
        // Distinct values, so that no window has a tie that a nudge of 1e-5 could flip.
        for (kernel, stride, padding, dilation) in [
            ((2, 2), (2, 2), (0, 0), (1, 1)),
            ((3, 2), (1, 2), (1, 1), (1, 1)),
            ((2, 2), (1, 1), (0, 0), (2, 1)),
        ] {
            let image = ImageShape::new(2, 5, 4);
            let mut pool = MaxPool2d::with_options(image, kernel, stride, padding, dilation).unwrap();
            let x =
                Array2::from_shape_fn((3, image.features()), |(i, j)| ((i * 41 + j * 17) % 97) as f64 / 10.0);
            let report = check_layer(&mut pool, &x, GradCheckConfig::default()).unwrap();
            report.within(1e-6).unwrap();
        }
    }

    #[test]
    fn windows_that_do_not_fit_and_bad_settings_are_errors() {
        let err = MaxPool2d::<f32>::new(ImageShape::new(3, 2, 2), 3, 1).unwrap_err().to_string();
        assert!(
            err.contains("MaxPool2d(3×3 on 3×2×2)") && err.contains("3×3 once padded") && err.contains("2×2"),
            "{err}"
        );
        let err = MaxPool2d::<f32>::new(ImageShape::new(3, 8, 8), 2, 0).unwrap_err().to_string();
        assert!(err.contains("`stride`"), "{err}");
        let err = MaxPool2d::<f32>::with_options(ImageShape::new(3, 8, 8), (2, 2), (2, 2), (2, 0), (1, 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`padding`") && err.contains("half"), "{err}");
        let mut pool = MaxPool2d::<f32>::new(ImageShape::new(3, 4, 4), 2, 2).unwrap();
        let mut y = Array2::zeros((0, 0));
        let err = pool
            .forward(Array2::zeros((2, 47)).view(), &mut y, Mode::Train, &mut Context::new())
            .unwrap_err();
        assert!(err.to_string().contains("3×4×4") && err.to_string().contains("(2, 47)"), "{err}");
        assert_eq!(pool.output_features(48).unwrap(), 12);
    }
}
