//! [`Conv2d`]: 2-D convolution over a batch of images, in PyTorch's layout, computed as a matrix
//! product (im2col, then the crate's product routines).

use std::sync::Arc;

use ndarray::{Array1, Array2, Array4, ArrayView2, ArrayViewMut1, ArrayViewMut4, Ix1, Ix4};
use rand::RngCore;

use super::image::{ImageShape, check_image_features, check_image_input};
use super::passes::{self, Geometry};
use super::window::{Window, extent};
use crate::hooks::Context;
use crate::init::{Fans, Initializer, LinearDefault, sample_as};
use crate::layer::{Layer, Mode, ensure_shape};
use crate::param::{Param, ParamView, ParamViewMut};
use crate::vectorize::vectorized;
use crate::{Error, Float, Result};

/// How a convolution pads its input with zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// `(h, w)` zero rows above and below, and zero columns left and right, as PyTorch's
    /// `padding=(h, w)`; `Explicit(0, 0)` is PyTorch's `padding='valid'`.
    Explicit(usize, usize),
    /// PyTorch's `padding='same'`: the output has the input's height and width. Each axis gets
    /// `d·(k − 1)` zeros in all, half of them (rounded down) before and the rest after, as
    /// PyTorch pads. Only for stride 1 (PyTorch refuses it for strided convolutions too).
    Same,
}

/// How to build a [`Conv2d`]: channels, kernel, stride, padding, dilation, groups, bias and
/// initializers. Defaults are PyTorch's `nn.Conv2d`: stride 1, no padding, dilation 1, one
/// group, a bias, and [`LinearDefault`] for weight and bias.
///
/// # Default initialization
/// `nn.Conv2d.reset_parameters` calls `kaiming_uniform_(weight, a=√5)`: the gain of a leaky ReLU
/// of slope √5 is √(2/(1 + 5)) = 1/√3, so the bound `gain·√(3/fan_in)` is exactly
/// `1/√fan_in`, with `fan_in = in_channels/groups · kH · kW`; the bias is drawn from the same
/// U(±1/√fan_in). That is [`LinearDefault`] with the convolution's fans: a weight variance of
/// `1/(3·fan_in)`, a third of LeCun's, so that without normalization a deep stack of these
/// shrinks its signal layer by layer. For ReLU networks use He initialization
/// ([`crate::init::KaimingNormal`]), or follow each convolution by a
/// [`crate::layers::BatchNorm2d`].
///
/// Every initializer sees the weight as the `(out, in/groups·kH·kW)` matrix PyTorch's
/// `_calculate_fan_in_and_fan_out` and `orthogonal_` use, with `fan_in = in/groups·kH·kW` and
/// `fan_out = out·kH·kW` ([`Fans::conv`]).
#[derive(Debug, Clone)]
pub struct Conv2dConfig {
    /// Input channels (`in_channels`).
    pub in_channels: usize,
    /// Output channels (`out_channels`).
    pub out_channels: usize,
    /// `(kH, kW)` (`kernel_size`).
    pub kernel_size: (usize, usize),
    /// `(sH, sW)` (default `(1, 1)`).
    pub stride: (usize, usize),
    /// Zero padding (default `Explicit(0, 0)`).
    pub padding: Padding,
    /// `(dH, dW)`: the spacing between kernel taps (default `(1, 1)`).
    pub dilation: (usize, usize),
    /// Channel groups (default 1): input and output channels are split into `groups` groups and
    /// output group `g` sees input group `g` only (`groups = in_channels` is a depthwise
    /// convolution). Both channel counts must be multiples of it.
    pub groups: usize,
    /// Whether there is a bias (default `true`).
    pub bias: bool,
    /// Weight initializer (default [`LinearDefault`]: PyTorch's).
    pub weight_init: Arc<dyn Initializer>,
    /// Bias initializer (default [`LinearDefault`]: PyTorch's).
    pub bias_init: Arc<dyn Initializer>,
    /// Gain of the activation that follows, passed to the weight initializer (default 1).
    pub activation_gain: f64,
}

impl Conv2dConfig {
    /// `nn.Conv2d(in_channels, out_channels, kernel_size)` with a square kernel and PyTorch's
    /// defaults.
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: usize) -> Self {
        Conv2dConfig {
            in_channels,
            out_channels,
            kernel_size: (kernel_size, kernel_size),
            stride: (1, 1),
            padding: Padding::Explicit(0, 0),
            dilation: (1, 1),
            groups: 1,
            bias: true,
            weight_init: Arc::new(LinearDefault),
            bias_init: Arc::new(LinearDefault),
            activation_gain: 1.0,
        }
    }

    /// Sets a `(kH, kW)` kernel.
    pub fn kernel_size(mut self, kernel: (usize, usize)) -> Self {
        self.kernel_size = kernel;
        self
    }

    /// Sets the same stride on both axes.
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = (stride, stride);
        self
    }

    /// Sets `(sH, sW)`.
    pub fn stride_hw(mut self, stride: (usize, usize)) -> Self {
        self.stride = stride;
        self
    }

    /// Pads both axes with `padding` zeros on each side.
    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = Padding::Explicit(padding, padding);
        self
    }

    /// Sets the padding ([`Padding::Explicit`] or [`Padding::Same`]).
    pub fn padding_mode(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Sets the same dilation on both axes.
    pub fn dilation(mut self, dilation: usize) -> Self {
        self.dilation = (dilation, dilation);
        self
    }

    /// Sets `(dH, dW)`.
    pub fn dilation_hw(mut self, dilation: (usize, usize)) -> Self {
        self.dilation = dilation;
        self
    }

    /// Sets the number of channel groups.
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Sets whether there is a bias.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets the weight initializer.
    pub fn weight_init(mut self, init: impl Initializer + 'static) -> Self {
        self.weight_init = Arc::new(init);
        self
    }

    /// Sets the bias initializer.
    pub fn bias_init(mut self, init: impl Initializer + 'static) -> Self {
        self.bias_init = Arc::new(init);
        self
    }

    /// Sets the gain of the activation that follows (used by He/Kaiming initializers).
    pub fn activation_gain(mut self, gain: f64) -> Self {
        self.activation_gain = gain;
        self
    }

    /// The zeros added `(above, below)` and `(left, right)`.
    fn pads(&self) -> ((usize, usize), (usize, usize)) {
        match self.padding {
            Padding::Explicit(h, w) => ((h, h), (w, w)),
            Padding::Same => {
                let total_h = extent(self.kernel_size.0, self.dilation.0) - 1;
                let total_w = extent(self.kernel_size.1, self.dilation.1) - 1;
                ((total_h / 2, total_h - total_h / 2), (total_w / 2, total_w - total_w / 2))
            }
        }
    }

    /// A short description: `"Conv2d(3→16, 3×3, stride=2, padding=1)"`.
    fn describe(&self) -> String {
        let mut s = format!(
            "Conv2d({}→{}, {}×{}",
            self.in_channels, self.out_channels, self.kernel_size.0, self.kernel_size.1
        );
        let pair = |(a, b): (usize, usize)| if a == b { a.to_string() } else { format!("({a}, {b})") };
        if self.stride != (1, 1) {
            s += &format!(", stride={}", pair(self.stride));
        }
        match self.padding {
            Padding::Explicit(0, 0) => {}
            Padding::Explicit(h, w) => s += &format!(", padding={}", pair((h, w))),
            Padding::Same => s += ", padding=same",
        }
        if self.dilation != (1, 1) {
            s += &format!(", dilation={}", pair(self.dilation));
        }
        if self.groups != 1 {
            s += &format!(", groups={}", self.groups);
        }
        if !self.bias {
            s += ", bias=false";
        }
        s + ")"
    }

    /// Builds the layer for input images of `input_size = (height, width)`, drawing the weight
    /// and then the bias from `rng`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field when a size, the stride, the dilation or the
    /// groups are 0, when a channel count is not a multiple of `groups`, for
    /// [`Padding::Same`] with a stride other than 1, or when an initializer refuses;
    /// [`Error::ShapeMismatch`] naming the layer and both shapes when the (dilated) kernel is
    /// larger than the padded input; [`Error::InvalidConfig`] naming `weight`, `output` or
    /// `columns` when the weight, the output images or the im2col matrix of one sample
    /// (`in/groups·kH·kW × OH·OW`) would exceed [`crate::limits::MAX_TENSOR_ELEMENTS`].
    pub fn build<F: Float>(&self, input_size: (usize, usize), rng: &mut dyn RngCore) -> Result<Conv2d<F>> {
        let name = self.describe();
        let (kernel, stride, dilation) = (self.kernel_size, self.stride, self.dilation);
        let sizes = [
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("kernel_size", kernel.0.min(kernel.1)),
            ("stride", stride.0.min(stride.1)),
            ("dilation", dilation.0.min(dilation.1)),
            ("groups", self.groups),
        ];
        for (field, value) in sizes {
            if value == 0 {
                return Err(Error::config(&name, field, "must be at least 1, got 0"));
            }
        }
        for (field, channels) in [("in_channels", self.in_channels), ("out_channels", self.out_channels)] {
            if !channels.is_multiple_of(self.groups) {
                return Err(Error::config(
                    &name,
                    field,
                    format!("{channels} channels cannot be split into {} groups", self.groups),
                ));
            }
        }
        if self.padding == Padding::Same && stride != (1, 1) {
            return Err(Error::config(
                &name,
                "padding",
                format!("'same' padding needs stride 1 (as in PyTorch), got stride {stride:?}"),
            ));
        }
        let input = ImageShape::new(self.in_channels, input_size.0, input_size.1);
        input.check_not_empty(&name)?;
        let (pad_h, pad_w) = self.pads();
        let Some(window) = Window::new(input_size, kernel, stride, dilation, pad_h, pad_w) else {
            let (span_h, span_w) = (extent(kernel.0, dilation.0), extent(kernel.1, dilation.1));
            return Err(Error::ShapeMismatch {
                layer: name,
                what: "input",
                expected: format!(
                    "images of at least {span_h}×{span_w} once padded (the kernel's span with its dilation)"
                ),
                actual: format!(
                    "{input} images, {}×{} once padded",
                    input.height.saturating_add(pad_h.0).saturating_add(pad_h.1),
                    input.width.saturating_add(pad_w.0).saturating_add(pad_w.1)
                ),
            });
        };
        let in_per_group = self.in_channels / self.groups;
        // The sizes first: the fans multiply the kernel's sides, which must not overflow.
        crate::alloc::check_len(&name, "weight", &[self.out_channels, in_per_group, kernel.0, kernel.1])?;
        crate::alloc::check_len(&name, "output", &[self.out_channels, window.out_h, window.out_w])?;
        // The im2col matrix of one sample and group (`in/groups·kH·kW × OH·OW`), which forward
        // and backward lay out in a workspace: a 64×64 kernel over 1024×1024 images would ask
        // for 4.3·10⁹ entries at the first pass.
        crate::alloc::check_len(
            &name,
            "columns",
            &[in_per_group, kernel.0, kernel.1, window.out_h, window.out_w],
        )?;
        let fans = Fans::conv(in_per_group, self.out_channels, kernel, self.activation_gain);
        let k = in_per_group * kernel.0 * kernel.1;
        let flat = sample_as::<F>(&*self.weight_init, (self.out_channels, k), fans, rng)?;
        let weight = flat
            .into_shape_with_order((self.out_channels, in_per_group, kernel.0, kernel.1))
            .expect("out × (in/groups·kH·kW) entries");
        let bias = if self.bias {
            let b = sample_as::<F>(&*self.bias_init, (1, self.out_channels), fans, rng)?;
            Some(Param::try_new(b.into_shape_with_order(self.out_channels).expect("1 × out"), &name, "bias")?)
        } else {
            None
        };
        let output = ImageShape::new(self.out_channels, window.out_h, window.out_w);
        let weight = Param::try_new(weight, &name, "weight")?;
        Ok(Conv2d {
            config: self.clone(),
            window,
            input,
            output,
            weight,
            bias,
            geometry: Geometry::new(input, output, self.groups, window),
            flipped: Vec::new(),
            partials: Vec::new(),
            forward_batch: None,
        })
    }
}

/// A 2-D convolution (cross-correlation, as in every deep-learning library) over images in NCHW
/// rows, exactly as PyTorch's `nn.Conv2d` with `padding_mode='zeros'`: same parameter names
/// (`weight`, `bias`), layouts (`weight` is `(out, in/groups, kH, kW)`, `bias` is `(out)`),
/// output sizes and defaults.
///
/// For output channel `o` in group `g` and output position `(i, j)`:
/// `y[o, i, j] = bias[o] + Σ_{c, ki, kj} weight[o, c, ki, kj] · x[g·in/groups + c, i·sH + ki·dH − padTop, j·sW + kj·dW − padLeft]`,
/// with zeros outside the input.
///
/// # Shapes
/// input `(batch, in·H·W)` → output `(batch, out·OH·OW)`, with
/// `OH = ⌊(H + padTop + padBottom − dH·(kH − 1) − 1)/sH⌋ + 1` (and the same for `OW`). The layer
/// is built for one input size (see [`crate::layers::ImageShape`] for how images travel).
///
/// # How it is computed
/// For a few samples at a time, the inputs each output position reads are laid side by side as
/// the columns of a matrix (im2col), and the output of a group is one matrix product
/// `weight_g (out/groups, in/groups·kH·kW) · columns`, through the same product routines as
/// [`crate::Linear`]; the bias is added while the product is copied into the output rows.
/// Backward recomputes the columns, `dW += dY · columnsᵀ`, and the input gradient is
/// `weightᵀ · dY` mapped back onto the input (col2im). The column matrices live in a per-thread
/// workspace that is reused, so a steady-state training step allocates nothing.
///
/// # Gradients
/// `dW[o, c, ki, kj] += Σ_{n, i, j} dy[n, o, i, j] · x[n, …]`, `db[o] += Σ_{n, i, j} dy[n, o, i, j]`,
/// and `dx` is the transposed convolution of `dy` with the weight.
///
/// ```
/// use gradflow::layers::{Conv2d, Conv2dConfig, ImageShape};
/// use gradflow::{Layer, Mode, hooks::Context};
/// use ndarray::Array2;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// // nn.Conv2d(3, 16, 3, stride=2, padding=1) on 32×32 images.
/// let mut conv: Conv2d<f32> = Conv2dConfig::new(3, 16, 3).stride(2).padding(1).build((32, 32), &mut rng)?;
/// assert_eq!(conv.weight().shape(), [16, 3, 3, 3]);
/// assert_eq!(conv.image_shape(), Some(ImageShape::new(16, 16, 16)));
/// let x = Array2::<f32>::ones((4, 3 * 32 * 32));
/// let mut y = Array2::zeros((0, 0));
/// conv.forward(x.view(), &mut y, Mode::Train, &mut Context::new())?;
/// assert_eq!(y.dim(), (4, 16 * 16 * 16));
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Conv2d<F: Float> {
    config: Conv2dConfig,
    window: Window,
    input: ImageShape,
    output: ImageShape,
    weight: Param<F, Ix4>,
    bias: Option<Param<F, Ix1>>,
    /// The layouts of the passes (see `passes.rs`).
    geometry: Geometry,
    /// The weight of the transposed convolution, rebuilt at each backward pass (stride 1).
    flipped: Vec<F>,
    /// The gradients of the threads other than the caller's in a backward pass split between
    /// threads, reused.
    partials: Vec<F>,
    forward_batch: Option<usize>,
}

impl<F: Float> Conv2d<F> {
    /// A layer with the given weight `(out, in/groups, kH, kW)` and optional bias `(out)`, for
    /// `input` images, with the stride, padding, dilation and groups of `config` (its channel
    /// counts, kernel size and bias flag are taken from the arrays).
    ///
    /// # Errors
    /// As [`Conv2dConfig::build`], [`Error::InvalidConfig`] naming `weight` or `bias` when an
    /// entry is NaN or infinite, and [`Error::ShapeMismatch`] when the bias length is not `out`
    /// or `input.channels` is not `groups` × the weight's second axis.
    pub fn from_weights(
        weight: Array4<F>,
        bias: Option<Array1<F>>,
        input: ImageShape,
        config: &Conv2dConfig,
    ) -> Result<Self> {
        let (out, in_per_group, kh, kw) = weight.dim();
        let layer_name = || format!("Conv2d({}→{out}, {kh}×{kw})", input.channels);
        crate::check_finite(&layer_name(), "weight", weight.iter())?;
        if let Some(b) = &bias {
            crate::check_finite(&layer_name(), "bias", b.iter())?;
        }
        let mut config = config.clone();
        config.in_channels = input.channels;
        config.out_channels = out;
        config.kernel_size = (kh, kw);
        config.bias = bias.is_some();
        // The arrays replace whatever is drawn here: zeros, from a generator that is not used.
        config.weight_init = Arc::new(crate::init::Zeros);
        config.bias_init = Arc::new(crate::init::Zeros);
        let mut unused = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
        let mut layer = config.build::<F>((input.height, input.width), &mut unused)?;
        if in_per_group * config.groups != input.channels {
            return Err(Error::shape(
                layer.describe(),
                "weight",
                format!("({out}, {}, {kh}, {kw}) for {input} inputs", input.channels / config.groups),
                weight.shape(),
            ));
        }
        if let Some(b) = &bias
            && b.len() != out
        {
            return Err(Error::shape(layer.describe(), "bias", format!("({out})"), b.shape()));
        }
        layer.weight = Param::new(weight.as_standard_layout().into_owned());
        layer.bias = bias.map(Param::new);
        Ok(layer)
    }

    /// The configuration the layer was built with.
    pub fn config(&self) -> &Conv2dConfig {
        &self.config
    }

    /// The shape of the input images.
    pub fn input_shape(&self) -> ImageShape {
        self.input
    }

    /// The shape of the output images.
    pub fn output_shape(&self) -> ImageShape {
        self.output
    }

    /// The weight, `(out, in/groups, kH, kW)`.
    pub fn weight(&self) -> &Array4<F> {
        &self.weight.value
    }

    /// The weight, as a mutable view (its shape cannot change).
    pub fn weight_mut(&mut self) -> ArrayViewMut4<'_, F> {
        self.weight.value.view_mut()
    }

    /// The bias, `(out)`, if any.
    pub fn bias(&self) -> Option<&Array1<F>> {
        self.bias.as_ref().map(|b| &b.value)
    }

    /// The bias, as a mutable view (its length cannot change), if any.
    pub fn bias_mut(&mut self) -> Option<ArrayViewMut1<'_, F>> {
        self.bias.as_mut().map(|b| b.value.view_mut())
    }

    /// The accumulated weight gradient.
    pub fn weight_grad(&self) -> &Array4<F> {
        &self.weight.grad
    }

    /// The accumulated bias gradient, if there is a bias.
    pub fn bias_grad(&self) -> Option<&Array1<F>> {
        self.bias.as_ref().map(|b| &b.grad)
    }

    /// Input channels, output channels and rows of the column matrix (`in·kH·kW`) of one group.
    fn per_group(&self) -> (usize, usize, usize) {
        let groups = self.config.groups;
        let in_g = self.input.channels / groups;
        (in_g, self.output.channels / groups, in_g * self.window.taps())
    }

    /// Refuses weights or biases whose shape was changed through `weight_mut` / `bias_mut`.
    fn check_parameters(&self) -> Result<()> {
        let (_, _, k) = self.per_group();
        let expected =
            [self.output.channels, k / self.window.taps(), self.window.kernel.0, self.window.kernel.1];
        if self.weight.value.shape() != expected || self.weight.grad.shape() != expected {
            return Err(Error::shape(
                self.describe(),
                "weight",
                crate::error::format_shape(&expected),
                self.weight.value.shape(),
            ));
        }
        if let Some(b) = &self.bias
            && (b.value.len() != self.output.channels || b.grad.len() != self.output.channels)
        {
            return Err(Error::shape(
                self.describe(),
                "bias",
                format!("({})", self.output.channels),
                b.value.shape(),
            ));
        }
        Ok(())
    }
}

/// Runs `f` with a buffer of `len` entries: this thread's workspace, or (when it is in use
/// further up the stack, which gradflow's own layers never cause) a fresh allocation.
pub(crate) fn with_buffer<F: Float, R>(len: usize, f: impl FnOnce(&mut [F]) -> R) -> R {
    let mut task = Some(f);
    if let Some(result) =
        crate::scratch::with_workspace(len, |buffer| (task.take().expect("called once"))(buffer))
    {
        return result;
    }
    let mut own = vec![F::zero(); len];
    (task.take().expect("not called when the workspace was in use"))(&mut own)
}

impl<F: Float> Layer<F> for Conv2d<F> {
    fn kind(&self) -> &'static str {
        "Conv2d"
    }

    /// E.g. `"Conv2d(3→16, 3×3, stride=2, padding=1; 3×32×32→16×16×16)"`.
    fn describe(&self) -> String {
        let base = self.config.describe();
        format!("{}; {}→{})", &base[..base.len() - 1], self.input, self.output)
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
        check_image_input(&|| self.describe(), "input", &input, self.input, None)?;
        self.check_parameters()?;
        let batch = input.nrows();
        ensure_shape(output, (batch, self.output.features()));
        let x = input.as_standard_layout();
        let y = output.as_slice_mut().expect("buffers are standard layout");
        let weight = self.weight.value.as_standard_layout();
        let bias = self.bias.as_ref().map(|b| b.value.to_vec_cow());
        passes::forward(
            &self.geometry,
            weight.as_slice().expect("standard layout"),
            bias.as_deref(),
            x.as_slice().expect("standard layout"),
            y,
        );
        self.forward_batch = Some(batch);
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
        let Some(batch) = self.forward_batch else {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        };
        let name = || self.describe();
        check_image_input(&name, "input", &input, self.input, Some(batch))?;
        check_image_input(&name, "grad_output", &grad_output, self.output, Some(batch))?;
        self.check_parameters()?;
        let x = input.as_standard_layout();
        let dy = grad_output.as_standard_layout();
        let in_features = self.input.features();
        let dx = grad_input.map(|g| {
            ensure_shape(g, (batch, in_features));
            g.as_slice_mut().expect("buffers are standard layout")
        });
        let Conv2d { weight, bias, geometry, flipped, partials, .. } = self;
        let weight_value = weight.value.as_standard_layout();
        let weight_value = weight_value.as_slice().expect("standard layout");
        if dx.is_some() && geometry.transposed.is_some() {
            flipped.resize(weight_value.len(), F::zero());
            passes::flip_weight(geometry, weight_value, flipped);
        }
        let bias_len = bias.as_ref().map_or(0, |b| b.grad.len());
        partials.resize(geometry.partial_len(batch, weight_value.len(), bias_len), F::zero());
        let mut grads = passes::Grads {
            weight: weight.grad.as_slice_mut().expect("owned parameters are contiguous"),
            bias: bias.as_mut().map(|b| b.grad.as_slice_mut().expect("owned parameters are contiguous")),
        };
        let weights = passes::Weights { weight: weight_value, flipped };
        passes::backward(
            geometry,
            &weights,
            x.as_slice().expect("standard layout"),
            dy.as_slice().expect("standard layout"),
            dx,
            &mut grads,
            partials,
        );
        Ok(())
    }

    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        visitor(self.weight.view("weight"));
        if let Some(b) = &self.bias {
            visitor(b.view("bias"));
        }
    }

    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        visitor(self.weight.view_mut("weight"));
        if let Some(b) = &mut self.bias {
            visitor(b.view_mut("bias"));
        }
    }
}

/// The entries of a 1-D array as a slice, borrowed when contiguous.
trait ToVecCow<F: Float> {
    fn to_vec_cow(&self) -> std::borrow::Cow<'_, [F]>;
}

impl<F: Float> ToVecCow<F> for Array1<F> {
    fn to_vec_cow(&self) -> std::borrow::Cow<'_, [F]> {
        match self.as_slice() {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => std::borrow::Cow::Owned(self.to_vec()),
        }
    }
}

/// Copies the product of one group of output channels, `(out_g, samples·positions)` (sample
/// after sample within each row), into the `samples` output rows `y`, at channels
/// `first_channel..first_channel + out_g`, adding each channel's bias.
pub(crate) fn scatter_product<F: Float>(
    product: &[F],
    samples: usize,
    positions: usize,
    first_channel: usize,
    bias: Option<&[F]>,
    y: &mut [F],
) {
    let columns = samples * positions;
    let (out_g, row_len) = (product.len() / columns, y.len() / samples);
    vectorized(
        #[inline(always)]
        || {
            for (b, row) in y.chunks_exact_mut(row_len).enumerate() {
                for o in 0..out_g {
                    let channel = first_channel + o;
                    let c = bias.map_or(F::zero(), |bias| bias[channel]);
                    let src = &product[o * columns + b * positions..][..positions];
                    let dst = &mut row[channel * positions..(channel + 1) * positions];
                    dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s + c);
                }
            }
        },
    )
}

/// The reverse of [`scatter_product`]: lays the gradient rows `dy` of `samples` samples, channels
/// `first_channel..first_channel + out_g`, out as `(out_g, samples·positions)` in `product`, and
/// adds each channel's sum into `bias_grad`.
pub(crate) fn gather_product<F: Float>(
    dy: &[F],
    samples: usize,
    positions: usize,
    first_channel: usize,
    product: &mut [F],
    bias_grad: Option<&mut [F]>,
) {
    let columns = samples * positions;
    let (out_g, row_len) = (product.len() / columns, dy.len() / samples);
    let mut bias_grad = bias_grad;
    vectorized(
        #[inline(always)]
        || {
            for (b, row) in dy.chunks_exact(row_len).enumerate() {
                for o in 0..out_g {
                    let channel = first_channel + o;
                    let src = &row[channel * positions..(channel + 1) * positions];
                    let dst = &mut product[o * columns + b * positions..][..positions];
                    let mut lanes = [F::zero(); 8];
                    for (i, (d, &s)) in dst.iter_mut().zip(src).enumerate() {
                        *d = s;
                        lanes[i % 8] += s;
                    }
                    if let Some(db) = bias_grad.as_deref_mut() {
                        db[channel] += lanes.iter().fold(F::zero(), |a, &b| a + b);
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use ndarray::s;
    use rand::SeedableRng;

    fn rng(seed: u64) -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(seed)
    }

    fn input(batch: usize, image: ImageShape) -> Array2<f64> {
        Array2::from_shape_fn((batch, image.features()), |(i, j)| ((i * 13 + j * 7) % 17) as f64 / 8.0 - 1.0)
    }

    /// The convolution by its definition.
    fn naive(conv: &Conv2d<f64>, x: &Array2<f64>) -> Array2<f64> {
        let (inp, out, w) = (conv.input, conv.output, &conv.window);
        let groups = conv.config.groups;
        let (in_g, out_g) = (inp.channels / groups, out.channels / groups);
        Array2::from_shape_fn((x.nrows(), out.features()), |(n, j)| {
            let (o, i, jj) = (j / out.spatial(), (j / out.width) % out.height, j % out.width);
            let g = o / out_g;
            let mut sum = conv.bias().map_or(0.0, |b| b[o]);
            for c in 0..in_g {
                for ki in 0..w.kernel.0 {
                    for kj in 0..w.kernel.1 {
                        let ih = (i * w.stride.0 + ki * w.dilation.0) as isize - w.pad_h.0 as isize;
                        let iw = (jj * w.stride.1 + kj * w.dilation.1) as isize - w.pad_w.0 as isize;
                        if (0..inp.height as isize).contains(&ih) && (0..inp.width as isize).contains(&iw) {
                            let col = inp.index(g * in_g + c, ih as usize, iw as usize);
                            sum += conv.weight()[[o, c, ki, kj]] * x[[n, col]];
                        }
                    }
                }
            }
            sum
        })
    }

    fn configs() -> Vec<(Conv2dConfig, (usize, usize))> {
        vec![
            (Conv2dConfig::new(2, 3, 3).padding(1), (5, 4)),
            (Conv2dConfig::new(2, 4, 3).stride(2).padding(1).bias(false), (6, 5)),
            (Conv2dConfig::new(3, 2, 2).kernel_size((2, 3)).stride_hw((1, 2)).dilation_hw((2, 1)), (6, 7)),
            (Conv2dConfig::new(4, 6, 3).groups(2).padding_mode(Padding::Same), (4, 5)),
            (Conv2dConfig::new(4, 4, 3).groups(4).dilation(2).padding_mode(Padding::Same), (5, 5)),
            (Conv2dConfig::new(3, 2, 1).stride(2), (5, 5)),
            (Conv2dConfig::new(1, 2, 4).kernel_size((4, 2)).padding_mode(Padding::Same), (4, 3)),
        ]
    }

    #[test]
    fn forward_matches_the_definition_for_every_setting() {
        for (config, size) in configs() {
            let mut conv: Conv2d<f64> = config.build(size, &mut rng(1)).unwrap();
            let x = input(3, conv.input);
            let mut y = Array2::zeros((0, 0));
            conv.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
            let expected = naive(&conv, &x);
            let err = (&y - &expected).iter().fold(0.0f64, |m, d| m.max(d.abs()));
            assert!(err < 1e-12, "{}: error {err}", conv.describe());
        }
    }

    #[test]
    fn same_padding_keeps_the_size_and_pads_the_extra_zero_after() {
        // PyTorch: total padding d·(k − 1); left = total // 2, the rest right. k = 4: 1 before, 2 after.
        let conv: Conv2d<f64> =
            Conv2dConfig::new(1, 1, 4).padding_mode(Padding::Same).build((5, 6), &mut rng(0)).unwrap();
        assert_eq!((conv.window.pad_h, conv.window.pad_w), ((1, 2), (1, 2)));
        assert_eq!(conv.output_shape(), ImageShape::new(1, 5, 6));
    }

    #[test]
    fn gradients_pass_finite_difference_check_for_every_setting() {
        for (config, size) in configs() {
            let mut conv: Conv2d<f64> = config.build(size, &mut rng(2)).unwrap();
            let x = input(2, conv.input);
            let report = check_layer(&mut conv, &x, GradCheckConfig::default()).unwrap();
            assert_eq!(report.tensors.len(), if conv.bias().is_some() { 3 } else { 2 });
            report.within(1e-6).unwrap_or_else(|e| panic!("{}: {e}", conv.describe()));
        }
    }

    /// Forward and backward of `conv` on the batch `x` at once, then sample by sample: the same
    /// outputs and gradients.
    fn assert_batch_equals_samples(conv: &mut Conv2d<f64>, x: &Array2<f64>) {
        let mut y = Array2::zeros((0, 0));
        conv.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        let err = (&y - &naive(conv, x)).iter().fold(0.0f64, |m, d| m.max(d.abs()));
        assert!(err < 1e-12, "{}: {err}", conv.describe());
        let dy = Array2::from_shape_fn(y.dim(), |(i, j)| ((i + 2 * j) % 5) as f64 - 2.0);
        let mut dx = Array2::zeros((0, 0));
        conv.zero_grad();
        conv.backward(x.view(), y.view(), dy.view(), Some(&mut dx), &mut Context::new()).unwrap();
        let (dw_all, db_all) = (conv.weight_grad().clone(), conv.bias_grad().unwrap().clone());
        conv.zero_grad();
        for n in 0..x.nrows() {
            let (xn, dyn_) = (x.slice(s![n..n + 1, ..]), dy.slice(s![n..n + 1, ..]));
            let mut yn = Array2::zeros((0, 0));
            conv.forward(xn, &mut yn, Mode::Train, &mut Context::new()).unwrap();
            let mut dxn = Array2::zeros((0, 0));
            conv.backward(xn, yn.view(), dyn_, Some(&mut dxn), &mut Context::new()).unwrap();
            let e = (&dxn.row(0) - &dx.row(n)).iter().fold(0.0f64, |m, d| m.max(d.abs()));
            assert!(e < 1e-12, "{} sample {n}: {e}", conv.describe());
        }
        let e = (conv.weight_grad() - &dw_all).iter().fold(0.0f64, |m, d| m.max(d.abs()));
        assert!(e < 1e-10, "{}: {e}", conv.describe());
        let e = (conv.bias_grad().unwrap() - &db_all).iter().fold(0.0f64, |m, d| m.max(d.abs()));
        assert!(e < 1e-10, "{}: {e}", conv.describe());
    }

    #[test]
    fn several_products_per_batch_give_the_same_result() {
        // (samples per product, input gradient by transposed convolution?) for 9 samples:
        // 16×16 outputs: 4 per product; 32×32: one, written in place; stride 2: col2im.
        for (config, size, per_product, transposed) in [
            (Conv2dConfig::new(2, 4, 3).padding(1).groups(2), (16, 16), 4, true),
            (Conv2dConfig::new(2, 3, 3).padding(1), (32, 32), 1, true),
            (Conv2dConfig::new(2, 3, 3).stride(2).padding(1), (32, 32), 4, false),
            (Conv2dConfig::new(2, 3, 3).stride(2).padding(1), (64, 64), 1, false),
            (Conv2dConfig::new(2, 3, 3).stride(1), (34, 34), 1, true),
        ] {
            let mut conv: Conv2d<f64> = config.build(size, &mut rng(3)).unwrap();
            assert_eq!(conv.geometry.samples_per_product(9), per_product, "{}", conv.describe());
            assert_eq!(conv.geometry.transposed.is_some(), transposed, "{}", conv.describe());
            let x = input(9, conv.input);
            assert_batch_equals_samples(&mut conv, &x);
        }
    }

    #[test]
    fn a_batch_split_between_threads_gives_the_single_thread_results() {
        // 16→16 channels of 32×32, batch 8: 37.7M multiply-adds, split in two at two threads.
        let mut conv: Conv2d<f64> =
            Conv2dConfig::new(16, 16, 3).padding(1).build((32, 32), &mut rng(4)).unwrap();
        let x = input(8, conv.input);
        let run = |conv: &mut Conv2d<f64>| {
            let mut y = Array2::zeros((0, 0));
            conv.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
            let (dy, mut dx) = (y.mapv(|v| v.sin()), Array2::zeros((0, 0)));
            conv.zero_grad();
            conv.backward(x.view(), y.view(), dy.view(), Some(&mut dx), &mut Context::new()).unwrap();
            (y, dx, conv.weight_grad().clone(), conv.bias_grad().unwrap().clone())
        };
        let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
        let one = pool(1).install(|| run(&mut conv));
        let two = pool(2).install(|| {
            assert_eq!(conv.geometry.parts(8), 2);
            run(&mut conv)
        });
        assert_eq!(
            (one.0, one.1),
            (two.0, two.1),
            "rows are computed by one thread or the other, the same way"
        );
        let e = (&one.2 - &two.2).iter().fold(0.0f64, |m, d| m.max(d.abs()));
        assert!(e < 1e-9 && (&one.3 - &two.3).iter().all(|d| d.abs() < 1e-9), "{e}");
    }

    #[test]
    fn f32_matches_f64() {
        let config = Conv2dConfig::new(3, 8, 3).stride(2).padding(1);
        let mut c64: Conv2d<f64> = config.build((9, 9), &mut rng(4)).unwrap();
        let mut c32: Conv2d<f32> = config.build((9, 9), &mut rng(4)).unwrap();
        let x = input(5, c64.input);
        let (mut y64, mut y32) = (Array2::zeros((0, 0)), Array2::zeros((0, 0)));
        c64.forward(x.view(), &mut y64, Mode::Train, &mut Context::new()).unwrap();
        c32.forward(x.mapv(|v| v as f32).view(), &mut y32, Mode::Train, &mut Context::new()).unwrap();
        for (a, b) in y64.iter().zip(&y32) {
            assert!((a - *b as f64).abs() < 1e-5, "{a} vs {b}");
        }
        let (mut dx, dy) = (Array2::zeros((0, 0)), y32.mapv(|v| v * 0.5));
        c32.backward(x.mapv(|v| v as f32).view(), y32.view(), dy.view(), Some(&mut dx), &mut Context::new())
            .unwrap();
        assert!(dx.iter().chain(c32.weight_grad().iter()).all(|v| v.is_finite()));
    }

    #[test]
    fn default_init_is_pytorchs_bound_with_conv_fans() {
        // fan_in = in/groups·kH·kW = 4/2·3·3 = 18: weight and bias in U(±1/√18).
        let conv: Conv2d<f64> = Conv2dConfig::new(4, 8, 3).groups(2).build((5, 5), &mut rng(5)).unwrap();
        let bound = 1.0 / 18f64.sqrt();
        assert!(conv.weight().iter().chain(conv.bias().unwrap()).all(|v| v.abs() <= bound));
        let max = conv.weight().iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(max > 0.8 * bound, "{max} is far inside {bound}");
        assert_eq!(conv.num_parameters(), 8 * 2 * 9 + 8);
    }

    #[test]
    fn bad_configurations_name_the_field_and_values() {
        let build = |c: Conv2dConfig, size| c.build::<f32>(size, &mut rng(0)).unwrap_err().to_string();
        let msg = build(Conv2dConfig::new(6, 4, 3).groups(4), (8, 8));
        assert!(
            msg.contains("in_channels") && msg.contains("6 channels") && msg.contains("4 groups"),
            "{msg}"
        );
        let msg = build(Conv2dConfig::new(4, 6, 3).groups(4), (8, 8));
        assert!(msg.contains("out_channels"), "{msg}");
        for (config, field) in [
            (Conv2dConfig::new(3, 4, 3).stride(0), "stride"),
            (Conv2dConfig::new(3, 4, 3).dilation(0), "dilation"),
            (Conv2dConfig::new(3, 4, 0), "kernel_size"),
            (Conv2dConfig::new(0, 4, 3), "in_channels"),
            (Conv2dConfig::new(3, 4, 3).groups(0), "groups"),
            (Conv2dConfig::new(3, 4, 3).stride(2).padding_mode(Padding::Same), "padding"),
        ] {
            let msg = build(config, (8, 8));
            assert!(msg.contains(&format!("`{field}`")), "{field}: {msg}");
        }
        // A 5×5 kernel on 4×4 images padded by 0; and a dilated 3×3 (span 5) on 4×4 padded by 0.
        let msg = build(Conv2dConfig::new(3, 4, 5), (4, 4));
        assert!(msg.contains("Conv2d(3→4, 5×5)") && msg.contains("5×5") && msg.contains("3×4×4"), "{msg}");
        let msg = build(Conv2dConfig::new(3, 4, 3).dilation(2), (4, 4));
        assert!(msg.contains("5×5") && msg.contains("3×4×4"), "{msg}");
        assert!(Conv2dConfig::new(3, 4, 5).padding(1).build::<f32>((4, 4), &mut rng(0)).is_ok());
    }

    #[test]
    fn wrong_input_and_changed_weights_are_errors_before_any_work() {
        let mut conv: Conv2d<f32> = Conv2dConfig::new(3, 4, 3).build((6, 6), &mut rng(0)).unwrap();
        let mut y = Array2::zeros((0, 0));
        let err = conv
            .forward(Array2::zeros((2, 100)).view(), &mut y, Mode::Train, &mut Context::new())
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("Conv2d(3→4, 3×3; 3×6×6→4×4×4)") && msg.contains("(2, 100)") && msg.contains("108"),
            "{msg}"
        );
        assert_eq!(y.dim(), (0, 0), "nothing written");
        let x = Array2::zeros((2, 108));
        let err = conv.backward(x.view(), x.view(), x.view(), None, &mut Context::new()).unwrap_err();
        assert!(matches!(err, Error::BackwardBeforeForward { .. }));
        assert!(conv.output_features(107).is_err() && conv.output_features(108).unwrap() == 64);
    }

    #[test]
    fn from_weights_checks_shapes() {
        let image = ImageShape::new(4, 5, 5);
        let config = Conv2dConfig::new(0, 0, 1).groups(2).padding(1);
        let conv = Conv2d::<f64>::from_weights(Array4::ones((6, 2, 3, 3)), None, image, &config).unwrap();
        assert_eq!(conv.output_shape(), ImageShape::new(6, 5, 5));
        assert!(Conv2d::<f64>::from_weights(Array4::ones((6, 3, 3, 3)), None, image, &config).is_err());
        let err =
            Conv2d::<f64>::from_weights(Array4::ones((6, 2, 3, 3)), Some(Array1::ones(5)), image, &config)
                .unwrap_err();
        assert!(err.to_string().contains("bias"), "{err}");
    }
}
