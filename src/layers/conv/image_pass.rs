//! The checks and buffer handling that the passes of every parameter-free image layer share
//! (pooling, the zero-padding shortcut): each such layer adds only its loop over the data.

use ndarray::{Array2, ArrayView2, CowArray, Ix2};

use super::{ImageShape, check_image_input};
use crate::layer::ensure_shape;
use crate::{Error, Float, Result};

/// Contiguous rows read by a pass, and the buffer it writes.
pub(crate) type PassIo<'r, 'w, F> = (CowArray<'r, F, Ix2>, &'w mut [F]);

/// The input and output of a forward pass from `input` images to `output` images: checks the
/// rows (naming the layer with `name`) and sizes `y` for them; returns the input as contiguous
/// rows (copied only when they are not) and the output buffer.
///
/// # Errors
/// [`Error::ShapeMismatch`] naming the layer when the rows are not `input` images.
pub(crate) fn forward_io<'x, 'y, F: Float>(
    name: &dyn Fn() -> String,
    (input, output): (ImageShape, ImageShape),
    x: ArrayView2<'x, F>,
    y: &'y mut Array2<F>,
) -> Result<PassIo<'x, 'y, F>> {
    check_image_input(name, "input", &x, input, None)?;
    ensure_shape(y, (x.nrows(), output.features()));
    Ok((contiguous(x), y.as_slice_mut().expect("buffers are standard layout")))
}

/// The gradients of a backward pass matching a forward pass over `forward_batch` samples
/// (`None`: no forward pass ran): checks the input and `dy` (naming the layer with `name`) and,
/// when an input gradient is asked for, sizes `dx` and returns `dy` as contiguous rows with
/// `dx`'s buffer; `None` when no input gradient is asked for (a parameter-free layer then has
/// nothing to compute).
///
/// # Errors
/// [`Error::BackwardBeforeForward`] and [`Error::ShapeMismatch`] naming the layer.
pub(crate) fn backward_io<'d, 'g, F: Float>(
    name: &dyn Fn() -> String,
    (input, output): (ImageShape, ImageShape),
    forward_batch: Option<usize>,
    x: ArrayView2<'_, F>,
    dy: ArrayView2<'d, F>,
    dx: Option<&'g mut Array2<F>>,
) -> Result<Option<PassIo<'d, 'g, F>>> {
    let Some(batch) = forward_batch else {
        return Err(Error::BackwardBeforeForward { layer: name() });
    };
    check_image_input(name, "input", &x, input, Some(batch))?;
    check_image_input(name, "grad_output", &dy, output, Some(batch))?;
    let Some(dx) = dx else { return Ok(None) };
    ensure_shape(dx, (batch, input.features()));
    Ok(Some((contiguous(dy), dx.as_slice_mut().expect("buffers are standard layout"))))
}

/// `rows` itself when contiguous, else a contiguous copy.
fn contiguous<F: Float>(rows: ArrayView2<'_, F>) -> CowArray<'_, F, Ix2> {
    if rows.is_standard_layout() {
        CowArray::from(rows)
    } else {
        CowArray::from(rows.as_standard_layout().into_owned())
    }
}
