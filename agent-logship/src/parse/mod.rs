//! Reading a record's text: the log4j header of its first line, a trailing Java stack trace,
//! and times (the line's, in the configured zone; the CRI runtime's). Borrowing, allocation-free
//! parsers: the encoder writes the slices they return straight into the document.

mod log4j;
mod time;

pub use log4j::{Header, Log4jRecord, StackTrace, parse_header, parse_record};
pub use time::{
    LineStamp, TimeZoneError, parse_cri_time, parse_line_time, parse_time_zone, write_rfc3339_millis,
    write_unix_ms,
};
