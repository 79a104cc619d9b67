//! One adapter per signature type: each turns a user function into the server's
//! [`Invoke`](crate::server::Invoke) shape.

pub(crate) mod cloudevent;
pub(crate) mod event;
pub(crate) mod http;
pub(crate) mod typed;
