//! Reports of a recording and its diagnosis: a text table for the terminal ([`table`]), JSON
//! with a versioned schema ([`json`]), CSV for spreadsheets and plotting tools ([`csv`]), and
//! SVG plots ([`plot`], with the `plots` feature, on by default); [`write_dir`] writes all of
//! them into one directory.

pub mod csv;
mod files;
pub mod json;
#[cfg(feature = "plots")]
#[cfg_attr(docsrs, doc(cfg(feature = "plots")))]
pub mod plot;
pub mod table;

pub use files::write_dir;
