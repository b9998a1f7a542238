//! [`H2Record`]: one HTTP/2 record of a connection as the stream assembly takes it.

use tapline_record::Direction;

use crate::spool::H2Event;

/// One HTTP/2 record of a connection, with what its header said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct H2Record {
    pub dir: Direction,
    pub wall_ns: u64,
    pub event: H2Event,
}
