//! The panel's building blocks.

pub mod banner;
pub mod executions;
pub mod login;
pub mod maintenance;
pub mod status_card;
