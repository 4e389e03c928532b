//! Hidden layers in the textbook sense — "Linear + tanh" is one — grouped from a model's direct
//! children by the rule [`crate::diagnose::HiddenLayer`] documents, so that a prediction or a
//! per-layer spectrum lines up with the diagnosis of a recording.

use std::ops::Range;

use crate::{Float, Layer};

/// What the grouping needs to know of a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// An activation layer: closes the open group, or forms one of its own.
    Activation,
    /// A normalization or dropout layer: joins the open group.
    Normalization,
    /// Anything else: starts a new group.
    Other,
}

impl Role {
    /// The role of a layer of kind `kind` (`is_activation`: it applies an activation).
    pub(crate) fn of(kind: &str, is_activation: bool) -> Self {
        if is_activation {
            Role::Activation
        } else if kind.contains("Norm") || kind.contains("Dropout") {
            Role::Normalization
        } else {
            Role::Other
        }
    }

    /// The role of a layer.
    pub(crate) fn of_layer<F: Float>(layer: &dyn Layer<F>) -> Self {
        Role::of(layer.kind(), layer.as_activation().is_some())
    }
}

/// The children `0..roles.len()` cut into hidden layers, in order.
pub(crate) fn group(roles: &[Role]) -> Vec<Range<usize>> {
    let mut groups: Vec<Range<usize>> = Vec::new();
    let mut open = false;
    for (i, role) in roles.iter().enumerate() {
        match role {
            Role::Activation => {
                match groups.last_mut() {
                    Some(g) if open => g.end = i + 1,
                    _ => groups.push(i..i + 1),
                }
                open = false;
            }
            Role::Normalization if open => groups.last_mut().expect("open group").end = i + 1,
            _ => {
                groups.push(i..i + 1);
                open = true;
            }
        }
    }
    groups
}

/// The direct children of `model` (the model itself when it has none), in order, with their
/// names (`"0"`, `"1"`, … in a `Sequential`).
pub(crate) fn children<F: Float>(model: &dyn Layer<F>) -> Vec<(String, &dyn Layer<F>)> {
    let mut out = Vec::new();
    model.visit_children(&mut |name, child| out.push((name.to_string(), child)));
    if out.is_empty() {
        out.push((String::new(), model));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    #[test]
    fn groups_follow_the_diagnosis_rule() {
        // Linear, tanh | Linear, BatchNorm, relu | Residual | tanh | Linear
        let roles = [Other, Activation, Other, Normalization, Activation, Other, Activation, Other];
        assert_eq!(group(&roles), vec![0..2, 2..5, 5..7, 7..8]);
        let roles = [Other, Other, Activation, Activation, Normalization];
        assert_eq!(group(&roles), vec![0..1, 1..3, 3..4, 4..5]);
    }
}
