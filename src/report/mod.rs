//! Reports: turning recorded numbers into something to read — SVG plots ([`plot`]).

pub mod plot;
