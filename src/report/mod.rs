//! Reports of a recording and its diagnosis: a text table for the terminal ([`table`]), JSON
//! with a versioned schema ([`json`]), CSV for spreadsheets and plotting tools ([`csv`]), and
//! SVG plots ([`plot`], with the `plots` feature, on by default).

pub mod csv;
pub mod json;
#[cfg(feature = "plots")]
#[cfg_attr(docsrs, doc(cfg(feature = "plots")))]
pub mod plot;
pub mod table;
