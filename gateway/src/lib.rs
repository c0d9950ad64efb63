//! Huashi's gateway: the HTTP + WebSocket server that speaks protocol.md (filled in by issue 4).
