//! Who is connected to this hub's WebSocket right now, for the web page's
//! activity view: each open socket registers itself and is forgotten when
//! it closes (its [`Present`] guard drops).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sf_protocol::v1::ConnectedClient;

/// The clients connected now.
#[derive(Default)]
pub struct Presence {
    next_id: AtomicU64,
    clients: Arc<Mutex<BTreeMap<u64, ConnectedClient>>>,
}

/// One connected client; dropping it forgets the client.
pub struct Present {
    id: u64,
    clients: Arc<Mutex<BTreeMap<u64, ConnectedClient>>>,
}

impl Presence {
    /// Registers `client` until the returned guard drops.
    pub fn join(&self, client: ConnectedClient) -> Present {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.clients
            .lock()
            .expect("presence lock")
            .insert(id, client);
        Present {
            id,
            clients: Arc::clone(&self.clients),
        }
    }

    /// The clients connected now, oldest connection first.
    pub fn connected(&self) -> Vec<ConnectedClient> {
        self.clients
            .lock()
            .expect("presence lock")
            .values()
            .cloned()
            .collect()
    }
}

impl Drop for Present {
    fn drop(&mut self) {
        if let Ok(mut clients) = self.clients.lock() {
            clients.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(agent: &str) -> ConnectedClient {
        ConnectedClient {
            token: None,
            agent: Some(agent.into()),
            address: None,
            connected_ms: 0,
        }
    }

    #[test]
    fn a_client_is_listed_while_its_guard_lives() {
        let presence = Presence::default();
        let laptop = presence.join(client("laptop"));
        let desk = presence.join(client("desk"));
        let names = |p: &Presence| -> Vec<Option<String>> {
            p.connected().into_iter().map(|c| c.agent).collect()
        };
        assert_eq!(
            names(&presence),
            [Some("laptop".into()), Some("desk".into())]
        );
        drop(laptop);
        assert_eq!(names(&presence), [Some("desk".into())]);
        drop(desk);
        assert!(presence.connected().is_empty());
    }
}
