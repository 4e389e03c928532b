//! [`Sequential`]: layers applied one after another.

use ndarray::{Array2, ArrayView2};

use crate::hooks::Context;
use crate::layer::{Layer, Mode, ensure_shape};
use crate::param::{BufferView, BufferViewMut, ParamView, ParamViewMut};
use crate::{Error, Float, Result};

/// A chain of boxed layers; child `i` is called `"i"`, as in PyTorch's `nn.Sequential`, so its
/// parameters are `"0.weight"`, `"0.bias"`, ….
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
/// ```
pub struct Sequential<F: Float> {
    layers: Vec<Box<dyn Layer<F>>>,
    /// `activations[i]` is the output of layer `i` (for all but the last layer).
    activations: Vec<Array2<F>>,
    /// `gradients[i]` is dL/d(`activations[i]`).
    gradients: Vec<Array2<F>>,
    forward_batch: Option<usize>,
}

impl<F: Float> Default for Sequential<F> {
    fn default() -> Self {
        Sequential { layers: Vec::new(), activations: Vec::new(), gradients: Vec::new(), forward_batch: None }
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
        self.forward_batch = None;
        self
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

    /// The layer at a dotted path such as `"3"` or `"3.branch.1"`, as hooks report it.
    pub fn layer_at(&self, path: &str) -> Option<&dyn Layer<F>> {
        let mut parts = path.split('.');
        let first: usize = parts.next()?.parse().ok()?;
        let mut layer: &dyn Layer<F> = self.layers.get(first)?.as_ref();
        for part in parts {
            layer = child_named(layer, part)?;
        }
        Some(layer)
    }

    /// The layer at a dotted path, mutably (e.g. to set a weight by hand).
    pub fn layer_at_mut(&mut self, path: &str) -> Option<&mut dyn Layer<F>> {
        let mut parts = path.split('.');
        let first: usize = parts.next()?.parse().ok()?;
        let mut layer: &mut dyn Layer<F> = self.layers.get_mut(first)?.as_mut();
        for part in parts {
            layer = layer.child_mut(part)?;
        }
        Some(layer)
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
            width = layer.output_features(width).map_err(|e| e.at(&i))?;
        }
        Ok(width)
    }
}

fn child_named<'a, F: Float>(layer: &'a dyn Layer<F>, name: &str) -> Option<&'a dyn Layer<F>> {
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
            ctx.forward_child(&i, self.layers[i].as_mut(), layer_input, layer_output, mode)?;
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
                &i,
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
            name.clear();
            let _ = write!(name, "{i}");
            visitor(&name, layer.as_ref());
        }
    }

    fn child_mut(&mut self, name: &str) -> Option<&mut dyn Layer<F>> {
        let index: usize = name.parse().ok()?;
        Some(self.layers.get_mut(index)?.as_mut())
    }
}
