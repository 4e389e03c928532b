//! Bad input to the image layers, through the public API a user reaches them by: every case is an
//! error naming the layer (or builder step) and the values, raised before anything changes.

use gradflow::activation::Relu;
use gradflow::layers::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2dConfig, Dropout, Dropout2d, ImageShape, MaxPool2d,
    ShortcutKind,
};
use gradflow::{BufferView, Mode, Network, Sequential, named_buffers, named_parameters};
use ndarray::Array2;
use rand::SeedableRng;

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(0)
}

fn message<T>(result: gradflow::Result<T>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// A small conv net with every image layer that holds state (conv weights, BN buffers).
fn small_net() -> Network<f32> {
    let model = Sequential::<f32>::image_builder(ImageShape::new(2, 6, 6))
        .conv2d_with(4, 3, |c| c.padding(1))
        .batch_norm2d()
        .activation(Relu)
        .basic_block(4, 1, ShortcutKind::ZeroPad)
        .dropout2d(0.2)
        .max_pool2d(2, 2)
        .global_avg_pool2d()
        .flatten()
        .dropout(0.5)
        .linear(3)
        .build(&mut rng())
        .unwrap();
    Network::new(model)
}

fn snapshot(net: &Network<f32>) -> Vec<(String, Vec<f32>)> {
    let params =
        named_parameters(net.model()).into_iter().map(|(n, p)| (n, p.value.iter().copied().collect()));
    let buffers = named_buffers(net.model()).into_iter().map(|(n, b)| match b {
        BufferView::Tensor { value, .. } => (n, value.iter().copied().collect()),
        BufferView::Count { value, .. } => (n, vec![value as f32]),
    });
    params.chain(buffers).collect()
}

#[test]
fn a_wrong_image_shape_names_the_first_layer_and_both_shapes_and_changes_nothing() {
    let mut net = small_net();
    let before = snapshot(&net);
    // 2×6×6 = 72 features per row; give 71 and 2·7·7 = 98.
    for width in [71, 98] {
        let msg = message(net.forward(Array2::<f32>::ones((5, width)).view(), Mode::Train).map(|_| ()));
        assert!(msg.contains("Conv2d(2→4, 3×3, padding=1"), "{msg}");
        assert!(
            msg.contains("2×6×6") && msg.contains("72") && msg.contains(&format!("(5, {width})")),
            "{msg}"
        );
    }
    assert_eq!(snapshot(&net), before, "a refused input changed a weight or a running statistic");
    // The same network still runs on the right shape afterwards.
    let out = net.forward(Array2::<f32>::ones((5, 72)).view(), Mode::Train).unwrap();
    assert_eq!(out.dim(), (5, 3));
    assert!(out.iter().all(|v| v.is_finite()));
}

fn alone(layer: Box<dyn gradflow::Layer<f32>>) -> Sequential<f32> {
    let mut model = Sequential::new();
    model.push_boxed(layer);
    model
}

#[test]
fn image_layers_built_alone_refuse_rows_of_another_image() {
    let image = ImageShape::new(3, 4, 4);
    let wrong = Array2::<f32>::ones((2, 47));
    let mut bn = Network::new(alone(Box::new(BatchNorm2d::<f32>::new(image).unwrap())));
    let before = snapshot(&bn);
    let msg = message(bn.forward(wrong.view(), Mode::Train).map(|_| ()));
    assert!(msg.contains("BatchNorm2d") && msg.contains("3×4×4") && msg.contains("(2, 47)"), "{msg}");
    assert_eq!(snapshot(&bn), before, "running statistics moved on a refused batch");

    let layers: Vec<(&str, Box<dyn gradflow::Layer<f32>>)> = vec![
        ("AvgPool2d", Box::new(AvgPool2d::<f32>::new(image, 2, 2).unwrap())),
        ("AdaptiveAvgPool2d", Box::new(AdaptiveAvgPool2d::<f32>::global(image).unwrap())),
        ("Dropout2d", Box::new(Dropout2d::<f32>::new(0.5, image, 1).unwrap())),
        ("Dropout", Box::new(Dropout::<f32>::new(0.5, 1).unwrap().with_image(image))),
    ];
    for (name, layer) in layers {
        let mut net = Network::new(alone(layer));
        let msg = message(net.forward(wrong.view(), Mode::Train).map(|_| ()));
        assert!(msg.contains(name) && msg.contains("3×4×4") && msg.contains("(2, 47)"), "{name}: {msg}");
    }
}

#[test]
fn builder_steps_that_cannot_fit_are_errors_naming_the_step_and_values() {
    let image = ImageShape::new(3, 4, 4);
    let build = |b: gradflow::SequentialBuilder<f32>| message(b.build(&mut rng()));
    // A kernel larger than the padded input.
    let msg = build(Sequential::image_builder(image).conv2d(8, 5));
    assert!(msg.contains("Conv2d(3→8, 5×5)") && msg.contains("3×4×4"), "{msg}");
    // Stride and dilation 0.
    let msg = build(Sequential::image_builder(image).conv2d_with(8, 3, |c| c.stride(0)));
    assert!(msg.contains("`stride`") && msg.contains('0'), "{msg}");
    let msg = build(Sequential::image_builder(image).conv2d_with(8, 3, |c| c.dilation(0)));
    assert!(msg.contains("`dilation`"), "{msg}");
    // Channels not divisible by the groups: 3 input channels in 2 groups.
    let msg = build(Sequential::image_builder(image).conv2d_with(8, 3, |c| c.groups(2)));
    assert!(msg.contains("in_channels") && msg.contains("3 channels") && msg.contains("2 groups"), "{msg}");
    // Pooling windows that do not fit.
    let msg = build(Sequential::image_builder(image).max_pool2d(5, 1));
    assert!(msg.contains("MaxPool2d(5×5 on 3×4×4)"), "{msg}");
    let msg = build(Sequential::image_builder(image).avg_pool2d(5, 5));
    assert!(msg.contains("AvgPool2d(5×5 on 3×4×4)"), "{msg}");
    let msg = build(Sequential::image_builder(image).avg_pool2d(2, 0));
    assert!(msg.contains("`stride`"), "{msg}");
    // Dropout probabilities outside [0, 1).
    for p in [-0.5, 1.0, f64::NAN] {
        let msg = build(Sequential::image_builder(image).dropout(p));
        assert!(msg.contains("`p`") && msg.contains("[0, 1)"), "dropout({p}): {msg}");
        let msg = build(Sequential::image_builder(image).dropout2d(p));
        assert!(msg.contains("`p`") && msg.contains("[0, 1)"), "dropout2d({p}): {msg}");
    }
    // A later step that does not fit names its own layer, not the first.
    let msg = build(
        Sequential::image_builder(image).conv2d_with(8, 3, |c| c.padding(1)).max_pool2d(2, 2).conv2d(4, 3),
    );
    assert!(msg.contains("Conv2d(8→4, 3×3)") && msg.contains("8×2×2"), "{msg}");
    // Direct constructors agree with the builder.
    assert!(MaxPool2d::<f32>::new(image, 2, 0).is_err());
    assert!(Conv2dConfig::new(3, 8, 3).stride(0).build::<f32>((4, 4), &mut rng()).is_err());
}
