//! The gRPC call an exchange was recognised as: which call, how it ended, how many
//! messages each way. Recognising it (and decoding the messages) is `grpc/`'s work.

/// One recognised gRPC call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcCall {
    /// `pkg.Service` (the path's first segment).
    pub service: String,
    /// `Method` (the path's last segment).
    pub method: String,
    /// `grpc-status`, when the call ended with one.
    pub status: Option<u32>,
    /// `grpc-message`, percent-decoded (and value-shape masked); `None` when absent or
    /// empty.
    pub message: Option<String>,
    /// Messages whose length prefix was captured, each way (a cut body counts the
    /// messages its captured prefix begins).
    pub request_messages: u64,
    pub response_messages: u64,
}

impl GrpcCall {
    /// `pkg.Service/Method`: the table's method column and the span name.
    pub fn name(&self) -> String {
        format!("{}/{}", self.service, self.method)
    }

    /// The status code's name (`OK`, `NOT_FOUND`, ...), when there is a status.
    pub fn status_name(&self) -> Option<&'static str> {
        self.status.map(grpc_status_name)
    }
}

/// The canonical name of a gRPC status code.
pub(crate) fn grpc_status_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN_CODE",
    }
}
