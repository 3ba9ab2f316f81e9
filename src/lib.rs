//! birthday-api: remembers people's dates of birth and greets them.
//!
//! - [`allocator`]: the process's allocator (mimalloc).
//! - [`domain`]: pure rules (usernames, dates, birthday arithmetic).
//! - [`store`]: the [`store::Store`] trait and one module per backend.
//! - [`api`]: the poem-openapi handlers and the problem documents.
//! - [`ops`]: health, readiness and metrics on the operations port.
//! - [`config`]: the command line and environment.
//! - [`net`]: connection limits and timeouts against slow or greedy clients.
//! - [`telemetry`]: logs and per-request events.
//! - [`transfer`]: `export` and `import` as JSON Lines.
//! - [`startup`]: wires everything into an [`startup::Application`].

pub mod allocator;
pub mod api;
pub mod config;
pub mod domain;
pub mod net;
pub mod ops;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod transfer;
