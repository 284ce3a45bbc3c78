//! Who may reach the listeners: bearer [`tokens`] (constant-time, reloaded
//! from a file) and server [`tls`] (rustls, optional client certificates).

pub mod tls;
pub mod tokens;
