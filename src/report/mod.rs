//! Reports of a recording and its diagnosis: a text table for the terminal ([`table`]), JSON
//! with a versioned schema ([`json`]) and CSV for spreadsheets and plotting tools ([`csv`]).

pub mod csv;
pub mod json;
pub mod table;
