//! The panel's building blocks.

pub mod banner;
pub mod execution;
pub mod executions;
pub mod history;
pub mod login;
pub mod maintenance;
pub mod replicas;
pub mod start_form;
pub mod status_card;
pub mod webhooks;
pub mod windows;
