//! Free TCP ports on 127.0.0.1, for a child that must be told its port
//! (a hub restarted on the same port, the original deployment's
//! `SERVER_PORT`, Prometheus). A port is free when asked: the child may
//! still lose a race for it, so callers that can retry do.

use std::net::TcpListener;

/// A port nobody listens on right now (bound, then released).
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct free ports (all bound at once, so they differ, then
/// released).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    std::array::from_fn(|i| {
        listeners[i]
            .local_addr()
            .expect("a bound listener's address")
            .port()
    })
}
