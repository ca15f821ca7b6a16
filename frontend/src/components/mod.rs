//! The panel's building blocks.

pub mod status_card;
