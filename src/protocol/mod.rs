//! RESP2/RESP3 wire format: the [`Frame`] type, an incremental zero-copy parser and an
//! encoder. Pure code with no I/O, so it can be unit-, property- and fuzz-tested alone.

mod encode;
mod frame;
mod inline;
mod parse;

pub use encode::{encode, format_double, format_g17, format_human};
pub use frame::{Frame, RespVersion};
pub use inline::split_args;
pub use parse::{parse_command, parse_command_into, parse_frame, parse_i64, CommandScan, Limits, ParseError};
