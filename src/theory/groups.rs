//! Hidden layers in the textbook sense — "Linear + tanh" is one — cut from a model's direct
//! children by the crate's one numbering rule, [`crate::hooks::layer_numbers`], so that a
//! prediction or a per-layer spectrum lines up with events, recordings and diagnoses.

use std::ops::Range;

use crate::{Float, Layer};

/// The children `0..children.len()`, given as (kind, is an activation), cut into hidden layers
/// in order.
pub(crate) fn group(children: &[(&str, bool)]) -> Vec<Range<usize>> {
    let numbers = crate::hooks::layer_numbers(children.iter().copied());
    let mut groups: Vec<Range<usize>> = Vec::new();
    for (i, number) in numbers.iter().enumerate() {
        match groups.last_mut() {
            Some(g) if i > 0 && numbers[i - 1] == *number => g.end = i + 1,
            _ => groups.push(i..i + 1),
        }
    }
    groups
}

/// The layers of `model` that layer numbers count — its direct children, looking through
/// nested `Sequential`s — (the model itself when it has none), in order, with their paths
/// (`"0"`, `"1"`, `"blocks.0"`, …).
pub(crate) fn children<F: Float>(model: &dyn Layer<F>) -> Vec<(String, &dyn Layer<F>)> {
    let mut out = crate::hooks::numbered_layers(model);
    if out.is_empty() {
        out.push((String::new(), model));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_follow_the_crate_s_layer_numbering() {
        let children = [
            ("Linear", false),
            ("tanh", true),
            ("Linear", false),
            ("BatchNorm1d", false),
            ("relu", true),
            ("Residual", false),
            ("tanh", true),
            ("Linear", false),
        ];
        assert_eq!(group(&children), vec![0..2, 2..5, 5..7, 7..8]);
        // A companion with no open layer joins the previous one.
        let children =
            [("Linear", false), ("Linear", false), ("tanh", true), ("tanh", true), ("LayerNorm", false)];
        assert_eq!(group(&children), vec![0..1, 1..3, 3..5]);
    }

    #[test]
    fn nested_sequentials_are_looked_through() {
        use crate::activation::Tanh;
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let model = crate::Sequential::<f64>::builder(4)
            .dense(4, Tanh)
            .sequential(|b| b.dense(4, Tanh).sequential(|b| b.linear(4)))
            .named("blocks")
            .build(&mut rng)
            .unwrap();
        let paths: Vec<String> = children(&model).into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["0", "1", "blocks.0", "blocks.1", "blocks.2.0"]);
    }
}
