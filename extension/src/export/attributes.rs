//! Span and resource attributes: the subset of OTLP `KeyValue`/`AnyValue` tapline writes.

/// An attribute value (the subset of OTLP `AnyValue` tapline writes).
#[derive(Clone, Debug, PartialEq)]
pub enum AnyValue {
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Array(Vec<AnyValue>),
}

/// One attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: AnyValue,
}

impl KeyValue {
    pub fn strings(key: &str, values: impl IntoIterator<Item = String>) -> Self {
        KeyValue {
            key: key.to_string(),
            value: AnyValue::Array(values.into_iter().map(AnyValue::String).collect()),
        }
    }
    pub fn string(key: &str, value: impl Into<String>) -> Self {
        KeyValue {
            key: key.to_string(),
            value: AnyValue::String(value.into()),
        }
    }
    pub fn int(key: &str, value: i64) -> Self {
        KeyValue {
            key: key.to_string(),
            value: AnyValue::Int(value),
        }
    }
    pub fn bool(key: &str, value: bool) -> Self {
        KeyValue {
            key: key.to_string(),
            value: AnyValue::Bool(value),
        }
    }
}
