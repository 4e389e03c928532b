//! [`AdaptiveAvgPool2d`]: average pooling to a fixed output size; global average pooling.

use ndarray::{Array2, ArrayView2};

use super::image::{ImageShape, check_image_features};
use super::image_pass;
use crate::hooks::Context;
use crate::layer::{Layer, Mode};
use crate::{Error, Float, Result};

/// Average pooling to an `OH × OW` output whatever the input size, as PyTorch's
/// `nn.AdaptiveAvgPool2d((OH, OW))`: output row `i` averages input rows
/// `⌊i·H/OH⌋ .. ⌈(i + 1)·H/OH⌉` (and the same for columns), so bins may overlap.
///
/// [`AdaptiveAvgPool2d::global`] (`nn.AdaptiveAvgPool2d(1)`) is *global average pooling*: each
/// channel's mean, the layer between the last convolution and the classifier of a ResNet
/// (He et al. 2016). Its output rows `(batch, C·1·1)` are `(batch, C)`.
///
/// ```
/// use gradflow::layers::{AdaptiveAvgPool2d, ImageShape};
/// use gradflow::{Layer, Mode, hooks::Context};
/// use ndarray::array;
///
/// let mut gap = AdaptiveAvgPool2d::<f64>::global(ImageShape::new(2, 1, 2))?;
/// let mut y = ndarray::Array2::zeros((0, 0));
/// gap.forward(array![[1.0, 3.0, -2.0, 0.0]].view(), &mut y, Mode::Train, &mut Context::new())?;
/// assert_eq!(y, array![[2.0, -1.0]]);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AdaptiveAvgPool2d<F: Float> {
    input: ImageShape,
    output: ImageShape,
    forward_batch: Option<usize>,
    _float: std::marker::PhantomData<F>,
}

/// PyTorch's adaptive bin `i` of `out` bins over `len` entries: `⌊i·len/out⌋ .. ⌈(i+1)·len/out⌉`.
fn bin(i: usize, out: usize, len: usize) -> (usize, usize) {
    (i * len / out, ((i + 1) * len).div_ceil(out))
}

impl<F: Float> AdaptiveAvgPool2d<F> {
    /// `nn.AdaptiveAvgPool2d((output_size.0, output_size.1))` on `input` images.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `output_size` when a side is 0 or the output images would
    /// have more than [`crate::limits::MAX_TENSOR_ELEMENTS`] entries, or the input when it has
    /// an empty dimension.
    pub fn new(input: ImageShape, output_size: (usize, usize)) -> Result<Self> {
        let name = format!("AdaptiveAvgPool2d({}×{} on {input})", output_size.0, output_size.1);
        input.check_not_empty(&name)?;
        if output_size.0 == 0 || output_size.1 == 0 {
            return Err(Error::config(
                name,
                "output_size",
                format!("must be at least 1×1, got {output_size:?}"),
            ));
        }
        let output = ImageShape::new(input.channels, output_size.0, output_size.1);
        crate::alloc::check_len(&name, "output_size", &[output.channels, output.height, output.width])?;
        Ok(AdaptiveAvgPool2d { input, output, forward_batch: None, _float: std::marker::PhantomData })
    }

    /// Global average pooling, `nn.AdaptiveAvgPool2d(1)`: each channel's mean.
    ///
    /// # Errors
    /// As [`AdaptiveAvgPool2d::new`].
    pub fn global(input: ImageShape) -> Result<Self> {
        Self::new(input, (1, 1))
    }

    /// The shape of the output images.
    pub fn output_shape(&self) -> ImageShape {
        self.output
    }

    fn sizes(&self) -> [usize; 4] {
        [self.input.height, self.input.width, self.output.height, self.output.width]
    }
}

/// Calls `f(output index, rows, columns, 1/count)` for each output entry of a plane of
/// `sizes = [in_h, in_w, out_h, out_w]`.
#[inline(always)]
fn for_each_bin<F: Float>(sizes: &[usize; 4], mut f: impl FnMut(usize, (usize, usize), (usize, usize), F)) {
    let [in_h, in_w, out_h, out_w] = *sizes;
    for i in 0..out_h {
        let rows = bin(i, out_h, in_h);
        for j in 0..out_w {
            let cols = bin(j, out_w, in_w);
            let count = (rows.1 - rows.0) * (cols.1 - cols.0);
            f(i * out_w + j, rows, cols, F::one() / F::lit(count as f64));
        }
    }
}

/// Adaptive average pooling of every plane of `x` into `y`, `sizes = [in_h, in_w, out_h, out_w]`.
pub(crate) fn adaptive_avg_pool<F: Float>(sizes: &[usize; 4], x: &[F], y: &mut [F]) {
    let [in_h, in_w, out_h, out_w] = *sizes;
    let (plane, out_plane) = (in_h * in_w, out_h * out_w);
    if out_plane == 1 {
        // Global pooling: one contiguous sum per channel.
        let scale = F::one() / F::lit(plane as f64);
        for (x, y) in x.chunks_exact(plane).zip(y.iter_mut()) {
            *y = sum(x) * scale;
        }
        return;
    }
    for (x, y) in x.chunks_exact(plane).zip(y.chunks_exact_mut(out_plane)) {
        for_each_bin(sizes, |at, (r0, r1), (c0, c1), scale: F| {
            let total = (r0..r1).fold(F::zero(), |s, r| s + sum(&x[r * in_w + c0..r * in_w + c1]));
            y[at] = total * scale;
        });
    }
}

/// The gradient of [`adaptive_avg_pool`] into `dx` (overwritten).
pub(crate) fn adaptive_avg_pool_backward<F: Float>(sizes: &[usize; 4], dy: &[F], dx: &mut [F]) {
    let [in_h, in_w, out_h, out_w] = *sizes;
    let (plane, out_plane) = (in_h * in_w, out_h * out_w);
    if out_plane == 1 {
        let scale = F::one() / F::lit(plane as f64);
        for (dx, &g) in dx.chunks_exact_mut(plane).zip(dy) {
            dx.fill(g * scale);
        }
        return;
    }
    dx.fill(F::zero());
    for (dx, dy) in dx.chunks_exact_mut(plane).zip(dy.chunks_exact(out_plane)) {
        for_each_bin(sizes, |at, (r0, r1), (c0, c1), scale: F| {
            let g = dy[at] * scale;
            for r in r0..r1 {
                dx[r * in_w + c0..r * in_w + c1].iter_mut().for_each(|d| *d += g);
            }
        });
    }
}

impl<F: Float> Layer<F> for AdaptiveAvgPool2d<F> {
    fn kind(&self) -> &'static str {
        "AdaptiveAvgPool2d"
    }

    /// E.g. `"AdaptiveAvgPool2d(1×1; 64×8×8→64×1×1)"`.
    fn describe(&self) -> String {
        format!(
            "AdaptiveAvgPool2d({}×{}; {}→{})",
            self.output.height, self.output.width, self.input, self.output
        )
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
        F::adaptive_avg_pool(&self.sizes(), x.as_slice().expect("contiguous"), y);
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
        F::adaptive_avg_pool_backward(&self.sizes(), dy.as_slice().expect("contiguous"), dx);
        Ok(())
    }
}

/// Σ of a slice, in eight lanes so that it vectorizes.
fn sum<F: Float>(x: &[F]) -> F {
    crate::vectorize::vectorized(
        #[inline(always)]
        || {
            let mut lanes = [F::zero(); 8];
            for (i, &v) in x.iter().enumerate() {
                lanes[i % 8] += v;
            }
            lanes.iter().fold(F::zero(), |a, &b| a + b)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use ndarray::array;

    #[test]
    fn bins_follow_pytorchs_formula() {
        // H = 5 into 3 bins: [0, 2), [1, 4), [3, 5) (floor(i·5/3), ceil((i+1)·5/3)).
        assert_eq!([bin(0, 3, 5), bin(1, 3, 5), bin(2, 3, 5)], [(0, 2), (1, 4), (3, 5)]);
        let mut pool = AdaptiveAvgPool2d::<f64>::new(ImageShape::new(1, 1, 5), (1, 3)).unwrap();
        let mut y = Array2::zeros((0, 0));
        pool.forward(array![[1.0, 2.0, 3.0, 4.0, 5.0]].view(), &mut y, Mode::Train, &mut Context::new())
            .unwrap();
        assert_eq!(y, array![[1.5, 3.0, 4.5]]);
    }

    #[test]
    fn gradients_pass_finite_difference_check() {
        for out in [(1, 1), (2, 3), (3, 2)] {
            let image = ImageShape::new(2, 5, 4);
            let mut pool = AdaptiveAvgPool2d::new(image, out).unwrap();
            let x =
                Array2::from_shape_fn((3, image.features()), |(i, j)| ((i * 41 + j * 17) % 97) as f64 / 10.0);
            check_layer(&mut pool, &x, GradCheckConfig::default()).unwrap().within(1e-6).unwrap();
        }
    }

    #[test]
    fn zero_output_size_is_an_error() {
        let err = AdaptiveAvgPool2d::<f32>::new(ImageShape::new(3, 4, 4), (0, 1)).unwrap_err();
        assert!(err.to_string().contains("`output_size`"), "{err}");
    }
}
