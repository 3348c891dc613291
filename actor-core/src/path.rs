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
        Self(Arc::from(format!("{}/{}", self.0, name)))
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
