//! Layer numbers: the one numbering of a network's layers that events, recordings, diagnoses,
//! tables and plots share.
//!
//! A network's *layers* in the textbook sense are not its children: "Linear + tanh" is one
//! hidden layer, and so is "Conv2d + BatchNorm2d + ReLU + MaxPool2d". Children keep their
//! paths (`"0"`, `"1"`, `"3.branch.1"`, PyTorch's names); layer numbers count the layers from
//! 1 at the input, the output layer last. Every event carries both
//! ([`crate::hooks::Event::layer_number`]), and every report numbers rows the same way.

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

/// The layer numbers of a model's top-level children, by name, kept by a
/// [`crate::Network`] and rebuilt only when the children change.
#[derive(Debug, Clone, Default)]
pub(crate) struct Numbering {
    names: Vec<String>,
    numbers: Vec<usize>,
}

impl Numbering {
    /// Brings the numbering up to date with `model`'s top-level children (allocating only when
    /// they changed).
    pub(crate) fn refresh<F: crate::Float>(&mut self, model: &dyn crate::Layer<F>) {
        let mut same = true;
        let mut count = 0;
        model.visit_children(&mut |name, _| {
            same &= self.names.get(count).is_some_and(|n| n == name);
            count += 1;
        });
        if same && count == self.names.len() {
            return;
        }
        let mut children = Vec::new();
        model.visit_children(&mut |name, child| {
            children.push((name.to_string(), child.kind(), child.as_activation().is_some()))
        });
        self.numbers = layer_numbers(children.iter().map(|(_, kind, act)| (*kind, *act)));
        self.names = children.into_iter().map(|(name, _, _)| name).collect();
    }

    /// The layer number of the top-level child called `name`.
    pub(crate) fn number_of(&self, name: &str) -> Option<usize> {
        // Children are visited in order, so the position usually matches a numeric name.
        let guess = name.parse::<usize>().ok().filter(|&i| self.names.get(i).is_some_and(|n| n == name));
        guess.or_else(|| self.names.iter().position(|n| n == name)).map(|i| self.numbers[i])
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
