//! The [`Layer`] trait, the [`Mode`] a pass runs in, and helpers shared by layer implementations.

use std::any::Any;

use ndarray::{Array2, ArrayView2};

use crate::activation::Activation;
use crate::error::format_shape;
use crate::hooks::Context;
use crate::layers::ImageShape;
use crate::param::{BufferView, BufferViewMut, ParamView, ParamViewMut};
use crate::{Error, Float, Result};

/// Whether a pass is training or evaluating. Passed explicitly to every forward pass; there
/// is no hidden global mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// Training: BatchNorm uses (and updates) batch statistics, dropout is active.
    Train,
    /// Evaluation: BatchNorm uses its running statistics.
    Eval,
}

/// A differentiable building block that maps a `(batch, features)` array to another.
///
/// The layout follows llm.c: the *caller* (a container such as [`crate::Sequential`] or
/// [`crate::Network`]) owns the activation buffers; a layer writes its output into the buffer
/// it is given, and in backward it receives the same input and output again, so it only caches
/// what it cannot recompute cheaply. Buffers are reused across steps, so a steady-state training
/// step allocates nothing.
///
/// Backward *writes* the input gradient (when asked for one) and *adds* into the parameter
/// gradients; [`Layer::zero_grad`] resets them.
///
/// The trait is object safe: containers hold `Box<dyn Layer<F>>`.
///
/// A container (a layer with children) runs each child through
/// [`Context::forward_child`] / [`Context::backward_child`], which is where hooks see them, and
/// owns no parameters of its own: every parameter belongs to a leaf, so its full name is the
/// leaf's path plus the local name (`"3.branch.0.weight"`).
///
/// Most users never call these methods directly: they build a [`crate::Sequential`], wrap it in
/// a [`crate::Network`] and call `forward` / `backward` there.
///
/// # Typed access
/// Every layer is also an [`AsAny`] (implemented for every `'static` type, so an implementation
/// has nothing to write): a `&dyn Layer<F>` can be turned back into the concrete layer with
/// [`downcast_ref`](trait.Layer.html#method.downcast_ref) /
/// [`downcast_mut`](trait.Layer.html#method.downcast_mut), and a container's child reached by
/// path and type with [`crate::Sequential::layer`] / [`crate::Network::layer`].
pub trait Layer<F: Float>: Send + AsAny {
    /// The kind of layer, e.g. `"Linear"`, `"Tanh"`, `"Residual"`; used in reports.
    fn kind(&self) -> &'static str;

    /// A one-line description with the configuration, e.g. `"Linear(64→32)"`.
    fn describe(&self) -> String {
        self.kind().to_string()
    }

    /// The number of output features for `input_features` input features, or an error naming
    /// the layer when it cannot take that many (checked before any computation).
    fn output_features(&self, input_features: usize) -> Result<usize>;

    /// Computes `output` from `input` (shape `(batch, in)`), resizing `output` to
    /// `(batch, out)` if needed, and caches what backward needs.
    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        mode: Mode,
        ctx: &mut Context<'_, F>,
    ) -> Result<()>;

    /// Given the `input` and `output` of the last forward pass and `grad_output` = dL/d(output),
    /// writes dL/d(input) into `grad_input` (when `Some`; resized as needed) and adds the
    /// parameter gradients into the parameters' gradient buffers.
    ///
    /// # Errors
    /// [`Error::BackwardBeforeForward`] when no forward pass has run, and
    /// [`Error::ShapeMismatch`] when the arrays do not match that pass.
    fn backward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        grad_input: Option<&mut Array2<F>>,
        ctx: &mut Context<'_, F>,
    ) -> Result<()>;

    /// Calls `visitor` with each parameter of this layer and of its children, in a fixed order.
    fn visit_parameters<'a>(&'a self, _visitor: &mut dyn FnMut(ParamView<'a, F>)) {}

    /// Calls `visitor` with each parameter, mutably, in the same order as
    /// [`Layer::visit_parameters`].
    fn visit_parameters_mut<'a>(&'a mut self, _visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {}

    /// Calls `visitor` with each non-trainable buffer (e.g. BatchNorm's `running_mean`) of this
    /// layer and of its children, in a fixed order. Containers forward to their children.
    fn visit_buffers<'a>(&'a self, _visitor: &mut dyn FnMut(BufferView<'a, F>)) {}

    /// Calls `visitor` with each buffer, mutably, in the same order as [`Layer::visit_buffers`].
    fn visit_buffers_mut<'a>(&'a mut self, _visitor: &mut dyn FnMut(BufferViewMut<'a, F>)) {}

    /// Calls `visitor` with each direct child layer and its name (`"0"`, `"branch"`, …).
    /// Leaf layers have none.
    fn visit_children<'a>(&'a self, _visitor: &mut dyn FnMut(&str, &'a dyn Layer<F>)) {}

    /// The direct child called `name`, if any (mutable, e.g. to edit its weights).
    fn child_mut(&mut self, _name: &str) -> Option<&mut dyn Layer<F>> {
        None
    }

    /// Renames the direct child called `from` to `to`: paths, hooks, reports and safetensors
    /// keys use `to` from now on — e.g. a residual block's `"shortcut"` to torchvision's
    /// `"downsample"`, or a [`crate::recurrent::SequenceModel`]'s `"rnn"` and `"head"` to the
    /// `"lstm"` and `"fc"` of the PyTorch module whose weights it loads. [`crate::Sequential`],
    /// [`crate::ResidualBlock`], [`crate::Highway`] and [`crate::recurrent::SequenceModel`]
    /// implement it; a layer without children refuses.
    ///
    /// ```
    /// use gradflow::{Highway, Layer};
    /// use gradflow::activation::Relu;
    /// use rand::SeedableRng;
    ///
    /// let mut layer = Highway::<f32>::new(4, Relu, -2.0, &mut rand::rngs::StdRng::seed_from_u64(0))?;
    /// layer.rename_child("transform", "H")?;
    /// layer.rename_child("gate", "T")?;
    /// let names: Vec<String> = gradflow::named_parameters(&layer).into_iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["H.weight", "H.bias", "T.weight", "T.bias"]);
    /// // A name used twice in one block is refused, naming the block; nothing changes.
    /// let err = layer.rename_child("H", "T").unwrap_err();
    /// assert!(err.to_string().contains("`T` already names another child"), "{err}");
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the layer when it has no child `from`, or when `to` is
    /// empty, has a `.`, or already names another child; nothing changes.
    fn rename_child(&mut self, from: &str, to: &str) -> Result<()> {
        Err(Error::config(
            self.describe(),
            "name",
            format!("cannot rename `{from}` to `{to}`: a {} has no children to rename", self.kind()),
        ))
    }

    /// The shape `(C, H, W)` of this layer's output rows when they are images (see
    /// [`crate::layers::ImageShape`] for how images travel), or `None`. Image layers report
    /// theirs, containers their last child's; recorders use it for per-channel statistics.
    fn image_shape(&self) -> Option<ImageShape> {
        None
    }

    /// The activation this layer applies, if it is an activation layer (used by recorders for
    /// saturation and dead-unit statistics).
    fn as_activation(&self) -> Option<&dyn Activation<F>> {
        None
    }

    /// Resets every parameter gradient to zero.
    fn zero_grad(&mut self) {
        self.visit_parameters_mut(&mut |mut p| match p.grad.as_slice_mut() {
            Some(grad) => F::fill_zero(grad),
            None => p.grad.fill(F::zero()),
        });
    }

    /// The total number of scalar parameters.
    fn num_parameters(&self) -> usize {
        let mut n = 0;
        self.visit_parameters(&mut |p| n += p.value.len());
        n
    }
}

/// Turns a layer seen through `dyn Layer<F>` back into its concrete type. Implemented for every
/// `'static` type, so a [`Layer`] implementation never writes it; use it through
/// [`downcast_ref`](trait.Layer.html#method.downcast_ref) and
/// [`downcast_mut`](trait.Layer.html#method.downcast_mut).
pub trait AsAny: Any {
    /// The value as [`Any`].
    fn as_any(&self) -> &dyn Any;

    /// The value as [`Any`], mutably.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl<'a, F: Float> dyn Layer<F> + 'a {
    /// The layer as a `T`, or `None` when it is of another type.
    ///
    /// ```
    /// use gradflow::{Layer, Linear, Sequential};
    /// use rand::SeedableRng;
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let model = Sequential::<f32>::builder(4).linear(3).build(&mut rng)?;
    /// let first: &dyn Layer<f32> = model.get(0).unwrap();
    /// assert_eq!(first.downcast_ref::<Linear<f32>>().unwrap().weight().dim(), (3, 4));
    /// assert!(first.downcast_ref::<Sequential<f32>>().is_none());
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    pub fn downcast_ref<T: Layer<F>>(&self) -> Option<&T> {
        self.as_any().downcast_ref::<T>()
    }

    /// The layer as a `T`, mutably, or `None` when it is of another type.
    pub fn downcast_mut<T: Layer<F>>(&mut self) -> Option<&mut T> {
        self.as_any_mut().downcast_mut::<T>()
    }
}

/// `T`'s name without module paths: `Highway<f32>` for `gradflow::layers::highway::Highway<f32>`
/// (for error messages).
pub(crate) fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    // Where the identifier being copied starts in `out`: a `::` after it drops it.
    let mut start = 0;
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.truncate(start);
            continue;
        }
        if !(c.is_alphanumeric() || c == '_') {
            out.push(c);
            start = out.len();
            continue;
        }
        out.push(c);
    }
    out
}

/// Resizes `buffer` to `shape`, reallocating only when the shape changes (or the buffer is not in standard layout) (contents are then
/// zero; otherwise they are left as they were and the caller overwrites them).
pub fn ensure_shape<F: Float>(buffer: &mut Array2<F>, shape: (usize, usize)) {
    if buffer.dim() != shape || !buffer.is_standard_layout() {
        *buffer = Array2::zeros(shape);
    }
}

/// Checks that `array` is `(rows, cols)`, where `None` accepts any size on that axis.
pub fn check_shape<F>(
    layer: &dyn Fn() -> String,
    what: &'static str,
    array: &ArrayView2<'_, F>,
    rows: Option<usize>,
    cols: Option<usize>,
) -> Result<()> {
    let (r, c) = array.dim();
    let rows_ok = rows.is_none_or(|x| x == r);
    let cols_ok = cols.is_none_or(|x| x == c);
    if rows_ok && cols_ok {
        return Ok(());
    }
    let show = |d: Option<usize>, name: &str| d.map_or(name.to_string(), |v| v.to_string());
    Err(Error::ShapeMismatch {
        layer: layer(),
        what,
        expected: format!("({}, {})", show(rows, "batch"), show(cols, "features")),
        actual: format_shape(array.shape()),
    })
}

/// Checks that a layer taking `expected` input features was given `given` (as
/// [`Layer::output_features`] must), with an error naming the layer and both widths.
pub fn check_input_features(layer: &dyn Fn() -> String, expected: usize, given: usize) -> Result<()> {
    if expected == given {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        layer: layer(),
        what: "input",
        expected: format!("(batch, {expected})"),
        actual: format!("(batch, {given})"),
    })
}
