//! The pure part: what happens ([`event`]), what it means ([`classify`]) and what to do
//! about it ([`state`]), with the user's choices it decides by ([`options`]). No I/O,
//! no clock, no threads; only [`crate::text`] below it.

pub mod classify;
pub mod event;
pub mod options;
pub mod state;
