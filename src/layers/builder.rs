//! [`SequentialBuilder`]: deep stacks in one or two readable lines.

use std::sync::Arc;

use rand::RngCore;

use super::builder_edits::StepEdit;
use crate::activation::{Act, Activation};
use crate::init::{Initializer, LinearDefault};
use crate::layer::Layer;
use crate::layers::{
    BatchNorm1d, BranchScale, Conv2dConfig, HighwayConfig, ImageShape, LayerNorm, LinearConfig,
    ResidualBlock, Sequential,
};
use crate::{Error, Float, Result};

pub(super) enum Spec<F: Float> {
    Linear {
        out: usize,
        init: Arc<dyn Initializer>,
        bias_init: Arc<dyn Initializer>,
        bias: bool,
    },
    /// A `Conv2d` with `out` channels and a `kernel`, set up further by `configure`.
    Conv {
        out: usize,
        kernel: usize,
        configure: ConfigureConv,
        init: Arc<dyn Initializer>,
        bias_init: Arc<dyn Initializer>,
        bias: bool,
    },
    Activation(Arc<dyn Activation<F>>),
    Layer(Box<dyn Layer<F>>),
    // A layer made at build time, once the shape before it is known; `true` for a companion
    // (normalization, dropout, pooling, flattening), which the He gain looks past.
    Deferred(DeferredLayer<F>, bool),
}

/// Adjusts the configuration of a convolution the builder makes.
pub(super) type ConfigureConv = Box<dyn FnOnce(Conv2dConfig) -> Conv2dConfig + Send>;

/// What reaches a layer: the width of its rows and, when they are images, their shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Shape {
    pub features: usize,
    pub image: Option<ImageShape>,
}

impl Shape {
    /// The image shape, or an error naming `step` when the rows are not images.
    pub fn image(&self, step: &str) -> Result<ImageShape> {
        self.image.ok_or_else(|| Error::ShapeMismatch {
            layer: step.to_string(),
            what: "input",
            expected: "images (start with Sequential::image_builder; a Linear or a Flatten ends them)".into(),
            actual: format!("(batch, {}) plain features", self.features),
        })
    }
}

/// Makes a layer for the given input shape, drawing its weights from the generator.
pub(super) type DeferredLayer<F> =
    Box<dyn FnOnce(Shape, &mut dyn RngCore) -> Result<Box<dyn Layer<F>>> + Send>;

/// Builds a [`Sequential`] from a description, tracking the width so that each `Linear` gets
/// the right `in_features`, and passing each activation's gain to the initializer before it.
///
/// ```
/// use gradflow::Sequential;
/// use gradflow::activation::Tanh;
/// use gradflow::init::GlorotUniform;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// // 50 × (Linear(64→64) + tanh) with Glorot init, then a 10-way output layer.
/// let model = Sequential::<f32>::builder(64)
///     .init(GlorotUniform::default()).repeat(50, 64, Tanh).linear(10)
///     .build(&mut rng).unwrap();
/// assert_eq!(model.len(), 101);
/// ```
pub struct SequentialBuilder<F: Float> {
    pub(super) input: Shape,
    pub(super) init: Arc<dyn Initializer>,
    pub(super) bias_init: Arc<dyn Initializer>,
    pub(super) bias: bool,
    pub(super) specs: Vec<Spec<F>>,
    /// Names given with [`SequentialBuilder::named`] and the builder's other naming steps: the
    /// step they apply to (`None` when no step came before) and the change.
    pub(super) edits: Vec<(Option<usize>, StepEdit<F>)>,
}

impl<F: Float> Sequential<F> {
    /// Starts a builder for a model taking `in_features` inputs.
    pub fn builder(in_features: usize) -> SequentialBuilder<F> {
        SequentialBuilder {
            input: Shape { features: in_features, image: None },
            init: Arc::new(LinearDefault),
            bias_init: Arc::new(LinearDefault),
            bias: true,
            specs: Vec::new(),
            edits: Vec::new(),
        }
    }

    /// Starts a builder for a model taking `image`s, as `(batch, C·H·W)` rows in NCHW order
    /// (see [`ImageShape`]). The builder tracks the image shape from layer to layer, so that
    /// each convolution, pooling or normalization layer is made for the images that reach it;
    /// see [`SequentialBuilder::conv2d`].
    pub fn image_builder(image: ImageShape) -> SequentialBuilder<F> {
        let mut builder = Self::builder(image.features());
        builder.input.image = Some(image);
        builder
    }
}

impl<F: Float> SequentialBuilder<F> {
    /// Sets the weight initializer for the `Linear` layers added after this call (default:
    /// PyTorch's U(±1/√in)).
    pub fn init(mut self, init: impl Initializer + 'static) -> Self {
        self.init = Arc::new(init);
        self
    }

    /// Sets the bias initializer for the `Linear` layers added after this call (default:
    /// PyTorch's U(±1/√in)).
    pub fn bias_init(mut self, init: impl Initializer + 'static) -> Self {
        self.bias_init = Arc::new(init);
        self
    }

    /// Whether the `Linear` layers added after this call have a bias (default `true`).
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Adds `Linear(width → out)` with no activation.
    pub fn linear(mut self, out: usize) -> Self {
        self.specs.push(Spec::Linear {
            out,
            init: self.init.clone(),
            bias_init: self.bias_init.clone(),
            bias: self.bias,
        });
        self
    }

    /// Adds an activation layer.
    pub fn activation(mut self, activation: impl Activation<F> + 'static) -> Self {
        self.specs.push(Spec::Activation(Arc::new(activation)));
        self
    }

    /// Adds `Linear(width → out)` followed by `activation`.
    pub fn dense(self, out: usize, activation: impl Activation<F> + 'static) -> Self {
        self.linear(out).activation(activation)
    }

    /// Adds `count` × (`Linear(→ width)` + `activation`). A `count` over
    /// [`crate::limits::MAX_LAYERS`] makes [`SequentialBuilder::build`] fail.
    pub fn repeat(mut self, count: usize, width: usize, activation: impl Activation<F> + 'static) -> Self {
        if !self.within_layer_limit(count) {
            return self.refuse_count("repeat", count);
        }
        let shared: Arc<dyn Activation<F>> = Arc::new(activation);
        for _ in 0..count {
            self = self.linear(width);
            self.specs.push(Spec::Activation(shared.clone()));
        }
        self
    }

    /// Adds any layer.
    pub fn layer(mut self, layer: impl Layer<F> + 'static) -> Self {
        self.specs.push(Spec::Layer(Box::new(layer)));
        self
    }

    /// Builds the model, drawing weights from `rng` in layer order.
    ///
    /// # Gains
    /// Each `Linear` or `Conv2d` is initialized with the gain ([`crate::init::Fans::activation_gain`])
    /// of the next *activation*, looking past normalization, dropout, pooling and flattening
    /// layers, so that `.init(KaimingNormal::fan_in()).linear(256).batch_norm().activation(Relu)`
    /// draws with ReLU's √2. Any other layer (a `Linear`, a residual block, …) or the end of the
    /// chain before an activation gives gain 1.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the layer index for a zero width, or `image` for input
    /// images of more than [`crate::limits::MAX_TENSOR_ELEMENTS`] entries, or a shape mismatch
    /// naming the first added layer that does not fit the width before it.
    pub fn build(self, rng: &mut dyn RngCore) -> Result<Sequential<F>> {
        if self.input.features == 0 {
            return Err(Error::config("Sequential builder", "in_features", "must be at least 1, got 0"));
        }
        if let Some(image) = self.input.image {
            // C·H·W saturates to usize::MAX when it overflows: refuse the image itself.
            image.check_not_empty("Sequential image builder")?;
        }
        if let Some((_, edit)) = self.edits.iter().find(|(step, _)| step.is_none()) {
            return Err(Error::config(
                "Sequential builder",
                "name",
                format!("{edit} comes before any layer: it applies to the layer added just before it"),
            ));
        }
        let mut edits = self.edits.into_iter().peekable();
        // The leading run of linear layers (and activations) has known sizes: their total is
        // checked before anything is drawn (the rest is checked layer by layer).
        let (mut planned, mut planned_width) = (0usize, self.input.features);
        for spec in &self.specs {
            match spec {
                Spec::Linear { out, .. } => {
                    let added = planned_width.saturating_mul(*out).saturating_add(*out);
                    planned = planned.saturating_add(added);
                    planned_width = *out;
                }
                Spec::Activation(_) => {}
                _ => break,
            }
        }
        check_total(0, planned)?;
        let mut model = Sequential::new();
        let mut parameters = 0usize;
        let mut width = self.input.features;
        let mut image = self.input.image;
        let gains = activation_gains(&self.specs);
        for (step, (spec, gain)) in self.specs.into_iter().zip(gains).enumerate() {
            let index = model.len();
            match spec {
                Spec::Linear { out, init, bias_init, bias } => {
                    // The total is checked before each layer is drawn (its size is known).
                    let added = width.checked_mul(out).and_then(|w| w.checked_add(out));
                    check_total(parameters, added.unwrap_or(usize::MAX)).map_err(|e| e.at(&index))?;
                    let config = LinearConfig {
                        in_features: width,
                        out_features: out,
                        bias,
                        weight_init: init,
                        bias_init,
                        activation_gain: gain,
                    };
                    model.push(config.build::<F>(rng).map_err(|e| e.at(&index))?);
                    width = out;
                    image = None;
                }
                Spec::Conv { out, kernel, configure, init, bias_init, bias } => {
                    let shape = Shape { features: width, image }.image("Conv2d").map_err(|e| e.at(&index))?;
                    let mut config = Conv2dConfig::new(shape.channels, out, kernel);
                    (config.weight_init, config.bias_init, config.bias, config.activation_gain) =
                        (init, bias_init, bias, gain);
                    let config = configure(config);
                    let conv =
                        config.build::<F>((shape.height, shape.width), rng).map_err(|e| e.at(&index))?;
                    width = conv.output_features(width).map_err(|e| e.at(&index))?;
                    image = conv.image_shape();
                    model.push(conv);
                }
                Spec::Activation(a) => match image {
                    Some(shape) => {
                        model.push(Act::from_shared(a).with_image(shape));
                    }
                    None => {
                        model.push(Act::from_shared(a));
                    }
                },
                Spec::Layer(layer) => {
                    width = layer.output_features(width).map_err(|e| e.at(&index))?;
                    image = layer.image_shape();
                    model.push_boxed(layer);
                }
                Spec::Deferred(make, _) => {
                    let layer = make(Shape { features: width, image }, rng).map_err(|e| e.at(&index))?;
                    width = layer.output_features(width).map_err(|e| e.at(&index))?;
                    image = layer.image_shape();
                    model.push_boxed(layer);
                }
            }
            while let Some((_, edit)) = edits.next_if(|(edited, _)| *edited == Some(step)) {
                let last = model.len() - 1;
                edit.apply(&mut model, last)?;
            }
            let added = model.get(index).map_or(0, |layer| layer.num_parameters());
            check_total(parameters, added).map_err(|e| e.at(&index))?;
            parameters += added;
        }
        Ok(model)
    }
}

impl<F: Float> SequentialBuilder<F> {
    /// Builds the model without a random generator, for a model whose every weight will be
    /// loaded (e.g. with [`crate::io::load_safetensors`]): every parameter is zero, and buffers
    /// have their initial values (BatchNorm's `running_mean` 0, `running_var` 1,
    /// `num_batches_tracked` 0). The structure, names and checks are those of
    /// [`SequentialBuilder::build`]; a loaded model computes exactly what the saved one did.
    ///
    /// The default [`crate::io::LoadOptions`] are strict: loading fails, naming every missing
    /// tensor, when the file does not hold all of the model's parameters, so no zero weight is
    /// left behind by accident. (Internally the initializers draw from a fixed-seed generator,
    /// then every parameter is set to zero: building costs what [`SequentialBuilder::build`]
    /// costs.)
    ///
    /// ```
    /// use gradflow::{Mode, Network, Sequential};
    /// use gradflow::activation::Tanh;
    /// use gradflow::io::{LoadOptions, load_safetensors_bytes, safetensors_bytes};
    /// use ndarray::Array2;
    /// use rand::SeedableRng;
    ///
    /// let describe = || Sequential::<f32>::builder(3).dense(5, Tanh).batch_norm().linear(2);
    /// let mut trained = describe().build(&mut rand::rngs::StdRng::seed_from_u64(1))?;
    /// let bytes = safetensors_bytes(&trained)?;
    ///
    /// let mut loaded = describe().build_uninit()?;
    /// assert!(gradflow::named_parameters(&loaded).iter().all(|(_, p)| p.value.iter().all(|&w| w == 0.0)));
    /// load_safetensors_bytes(&mut loaded, &bytes, "trained", &LoadOptions::default())?;
    /// let x = Array2::from_elem((4, 3), 0.5);
    /// let (mut a, mut b) = (Network::new(trained), Network::new(loaded));
    /// assert_eq!(a.forward(x.view(), Mode::Eval)?, b.forward(x.view(), Mode::Eval)?);
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`SequentialBuilder::build`].
    pub fn build_uninit(self) -> Result<Sequential<F>> {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut model = self.build(&mut rng)?;
        zero_parameters(&mut model);
        Ok(model)
    }
}

/// Sets every parameter of `layer` to zero.
pub(crate) fn zero_parameters<F: Float>(layer: &mut dyn Layer<F>) {
    layer.visit_parameters_mut(&mut |p| {
        let mut value = p.value;
        value.fill(F::zero());
    });
}

/// For each step, the gain of the activation that follows it, looking past companions
/// (normalization, dropout, pooling, flattening, whether added by a builder step or as a layer
/// of such a kind); 1 when something else, or nothing, comes first.
fn activation_gains<F: Float>(specs: &[Spec<F>]) -> Vec<f64> {
    (0..specs.len())
        .map(|i| {
            for next in &specs[i + 1..] {
                match next {
                    Spec::Activation(a) => return a.gain(),
                    Spec::Deferred(_, true) => {}
                    Spec::Layer(l) if l.as_activation().is_some() => {
                        return l.as_activation().map_or(1.0, |a| a.gain());
                    }
                    Spec::Layer(l) if crate::hooks::is_companion(l.kind()) => {}
                    _ => return 1.0,
                }
            }
            1.0
        })
        .collect()
}

/// Refuses a model that would have more than [`crate::limits::MAX_MODEL_PARAMETERS`]
/// parameters with `added` more.
fn check_total(parameters: usize, added: usize) -> Result<()> {
    let limit = crate::limits::MAX_MODEL_PARAMETERS;
    match parameters.checked_add(added) {
        Some(total) if total <= limit => Ok(()),
        _ => Err(Error::config(
            "Sequential builder",
            "parameters",
            format!(
                "{parameters} parameters and {added} more exceed the limit of {limit} \
                 (gradflow::limits::MAX_MODEL_PARAMETERS)"
            ),
        )),
    }
}

/// Normalization layers and skip connections. Each is made at build time for the width reached
/// at that point, with the initializers and bias setting in force when it was added.
///
/// ```
/// use gradflow::{BranchScale, Sequential};
/// use gradflow::activation::{Relu, Tanh};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// // 30 residual blocks x + W_b·tanh(W_a·x) at width 64 between an input and an output layer.
/// let resnet = Sequential::<f32>::builder(32).linear(64).repeat_residual(30, 64, Tanh).linear(10).build(&mut rng)?;
/// assert_eq!(resnet.len(), 32);
/// assert_eq!(resnet.layer_at("1.branch.1").unwrap().kind(), "tanh");
///
/// // Any branch: x + Linear(ReLU(BatchNorm(Linear(x)))), ReZero-scaled; a projection to widen.
/// let custom = Sequential::<f32>::builder(64)
///     .residual_scaled(BranchScale::rezero(), |b| b.linear(64).batch_norm().activation(Relu).linear(64))
///     .residual_projection(|b| b.dense(128, Relu).linear(128))
///     .layer_norm()
///     .build(&mut rng)?;
/// assert_eq!(custom.check(64)?, 128);
///
/// // 50 highway layers: gate bias −4 keeps 0.98⁵⁰ ≈ 0.4 of the carried gradient at init.
/// let highway = Sequential::<f32>::builder(64).repeat_highway(50, Relu, -4.0).build(&mut rng)?;
/// assert_eq!(highway.len(), 50);
/// # Ok::<(), gradflow::Error>(())
/// ```
impl<F: Float> SequentialBuilder<F> {
    /// Adds a [`BatchNorm1d`] over the current width, with PyTorch's defaults.
    pub fn batch_norm(self) -> Self {
        self.companion(|shape, _| Ok(Box::new(BatchNorm1d::<F>::new(shape.features)?)))
    }

    /// Adds a [`LayerNorm`] over the current width, with PyTorch's defaults.
    pub fn layer_norm(self) -> Self {
        self.companion(|shape, _| Ok(Box::new(LayerNorm::<F>::new(shape.features)?)))
    }

    /// Adds a nested [`Sequential`] whose layers `layers` describes on a builder starting at the
    /// current width (with the current initializers and bias setting): PyTorch's `nn.Sequential`
    /// or `nn.ModuleList` inside a model, e.g. the `blocks` of `self.blocks = nn.ModuleList(…)`
    /// with [`SequentialBuilder::named`]`("blocks")`, so that parameters are named
    /// `blocks.0.fc1.weight`. Hooks and reports see through it: its children are numbered as
    /// layers of the network, as if they were not nested ([`crate::hooks::layer_numbers`]).
    pub fn sequential(self, layers: impl FnOnce(SequentialBuilder<F>) -> SequentialBuilder<F>) -> Self {
        let mut inner = layers(self.sub_builder());
        self.deferred(move |shape, rng| {
            inner.input = shape;
            Ok(Box::new(inner.build(rng)?))
        })
    }

    /// Adds a [`ResidualBlock`] `x + branch(x)` with the identity shortcut, whose branch is
    /// described by `branch` on a builder starting at the current width (it inherits the
    /// initializers and bias setting). The branch must end at the width it started from.
    pub fn residual(self, branch: impl FnOnce(SequentialBuilder<F>) -> SequentialBuilder<F>) -> Self {
        self.residual_with(false, None, branch)
    }

    /// Adds a [`ResidualBlock`] `P x + branch(x)` whose shortcut is a projection
    /// `P = Linear(width → branch output width)`, drawn with the current initializers.
    pub fn residual_projection(
        self,
        branch: impl FnOnce(SequentialBuilder<F>) -> SequentialBuilder<F>,
    ) -> Self {
        self.residual_with(true, None, branch)
    }

    /// Adds a [`ResidualBlock`] `shortcut(x) + branch(x)` whose shortcut is a chain that
    /// `shortcut` describes, like the branch, on a builder starting at the current width or
    /// images (with the current initializers): for images, torchvision's `downsample`,
    /// `|s| s.conv2d_with(c, 1, |c| c.stride(2).bias(false)).batch_norm2d()`. The shortcut is
    /// the child `"shortcut"` (`shortcut.0.weight`, …; [`SequentialBuilder::rename_child`]
    /// renames it). The two must end at one width.
    pub fn residual_shortcut(
        self,
        branch: impl FnOnce(SequentialBuilder<F>) -> SequentialBuilder<F>,
        shortcut: impl FnOnce(SequentialBuilder<F>) -> SequentialBuilder<F>,
    ) -> Self {
        let mut branch = branch(self.sub_builder());
        let mut shortcut = shortcut(self.sub_builder());
        self.deferred(move |shape, rng| {
            (branch.input, shortcut.input) = (shape, shape);
            let branch = branch.build(rng).map_err(|e| e.at(&"branch"))?;
            let shortcut = shortcut.build(rng).map_err(|e| e.at(&"shortcut"))?;
            Ok(Box::new(ResidualBlock::with_shortcut(branch, shortcut, shape.features)?))
        })
    }

    /// Adds a [`ResidualBlock`] `x + α·branch(x)` with a fixed or learnable factor α
    /// (e.g. [`BranchScale::rezero`]).
    pub fn residual_scaled(
        self,
        scale: BranchScale,
        branch: impl FnOnce(SequentialBuilder<F>) -> SequentialBuilder<F>,
    ) -> Self {
        self.residual_with(false, Some(scale), branch)
    }

    /// Adds the standard residual block `x + W_b·act(W_a·x)`: a branch `Linear(width → width)`,
    /// `activation`, `Linear(width → width)` around the identity. The current width must be
    /// `width` (add a `.linear(width)` before otherwise).
    pub fn residual_block(self, width: usize, activation: impl Activation<F> + 'static) -> Self {
        self.residual_block_shared(width, Arc::new(activation))
    }

    /// Adds `count` × [`SequentialBuilder::residual_block`]`(width, activation)` (at most
    /// [`crate::limits::MAX_LAYERS`], or [`SequentialBuilder::build`] fails).
    pub fn repeat_residual(
        mut self,
        count: usize,
        width: usize,
        activation: impl Activation<F> + 'static,
    ) -> Self {
        if !self.within_layer_limit(count) {
            return self.refuse_count("repeat_residual", count);
        }
        let shared: Arc<dyn Activation<F>> = Arc::new(activation);
        for _ in 0..count {
            self = self.residual_block_shared(width, shared.clone());
        }
        self
    }

    /// Adds a [`crate::Highway`] layer at the current width with `activation` for its transform
    /// and initial gate bias `gate_bias` (see [`crate::Highway`] for the choice: about −4 or
    /// lower for 50 layers).
    pub fn highway(self, activation: impl Activation<F> + 'static, gate_bias: f64) -> Self {
        self.highway_shared(Arc::new(activation), gate_bias)
    }

    /// Adds `count` highway layers (see [`SequentialBuilder::highway`]; at most
    /// [`crate::limits::MAX_LAYERS`], or [`SequentialBuilder::build`] fails).
    pub fn repeat_highway(
        mut self,
        count: usize,
        activation: impl Activation<F> + 'static,
        gate_bias: f64,
    ) -> Self {
        if !self.within_layer_limit(count) {
            return self.refuse_count("repeat_highway", count);
        }
        let shared: Arc<dyn Activation<F>> = Arc::new(activation);
        for _ in 0..count {
            self = self.highway_shared(shared.clone(), gate_bias);
        }
        self
    }

    /// Whether `count` more layers keep the builder within [`crate::limits::MAX_LAYERS`].
    fn within_layer_limit(&self, count: usize) -> bool {
        self.specs.len().checked_add(count).is_some_and(|n| n <= crate::limits::MAX_LAYERS)
    }

    /// The builder with a step that makes `build` fail, naming `method` and the count: what a
    /// `count` beyond [`crate::limits::MAX_LAYERS`] gives, instead of `count` steps that would
    /// exhaust the memory before `build` is called.
    fn refuse_count(self, method: &'static str, count: usize) -> Self {
        let limit = crate::limits::MAX_LAYERS;
        self.deferred(move |_, _| {
            Err(Error::config(
                "Sequential builder",
                "count",
                format!(
                    "{method}({count}, …) would make more than {limit} layers (gradflow::limits::MAX_LAYERS)"
                ),
            ))
        })
    }

    pub(super) fn deferred(
        mut self,
        make: impl FnOnce(Shape, &mut dyn RngCore) -> Result<Box<dyn Layer<F>>> + Send + 'static,
    ) -> Self {
        self.specs.push(Spec::Deferred(Box::new(make), false));
        self
    }

    /// Like [`SequentialBuilder::deferred`], for a layer that only normalizes, regularizes or
    /// reshapes (see [`SequentialBuilder::build`] on gains): the layer before it takes its gain
    /// from the activation after it.
    pub(super) fn companion(
        mut self,
        make: impl FnOnce(Shape, &mut dyn RngCore) -> Result<Box<dyn Layer<F>>> + Send + 'static,
    ) -> Self {
        self.specs.push(Spec::Deferred(Box::new(make), true));
        self
    }

    /// An empty builder with this one's initializers and bias setting; its input shape is set
    /// at build time.
    pub(super) fn sub_builder(&self) -> SequentialBuilder<F> {
        SequentialBuilder {
            input: Shape { features: 0, image: None },
            init: self.init.clone(),
            bias_init: self.bias_init.clone(),
            bias: self.bias,
            specs: Vec::new(),
            edits: Vec::new(),
        }
    }

    fn residual_with(
        self,
        projection: bool,
        scale: Option<BranchScale>,
        branch: impl FnOnce(SequentialBuilder<F>) -> SequentialBuilder<F>,
    ) -> Self {
        let mut branch = branch(self.sub_builder());
        let (init, bias_init, bias) = (self.init.clone(), self.bias_init.clone(), self.bias);
        self.deferred(move |shape, rng| {
            let width = shape.features;
            branch.input = shape;
            let branch = branch.build(rng).map_err(|e| e.at(&"branch"))?;
            let block = if projection {
                let out_features = branch.check(width).map_err(|e| e.at(&"branch"))?;
                let config = LinearConfig {
                    in_features: width,
                    out_features,
                    bias,
                    weight_init: init,
                    bias_init,
                    activation_gain: 1.0,
                };
                let shortcut = config.build(rng).map_err(|e| e.at(&"shortcut"))?;
                ResidualBlock::projection(branch, shortcut)?
            } else {
                ResidualBlock::identity(branch, width)?
            };
            Ok(Box::new(match scale {
                Some(scale) => block.with_scale(scale)?,
                None => block,
            }))
        })
    }

    fn residual_block_shared(self, width: usize, activation: Arc<dyn Activation<F>>) -> Self {
        self.residual(move |b| {
            let mut b = b.linear(width);
            b.specs.push(Spec::Activation(activation));
            b.linear(width)
        })
    }

    fn highway_shared(self, activation: Arc<dyn Activation<F>>, gate_bias: f64) -> Self {
        let (weight_init, bias_init) = (self.init.clone(), self.bias_init.clone());
        self.deferred(move |shape, rng| {
            let width = shape.features;
            let config = HighwayConfig { width, activation, gate_bias, weight_init, bias_init };
            Ok(Box::new(config.build(rng)?))
        })
    }
}

#[cfg(test)]
mod skip_connection_tests {
    use super::*;
    use crate::activation::{Relu, Tanh};
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use crate::{Mode, Network};
    use ndarray::Array2;
    use rand::SeedableRng;

    #[test]
    fn built_blocks_have_the_documented_structure_and_names() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let model = Sequential::<f64>::builder(3)
            .linear(4)
            .residual_block(4, Tanh)
            .batch_norm()
            .residual_projection(|b| b.dense(5, Relu).linear(6))
            .layer_norm()
            .highway(Tanh, -3.0)
            .residual_scaled(BranchScale::rezero(), |b| b.linear(6))
            .build(&mut rng)
            .unwrap();
        let kinds: Vec<&str> = model.layers().map(|l| l.kind()).collect();
        assert_eq!(
            kinds,
            ["Linear", "Residual", "BatchNorm1d", "Residual", "LayerNorm", "Highway", "Residual"]
        );
        assert_eq!(model.check(3).unwrap(), 6);
        let names: Vec<String> = crate::named_parameters(&model).into_iter().map(|(n, _)| n).collect();
        let expected = [
            "0.weight",
            "0.bias",
            "1.branch.0.weight",
            "1.branch.0.bias",
            "1.branch.2.weight",
            "1.branch.2.bias",
            "2.weight",
            "2.bias",
            "3.branch.0.weight",
            "3.branch.0.bias",
            "3.branch.2.weight",
            "3.branch.2.bias",
            "3.shortcut.weight",
            "3.shortcut.bias",
            "4.weight",
            "4.bias",
            "5.transform.weight",
            "5.transform.bias",
            "5.gate.weight",
            "5.gate.bias",
            "6.branch.0.weight",
            "6.branch.0.bias",
            "6.scale.weight",
        ];
        assert_eq!(names, expected);
        let gate = model.layer_at("5.gate").unwrap();
        let mut bias = Vec::new();
        gate.visit_parameters(&mut |p| {
            if p.name == "bias" {
                bias.extend(p.value.iter().copied());
            }
        });
        assert_eq!(bias, [-3.0; 6]);
    }

    #[test]
    fn a_built_model_with_every_block_passes_gradient_check() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut model = Sequential::<f64>::builder(3)
            .residual_projection(|b| b.dense(4, Tanh).linear(4))
            .batch_norm()
            .residual_scaled(BranchScale::Learnable(0.5), |b| b.dense(4, Tanh).linear(4))
            .layer_norm()
            .highway(Tanh, -1.0)
            // A flattened branch, a chain as the shortcut and an activation inside the block.
            .residual_shortcut(|b| b.dense(4, Tanh).linear(5), |s| s.linear(5).activation(Tanh))
            .flatten_branch()
            .block_activation(Tanh)
            .build(&mut rng)
            .unwrap();
        let x = Array2::from_shape_fn((5, 3), |(i, j)| ((i * 5 + j * 3) % 7) as f64 / 3.0 - 1.0);
        let report = check_layer(&mut model, &x, GradCheckConfig::default()).unwrap();
        assert_eq!(report.tensors.len(), 1 + 6 + 2 + 5 + 2 + 4 + 6);
        report.within(1e-6).unwrap();
    }

    #[test]
    fn a_residual_block_of_the_wrong_width_names_its_index() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let err = Sequential::<f32>::builder(8).residual_block(4, Tanh).build(&mut rng).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("0: Residual(8→4, identity)") && msg.contains("projection"), "{msg}");
        // An error inside a branch names the full path.
        let err =
            Sequential::<f32>::builder(8).linear(8).residual(|b| b.linear(0)).build(&mut rng).unwrap_err();
        assert!(err.to_string().contains("1.branch.0"), "{err}");
    }

    #[test]
    fn batch_of_one_through_a_built_network_is_an_error_naming_the_layer() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let model = Sequential::<f32>::builder(4).linear(8).batch_norm().linear(2).build(&mut rng).unwrap();
        let mut net = Network::new(model);
        let err = net.forward(Array2::ones((1, 4)).view(), Mode::Train).unwrap_err();
        assert!(err.to_string().contains("1: BatchNorm1d(8)"), "{err}");
        assert!(net.forward(Array2::ones((1, 4)).view(), Mode::Eval).is_ok());
        // Train normalizes with the batch's statistics, Eval with the running ones (moved 10% of
        // the way from 0 and 1 by the one training batch): the outputs differ.
        let x = Array2::from_shape_fn((3, 4), |(i, j)| (i * 2 + j) as f32);
        let train = net.forward(x.view(), Mode::Train).unwrap().to_owned();
        let eval = net.forward(x.view(), Mode::Eval).unwrap().to_owned();
        assert!(train.iter().zip(&eval).any(|(a, b)| (a - b).abs() > 1e-3), "{train} {eval}");
    }

    #[test]
    fn repeat_highway_and_repeat_residual_add_count_layers() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let model = Sequential::<f32>::builder(6)
            .repeat_highway(3, Relu, -4.0)
            .repeat_residual(2, 6, Relu)
            .build(&mut rng)
            .unwrap();
        let kinds: Vec<&str> = model.layers().map(|l| l.kind()).collect();
        assert_eq!(kinds, ["Highway", "Highway", "Highway", "Residual", "Residual"]);
        assert_eq!(model.layer_at("4.branch.1").unwrap().kind(), "relu");
    }
}

#[cfg(test)]
mod gain_tests {
    use super::*;
    use crate::activation::{Relu, Tanh};
    use crate::init::KaimingNormal;
    use rand::SeedableRng;

    /// fan_in · Var(W) of the layer at `path`.
    fn scaled_variance(model: &Sequential<f64>, path: &str) -> f64 {
        let mut out = 0.0;
        model.layer_at(path).unwrap().visit_parameters(&mut |p| {
            if p.name == "weight" {
                let n = p.value.len() as f64;
                let mean = p.value.sum() / n;
                let var = p.value.iter().map(|w| (w - mean) * (w - mean)).sum::<f64>() / n;
                out = var * p.value.shape()[1] as f64;
            }
        });
        out
    }

    #[test]
    fn he_gain_comes_from_the_next_activation_past_normalization_and_dropout() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        // 256 × 256 weights: the variance estimate has a relative standard error of
        // √(2/65536) ≈ 0.55%, so 5% is about nine standard errors.
        let model = Sequential::<f64>::builder(256)
            .init(KaimingNormal::fan_in())
            .linear(256)
            .batch_norm()
            .activation(Relu) // Linear → BatchNorm → ReLU: √2, fan_in·Var = 2
            .linear(256)
            .layer_norm()
            .dropout(0.1)
            .activation(Tanh) // past two companions: 5/3
            .linear(256)
            .linear(256) // another Linear first: gain 1
            .activation(Relu)
            .linear(10) // nothing after: gain 1
            .build(&mut rng)
            .unwrap();
        for (path, expected) in [("0", 2.0), ("3", 25.0 / 9.0), ("7", 1.0), ("8", 2.0)] {
            let got = scaled_variance(&model, path);
            assert!(
                (got / expected - 1.0).abs() < 0.05,
                "layer {path}: fan_in·Var = {got}, expected {expected}"
            );
        }
    }
}
