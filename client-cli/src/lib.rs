//! The library half of the `streamgate` command-line client: the pure parsers of its flag
//! values ([`parse`]), shared by the binary (`src/main.rs`) and the fuzz targets
//! (`server/fuzz/`). Everything that talks to a server stays in the binary.

pub mod parse;
