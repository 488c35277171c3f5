//! What an agent receives from a hub: `decode_ws_frame`, `decode_changes`
//! and `Entry::validate` never panic; a frame `decode_ws_frame` accepts
//! validates; both survive a JSON round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_protocol::v1::{WsFrame, decode_changes, decode_ws_frame};

fuzz_target!(|data: &[u8]| {
    if let Ok(page) = decode_changes(data) {
        for entry in &page.changes {
            let _ = entry.validate();
        }
        let again = serde_json::to_vec(&page).unwrap();
        let back = decode_changes(&again).unwrap();
        assert_eq!(back.changes, page.changes);
        assert_eq!((back.head, &back.hub_id), (page.head, &page.hub_id));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(frame) = decode_ws_frame(text) {
        if let WsFrame::Change(entry) = &frame {
            entry.validate().unwrap();
        }
        let again = serde_json::to_string(&frame).unwrap();
        assert_eq!(decode_ws_frame(&again).unwrap(), frame);
    }
});
