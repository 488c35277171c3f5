//! A cap on concurrent connections from one address, so a single client
//! cannot take every slot of `--max-connections`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections per address.
#[derive(Debug)]
pub struct PerIp {
    /// 0: no per-address cap.
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in its address's count, given back on drop.
#[derive(Debug)]
pub struct IpSlot {
    owner: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `ip`, or `None` when it has `max` open.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        // An IPv4 client seen through an IPv6 socket is the same client.
        let ip = ip.to_canonical();
        let mut open = self.open.lock().expect("per-address counts");
        let count = open.entry(ip).or_insert(0);
        if self.max != 0 && *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            owner: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().expect("per-address counts");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_cap() {
        let caps = PerIp::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = caps.acquire(a).unwrap();
        let _a2 = caps.acquire(a).unwrap();
        assert!(caps.acquire(a).is_none());
        // The same client through an IPv6 socket.
        assert!(caps.acquire("::ffff:10.0.0.1".parse().unwrap()).is_none());
        let _b1 = caps.acquire(b).unwrap();
        drop(a1);
        assert!(caps.acquire(a).is_some());
        assert!(caps.open.lock().unwrap().len() <= 2);
    }

    #[test]
    fn zero_means_no_cap() {
        let caps = PerIp::new(0);
        let ip: IpAddr = "::1".parse().unwrap();
        let slots: Vec<_> = (0..1000).map(|_| caps.acquire(ip).unwrap()).collect();
        drop(slots);
        assert!(caps.open.lock().unwrap().is_empty());
    }
}
