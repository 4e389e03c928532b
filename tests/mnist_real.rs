//! The real MNIST files (not part of the crate: CC BY-SA 3.0). These tests are ignored by
//! default; run them with the directory in `GRADFLOW_MNIST_DIR`:
//!
//! ```text
//! GRADFLOW_MNIST_DIR=/path/to/mnist cargo test --test mnist_real -- --ignored
//! ```

use approx::assert_abs_diff_eq;
use gradflow::data::{TargetData, mnist, mnist_dir_from_env, read_idx_images, read_idx_labels};

fn dir() -> std::path::PathBuf {
    mnist_dir_from_env().expect("set GRADFLOW_MNIST_DIR to the directory holding the MNIST IDX files")
}

fn class_counts(labels: &[usize]) -> [usize; 10] {
    let mut counts = [0; 10];
    for &l in labels {
        counts[l] += 1;
    }
    counts
}

#[test]
#[ignore = "needs the MNIST files in GRADFLOW_MNIST_DIR"]
fn mnist_has_the_published_sizes_and_label_counts() {
    let (train, test) = mnist::<f32>(&dir()).unwrap();
    assert_eq!(train.inputs.dim(), (60_000, 784));
    assert_eq!(test.inputs.dim(), (10_000, 784));
    // Label counts as listed in the data directory's README (digits 0..9).
    let (TargetData::Classes(train_labels), TargetData::Classes(test_labels)) =
        (&train.targets, &test.targets)
    else {
        panic!("MNIST targets are classes");
    };
    assert_eq!(class_counts(train_labels), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    assert_eq!(class_counts(test_labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    for data in [&train, &test] {
        let (lo, hi) = data.inputs.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        assert_eq!((lo, hi), (0.0, 1.0));
    }
    // The widely quoted mean of the training pixels / 255 (the 0.1307 of the usual
    // normalisation, e.g. in PyTorch's MNIST example).
    let mean = train.inputs.iter().map(|&x| f64::from(x)).sum::<f64>() / train.inputs.len() as f64;
    assert_abs_diff_eq!(mean, 0.1307, epsilon = 1e-4);
}

#[test]
#[ignore = "needs the MNIST files in GRADFLOW_MNIST_DIR"]
fn the_first_test_image_is_a_seven() {
    let dir = dir();
    let images = read_idx_images(dir.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = read_idx_labels(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!((images.count, images.rows, images.cols), (10_000, 28, 28));
    // The first test digit of MNIST is the well-known 7; its border rows are blank.
    assert_eq!(labels[0], 7);
    let first = images.image(0).unwrap();
    assert!(first[..28].iter().all(|&p| p == 0));
    // A handwritten stroke covers tens of pixels of the 784, never most of them.
    let ink = first.iter().filter(|&&p| p > 128).count();
    assert!((30..400).contains(&ink), "{ink} inked pixels");
}
