//! agent-logship: ships Calypso log files to Elasticsearch / OpenSearch `_bulk`, nothing lost and
//! nothing duplicated.
//!
//! A small pipeline (DESIGN.md): **sources** ([`files`]) read bytes and hand them to a
//! [`framing`] state machine that cuts them into [`record::Record`]s (multi-line Java stack
//! traces kept whole); the pure [`encode`] turns a record into an ECS document with an `_id` made
//! of stable facts; the [`sink`] batches documents into `_bulk` requests and hands each response
//! to a pure classifier (acknowledged / retry / dead-letter). Acknowledgements flow back through
//! [`flow::Ack`] to the sources, which only then advance their checkpoints. One bounded
//! [`flow::Budget`] of in-flight bytes connects them: when it is spent, reading pauses.

pub mod config;
pub mod encode;
pub mod events;
pub mod files;
pub mod flow;
pub mod frame;
pub mod framing;
pub mod metrics;
pub mod parse;
pub mod record;
pub mod redaction;
pub mod run;
pub mod server;
pub mod setup;
pub mod sink;
