//! The OTLP resource: who sent the spans (`service.name`, `telemetry.sdk.*`, and what
//! `OTEL_RESOURCE_ATTRIBUTES` adds).

use super::attributes::{AnyValue, KeyValue};

/// The resource every span of a batch shares (`service.name`, ...).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resource {
    pub attributes: Vec<KeyValue>,
}

impl Resource {
    /// `OTEL_RESOURCE_ATTRIBUTES` (`k=v,k2=v2`, values percent-decoded), then
    /// `OTEL_SERVICE_NAME` over `service.name`, else `default_service`; plus the
    /// `telemetry.sdk.*` attributes naming tapline.
    pub fn from_env(default_service: &str) -> Self {
        Self::from_lookup(default_service, |k| std::env::var(k).ok())
    }

    /// Like [`Resource::from_env`], reading variables through `lookup`.
    pub fn from_lookup(default_service: &str, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut attributes: Vec<KeyValue> = lookup("OTEL_RESOURCE_ATTRIBUTES")
            .map(|s| {
                crate::text::key_values(&s)
                    .into_iter()
                    .map(|(k, v)| KeyValue::string(&k, v))
                    .collect()
            })
            .unwrap_or_default();
        let service = lookup("OTEL_SERVICE_NAME").filter(|s| !s.is_empty());
        attributes.retain(|kv| !(kv.key == "service.name" && service.is_some()));
        if let Some(s) = service {
            attributes.insert(0, KeyValue::string("service.name", s));
        } else if !attributes.iter().any(|kv| kv.key == "service.name") {
            attributes.insert(0, KeyValue::string("service.name", default_service));
        }
        attributes.push(KeyValue::string("telemetry.sdk.name", "tapline"));
        attributes.push(KeyValue::string(
            "telemetry.sdk.version",
            env!("CARGO_PKG_VERSION"),
        ));
        Resource { attributes }
    }

    /// The value of a string attribute.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find_map(|kv| match &kv.value {
            AnyValue::String(s) if kv.key == key => Some(s.as_str()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_from_lookup() {
        let r = Resource::from_lookup("tapline", |k| match k {
            "OTEL_RESOURCE_ATTRIBUTES" => {
                Some("service.name=a,deployment.environment=pr%20od".into())
            }
            "OTEL_SERVICE_NAME" => Some("svc".into()),
            _ => None,
        });
        assert_eq!(r.get("service.name"), Some("svc"));
        assert_eq!(r.get("deployment.environment"), Some("pr od"));
        assert_eq!(
            Resource::from_lookup("cmd", |_| None).get("service.name"),
            Some("cmd")
        );
    }
}
