//! [`ZeroPadShortcut`]: the parameter-free shortcut ("option A") of residual networks whose
//! stage changes the image shape.

use ndarray::{Array2, ArrayView2};

use super::image::{ImageShape, check_image_features};
use super::image_pass;
use crate::hooks::Context;
use crate::layer::{Layer, Mode};
use crate::{Error, Float, Result};

/// The identity shortcut of a residual block that halves the image and widens the channels:
/// every `stride`-th row and column of each channel (PyTorch's `x[:, :, ::s, ::s]`), and zero
/// channels added around them — He et al. (2016, "Deep Residual Learning for Image
/// Recognition", §3.3 and §4.2) "option A": "the shortcut still performs identity mapping, with
/// extra zero entries padded for increasing dimensions", used in all their CIFAR-10 networks.
/// It has no parameters, so the gradient it carries back is exactly the block's output
/// gradient, subsampled.
///
/// The `out − in` zero channels go `⌊(out − in)/2⌋` before the input's channels and the rest
/// after, as the widely used PyTorch implementation does
/// (`F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))` when the channels double).
///
/// # Shapes
/// `(batch, in·H·W)` → `(batch, out·⌈H/s⌉·⌈W/s⌉)`, the shape of a 3×3 convolution with stride
/// `s` and padding 1.
///
/// ```
/// use gradflow::layers::{ImageShape, ZeroPadShortcut};
/// use gradflow::{Layer, Mode, hooks::Context};
/// use ndarray::array;
///
/// // One channel of 2×2 to two channels of 1×1: the zero channel goes after it.
/// let mut shortcut = ZeroPadShortcut::<f64>::new(ImageShape::new(1, 2, 2), 2, 2)?;
/// let mut y = ndarray::Array2::zeros((0, 0));
/// shortcut.forward(array![[5.0, 6.0, 7.0, 8.0]].view(), &mut y, Mode::Train, &mut Context::new())?;
/// assert_eq!(y, array![[5.0, 0.0]]);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ZeroPadShortcut<F: Float> {
    input: ImageShape,
    output: ImageShape,
    stride: usize,
    /// Zero channels before the input's.
    front: usize,
    forward_batch: Option<usize>,
    _float: std::marker::PhantomData<F>,
}

impl<F: Float> ZeroPadShortcut<F> {
    /// Subsamples `input` images by `stride` and pads them with zero channels to `out_channels`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field when `stride` is 0, `out_channels` is below the
    /// input's channels, the image has an empty dimension, or the output images would have more
    /// than [`crate::limits::MAX_TENSOR_ELEMENTS`] entries.
    pub fn new(input: ImageShape, out_channels: usize, stride: usize) -> Result<Self> {
        let name = format!("ZeroPadShortcut({input}→{out_channels} channels, stride {stride})");
        input.check_not_empty(&name)?;
        if stride == 0 {
            return Err(Error::config(name, "stride", "must be at least 1, got 0"));
        }
        if out_channels < input.channels {
            return Err(Error::config(
                name,
                "out_channels",
                format!("a zero-padding shortcut cannot drop channels: {} → {out_channels}", input.channels),
            ));
        }
        let output =
            ImageShape::new(out_channels, input.height.div_ceil(stride), input.width.div_ceil(stride));
        crate::alloc::check_len(&name, "out_channels", &[output.channels, output.height, output.width])?;
        Ok(ZeroPadShortcut {
            input,
            output,
            stride,
            front: (out_channels - input.channels) / 2,
            forward_batch: None,
            _float: std::marker::PhantomData,
        })
    }

    /// The shape of the output images.
    pub fn output_shape(&self) -> ImageShape {
        self.output
    }
}

/// Every `stride`-th row and column of each channel of the `input` rows `x`, written after
/// `front` zero channels into the `output` rows `y` (the other channels zero).
pub(crate) fn pad_channels<F: Float>(
    input: ImageShape,
    output: ImageShape,
    stride: usize,
    front: usize,
    x: &[F],
    y: &mut [F],
) {
    y.fill(F::zero());
    for (x, y) in x.chunks_exact(input.features()).zip(y.chunks_exact_mut(output.features())) {
        for c in 0..input.channels {
            for i in 0..output.height {
                let src = &x[input.index(c, i * stride, 0)..][..input.width];
                let dst = &mut y[output.index(c + front, i, 0)..][..output.width];
                dst.iter_mut().zip(src.iter().step_by(stride)).for_each(|(d, &s)| *d = s);
            }
        }
    }
}

/// The gradient of [`pad_channels`]: `dx` (overwritten) gets the entries of `dy` that the kept
/// input entries went to.
pub(crate) fn pad_channels_backward<F: Float>(
    input: ImageShape,
    output: ImageShape,
    stride: usize,
    front: usize,
    dy: &[F],
    dx: &mut [F],
) {
    dx.fill(F::zero());
    for (dy, dx) in dy.chunks_exact(output.features()).zip(dx.chunks_exact_mut(input.features())) {
        for c in 0..input.channels {
            for i in 0..output.height {
                let src = &dy[output.index(c + front, i, 0)..][..output.width];
                let dst = &mut dx[input.index(c, i * stride, 0)..][..input.width];
                dst.iter_mut().step_by(stride).zip(src).for_each(|(d, &s)| *d = s);
            }
        }
    }
}

impl<F: Float> Layer<F> for ZeroPadShortcut<F> {
    fn kind(&self) -> &'static str {
        "ZeroPadShortcut"
    }

    /// E.g. `"ZeroPadShortcut(16×32×32→32×16×16)"`.
    fn describe(&self) -> String {
        format!("ZeroPadShortcut({}→{})", self.input, self.output)
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
        let x = x.as_slice().expect("contiguous");
        F::pad_channels(self.input, self.output, self.stride, self.front, x, y);
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
        let dy = dy.as_slice().expect("contiguous");
        F::pad_channels_backward(self.input, self.output, self.stride, self.front, dy, dx);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{GradCheckConfig, check_layer};

    #[test]
    fn subsamples_and_pads_channels_as_the_pytorch_lambda_does() {
        // 2 channels of 3×3 to 4 channels, stride 2: ⌈3/2⌉ = 2; one zero channel before, one after.
        let mut s = ZeroPadShortcut::<f64>::new(ImageShape::new(2, 3, 3), 4, 2).unwrap();
        assert_eq!(s.output_shape(), ImageShape::new(4, 2, 2));
        let x = Array2::from_shape_fn((1, 18), |(_, j)| j as f64);
        let mut y = Array2::zeros((0, 0));
        s.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        let expected = [0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 6.0, 8.0, 9.0, 11.0, 15.0, 17.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(y.as_slice().unwrap(), expected);
        check_layer(&mut s, &x, GradCheckConfig::default()).unwrap().within(1e-6).unwrap();
    }

    #[test]
    fn fewer_output_channels_are_refused() {
        let err = ZeroPadShortcut::<f32>::new(ImageShape::new(8, 4, 4), 4, 2).unwrap_err();
        assert!(err.to_string().contains("`out_channels`") && err.to_string().contains("8 → 4"), "{err}");
    }
}
