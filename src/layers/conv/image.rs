//! [`ImageShape`]: how a batch of images travels through the `(batch, features)` layer trait.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The shape `(C, H, W)` of one image: channels, height, width.
///
/// # How images flow through gradflow
/// Every layer maps a `(batch, features)` array to another, and images are no exception: a
/// batch of `N` images of shape `(C, H, W)` is a `(N, C·H·W)` array whose row `n` holds image
/// `n` in **NCHW order** — channel by channel, each channel row by row — exactly what
/// PyTorch's `x.flatten(1)` gives for an `(N, C, H, W)` tensor, and what
/// `x.reshape(N, C, H, W)` turns back. Entry `(c, h, w)` of an image is at column
/// `(c·H + h)·W + w`.
///
/// Each image layer ([`crate::layers::Conv2d`], the pooling layers,
/// [`crate::layers::BatchNorm2d`], …) is built for one input shape and knows its output shape,
/// which [`crate::Layer::image_shape`] reports; the builder
/// ([`crate::Sequential::image_builder`]) tracks the shape from layer to layer beside the
/// feature count, and a row whose length is not `C·H·W` is refused with an error naming the
/// layer and both shapes. Hooks, recorders, gradient checks and safetensors see image layers
/// as they see any other: rows of numbers.
///
/// ```
/// use gradflow::layers::ImageShape;
///
/// let rgb = ImageShape::new(3, 32, 32);
/// assert_eq!(rgb.features(), 3072);
/// assert_eq!(rgb.index(1, 0, 2), 1024 + 2); // channel 1, row 0, column 2
/// assert_eq!(rgb.to_string(), "3×32×32");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageShape {
    /// Channels `C`.
    pub channels: usize,
    /// Height `H` (rows).
    pub height: usize,
    /// Width `W` (columns).
    pub width: usize,
}

impl ImageShape {
    /// `(channels, height, width)`.
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        ImageShape { channels, height, width }
    }

    /// `C·H·W`: the length of one row of the `(batch, features)` array (`usize::MAX` when the
    /// product does not fit: every layer refuses such a shape when it is built).
    pub fn features(&self) -> usize {
        self.channels.saturating_mul(self.height).saturating_mul(self.width)
    }

    /// `H·W`: the entries of one channel (saturating, as [`ImageShape::features`]).
    pub fn spatial(&self) -> usize {
        self.height.saturating_mul(self.width)
    }

    /// The column of entry `(c, h, w)` in a row: `(c·H + h)·W + w`.
    pub fn index(&self, c: usize, h: usize, w: usize) -> usize {
        (c * self.height + h) * self.width + w
    }

    /// Refuses a shape with a zero dimension, or whose `C·H·W` overflows or exceeds
    /// [`crate::limits::MAX_TENSOR_ELEMENTS`], naming `component`.
    pub(crate) fn check_not_empty(&self, component: &str) -> Result<()> {
        for (field, value) in [("channels", self.channels), ("height", self.height), ("width", self.width)] {
            if value == 0 {
                return Err(Error::config(component, field, format!("the image {self} has no {field}")));
            }
        }
        crate::alloc::check_len(component, "image", &[self.channels, self.height, self.width])?;
        Ok(())
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}×{}", self.channels, self.height, self.width)
    }
}

/// Checks that a layer built for images of shape `image` was given rows of `given` features
/// (as [`crate::Layer::output_features`] must), with an error naming the layer, the image shape
/// and both widths.
pub(crate) fn check_image_features(
    layer: &dyn Fn() -> String,
    image: ImageShape,
    given: usize,
) -> Result<()> {
    if image.features() == given {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        layer: layer(),
        what: "input",
        expected: format!("(batch, {}) for {image} images", image.features()),
        actual: format!("(batch, {given})"),
    })
}

/// Checks that `input` is `(batch, C·H·W)` for `image` (and, when `batch` is given, has that many
/// rows), with an error naming the layer, the image shape and the array's shape.
pub(crate) fn check_image_input<F>(
    layer: &dyn Fn() -> String,
    what: &'static str,
    input: &ndarray::ArrayView2<'_, F>,
    image: ImageShape,
    batch: Option<usize>,
) -> Result<()> {
    let (rows, cols) = input.dim();
    if cols == image.features() && batch.is_none_or(|b| b == rows) {
        return Ok(());
    }
    let rows = batch.map_or("batch".to_string(), |b| b.to_string());
    Err(Error::ShapeMismatch {
        layer: layer(),
        what,
        expected: format!("({rows}, {}) for {image} images", image.features()),
        actual: crate::error::format_shape(input.shape()),
    })
}

/// `to = from`, resizing `to` as [`crate::layer::ensure_shape`] does: one `memcpy` for a
/// contiguous `from` (not an element loop compiled in the caller's crate).
pub(crate) fn copy_into<F: crate::Float>(from: ndarray::ArrayView2<'_, F>, to: &mut ndarray::Array2<F>) {
    crate::layer::ensure_shape(to, from.dim());
    let from = from.as_standard_layout();
    to.as_slice_mut()
        .expect("buffers are standard layout")
        .copy_from_slice(from.as_slice().expect("standard layout"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nchw_index_matches_pytorch_flatten_order() {
        // torch.arange(2*3*4).reshape(2, 3, 4)[c, h, w] == (c*3 + h)*4 + w.
        let s = ImageShape::new(2, 3, 4);
        let mut expected = 0;
        for c in 0..2 {
            for h in 0..3 {
                for w in 0..4 {
                    assert_eq!(s.index(c, h, w), expected);
                    expected += 1;
                }
            }
        }
        assert_eq!((s.features(), s.spatial()), (24, 12));
    }

    #[test]
    fn a_row_of_the_wrong_length_names_the_layer_and_both_shapes() {
        let err = check_image_features(&|| "Conv2d(3→8)".into(), ImageShape::new(3, 4, 4), 40).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("Conv2d(3→8)") && msg.contains("3×4×4") && msg.contains("48") && msg.contains("40")
        );
        let x = ndarray::Array2::<f32>::zeros((2, 47));
        let err = check_image_input(&|| "X".into(), "input", &x.view(), ImageShape::new(3, 4, 4), None)
            .unwrap_err();
        assert!(err.to_string().contains("(2, 47)"), "{err}");
        assert!(ImageShape::new(0, 4, 4).check_not_empty("X").unwrap_err().to_string().contains("channels"));
    }
}
