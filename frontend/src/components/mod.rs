//! The panel's building blocks.

pub mod login;
pub mod status_card;
