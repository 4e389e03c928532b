//! [`Residual`] and [`ResidualBlock`]: `y = shortcut(x) + α·branch(x)`, the skip connection of
//! residual networks (He et al. 2016).

use ndarray::{Array2, ArrayView2, Zip};

use super::child_named;
use super::child_names::ChildNames;
use super::{Linear, Scale};
use crate::activation::{Act, Activation};
use crate::hooks::Context;
use crate::layer::{Layer, Mode, check_input_features, check_shape, ensure_shape};
use crate::param::{BufferView, BufferViewMut, ParamView, ParamViewMut};
use crate::{Error, Float, Result};

/// A skip connection: a layer computing `y = shortcut(x) + α · branch(x)`.
///
/// The gradient reaching the layers below cannot vanish through it: since
/// `dL/dx = dL/dy · ∂shortcut/∂x + α · dL/dy · ∂branch/∂x`, and the identity shortcut's
/// Jacobian is the identity, the first term hands `dL/dy` down unchanged however small the
/// branch's Jacobian has become — a stack of residual blocks has a path on which the gradient is
/// never multiplied by a weight matrix or an activation derivative.
pub trait Residual<F: Float>: Layer<F> {
    /// The residual branch (the child `"branch"`, unless renamed or flattened).
    fn branch(&self) -> &dyn Layer<F>;

    /// The residual branch, mutably.
    fn branch_mut(&mut self) -> &mut dyn Layer<F>;

    /// The projection on the shortcut (the child `"shortcut"`, unless renamed), or `None` for
    /// the identity.
    fn shortcut(&self) -> Option<&dyn Layer<F>>;

    /// The current factor α on the branch, or `None` when the branch is not scaled (α = 1).
    fn branch_scale(&self) -> Option<f64>;
}

/// How the branch of a [`ResidualBlock`] is scaled before it is added to the shortcut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BranchScale {
    /// A constant factor, e.g. a small one so that the block starts close to the identity.
    Fixed(f64),
    /// A learnable factor (the parameter `"scale.weight"`) starting at the given value.
    Learnable(f64),
}

impl BranchScale {
    /// ReZero (Bachlechner et al. 2020): a learnable factor starting at 0, so that every block
    /// is the identity at initialization and the network starts as shallow as it can be.
    pub fn rezero() -> Self {
        BranchScale::Learnable(0.0)
    }

    fn layer<F: Float>(self) -> Result<Scale<F>> {
        match self {
            BranchScale::Fixed(alpha) => Scale::fixed(alpha),
            BranchScale::Learnable(init) => Scale::learnable(init),
        }
    }
}

/// A residual block: `y = x + α·branch(x)` with the identity shortcut, or
/// `y = P x + α·branch(x)` with a projection shortcut `P`, a [`Linear`] (as in He et al. 2016,
/// "Deep Residual Learning", eq. 2) that maps the input to the branch's width, or any other
/// layer as the shortcut ([`ResidualBlock::with_shortcut`]: for images, the zero-padding
/// [`crate::layers::ZeroPadShortcut`] or a 1×1 convolution with batch normalization).
///
/// Any layer can be the branch — typically a [`crate::Sequential`] such as
/// `Linear → tanh → Linear`. The block owns no parameters itself: its children are `"branch"`,
/// `"scale"` (when the branch is scaled, see [`BranchScale`]) and `"shortcut"` (for a
/// projection), so parameters are named `"branch.0.weight"`, `"scale.weight"`,
/// `"shortcut.weight"`, and hooks see the children at paths such as `"3.branch.1"`.
///
/// # Names of a PyTorch module
/// A PyTorch residual block usually holds its branch's layers as its own attributes
/// (`self.fc1`, `self.norm`, `self.fc2`, torchvision's `conv1`, `bn1`, …) and its shortcut
/// under a name of its choice (`downsample`, `proj`). [`ResidualBlock::flatten_branch`] makes a
/// [`crate::Sequential`] branch's children the block's own (`"fc1.weight"`, not
/// `"branch.fc1.weight"`; hooks see `"3.fc1"`, and the branch itself is no longer a layer of its
/// own in paths and events), and [`Layer::rename_child`] renames `"shortcut"`, `"scale"` or
/// `"branch"`, so that a PyTorch state dict loads with no key mapping:
///
/// ```
/// use gradflow::{Layer, Linear, ResidualBlock, Sequential};
/// use gradflow::activation::Tanh;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let branch = Sequential::<f64>::builder(6)
///     .linear(8).named("fc1").activation(Tanh).named("act").linear(8).named("fc2")
///     .build(&mut rng)?;
/// let mut block = ResidualBlock::projection(branch, Linear::new(6, 8, &mut rng)?)?;
/// block.flatten_branch()?;
/// block.rename_child("shortcut", "proj")?;
/// let names: Vec<String> = gradflow::named_parameters(&block).into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "proj.weight", "proj.bias"]);
/// // A shortcut may not take a name the branch's children use.
/// assert!(block.rename_child("proj", "fc1").is_err());
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// Why the gradient reaching early layers cannot vanish through it: its backward adds the
/// incoming gradient `dL/dy` to the gradient the branch sends down, so with the identity shortcut
/// `dL/dx = dL/dy + α · dL/dy · ∂branch/∂x` carries `dL/dy` to the layers below unchanged, however
/// small the branch's Jacobian.
///
/// # Shapes
/// input `(batch, in)` → output `(batch, out)`; `out = in` for the identity shortcut.
///
/// ```
/// use gradflow::{Layer, Linear, ResidualBlock, Residual, Sequential, Act};
/// use gradflow::activation::Tanh;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut branch = Sequential::<f64>::new();
/// branch.push(Linear::new(16, 16, &mut rng)?).push(Act::new(Tanh)).push(Linear::new(16, 16, &mut rng)?);
/// let block = ResidualBlock::identity(branch, 16)?;
/// assert_eq!(block.output_features(16)?, 16);
/// assert!(block.shortcut().is_none());
///
/// // Changing the width needs a projection shortcut.
/// let widen = Linear::<f64>::new(16, 32, &mut rng)?;
/// let err = ResidualBlock::identity(widen, 16).unwrap_err();
/// assert!(err.to_string().contains("projection"));
/// # Ok::<(), gradflow::Error>(())
/// ```
pub struct ResidualBlock<F: Float> {
    branch: Box<dyn Layer<F>>,
    scale: Option<Scale<F>>,
    shortcut: Shortcut<F>,
    /// The activation applied to the sum, inside the block (see
    /// [`ResidualBlock::with_output_activation`]).
    activation: Option<Act<F>>,
    /// The children's names, by role ([`BRANCH`], [`SCALE`], [`SHORTCUT`], [`ACTIVATION`]).
    names: ChildNames<4>,
    /// Whether the branch's children are the block's own (see [`ResidualBlock::flatten_branch`]).
    flat_branch: bool,
    in_features: usize,
    out_features: usize,
    /// branch(x), `(batch, out)`.
    branch_out: Array2<F>,
    /// α·branch(x), when scaled.
    scaled_out: Array2<F>,
    /// P x, with a projection shortcut.
    shortcut_out: Array2<F>,
    /// shortcut(x) + α·branch(x), with an output activation.
    sum_out: Array2<F>,
    /// dL/d(`sum_out`).
    grad_sum: Array2<F>,
    /// dL/d(branch(x)) = α·dL/dy, when scaled.
    grad_branch_out: Array2<F>,
    /// The input gradient sent through the projection.
    grad_shortcut: Array2<F>,
    forward_batch: Option<usize>,
}

/// The roles of a [`ResidualBlock`]'s children, in [`ChildNames`].
const ROLES: [&str; 4] = ["branch", "scale", "shortcut", "activation"];
const BRANCH: usize = 0;
const SCALE: usize = 1;
const SHORTCUT: usize = 2;
const ACTIVATION: usize = 3;

/// What a [`ResidualBlock`] adds the branch to.
enum Shortcut<F: Float> {
    /// The input itself.
    Identity,
    /// A `Linear` projection.
    Projection(Box<Linear<F>>),
    /// Any other layer.
    Layer(Box<dyn Layer<F>>),
}

impl<F: Float> Shortcut<F> {
    fn layer(&self) -> Option<&dyn Layer<F>> {
        match self {
            Shortcut::Identity => None,
            Shortcut::Projection(p) => Some(p.as_ref()),
            Shortcut::Layer(l) => Some(l.as_ref()),
        }
    }

    fn layer_mut(&mut self) -> Option<&mut dyn Layer<F>> {
        match self {
            Shortcut::Identity => None,
            Shortcut::Projection(p) => Some(p.as_mut()),
            Shortcut::Layer(l) => Some(l.as_mut()),
        }
    }

    /// As a description names it: `"identity"`, `"projection"`, `"shortcut ZeroPadShortcut(…)"`.
    fn describe(&self) -> String {
        match self {
            Shortcut::Identity => "identity".into(),
            Shortcut::Projection(_) => "projection".into(),
            Shortcut::Layer(l) => format!("shortcut {}", l.describe()),
        }
    }
}

impl<F: Float> std::fmt::Debug for ResidualBlock<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResidualBlock")
            .field("branch", &self.branch.describe())
            .field("scale", &self.scale.as_ref().map(|s| s.describe()))
            .field("shortcut", &self.shortcut.describe())
            .finish()
    }
}

impl<F: Float> ResidualBlock<F> {
    /// `y = x + branch(x)` for inputs of width `in_features`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the branch does not take `in_features` or does not give
    /// back `in_features` (the identity cannot change the width: use
    /// [`ResidualBlock::projection`]); [`Error::InvalidConfig`] when `in_features` is 0.
    pub fn identity(branch: impl Layer<F> + 'static, in_features: usize) -> Result<Self> {
        Self::identity_boxed(Box::new(branch), in_features)
    }

    /// [`ResidualBlock::identity`] with an already boxed branch.
    ///
    /// # Errors
    /// As [`ResidualBlock::identity`].
    pub fn identity_boxed(branch: Box<dyn Layer<F>>, in_features: usize) -> Result<Self> {
        Self::new(branch, in_features, Shortcut::Identity)
    }

    /// `y = P x + branch(x)` with the projection `P = projection` (`Linear(in → out)`), for
    /// inputs of width `projection.in_features()`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the branch does not take `in` features or its output width
    /// is not the projection's `out`.
    pub fn projection(branch: impl Layer<F> + 'static, projection: Linear<F>) -> Result<Self> {
        Self::projection_boxed(Box::new(branch), projection)
    }

    /// [`ResidualBlock::projection`] with an already boxed branch.
    ///
    /// # Errors
    /// As [`ResidualBlock::projection`].
    pub fn projection_boxed(branch: Box<dyn Layer<F>>, projection: Linear<F>) -> Result<Self> {
        let in_features = projection.in_features();
        Self::new(branch, in_features, Shortcut::Projection(Box::new(projection)))
    }

    /// `y = shortcut(x) + branch(x)` for inputs of width `in_features`, with any layer as the
    /// shortcut — for image blocks whose stage changes the shape, the zero-padding
    /// [`crate::layers::ZeroPadShortcut`] (He et al.'s option A) or a 1×1
    /// [`crate::layers::Conv2d`] with stride followed by a [`crate::layers::BatchNorm2d`]
    /// (option B). The shortcut is the child `"shortcut"`, so a `Sequential` shortcut's
    /// parameters are named `"shortcut.0.weight"`, ….
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the branch or the shortcut does not take `in_features`, or
    /// their outputs differ in width.
    pub fn with_shortcut(
        branch: impl Layer<F> + 'static,
        shortcut: impl Layer<F> + 'static,
        in_features: usize,
    ) -> Result<Self> {
        Self::with_shortcut_boxed(Box::new(branch), Box::new(shortcut), in_features)
    }

    /// [`ResidualBlock::with_shortcut`] with an already boxed branch and shortcut.
    ///
    /// # Errors
    /// As [`ResidualBlock::with_shortcut`].
    pub fn with_shortcut_boxed(
        branch: Box<dyn Layer<F>>,
        shortcut: Box<dyn Layer<F>>,
        in_features: usize,
    ) -> Result<Self> {
        Self::new(branch, in_features, Shortcut::Layer(shortcut))
    }

    fn new(branch: Box<dyn Layer<F>>, in_features: usize, shortcut: Shortcut<F>) -> Result<Self> {
        let kind = match &shortcut {
            Shortcut::Identity => "identity",
            Shortcut::Projection(_) => "projection",
            Shortcut::Layer(_) => "shortcut",
        };
        if in_features == 0 {
            return Err(Error::config(
                format!("Residual({kind})"),
                "in_features",
                "must be at least 1, got 0",
            ));
        }
        let out_features = branch.output_features(in_features).map_err(|e| e.at(&"branch"))?;
        match &shortcut {
            Shortcut::Identity if out_features != in_features => {
                return Err(Error::ShapeMismatch {
                    layer: format!("Residual({in_features}→{out_features}, identity)"),
                    what: "branch output",
                    expected: format!(
                        "(batch, {in_features}), the input width (an identity shortcut adds the input \
                         to the branch output; use a projection shortcut to change the width)"
                    ),
                    actual: format!("(batch, {out_features})"),
                });
            }
            Shortcut::Projection(p) if p.out_features() != out_features => {
                return Err(Error::ShapeMismatch {
                    layer: format!("Residual({in_features}→{out_features}, projection)"),
                    what: "projection shortcut output",
                    expected: format!("(batch, {out_features}), the branch's output width"),
                    actual: format!("(batch, {}) from {}", p.out_features(), p.describe()),
                });
            }
            Shortcut::Layer(l) => {
                let width = l.output_features(in_features).map_err(|e| e.at(&"shortcut"))?;
                if width != out_features {
                    return Err(Error::ShapeMismatch {
                        layer: format!("Residual({in_features}→{out_features}, shortcut)"),
                        what: "shortcut output",
                        expected: format!("(batch, {out_features}), the branch's output width"),
                        actual: format!("(batch, {width}) from {}", l.describe()),
                    });
                }
            }
            _ => {}
        }
        Ok(ResidualBlock {
            branch,
            scale: None,
            shortcut,
            activation: None,
            names: ChildNames::new(ROLES),
            flat_branch: false,
            in_features,
            out_features,
            branch_out: Array2::zeros((0, 0)),
            scaled_out: Array2::zeros((0, 0)),
            shortcut_out: Array2::zeros((0, 0)),
            sum_out: Array2::zeros((0, 0)),
            grad_sum: Array2::zeros((0, 0)),
            grad_branch_out: Array2::zeros((0, 0)),
            grad_shortcut: Array2::zeros((0, 0)),
            forward_batch: None,
        })
    }

    /// Scales the branch: `y = shortcut(x) + α · branch(x)`, with α fixed or learnable.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the factor is not finite, or when a flattened branch has a
    /// child with the scale's name.
    pub fn with_scale(mut self, scale: BranchScale) -> Result<Self> {
        self.check_name_free(SCALE)?;
        self.scale = Some(scale.layer().map_err(|e| e.at(&self.names.get(SCALE)))?);
        Ok(self)
    }

    /// Makes the branch's children the block's own, as in a PyTorch block that holds its
    /// branch's layers as attributes: a branch child called `fc1` is at `"fc1"` (parameters
    /// `"fc1.weight"`, hooks at `"<block>.fc1"`), and the branch itself no longer has a path or
    /// events of its own. See [Names of a PyTorch module](ResidualBlock#names-of-a-pytorch-module).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the block when the branch has no children (a single
    /// layer's parameters would have no name of their own) or when one of its children's
    /// names is the scale's or the shortcut's; nothing changes.
    pub fn flatten_branch(&mut self) -> Result<()> {
        if self.flat_branch {
            return Ok(());
        }
        let mut children = Vec::new();
        self.branch.visit_children(&mut |name, _| children.push(name.to_string()));
        let refuse = |why: String| Err(Error::config(self.describe(), "branch", why));
        if children.is_empty() {
            return refuse(format!(
                "cannot flatten the branch {}: it has no children, so its parameters would have no \
                 name of their own (use a Sequential branch)",
                self.branch.describe()
            ));
        }
        let other_child = |name: &str| self.own_child_named(name).filter(|&i| i != BRANCH);
        if let Some((clash, role)) = children.iter().find_map(|c| Some((c, other_child(c)?))) {
            return refuse(format!(
                "cannot flatten the branch: its child `{clash}` has the name of the block's {}",
                ROLES[role]
            ));
        }
        self.flat_branch = true;
        Ok(())
    }

    /// Refuses to add the child of `role` when a flattened branch already has a child of its
    /// name.
    fn check_name_free(&self, role: usize) -> Result<()> {
        let name = self.names.get(role);
        if self.flat_branch && child_named(self.branch.as_ref(), name).is_some() {
            return Err(Error::config(
                self.describe(),
                ROLES[role],
                format!(
                    "the flattened branch has a child `{name}`, the {}'s name: rename one first",
                    ROLES[role]
                ),
            ));
        }
        Ok(())
    }

    /// Whether the branch's children are the block's own ([`ResidualBlock::flatten_branch`]).
    pub fn has_flat_branch(&self) -> bool {
        self.flat_branch
    }

    /// The role of the block's own child (scale or shortcut, present) called `name`; the branch
    /// too when it is not flattened.
    fn own_child_named(&self, name: &str) -> Option<usize> {
        self.names.index_of(name).filter(|&i| self.present()[i])
    }

    /// Which of the block's own children exist (the branch as one only when not flattened).
    fn present(&self) -> [bool; 4] {
        [!self.flat_branch, self.scale.is_some(), self.shortcut.layer().is_some(), self.activation.is_some()]
    }

    /// Applies `activation` to the sum inside the block: `y = act(shortcut(x) + α·branch(x))`,
    /// as in He et al.'s original block (2016, Fig. 2) and torchvision's `BasicBlock`, whose
    /// `relu` follows the addition within the block (so that a torchvision `layer1` holds only
    /// blocks, `layer1.0`, `layer1.1`, …). The activation is the child `"activation"`
    /// (renamable); images keep their shape for per-channel statistics.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a flattened branch has a child with the activation's name.
    pub fn with_output_activation(mut self, activation: impl Activation<F> + 'static) -> Result<Self> {
        self.set_output_activation(Act::new(activation))?;
        Ok(self)
    }

    /// [`ResidualBlock::with_output_activation`] in place, with an [`Act`].
    ///
    /// # Errors
    /// As [`ResidualBlock::with_output_activation`].
    pub fn set_output_activation(&mut self, activation: Act<F>) -> Result<()> {
        self.check_name_free(ACTIVATION)?;
        self.activation = Some(match self.branch.image_shape() {
            Some(image) => activation.with_image(image),
            None => activation,
        });
        Ok(())
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// The scale child, if the branch is scaled (to read or set α).
    pub fn scale_mut(&mut self) -> Option<&mut Scale<F>> {
        self.scale.as_mut()
    }

    /// The projection, if the shortcut is a [`Linear`] one.
    pub fn projection_mut(&mut self) -> Option<&mut Linear<F>> {
        match &mut self.shortcut {
            Shortcut::Projection(p) => Some(p.as_mut()),
            _ => None,
        }
    }

    /// The shortcut layer, mutably (`None` for the identity).
    pub fn shortcut_mut(&mut self) -> Option<&mut dyn Layer<F>> {
        self.shortcut.layer_mut()
    }
}

impl<F: Float> Residual<F> for ResidualBlock<F> {
    fn branch(&self) -> &dyn Layer<F> {
        self.branch.as_ref()
    }

    fn branch_mut(&mut self) -> &mut dyn Layer<F> {
        self.branch.as_mut()
    }

    fn shortcut(&self) -> Option<&dyn Layer<F>> {
        self.shortcut.layer()
    }

    fn branch_scale(&self) -> Option<f64> {
        self.scale.as_ref().map(|s| s.alpha().as_f64())
    }
}

impl<F: Float> Layer<F> for ResidualBlock<F> {
    fn kind(&self) -> &'static str {
        "Residual"
    }

    fn describe(&self) -> String {
        let shortcut = self.shortcut.describe();
        let scale = match &self.scale {
            Some(s) if s.is_learnable() => format!(", learnable scale α={}", s.alpha()),
            Some(s) => format!(", fixed scale α={}", s.alpha()),
            None => String::new(),
        };
        let activation = match &self.activation {
            Some(a) => format!(", then {}", a.activation().name()),
            None => String::new(),
        };
        format!("Residual({}→{}, {shortcut}{scale}{activation})", self.in_features, self.out_features)
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        check_input_features(&|| self.describe(), self.in_features, input_features)?;
        Ok(self.out_features)
    }

    /// The branch's (the sum has the branch's shape).
    fn image_shape(&self) -> Option<crate::layers::ImageShape> {
        self.branch.image_shape()
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        mode: Mode,
        ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        self.forward_batch = None;
        check_shape(&|| self.describe(), "input", &input, None, Some(self.in_features))?;
        let batch = input.nrows();
        if self.flat_branch {
            // The branch's children are the block's: they run at the block's path.
            self.branch.forward(input.view(), &mut self.branch_out, mode, ctx)?;
        } else {
            let name = self.names.get(BRANCH);
            ctx.forward_child(&name, self.branch.as_mut(), input.view(), &mut self.branch_out, mode)?;
        }
        // The branch may have been changed since construction (through `branch_mut`).
        if self.branch_out.dim() != (batch, self.out_features) {
            return Err(Error::ShapeMismatch {
                layer: self.describe(),
                what: "branch output",
                expected: format!("({batch}, {})", self.out_features),
                actual: crate::error::format_shape(self.branch_out.shape()),
            });
        }
        let added = match &mut self.scale {
            Some(scale) => {
                let name = self.names.get(SCALE);
                ctx.forward_child(&name, scale, self.branch_out.view(), &mut self.scaled_out, mode)?;
                &self.scaled_out
            }
            None => &self.branch_out,
        };
        // The sum goes to the output, or to `sum_out` when an activation follows it.
        let sum = if self.activation.is_some() { &mut self.sum_out } else { &mut *output };
        ensure_shape(sum, (batch, self.out_features));
        match self.shortcut.layer_mut() {
            Some(projection) => {
                let name = self.names.get(SHORTCUT);
                ctx.forward_child(&name, projection, input, &mut self.shortcut_out, mode)?;
                // The projection may have been replaced by one of another width.
                if self.shortcut_out.dim() != (batch, self.out_features) {
                    return Err(Error::ShapeMismatch {
                        layer: self.describe(),
                        what: "shortcut output",
                        expected: format!("({batch}, {})", self.out_features),
                        actual: crate::error::format_shape(self.shortcut_out.shape()),
                    });
                }
                sum_into(sum, self.shortcut_out.view(), added.view());
            }
            None => sum_into(sum, input, added.view()),
        }
        if let Some(activation) = &mut self.activation {
            let name = self.names.get(ACTIVATION);
            ctx.forward_child(&name, activation, self.sum_out.view(), output, mode)?;
        }
        self.forward_batch = Some(batch);
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        mut grad_input: Option<&mut Array2<F>>,
        ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        let Some(batch) = self.forward_batch else {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        };
        let name = || self.describe();
        check_shape(&name, "input", &input, Some(batch), Some(self.in_features))?;
        check_shape(&name, "grad_output", &grad_output, Some(batch), Some(self.out_features))?;
        let ResidualBlock {
            branch,
            scale,
            shortcut,
            branch_out,
            scaled_out,
            shortcut_out,
            grad_branch_out,
            grad_shortcut,
            activation,
            sum_out,
            grad_sum,
            names,
            flat_branch,
            ..
        } = self;

        // Through the output activation first: the rest of the block sees dL/d(sum).
        let grad_output = match activation {
            Some(activation) => {
                let name = names.get(ACTIVATION);
                let g = Some(&mut *grad_sum);
                ctx.backward_child(&name, activation, sum_out.view(), output, grad_output, g)?;
                grad_sum.view()
            }
            None => grad_output,
        };

        // Branch: dL/d(branch(x)) is α·dy when scaled, dy itself otherwise.
        let branch_grad = match scale {
            Some(scale) => {
                let g = Some(&mut *grad_branch_out);
                let name = names.get(SCALE);
                ctx.backward_child(&name, scale, branch_out.view(), scaled_out.view(), grad_output, g)?;
                grad_branch_out.view()
            }
            None => grad_output,
        };
        let (out, grad_in) = (branch_out.view(), grad_input.as_deref_mut());
        if *flat_branch {
            branch.backward(input, out, branch_grad, grad_in, ctx)?;
        } else {
            ctx.backward_child(&names.get(BRANCH), branch.as_mut(), input, out, branch_grad, grad_in)?;
        }

        // Shortcut: add the incoming gradient (identity) or what the projection sends down.
        match shortcut.layer_mut() {
            Some(projection) => {
                let g = grad_input.is_some().then_some(&mut *grad_shortcut);
                let name = names.get(SHORTCUT);
                ctx.backward_child(&name, projection, input, shortcut_out.view(), grad_output, g)?;
                if let Some(grad_input) = grad_input {
                    add_assign(grad_input, grad_shortcut.view());
                }
            }
            None => {
                if let Some(grad_input) = grad_input {
                    add_assign(grad_input, grad_output);
                }
            }
        }
        Ok(())
    }

    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        self.branch.visit_parameters(visitor);
        if let Some(scale) = &self.scale {
            scale.visit_parameters(visitor);
        }
        if let Some(projection) = self.shortcut.layer() {
            projection.visit_parameters(visitor);
        }
    }

    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        self.branch.visit_parameters_mut(visitor);
        if let Some(scale) = &mut self.scale {
            scale.visit_parameters_mut(visitor);
        }
        if let Some(projection) = self.shortcut.layer_mut() {
            projection.visit_parameters_mut(visitor);
        }
    }

    fn visit_buffers<'a>(&'a self, visitor: &mut dyn FnMut(BufferView<'a, F>)) {
        self.branch.visit_buffers(visitor);
        if let Some(shortcut) = self.shortcut.layer() {
            shortcut.visit_buffers(visitor);
        }
    }

    fn visit_buffers_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(BufferViewMut<'a, F>)) {
        self.branch.visit_buffers_mut(visitor);
        if let Some(shortcut) = self.shortcut.layer_mut() {
            shortcut.visit_buffers_mut(visitor);
        }
    }

    fn visit_children<'a>(&'a self, visitor: &mut dyn FnMut(&str, &'a dyn Layer<F>)) {
        if self.flat_branch {
            self.branch.visit_children(visitor);
        } else {
            visitor(self.names.get(BRANCH), self.branch.as_ref());
        }
        if let Some(scale) = &self.scale {
            visitor(self.names.get(SCALE), scale);
        }
        if let Some(projection) = self.shortcut.layer() {
            visitor(self.names.get(SHORTCUT), projection);
        }
        if let Some(activation) = &self.activation {
            visitor(self.names.get(ACTIVATION), activation);
        }
    }

    fn child_mut(&mut self, name: &str) -> Option<&mut dyn Layer<F>> {
        match self.own_child_named(name) {
            Some(BRANCH) => Some(self.branch.as_mut()),
            Some(SCALE) => self.scale.as_mut().map(|s| s as &mut dyn Layer<F>),
            Some(SHORTCUT) => self.shortcut.layer_mut(),
            Some(_) => self.activation.as_mut().map(|a| a as &mut dyn Layer<F>),
            None if self.flat_branch => self.branch.child_mut(name),
            None => None,
        }
    }

    fn rename_child(&mut self, from: &str, to: &str) -> Result<()> {
        let owner = self.describe();
        let present = self.present();
        if self.flat_branch && self.own_child_named(from).is_none() {
            // A child of the flattened branch: its new name must not be the block's own.
            if let Some(i) = self.own_child_named(to) {
                return Err(Error::config(
                    owner,
                    "name",
                    format!("cannot rename `{from}` to `{to}`: `{to}` already names the {}", ROLES[i]),
                ));
            }
            return self.branch.rename_child(from, to);
        }
        let branch = self.branch.as_ref();
        let in_flat_branch = |name: &str| child_named(branch, name).is_some();
        let taken: &dyn Fn(&str) -> bool = if self.flat_branch { &in_flat_branch } else { &|_| false };
        self.names.rename(&owner, from, to, present, taken)
    }
}

/// `out = a + b` (all of one shape; `out` standard layout): the kernel
/// [`crate::kernels::Kernels::add_slices`] on contiguous arrays, an elementwise loop otherwise.
fn sum_into<F: Float>(out: &mut Array2<F>, a: ArrayView2<'_, F>, b: ArrayView2<'_, F>) {
    match (out.as_slice_mut(), a.as_slice(), b.as_slice()) {
        (Some(out), Some(a), Some(b)) => F::add_slices(out, a, b),
        _ => Zip::from(out).and(&a).and(&b).for_each(|y, &a, &b| *y = a + b),
    }
}

/// `dst += src` (one shape), like [`sum_into`].
fn add_assign<F: Float>(dst: &mut Array2<F>, src: ArrayView2<'_, F>) {
    match (dst.as_slice_mut(), src.as_slice()) {
        (Some(dst), Some(src)) => F::add_assign_slices(dst, src),
        _ => *dst += &src,
    }
}

/// `out[i] = a[i] + b[i]`, shared between threads when long.
pub(crate) fn add_slices<F: Float>(out: &mut [F], a: &[F], b: &[F]) {
    crate::vectorize::chunks_at(out, |out, at| {
        let (a, b) = (&a[at..at + out.len()], &b[at..at + out.len()]);
        crate::vectorize::vectorized(
            #[inline(always)]
            || out.iter_mut().zip(a).zip(b).for_each(|((o, &a), &b)| *o = a + b),
        )
    });
}

/// `dst[i] += src[i]`, shared between threads when long.
pub(crate) fn add_assign_slices<F: Float>(dst: &mut [F], src: &[F]) {
    crate::vectorize::zip_chunks(dst, src, |dst, src| {
        crate::vectorize::vectorized(
            #[inline(always)]
            || dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s),
        )
    });
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::activation::Tanh;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use crate::{Act, Network, Sequential};
    use rand::SeedableRng;

    fn tanh_branch(rng: &mut rand::rngs::StdRng, inp: usize, hidden: usize, out: usize) -> Sequential<f64> {
        let mut branch = Sequential::new();
        branch
            .push(Linear::new(inp, hidden, rng).unwrap())
            .push(Act::new(Tanh))
            .push(Linear::new(hidden, out, rng).unwrap());
        branch
    }

    fn input(rows: usize, cols: usize) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| ((i * 5 + j * 3) % 7) as f64 / 3.0 - 1.0)
    }

    #[test]
    fn identity_forward_adds_the_input_to_the_branch() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut block = ResidualBlock::identity(tanh_branch(&mut rng, 4, 6, 4), 4).unwrap();
        let x = input(3, 4);
        let mut y = Array2::zeros((0, 0));
        block.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        let mut b = Array2::zeros((0, 0));
        block.branch.forward(x.view(), &mut b, Mode::Train, &mut Context::new()).unwrap();
        assert_eq!(y, &x + &b);
    }

    #[test]
    fn identity_shortcut_passes_gradient_check() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut block = ResidualBlock::identity(tanh_branch(&mut rng, 4, 5, 4), 4).unwrap();
        let report = check_layer(&mut block, &input(3, 4), GradCheckConfig::default()).unwrap();
        let names: Vec<&str> = report.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["input", "branch.0.weight", "branch.0.bias", "branch.2.weight", "branch.2.bias"]);
        report.within(1e-6).unwrap();
    }

    #[test]
    fn projection_shortcut_passes_gradient_check() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let branch = tanh_branch(&mut rng, 4, 5, 6);
        let projection = Linear::new(4, 6, &mut rng).unwrap();
        let mut block = ResidualBlock::projection(branch, projection).unwrap();
        assert_eq!(block.output_features(4).unwrap(), 6);
        let report = check_layer(&mut block, &input(3, 4), GradCheckConfig::default()).unwrap();
        let names: Vec<&str> = report.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names[5..], ["shortcut.weight", "shortcut.bias"]);
        report.within(1e-6).unwrap();
    }

    #[test]
    fn fixed_and_learnable_scales_pass_gradient_check() {
        for (scale, params) in
            [(BranchScale::Fixed(0.3), 5), (BranchScale::Learnable(0.7), 6), (BranchScale::rezero(), 6)]
        {
            let mut rng = rand::rngs::StdRng::seed_from_u64(4);
            let mut block = ResidualBlock::identity(tanh_branch(&mut rng, 3, 4, 3), 3)
                .unwrap()
                .with_scale(scale)
                .unwrap();
            let report = check_layer(&mut block, &input(4, 3), GradCheckConfig::default()).unwrap();
            assert_eq!(report.tensors.len(), params, "{scale:?}");
            if params == 6 {
                assert_eq!(report.tensors[5].name, "scale.weight");
            }
            report.within(1e-6).unwrap();
        }
    }

    #[test]
    fn scaled_projection_passes_gradient_check() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let branch = tanh_branch(&mut rng, 3, 4, 2);
        let projection = Linear::new(3, 2, &mut rng).unwrap();
        let mut block = ResidualBlock::projection(branch, projection)
            .unwrap()
            .with_scale(BranchScale::Learnable(0.5))
            .unwrap();
        assert_eq!(block.branch_scale(), Some(0.5));
        let report = check_layer(&mut block, &input(4, 3), GradCheckConfig::default()).unwrap();
        let names: Vec<&str> = report.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names[5..], ["scale.weight", "shortcut.weight", "shortcut.bias"]);
        report.within(1e-6).unwrap();
    }

    #[test]
    fn rezero_block_starts_as_the_identity() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let mut block = ResidualBlock::identity(tanh_branch(&mut rng, 3, 4, 3), 3)
            .unwrap()
            .with_scale(BranchScale::rezero())
            .unwrap();
        let x = input(2, 3);
        let mut y = Array2::zeros((0, 0));
        block.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        assert_eq!(y, x);
    }

    #[test]
    fn with_a_zero_branch_the_input_gradient_is_the_output_gradient_exactly() {
        let branch = Linear::from_weights(Array2::<f64>::zeros((3, 3)), None).unwrap();
        let mut block = ResidualBlock::identity(branch, 3).unwrap();
        let x = input(2, 3);
        let mut y = Array2::zeros((0, 0));
        block.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        let dy = Array2::from_shape_fn((2, 3), |(i, j)| 1e-7 * (i as f64 + 1.0) - 3.3 * j as f64);
        let mut dx = Array2::zeros((0, 0));
        block.backward(x.view(), y.view(), dy.view(), Some(&mut dx), &mut Context::new()).unwrap();
        assert_eq!(dx, dy);
    }

    #[test]
    fn width_mismatches_are_clear_errors() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Identity with a width-changing branch.
        let err = ResidualBlock::identity(tanh_branch(&mut rng, 4, 4, 5), 4).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("identity") && msg.contains("(batch, 5)") && msg.contains("projection"),
            "{msg}"
        );
        // Projection of the wrong output size.
        let wrong = Linear::new(4, 3, &mut rng).unwrap();
        let err = ResidualBlock::projection(tanh_branch(&mut rng, 4, 4, 5), wrong).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("projection shortcut") && msg.contains("Linear(4→3)") && msg.contains("(batch, 5)"),
            "{msg}"
        );
        // Projection of the wrong input size: the branch refuses its width.
        let wrong = Linear::new(3, 5, &mut rng).unwrap();
        let err = ResidualBlock::projection(tanh_branch(&mut rng, 4, 4, 5), wrong).unwrap_err();
        assert!(err.to_string().contains("branch") && err.to_string().contains("(batch, 3)"), "{err}");
        // Input of the wrong width in forward.
        let mut block = ResidualBlock::identity(tanh_branch(&mut rng, 4, 4, 4), 4).unwrap();
        let mut y = Array2::zeros((0, 0));
        let err = block.forward(input(2, 3).view(), &mut y, Mode::Train, &mut Context::new()).unwrap_err();
        assert!(
            err.to_string().contains("Residual(4→4, identity)") && err.to_string().contains("(2, 3)"),
            "{err}"
        );
    }

    #[test]
    fn a_branch_changed_after_construction_is_caught_in_forward() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let mut block = ResidualBlock::identity(tanh_branch(&mut rng, 3, 3, 3), 3).unwrap();
        // Swap in a branch that widens to 4 (possible from inside the crate only).
        let mut wider = tanh_branch(&mut rng, 3, 3, 3);
        wider.push(Linear::new(3, 4, &mut rng).unwrap());
        block.branch = Box::new(wider);
        let mut y = Array2::zeros((0, 0));
        let err = block.forward(input(2, 3).view(), &mut y, Mode::Train, &mut Context::new()).unwrap_err();
        assert!(err.to_string().contains("branch output") && err.to_string().contains("(2, 4)"), "{err}");
    }

    #[test]
    fn hooks_see_the_children_with_dotted_paths() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut model = Sequential::<f64>::new();
        model.push(Linear::new(3, 4, &mut rng).unwrap());
        let block = ResidualBlock::identity(tanh_branch(&mut rng, 4, 5, 4), 4).unwrap();
        model.push(block.with_scale(BranchScale::rezero()).unwrap());
        let mut net = Network::new(model);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        net.attach_hook(move |event: &mut crate::hooks::Event<'_, f64>| {
            let phase = match event {
                crate::hooks::Event::Forward(_) => "fwd",
                _ => "bwd",
            };
            log.lock().unwrap().push(format!("{phase} {} {}", event.path(), event.kind()));
        });
        net.forward(input(2, 3).view(), Mode::Train).unwrap();
        net.backward(Array2::ones((2, 4)).view()).unwrap();
        let seen = seen.lock().unwrap();
        let expected = [
            "fwd 0 Linear",
            "fwd 1.branch.0 Linear",
            "fwd 1.branch.1 tanh",
            "fwd 1.branch.2 Linear",
            "fwd 1.branch Sequential",
            "fwd 1.scale Scale",
            "fwd 1 Residual",
            "bwd 1.scale Scale",
            "bwd 1.branch.2 Linear",
            "bwd 1.branch.1 tanh",
            "bwd 1.branch.0 Linear",
            "bwd 1.branch Sequential",
            "bwd 1 Residual",
            "bwd 0 Linear",
        ];
        assert_eq!(*seen, expected);
        // Parameter names follow the same paths.
        let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names[2..],
            [
                "1.branch.0.weight",
                "1.branch.0.bias",
                "1.branch.2.weight",
                "1.branch.2.bias",
                "1.scale.weight"
            ]
        );
        assert!(net.model().layer_at("1.branch.1").is_some_and(|l| l.kind() == "tanh"));
    }

    #[test]
    fn works_in_f32() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(10);
        let branch = Linear::<f32>::new(3, 3, &mut rng).unwrap();
        let mut block =
            ResidualBlock::identity(branch, 3).unwrap().with_scale(BranchScale::Fixed(0.5)).unwrap();
        let x = Array2::<f32>::ones((2, 3));
        let mut y = Array2::zeros((0, 0));
        block.forward(x.view(), &mut y, Mode::Eval, &mut Context::new()).unwrap();
        let mut dx = Array2::zeros((0, 0));
        block.backward(x.view(), y.view(), x.view(), Some(&mut dx), &mut Context::new()).unwrap();
        assert!(dx.iter().all(|v| v.is_finite()));
        assert_eq!(block.branch_scale(), Some(0.5));
    }
}
