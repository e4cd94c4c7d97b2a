//! The Kubernetes Events source (`AGENT_LOGSHIP_EVENTS`): core/v1 Events listed and watched from
//! the API server, each occurrence shipped as one document.
//!
//! The API server keeps Events about an hour; shipping them is the only way to keep them. The
//! pure parts: [`model`] (the fields we read of an Event and of a watch stream), [`document`]
//! (an occurrence's ECS document, `_id` and data stream) and [`cursor`] (the list-then-watch
//! protocol as a state machine: when to relist, when to back off, which occurrences were already
//! taken). The IO: [`api`] (LIST and WATCH requests), the [`watcher`] task writing each new
//! occurrence to the [`spool`] on disk, and the [`shipper`] task reading it into `_bulk` batches,
//! both through [`shared`] (the spool behind one lock); an occurrence leaves the spool only when
//! Elasticsearch has it. [`source`] starts them together.

pub mod api;
pub mod cursor;
pub mod document;
pub mod metrics;
pub mod model;
pub mod shared;
pub mod shipper;
pub mod source;
pub mod spool;
pub mod watcher;
