//! [`Sequential`]: layers applied one after another.

use ndarray::{Array2, ArrayView2};

use super::child_names::refused_name;
use crate::hooks::Context;
use crate::layer::{Layer, Mode, ensure_shape};
use crate::param::{BufferView, BufferViewMut, ParamView, ParamViewMut};
use crate::{Error, Float, Result};

/// A chain of boxed layers; child `i` is called `"i"`, as in PyTorch's `nn.Sequential`, so its
/// parameters are `"0.weight"`, `"0.bias"`, …, unless it was given a name
/// ([`Sequential::push_named`], [`Sequential::set_name`], [`SequentialBuilder::named`]): then its
/// paths, hook events, reports and safetensors keys use the name, as PyTorch's module names do
/// (`"fc1.weight"`, `"bn1.running_mean"`).
///
/// # Names
/// A name is not empty, has no `.` (it is one segment of a dotted path), and is not used by
/// another child of the same chain — an unnamed child is called by its index, so a number may
/// name a child only when it is not above the child's own index and no unnamed child has it as
/// its index. That lets a chain carry the indices of a PyTorch `nn.ModuleList` whose activations
/// are functions, not modules: `.linear(64).named("0").activation(Relu).named("relu0")
/// .linear(10).named("1")` has the parameters `0.weight`, …, `1.bias` (see
/// [`crate::SequentialBuilder::named`]).
///
/// It owns the activation buffers between its children (and their gradients) and reuses them
/// from step to step.
///
/// ```
/// use gradflow::{Sequential, Linear, Act, Layer};
/// use gradflow::activation::Tanh;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
/// let mut model = Sequential::<f64>::new();
/// model.push(Linear::new(4, 8, &mut rng).unwrap());
/// model.push(Act::new(Tanh));
/// assert_eq!(model.len(), 2);
/// assert_eq!(model.output_features(4).unwrap(), 8);
/// assert_eq!(model.layer_at("1").unwrap().kind(), "tanh");
///
/// // Named as in a PyTorch module: `fc2.weight`, `fc2.bias`.
/// model.push_named("fc2", Linear::new(8, 2, &mut rng).unwrap()).unwrap();
/// assert_eq!(model.layer_at("fc2").unwrap().describe(), "Linear(8→2)");
/// let names: Vec<String> = gradflow::named_parameters(&model).into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "fc2.weight", "fc2.bias"]);
/// // A name is used once per chain.
/// assert!(model.set_name(0, "fc2").is_err());
/// ```
///
/// [`SequentialBuilder::named`]: crate::layers::SequentialBuilder::named
pub struct Sequential<F: Float> {
    layers: Vec<Box<dyn Layer<F>>>,
    /// `names[i]` is child `i`'s name, `None` for its index.
    names: Vec<Option<String>>,
    /// `activations[i]` is the output of layer `i` (for all but the last layer).
    activations: Vec<Array2<F>>,
    /// `gradients[i]` is dL/d(`activations[i]`).
    gradients: Vec<Array2<F>>,
    forward_batch: Option<usize>,
}

impl<F: Float> Default for Sequential<F> {
    fn default() -> Self {
        Sequential {
            layers: Vec::new(),
            names: Vec::new(),
            activations: Vec::new(),
            gradients: Vec::new(),
            forward_batch: None,
        }
    }
}

impl<F: Float> std::fmt::Debug for Sequential<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.layers.iter().map(|l| l.describe())).finish()
    }
}

impl<F: Float> Sequential<F> {
    /// An empty chain (the identity).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a layer.
    pub fn push(&mut self, layer: impl Layer<F> + 'static) -> &mut Self {
        self.push_boxed(Box::new(layer))
    }

    /// Appends an already boxed layer.
    pub fn push_boxed(&mut self, layer: Box<dyn Layer<F>>) -> &mut Self {
        self.layers.push(layer);
        self.names.push(None);
        self.forward_batch = None;
        self
    }

    /// Appends a layer called `name` (see [Names](Sequential#names)).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the chain and the name when the name is empty, has a
    /// `.`, is taken, or is a number other than the new child's index; nothing is appended.
    pub fn push_named(&mut self, name: &str, layer: impl Layer<F> + 'static) -> Result<&mut Self> {
        self.check_name(self.layers.len(), name)?;
        self.push(layer);
        *self.names.last_mut().expect("just pushed") = Some(name.to_string());
        Ok(self)
    }

    /// Names child `index` (see [Names](Sequential#names)); its paths and safetensors keys use
    /// the name from now on.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when there is no child `index` or the name is not allowed;
    /// nothing changes.
    pub fn set_name(&mut self, index: usize, name: &str) -> Result<()> {
        if index >= self.layers.len() {
            return Err(Error::config(
                self.describe(),
                "name",
                format!("cannot name child {index} `{name}`: there are {} children", self.layers.len()),
            ));
        }
        self.check_name(index, name)?;
        self.names[index] = Some(name.to_string());
        Ok(())
    }

    /// The name of child `index`: the one it was given, or its index.
    pub fn name_of(&self, index: usize) -> Option<String> {
        let name = self.names.get(index)?;
        Some(name.clone().unwrap_or_else(|| index.to_string()))
    }

    /// The index of the child called `name` (a given name, or an unnamed child's index).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        if let Some(i) = self.names.iter().position(|n| n.as_deref() == Some(name)) {
            return Some(i);
        }
        let i: usize = name.parse().ok()?;
        (i.to_string() == name && self.names.get(i).is_some_and(Option::is_none)).then_some(i)
    }

    /// Whether `name` may name child `index`.
    fn check_name(&self, index: usize, name: &str) -> Result<()> {
        let refuse = |why: String| Err(Error::config(self.describe(), "name", why));
        if let Some(why) = refused_name(name) {
            return refuse(format!("child {index}: {why}"));
        }
        if name.bytes().all(|b| b.is_ascii_digit()) {
            // A number names an unnamed child by its index: it may name this child only if no
            // child has it as its index now or could later (a child added later has a larger
            // index), so that a path never means two children.
            let number = name.parse::<usize>().ok().filter(|k| k.to_string() == name);
            match number {
                Some(k) if k <= index => {
                    if k != index && self.names.get(k).is_some_and(Option::is_none) {
                        return refuse(format!(
                            "child {index}: `{name}` is the index of the unnamed child {k}: name that one first"
                        ));
                    }
                }
                _ => {
                    return refuse(format!(
                        "child {index}: `{name}` is a number above the child's index or not written as \
                         one (a number names an unnamed child by its index)"
                    ));
                }
            }
        }
        if let Some(other) =
            self.names.iter().position(|n| n.as_deref() == Some(name)).filter(|&i| i != index)
        {
            return refuse(format!("child {index}: `{name}` already names child {other}"));
        }
        Ok(())
    }

    /// Number of direct children.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The child at `index`.
    pub fn get(&self, index: usize) -> Option<&dyn Layer<F>> {
        self.layers.get(index).map(|l| l.as_ref())
    }

    /// The child at `index`, mutably.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut (dyn Layer<F> + 'static)> {
        self.layers.get_mut(index).map(|l| l.as_mut())
    }

    /// The direct children, in order.
    pub fn layers(&self) -> impl Iterator<Item = &dyn Layer<F>> {
        self.layers.iter().map(|l| l.as_ref())
    }

    /// The layer at a dotted path such as `"3"`, `"3.branch.1"` or `"fc1"`, as hooks report it.
    pub fn layer_at(&self, path: &str) -> Option<&dyn Layer<F>> {
        find_layer::<F>(self, path).ok()
    }

    /// The layer at a dotted path, mutably (e.g. to set a weight by hand).
    pub fn layer_at_mut(&mut self, path: &str) -> Option<&mut dyn Layer<F>> {
        find_layer_mut::<F>(self, path)
    }

    /// The layer at a dotted path (as [`Sequential::layer_at`]), or an error saying which segment
    /// of the path is not there and which children its parent has.
    ///
    /// # Errors
    /// [`Error::NoSuchLayer`] naming the path.
    pub fn layer_dyn(&self, path: &str) -> Result<&dyn Layer<F>> {
        find_layer::<F>(self, path)
    }

    /// The layer at a dotted path such as `"3"`, `"fc1"` or `"2.branch.0"` as its concrete type
    /// `T`, e.g. to read a [`crate::Highway`] layer's last gate or a [`crate::Linear`] layer's
    /// weight.
    ///
    /// ```
    /// use gradflow::{Highway, Linear, Sequential, Error};
    /// use gradflow::activation::{Relu, Tanh};
    /// use rand::SeedableRng;
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let model = Sequential::<f32>::builder(4)
    ///     .linear(8).named("fc1").highway(Relu, -2.0).residual_block(8, Tanh).linear(2)
    ///     .build(&mut rng)?;
    /// let highway: &Highway<f32> = model.layer("1")?;
    /// assert_eq!(highway.width(), 8);
    /// let inner: &Linear<f32> = model.layer("2.branch.0")?;
    /// assert_eq!(inner.weight().dim(), (8, 8));
    /// assert_eq!(model.layer::<Linear<f32>>("fc1")?.bias().unwrap().len(), 8);
    ///
    /// // The wrong type or a wrong path is an error naming the path and what is there.
    /// let err = model.layer::<Highway<f32>>("fc1").unwrap_err();
    /// assert!(matches!(err, Error::WrongLayerType { .. }));
    /// assert_eq!(err.to_string(), "layer `fc1` is Linear (Linear(4→8)), not Highway<f32>");
    /// let err = model.layer::<Linear<f32>>("2.branch.7").unwrap_err();
    /// assert!(matches!(err, Error::NoSuchLayer { .. }), "{err}");
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NoSuchLayer`] when nothing is at `path` (naming the segment not found and the
    /// children there are), [`Error::WrongLayerType`] when the layer there is not a `T` (naming
    /// its kind and description).
    pub fn layer<T: Layer<F>>(&self, path: &str) -> Result<&T> {
        find_typed::<F, T>(self, path)
    }

    /// The layer at a dotted path as its concrete type `T`, mutably (e.g. to change a
    /// [`crate::Highway`] layer's gate bias by hand). See [`Sequential::layer`].
    ///
    /// # Errors
    /// As [`Sequential::layer`].
    pub fn layer_mut<T: Layer<F>>(&mut self, path: &str) -> Result<&mut T> {
        find_typed_mut::<F, T>(self, path)
    }

    /// Forgets the last forward pass, so that the next backward pass is refused until a new
    /// forward pass has run (used after passes that overwrite the children's caches, such as
    /// [`crate::theory::jacobian_spectra`]).
    pub(crate) fn invalidate_forward(&mut self) {
        self.forward_batch = None;
    }

    /// Checks that the chain accepts `input_features` and returns its output width, naming the
    /// first layer that does not fit.
    pub fn check(&self, input_features: usize) -> Result<usize> {
        let mut width = input_features;
        for (i, layer) in self.layers.iter().enumerate() {
            width = layer.output_features(width).map_err(|e| e.at(&Label(i, self.names[i].as_deref())))?;
        }
        Ok(width)
    }
}

/// A child's name in paths: its given name, or its index.
struct Label<'a>(usize, Option<&'a str>);

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

/// The layer at the dotted `path` under `root` (each segment a child's name, as
/// [`Layer::visit_children`] gives it), or an error naming the path, the segment not found and
/// the children there are.
pub(crate) fn find_layer<'a, F: Float>(root: &'a dyn Layer<F>, path: &str) -> Result<&'a dyn Layer<F>> {
    let missing = |reason: String| Error::NoSuchLayer { path: path.to_string(), reason };
    if path.is_empty() {
        return Err(missing(
            "the path is empty; a path names a child, e.g. `3`, `fc1` or `3.branch.0`".into(),
        ));
    }
    let mut layer = root;
    // The length of the path walked so far (0 at the root).
    let mut reached = 0;
    for part in path.split('.') {
        let Some(child) = child_named(layer, part) else {
            let mut children = 0;
            layer.visit_children(&mut |_, _| children += 1);
            let reason = match (reached, children) {
                (0, 0) => format!("the model is {}, which has no children", layer.describe()),
                (0, _) => format!("the model has no child `{part}`; its children are {}", child_list(layer)),
                (_, 0) => format!("`{}` is {}, which has no children", &path[..reached], layer.describe()),
                _ => format!(
                    "`{}` ({}) has no child `{part}`; its children are {}",
                    &path[..reached],
                    layer.describe(),
                    child_list(layer)
                ),
            };
            return Err(missing(reason));
        };
        layer = child;
        reached += if reached == 0 { part.len() } else { 1 + part.len() };
    }
    Ok(layer)
}

/// The layer at `path` under `root`, mutably (found through [`Layer::child_mut`]).
fn find_layer_mut<'a, F: Float>(root: &'a mut dyn Layer<F>, path: &str) -> Option<&'a mut dyn Layer<F>> {
    let mut layer = root;
    for part in path.split('.') {
        layer = layer.child_mut(part)?;
    }
    Some(layer)
}

/// The layer at `path` under `root` as a `T` (see [`Sequential::layer`]).
pub(crate) fn find_typed<'a, F: Float, T: Layer<F>>(root: &'a dyn Layer<F>, path: &str) -> Result<&'a T> {
    let layer = find_layer(root, path)?;
    layer.downcast_ref::<T>().ok_or_else(|| wrong_type::<F, T>(path, layer))
}

/// The layer at `path` under `root` as a `T`, mutably (see [`Sequential::layer_mut`]).
pub(crate) fn find_typed_mut<'a, F: Float, T: Layer<F>>(
    root: &'a mut dyn Layer<F>,
    path: &str,
) -> Result<&'a mut T> {
    // Checked immutably first, for the error messages; the same walk then finds it mutably.
    find_typed::<F, T>(&*root, path).map(|_| ())?;
    find_layer_mut(root, path).and_then(|l| l.downcast_mut::<T>()).ok_or_else(|| Error::NoSuchLayer {
        path: path.to_string(),
        reason: "the layer was found but not reached mutably (a container's `child_mut` disagrees with its \
                 `visit_children`)"
            .into(),
    })
}

/// The error for a layer at `path` that is not a `T`.
fn wrong_type<F: Float, T: Layer<F>>(path: &str, layer: &dyn Layer<F>) -> Error {
    Error::WrongLayerType {
        path: path.to_string(),
        expected: crate::layer::short_type_name::<T>(),
        actual: format!("{} ({})", layer.kind(), layer.describe()),
    }
}

/// The names of `layer`'s children for an error message: `` `0`, `1`, `fc2` ``, the first
/// dozen only.
fn child_list<F: Float>(layer: &dyn Layer<F>) -> String {
    const SHOWN: usize = 12;
    let (mut names, mut count) = (Vec::new(), 0usize);
    layer.visit_children(&mut |name, _| {
        if count < SHOWN {
            names.push(format!("`{name}`"));
        }
        count += 1;
    });
    match count {
        0 => "none".to_string(),
        n if n > SHOWN => format!("{} and {} more", names.join(", "), n - SHOWN),
        _ => names.join(", "),
    }
}

/// The direct child of `layer` called `name` (as [`Layer::visit_children`] names it), if any.
pub(crate) fn child_named<'a, F: Float>(layer: &'a dyn Layer<F>, name: &str) -> Option<&'a dyn Layer<F>> {
    let mut found: Option<&'a dyn Layer<F>> = None;
    layer.visit_children(&mut |child_name, child| {
        if child_name == name && found.is_none() {
            found = Some(child);
        }
    });
    found
}

impl<F: Float> Layer<F> for Sequential<F> {
    fn kind(&self) -> &'static str {
        "Sequential"
    }

    fn describe(&self) -> String {
        format!("Sequential({} layers)", self.layers.len())
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        self.check(input_features)
    }

    /// The last child's (an empty chain does not know).
    fn image_shape(&self) -> Option<crate::layers::ImageShape> {
        self.layers.last().and_then(|l| l.image_shape())
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        mode: Mode,
        ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        let n = self.layers.len();
        self.forward_batch = None;
        if n == 0 {
            ensure_shape(output, input.dim());
            output.assign(&input);
            self.forward_batch = Some(input.nrows());
            return Ok(());
        }
        self.activations.resize_with(n - 1, || Array2::zeros((0, 0)));
        for i in 0..n {
            let (before, after) = self.activations.split_at_mut(i);
            let layer_input = if i == 0 { input.view() } else { before[i - 1].view() };
            let layer_output = if i == n - 1 { &mut *output } else { &mut after[0] };
            let label = Label(i, self.names[i].as_deref());
            ctx.forward_child(&label, self.layers[i].as_mut(), layer_input, layer_output, mode)?;
        }
        self.forward_batch = Some(input.nrows());
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
        if self.forward_batch != Some(input.nrows()) {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        }
        if grad_output.dim() != output.dim() {
            return Err(Error::shape(
                self.describe(),
                "grad_output",
                crate::error::format_shape(output.shape()),
                grad_output.shape(),
            ));
        }
        let n = self.layers.len();
        if n == 0 {
            if let Some(g) = grad_input {
                ensure_shape(g, grad_output.dim());
                g.assign(&grad_output);
            }
            return Ok(());
        }
        self.gradients.resize_with(n - 1, || Array2::zeros((0, 0)));
        for i in (0..n).rev() {
            let layer_input = if i == 0 { input.view() } else { self.activations[i - 1].view() };
            let layer_output = if i == n - 1 { output.view() } else { self.activations[i].view() };
            let (below, above) = self.gradients.split_at_mut(i);
            let layer_grad_output = if i == n - 1 { grad_output.view() } else { above[0].view() };
            let layer_grad_input = if i == 0 { grad_input.as_deref_mut() } else { Some(&mut below[i - 1]) };
            ctx.backward_child(
                &Label(i, self.names[i].as_deref()),
                self.layers[i].as_mut(),
                layer_input,
                layer_output,
                layer_grad_output,
                layer_grad_input,
            )?;
        }
        Ok(())
    }

    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        for layer in &self.layers {
            layer.visit_parameters(visitor);
        }
    }

    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        for layer in &mut self.layers {
            layer.visit_parameters_mut(visitor);
        }
    }

    fn visit_buffers<'a>(&'a self, visitor: &mut dyn FnMut(BufferView<'a, F>)) {
        for layer in &self.layers {
            layer.visit_buffers(visitor);
        }
    }

    fn visit_buffers_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(BufferViewMut<'a, F>)) {
        for layer in &mut self.layers {
            layer.visit_buffers_mut(visitor);
        }
    }

    fn visit_children<'a>(&'a self, visitor: &mut dyn FnMut(&str, &'a dyn Layer<F>)) {
        let mut name = String::new();
        for (i, layer) in self.layers.iter().enumerate() {
            use std::fmt::Write;
            match &self.names[i] {
                Some(given) => visitor(given, layer.as_ref()),
                None => {
                    name.clear();
                    let _ = write!(name, "{i}");
                    visitor(&name, layer.as_ref());
                }
            }
        }
    }

    fn child_mut(&mut self, name: &str) -> Option<&mut dyn Layer<F>> {
        let index = self.index_of(name)?;
        Some(self.layers.get_mut(index)?.as_mut())
    }

    /// Names the child called `from` (its given name or, unnamed, its index) `to`, as
    /// [`Sequential::set_name`] does.
    fn rename_child(&mut self, from: &str, to: &str) -> Result<()> {
        match self.index_of(from) {
            Some(index) => self.set_name(index, to),
            None => Err(Error::config(
                self.describe(),
                "name",
                format!("cannot rename `{from}` to `{to}`: no child is called `{from}`"),
            )),
        }
    }
}
