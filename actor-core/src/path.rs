//! Actor identities: a numeric [`ActorId`] unique within one system, and a hierarchical
//! [`ActorPath`] such as `/user/lobby/room-7`.

use std::fmt;
use std::sync::Arc;

/// Identifies one actor incarnation within one [`crate::ActorSystem`]. A restarted actor keeps its
/// id (restart keeps the mailbox and the ref); a new actor spawned under the same name gets a new
/// one. Ids are never reused within a system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActorId(pub(crate) u64);

impl ActorId {
    /// The raw number (for logs and wire formats).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Rebuilds an id from [`ActorId::as_u64`]; for transports that carry ids.
    pub fn from_u64(raw: u64) -> Self {
        Self(raw)
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where an actor sits in its system's tree: `/user` for top-level actors, then one segment per
/// ancestor. Anonymous actors get a `$<id>` segment. Cheap to clone.
///
/// ```
/// use actor_core::ActorPath;
/// let p = ActorPath::user_root().child("lobby").child("room-7");
/// assert_eq!(p.to_string(), "/user/lobby/room-7");
/// assert_eq!(p.name(), "room-7");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorPath(Arc<str>);

impl ActorPath {
    /// The path of the user guardian, parent of every top-level actor.
    pub fn user_root() -> Self {
        Self(Arc::from("/user"))
    }

    /// The path of a child named `name` below this one.
    pub fn child(&self, name: &str) -> Self {
        self.join(&[name.as_bytes()])
    }

    /// The path of an anonymous child: `$` and its id below this one.
    pub(crate) fn anonymous_child(&self, id: u64) -> Self {
        // Decimal digits without the formatting machinery (spawning is hot).
        let mut digits = [0u8; 20];
        let mut n = id;
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.join(&[b"$", &digits[at..]])
    }

    /// `self` + `/` + the concatenation of `parts`, with one allocation (the `Arc`) for paths
    /// up to 256 bytes.
    fn join(&self, parts: &[&[u8]]) -> Self {
        let len = self.0.len() + 1 + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut stack = [0u8; 256];
        let mut heap = Vec::new();
        let buf: &mut [u8] = if len <= stack.len() {
            &mut stack[..len]
        } else {
            heap.resize(len, 0);
            &mut heap
        };
        let mut at = self.0.len();
        buf[..at].copy_from_slice(self.0.as_bytes());
        buf[at] = b'/';
        at += 1;
        for part in parts {
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        // Only whole `str`s and ASCII were copied in, so this is valid UTF-8.
        match std::str::from_utf8(buf) {
            Ok(path) => Self(Arc::from(path)),
            Err(_) => Self(Arc::from(String::from_utf8_lossy(buf).as_ref())),
        }
    }

    /// Builds a path from its string form (for transports and lookups).
    pub fn from_string(path: impl Into<Arc<str>>) -> Self {
        Self(path.into())
    }

    /// The last segment.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorPath({})", self.0)
    }
}

/// Checks a user-supplied actor name: not empty, no `/`, no leading `$` (reserved for anonymous
/// actors), at most 256 bytes.
pub(crate) fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("an actor name must not be empty")
    } else if name.contains('/') {
        Err("an actor name must not contain '/'")
    } else if name.starts_with('$') {
        Err("names starting with '$' are reserved for anonymous actors")
    } else if name.len() > 256 {
        Err("an actor name must be at most 256 bytes")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod join_tests {
    use super::ActorPath;

    #[test]
    fn children_join_with_a_slash_named_or_anonymous() {
        let root = ActorPath::user_root();
        assert_eq!(root.child("lobby").as_str(), "/user/lobby");
        assert_eq!(root.anonymous_child(0).as_str(), "/user/$0");
        assert_eq!(
            root.child("a").anonymous_child(u64::MAX).as_str(),
            "/user/a/$18446744073709551615"
        );
        let long = "x".repeat(300);
        assert_eq!(root.child(&long).as_str(), format!("/user/{long}"));
        assert_eq!(root.child("h\u{e9}").name(), "h\u{e9}");
    }
}
