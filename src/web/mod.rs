//! Everything on the wire: the proxy in front of the app, its caching rules, the reload
//! script injected into pages, the browser hub, and the sockets hotrun binds.

pub mod cache;
pub mod guard;
pub mod http;
pub mod hub;
pub mod inject;
#[cfg(test)]
mod proptests;
pub mod proxy;
pub mod sockets;
