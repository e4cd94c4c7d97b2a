//! `metav1.Status`, the body of every error the API server answers (and the object of a watch's
//! ERROR event): `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
//! "message":..,"reason":..,"code":..}`.

use super::store::StoreError;
use serde_json::{Value, json};

/// A failure, as a Status.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// What the API server says when a continue token's resourceVersion was compacted away.
pub const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. \
You can start a new list without the continue parameter, or use the continue token in this response to retrieve \
the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were \
created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

impl Status {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Status {
        Status { code, reason, message: message.into(), details: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Status {
        Status::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Status {
        Status::new(401, "Unauthorized", "Unauthorized")
    }

    /// RBAC's refusal; `namespace` `None` is the cluster scope (all namespaces).
    pub fn forbidden(user: &str, verb: &str, namespace: Option<&str>) -> Status {
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_owned(),
        };
        Status {
            details: Some(json!({"kind": "events"})),
            ..Status::new(
                403,
                "Forbidden",
                format!(
                    "events is forbidden: User \"{user}\" cannot {verb} resource \"events\" in API group \"\" {scope}"
                ),
            )
        }
    }

    pub fn unavailable() -> Status {
        Status::new(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request (injected by kube-sim)",
        )
    }

    /// A watch's ERROR for a resourceVersion older than the compaction point.
    pub fn too_old(asked: u64, oldest: u64) -> Status {
        Status::new(410, "Expired", format!("too old resource version: {asked} ({oldest})"))
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let (Some(details), Some(map)) = (&self.details, v.as_object_mut()) {
            map.insert("details".into(), details.clone());
        }
        v
    }
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Status {
        match &e {
            StoreError::NotFound(key) => Status {
                details: Some(json!({"name": key.name, "kind": "events"})),
                ..Status::new(404, "NotFound", e.to_string())
            },
            StoreError::AlreadyExists(key) => Status {
                details: Some(json!({"name": key.name, "kind": "events"})),
                ..Status::new(409, "AlreadyExists", e.to_string())
            },
            StoreError::Expired { asked, oldest } => Status::too_old(*asked, *oldest),
            StoreError::TooLarge { .. } => Status {
                details: Some(
                    json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
                ),
                ..Status::new(504, "Timeout", e.to_string())
            },
            StoreError::Unnamed => Status::new(422, "Invalid", e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_as_the_api_server_writes_them() {
        assert_eq!(
            Status::too_old(5, 9).to_json(),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "too old resource version: 5 (9)", "reason": "Expired", "code": 410})
        );
        let f = Status::forbidden("system:serviceaccount:calypso:agent-logship", "watch", None).to_json();
        assert_eq!(
            f["message"],
            "events is forbidden: User \"system:serviceaccount:calypso:agent-logship\" cannot watch resource \"events\" in API group \"\" at the cluster scope"
        );
        assert_eq!(f["details"]["kind"], "events");
    }
}
