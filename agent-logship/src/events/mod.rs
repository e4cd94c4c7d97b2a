//! The Kubernetes Events source (`AGENT_LOGSHIP_EVENTS`): core/v1 Events listed and watched from
//! the API server, each occurrence shipped as one document.
//!
//! The API server keeps Events about an hour; shipping them is the only way to keep them. The
//! pure parts are here: [`model`] (the fields we read of an Event and of a watch stream),
//! [`document`] (an occurrence's ECS document, `_id` and data stream) and [`cursor`] (the
//! list-then-watch protocol as a state machine: when to relist, when to back off, which
//! occurrences were already taken). [`spool`] keeps every occurrence on disk from the moment it is
//! taken until Elasticsearch has it.

pub mod api;
pub mod cursor;
pub mod document;
pub mod model;
pub mod spool;
