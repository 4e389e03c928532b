//! Reports of a recording and its diagnosis: a text table for the terminal ([`table`]), JSON
//! with a versioned schema ([`json`]), CSV for spreadsheets and plotting tools ([`csv`]), and
//! SVG plots ([`plot`]).

pub mod csv;
pub mod json;
pub mod plot;
pub mod table;
