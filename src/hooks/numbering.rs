//! Layer numbers: the one numbering of a network's layers that events, recordings, diagnoses,
//! tables and plots share.
//!
//! A network's *layers* in the textbook sense are not its children: "Linear + tanh" is one
//! hidden layer, and so is "Conv2d + BatchNorm2d + ReLU + MaxPool2d". Children keep their
//! paths (`"0"`, `"1"`, `"3.branch.1"`, PyTorch's names); layer numbers count the layers from
//! 1 at the input, the output layer last. Every event carries both
//! ([`crate::hooks::Event::layer_number`]), and every report numbers rows the same way.

use std::collections::HashMap;

/// Whether a child only reshapes, normalizes or regularizes what the layer before it computed,
/// and so belongs to that layer rather than starting one: normalization, dropout, pooling and
/// flattening.
pub(crate) fn is_companion(kind: &str) -> bool {
    ["Norm", "Dropout", "Pool", "Flatten"].iter().any(|part| kind.contains(part))
}

/// The layer number (from 1) of each of a network's top-level children, given each child's
/// kind and whether it is an activation, in network order.
///
/// The rule: an activation closes the layer that is open ("Linear+tanh") or, when none is open,
/// is a layer of its own; a companion (`is_companion`: normalization, dropout, pooling,
/// flattening) joins the open layer, or the previous one when none is open; any other child
/// (Linear, a residual block, a recurrent layer, …) starts a new layer.
///
/// ```
/// use gradflow::hooks::layer_numbers;
///
/// let children = [("Linear", false), ("BatchNorm1d", false), ("relu", true), ("Linear", false)];
/// assert_eq!(layer_numbers(children), [1, 1, 1, 2]);
/// let convs = [("Conv2d", false), ("relu", true), ("MaxPool2d", false), ("Flatten", false), ("Linear", false)];
/// assert_eq!(layer_numbers(convs), [1, 1, 1, 1, 2]);
/// ```
pub fn layer_numbers<'a>(children: impl IntoIterator<Item = (&'a str, bool)>) -> Vec<usize> {
    let mut numbers = Vec::new();
    let (mut current, mut open) = (0usize, false);
    for (kind, is_activation) in children {
        if is_activation {
            if !open {
                current += 1;
            }
            open = false;
        } else if is_companion(kind) {
            if current == 0 {
                current = 1;
                open = true;
            }
        } else {
            current += 1;
            open = true;
        }
        numbers.push(current);
    }
    numbers
}

/// Whether a container of this kind is only a grouping of layers — a nested
/// [`crate::Sequential`], PyTorch's `nn.Sequential` / `nn.ModuleList` inside a model (`blocks`)
/// — that layer numbers look through: its children are numbered as if they were not nested.
pub(crate) fn is_transparent(kind: &str) -> bool {
    kind == "Sequential"
}

/// Calls `f` with each layer that layer numbers count, in network order, and its dotted path:
/// `model`'s direct children, looking through transparent containers ([`is_transparent`]) at
/// any depth. `prefix` is scratch space (left as it was given).
pub(crate) fn visit_numbered<'a, F: crate::Float>(
    model: &'a dyn crate::Layer<F>,
    prefix: &mut String,
    f: &mut dyn FnMut(&str, &'a dyn crate::Layer<F>),
) {
    model.visit_children(&mut |name, child| {
        let len = prefix.len();
        if len > 0 {
            prefix.push('.');
        }
        prefix.push_str(name);
        if is_transparent(child.kind()) {
            visit_numbered(child, prefix, f);
        } else {
            f(prefix, child);
        }
        prefix.truncate(len);
    });
}

/// The layers [`visit_numbered`] visits, with their paths.
pub(crate) fn numbered_layers<F: crate::Float>(
    model: &dyn crate::Layer<F>,
) -> Vec<(String, &dyn crate::Layer<F>)> {
    let mut out = Vec::new();
    visit_numbered(model, &mut String::new(), &mut |path, layer| out.push((path.to_string(), layer)));
    out
}

/// The layer numbers of a model's layers ([`visit_numbered`]: its top-level children, and the
/// children of nested `Sequential`s), by path, kept by a [`crate::Network`] and rebuilt only
/// when the layers change.
#[derive(Debug, Clone, Default)]
pub(crate) struct Numbering {
    paths: Vec<String>,
    numbers: HashMap<String, usize>,
    /// Scratch for the paths walked by [`Numbering::refresh`].
    prefix: String,
}

impl Numbering {
    /// Brings the numbering up to date with `model`'s layers (allocating only when they
    /// changed).
    pub(crate) fn refresh<F: crate::Float>(&mut self, model: &dyn crate::Layer<F>) {
        let mut prefix = std::mem::take(&mut self.prefix);
        let (mut same, mut count) = (true, 0);
        visit_numbered(model, &mut prefix, &mut |path, _| {
            same &= self.paths.get(count).is_some_and(|p| p == path);
            count += 1;
        });
        if !(same && count == self.paths.len()) {
            let mut layers = Vec::new();
            visit_numbered(model, &mut prefix, &mut |path, layer| {
                layers.push((path.to_string(), layer.kind(), layer.as_activation().is_some()))
            });
            let numbers = layer_numbers(layers.iter().map(|(_, kind, act)| (*kind, *act)));
            self.numbers = layers.iter().map(|(path, _, _)| path.clone()).zip(numbers).collect();
            self.paths = layers.into_iter().map(|(path, _, _)| path).collect();
        }
        self.prefix = prefix;
    }

    /// The layer number of the layer at `path`, when it is one that layer numbers count (not a
    /// layer nested in one, nor a transparent container).
    pub(crate) fn number_of(&self, path: &str) -> Option<usize> {
        self.numbers.get(path).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_close_layers_and_companions_join_them() {
        let kinds = [
            ("tanh", true),       // a leading activation is a layer of its own
            ("Linear", false),    // 2
            ("tanh", true),       // 2
            ("LayerNorm", false), // after a closed layer: joins it
            ("Residual", false),  // 3
            ("Linear", false),    // 4 (nothing closed 3)
            ("Dropout", false),   // joins 4
            ("sigmoid", true),    // closes 4
            ("sigmoid", true),    // a second activation: a layer of its own
        ];
        assert_eq!(layer_numbers(kinds), [1, 2, 2, 2, 3, 4, 4, 4, 5]);
        assert_eq!(layer_numbers([("BatchNorm1d", false), ("Linear", false)]), [1, 2]);
        assert!(layer_numbers(std::iter::empty()).is_empty());
    }
}
