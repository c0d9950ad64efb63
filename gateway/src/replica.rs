//! What this node is in a replicated hall (protocol §13): its role, the leader's URL, how far
//! behind the stream it is, and the latest state hash with the seq it belongs to. Written by
//! the node's replication tasks, read by `/health`, the sessions (a follower refuses commands,
//! naming the leader) and the fan-out (a follower submits no cancel-on-disconnect).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Not replicated: the market runs alone.
    Single = 0,
    Leader = 1,
    Follower = 2,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Single => "single",
            Role::Leader => "leader",
            Role::Follower => "follower",
        }
    }
}

#[derive(Debug)]
pub struct Replica {
    role: AtomicU8,
    hall: String,
    leader: Mutex<Option<String>>,
    /// The stream's last command seq as last sampled (a follower's lag is counted from it).
    stream_seq: AtomicU64,
    /// (hash_seq, state_hash) once computed.
    hash: Mutex<Option<(u64, u64)>>,
}

impl Default for Replica {
    fn default() -> Replica {
        Replica::new(Role::Single, "")
    }
}

impl Replica {
    pub fn new(role: Role, hall: &str) -> Replica {
        Replica {
            role: AtomicU8::new(role as u8),
            hall: hall.to_string(),
            leader: Mutex::new(None),
            stream_seq: AtomicU64::new(0),
            hash: Mutex::new(None),
        }
    }

    pub fn role(&self) -> Role {
        match self.role.load(Ordering::Acquire) {
            0 => Role::Single,
            1 => Role::Leader,
            _ => Role::Follower,
        }
    }

    /// A follower becomes the leader (the only change of role a running node makes: a deposed
    /// leader stops).
    pub fn set_role(&self, role: Role) {
        self.role.store(role as u8, Ordering::Release);
    }

    pub fn hall(&self) -> &str {
        &self.hall
    }

    pub fn leader(&self) -> Option<String> {
        self.leader.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn set_leader(&self, url: Option<String>) {
        *self.leader.lock().unwrap_or_else(PoisonError::into_inner) = url;
    }

    /// Commands between the stream's end (as last sampled) and `command_seq`, this node's last;
    /// 0 on the leader. Counted when asked, so a follower that has caught up since the sample
    /// says 0 at once.
    pub fn lag(&self, command_seq: u64) -> u64 {
        match self.role() {
            Role::Follower => self.stream_seq.load(Ordering::Relaxed).saturating_sub(command_seq),
            _ => 0,
        }
    }

    /// The stream's last command seq, sampled.
    pub fn set_stream_seq(&self, seq: u64) {
        self.stream_seq.fetch_max(seq, Ordering::Relaxed);
    }

    /// The latest state hash and the command seq it was taken after.
    pub fn state_hash(&self) -> Option<(u64, u64)> {
        *self.hash.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_state_hash(&self, seq: u64, hash: u64) {
        *self.hash.lock().unwrap_or_else(PoisonError::into_inner) = Some((seq, hash));
    }

    /// Why a follower refuses a command: where to send it instead.
    pub fn refusal(&self) -> String {
        match self.leader() {
            Some(url) => format!("this node follows hall {}: send commands to the leader at {url}", self.hall),
            None => format!("this node follows hall {}, which has no leader right now: try again shortly", self.hall),
        }
    }

    /// The §13 fields of `/health` after `"role"` (none for a market running alone);
    /// `command_seq` is the node's last command routed.
    pub fn health_fields(&self, command_seq: u64) -> String {
        let role = self.role();
        if role == Role::Single {
            return format!("\"role\":\"{}\"", role.as_str());
        }
        let leader = match self.leader() {
            Some(url) => serde_json::Value::String(url).to_string(),
            None => "null".to_string(),
        };
        let (hash_seq, hash) = match self.state_hash() {
            Some((seq, hash)) => (seq.to_string(), format!("\"{hash:016x}\"")),
            None => ("null".to_string(), "null".to_string()),
        };
        format!(
            "\"role\":\"{}\",\"hall\":{},\"leader\":{leader},\"lag\":{},\"state_hash\":{hash},\"hash_seq\":{hash_seq}",
            role.as_str(),
            serde_json::Value::String(self.hall.clone()),
            self.lag(command_seq)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_fields_by_role() {
        assert_eq!(Replica::default().health_fields(3), "\"role\":\"single\"");
        let replica = Replica::new(Role::Follower, "sh");
        replica.set_leader(Some("http://127.0.0.1:8080".into()));
        replica.set_stream_seq(49);
        replica.set_state_hash(42, 0xabc);
        let json: serde_json::Value = serde_json::from_str(&format!("{{{}}}", replica.health_fields(42))).unwrap();
        assert_eq!(json["role"], "follower");
        assert_eq!(json["leader"], "http://127.0.0.1:8080");
        assert_eq!(json["lag"], 7);
        assert_eq!(json["state_hash"], "0000000000000abc");
        assert_eq!(json["hash_seq"], 42);
        assert!(replica.refusal().contains("leader at http://127.0.0.1:8080"));
    }
}
