//! The [`SequentialBuilder`]'s steps that change the layer the step before added:
//! [`SequentialBuilder::named`], [`SequentialBuilder::rename_child`] and
//! [`SequentialBuilder::flatten_branch`], which give a built model the module names of a PyTorch
//! model, so that its state dict loads with no key mapping, and
//! [`SequentialBuilder::block_activation`], which puts an activation inside a residual block as
//! torchvision's `BasicBlock` has it.

use std::fmt;
use std::sync::Arc;

use super::SequentialBuilder;
use crate::activation::{Act, Activation};
use crate::layers::{ResidualBlock, Sequential};
use crate::{Error, Float, Layer, Result};

/// A change a step makes to the layer the step before it added, once built.
pub(super) enum StepEdit<F: Float> {
    /// [`SequentialBuilder::named`].
    Name(String),
    /// [`SequentialBuilder::rename_child`]: from, to.
    RenameChild(String, String),
    /// [`SequentialBuilder::flatten_branch`].
    FlattenBranch,
    /// [`SequentialBuilder::block_activation`].
    BlockActivation(Arc<dyn Activation<F>>),
}

impl<F: Float> fmt::Display for StepEdit<F> {
    /// The step as the user wrote it, for errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepEdit::Name(name) => write!(f, "named(\"{name}\")"),
            StepEdit::RenameChild(from, to) => write!(f, "rename_child(\"{from}\", \"{to}\")"),
            StepEdit::FlattenBranch => f.write_str("flatten_branch()"),
            StepEdit::BlockActivation(a) => write!(f, "block_activation({})", a.name()),
        }
    }
}

impl<F: Float> StepEdit<F> {
    /// Applies the change to child `index` of `model`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the child when the change is not allowed.
    pub(super) fn apply(self, model: &mut Sequential<F>, index: usize) -> Result<()> {
        let label = model.name_of(index).unwrap_or_else(|| index.to_string());
        let result = match &self {
            StepEdit::Name(name) => return model.set_name(index, name),
            StepEdit::RenameChild(from, to) => child(model, index, &self)?.rename_child(from, to),
            StepEdit::FlattenBranch => block(child(model, index, &self)?, &label, &self)?.flatten_branch(),
            StepEdit::BlockActivation(activation) => block(child(model, index, &self)?, &label, &self)?
                .set_output_activation(Act::from_shared(activation.clone())),
        };
        result.map_err(|e| e.at(&label))
    }
}

/// Child `index` of `model`, which `step` changes.
fn child<'a, F: Float>(
    model: &'a mut Sequential<F>,
    index: usize,
    step: &StepEdit<F>,
) -> Result<&'a mut dyn Layer<F>> {
    let layer = model.get_mut(index);
    layer.ok_or_else(|| Error::config("Sequential builder", "name", format!("{step}: no layer {index}")))
}

/// `layer` (called `label`) as the residual block that `step` changes, or an error naming what
/// it is instead.
fn block<'a, F: Float>(
    layer: &'a mut dyn Layer<F>,
    label: &str,
    step: &StepEdit<F>,
) -> Result<&'a mut ResidualBlock<F>> {
    if layer.downcast_ref::<ResidualBlock<F>>().is_none() {
        return Err(Error::config(
            format!("{label}: {}", layer.describe()),
            "branch",
            format!("{step} follows a step that did not add a residual block"),
        ));
    }
    Ok(layer.downcast_mut::<ResidualBlock<F>>().expect("checked just above"))
}

/// Naming steps: PyTorch's module names for the layers a builder makes.
///
/// A PyTorch model's parameters are named by the attributes that hold its modules
/// (`self.fc1`, `self.blocks = nn.ModuleList(…)`, a block's `self.norm`, `self.downsample`).
/// Mirror them while describing the model, and its state dict loads, and saves back, under
/// those names — no key mapping:
///
/// ```
/// use gradflow::Sequential;
/// use gradflow::activation::{Gelu, Tanh};
/// use gradflow::rand::{SeedableRng, rngs::StdRng};
///
/// // class Block(nn.Module): norm = LayerNorm(d), fc1 = Linear(d, d'), fc2 = Linear(d', d'),
/// //                        proj = Linear(d, d') when d != d';  x ↦ proj(x) + fc2(gelu(fc1(norm(x))))
/// // class Net(nn.Module):  stem = Linear(4, 6), blocks = ModuleList([Block(6, 6), Block(6, 8)]),
/// //                        head = Linear(8, 3);  x ↦ head(blocks(tanh(stem(x))))
/// let block = |width| move |b: gradflow::SequentialBuilder<f32>| {
///     b.layer_norm().named("norm").linear(width).named("fc1").activation(Gelu::default())
///         .linear(width).named("fc2")
/// };
/// let model = Sequential::<f32>::builder(4)
///     .linear(6).named("stem").activation(Tanh)
///     .sequential(|b| {
///         b.residual(block(6)).flatten_branch()
///             .residual_projection(block(8)).flatten_branch().rename_child("shortcut", "proj")
///     })
///     .named("blocks")
///     .linear(3).named("head")
///     .build(&mut StdRng::seed_from_u64(0))?;
/// let names: Vec<String> = gradflow::named_parameters(&model).into_iter().map(|(n, _)| n).collect();
/// assert_eq!(&names[..4], ["stem.weight", "stem.bias", "blocks.0.norm.weight", "blocks.0.norm.bias"]);
/// assert!(names.contains(&"blocks.1.proj.weight".to_string()));
/// assert_eq!(model.layer_at("blocks.1.fc2").unwrap().kind(), "Linear");
/// # Ok::<(), gradflow::Error>(())
/// ```
impl<F: Float> SequentialBuilder<F> {
    /// Names the layer added by the step just before, as PyTorch names a module's children:
    /// `.linear(64).named("fc1").batch_norm().named("bn1")` gives `fc1.weight`, `fc1.bias`,
    /// `bn1.running_mean`, … in paths, hooks, reports and safetensors files (see
    /// [Names](Sequential#names) for what a name may be). A step that adds two layers
    /// ([`SequentialBuilder::dense`]: the `Linear` and its activation) has its last one named.
    ///
    /// ```
    /// use gradflow::Sequential;
    /// use gradflow::activation::Relu;
    /// use gradflow::rand::{SeedableRng, rngs::StdRng};
    ///
    /// let model = Sequential::<f32>::builder(4)
    ///     .linear(8).named("fc1").batch_norm().named("bn1").activation(Relu)
    ///     .linear(2).named("fc2")
    ///     .build(&mut StdRng::seed_from_u64(0))?;
    /// let names: Vec<String> = gradflow::named_parameters(&model).into_iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["fc1.weight", "fc1.bias", "bn1.weight", "bn1.bias", "fc2.weight", "fc2.bias"]);
    /// assert_eq!(model.layer_at("2").unwrap().kind(), "relu"); // unnamed: its index
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// A name that is not allowed, or `named` before any step, is an [`Error::InvalidConfig`]
    /// from [`SequentialBuilder::build`] naming the layer.
    pub fn named(self, name: &str) -> Self {
        self.edit(StepEdit::Name(name.to_string()))
    }

    /// Renames a child of the layer added by the step just before (see [`crate::Layer::rename_child`]):
    /// a residual block's `"shortcut"` (`.rename_child("shortcut", "downsample")`), `"branch"`
    /// or `"scale"`, a highway layer's `"transform"`, `"activation"` and `"gate"`, a flattened
    /// branch's children, or a nested [`SequentialBuilder::sequential`]'s children.
    ///
    /// A child that does not exist, a name that is not allowed or already names another child
    /// of that layer is an [`Error::InvalidConfig`] from [`SequentialBuilder::build`] naming the
    /// layer.
    pub fn rename_child(self, from: &str, to: &str) -> Self {
        self.edit(StepEdit::RenameChild(from.to_string(), to.to_string()))
    }

    /// Makes the branch's children of the residual block added by the step just before the
    /// block's own children (see [`ResidualBlock::flatten_branch`]): `blocks.0.fc1.weight`, as in
    /// a PyTorch block that holds `self.fc1`, not `blocks.0.branch.fc1.weight`.
    ///
    /// After a step that did not add a residual block, or when a branch child's name is the
    /// shortcut's, [`SequentialBuilder::build`] fails with an [`Error::InvalidConfig`] naming the
    /// layer.
    pub fn flatten_branch(self) -> Self {
        self.edit(StepEdit::FlattenBranch)
    }

    /// Applies `activation` to the sum inside the residual block added by the step just before
    /// (see [`ResidualBlock::with_output_activation`]): `relu(downsample(x) + bn2(conv2(…)))`, as
    /// in torchvision's `BasicBlock`, whose stages (`layer1`) hold only blocks.
    ///
    /// After a step that did not add a residual block, [`SequentialBuilder::build`] fails with an
    /// [`Error::InvalidConfig`] naming the layer.
    pub fn block_activation(self, activation: impl Activation<F> + 'static) -> Self {
        self.edit(StepEdit::BlockActivation(Arc::new(activation)))
    }

    /// Records `edit` for the step just before.
    fn edit(mut self, edit: StepEdit<F>) -> Self {
        self.edits.push((self.specs.len().checked_sub(1), edit));
        self
    }
}
