//! The key ring (master key + scoped keys), scopes, and the permission check
//! (docs/protocol.md#permissions-and-api-keys).

use parking_lot::{Mutex, MutexGuard, RwLock};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

/// The scopes' names are those of the wire (`read-only`, `read-write`, `read-write-delete`), so
/// they share their first word.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Scope {
    ReadOnly = 0,
    ReadWrite = 1,
    ReadWriteDelete = 2,
}

impl Scope {
    /// Canonical name, used in every response.
    pub fn name(self) -> &'static str {
        match self {
            Scope::ReadOnly => "readonly",
            Scope::ReadWrite => "read_write",
            Scope::ReadWriteDelete => "read_write_delete",
        }
    }

    /// Parses a client-given scope: white space trimmed, lower-cased, spaces, commas, hyphens
    /// and underscores deleted.
    pub fn parse(text: &str) -> Option<Scope> {
        let norm = normalise(text);
        match norm.as_str() {
            "readonly" => Some(Scope::ReadOnly),
            "readwrite" => Some(Scope::ReadWrite),
            "readwritedelete" => Some(Scope::ReadWriteDelete),
            _ => None,
        }
    }

    fn from_u8(v: u8) -> Scope {
        match v {
            0 => Scope::ReadOnly,
            1 => Scope::ReadWrite,
            _ => Scope::ReadWriteDelete,
        }
    }

    /// Whether this scope grants `p`. `ManageKeys` also needs the master key (checked apart).
    pub fn allows(self, p: Permission) -> bool {
        match p {
            Permission::Read => true,
            Permission::Write => self >= Scope::ReadWrite,
            Permission::Delete | Permission::ManageKeys => self == Scope::ReadWriteDelete,
        }
    }
}

/// What a caller's scope must grant for a message type
/// (docs/protocol.md#what-each-message-type-needs); each message type declares its own in the
/// message table (`ops::messages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Write,
    Delete,
    /// `read_write_delete` scope and the master key.
    ManageKeys,
}

/// The normalisation shared by scopes and `keys` actions.
pub fn normalise(text: &str) -> String {
    text.trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | ',' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// One API key. Connections hold the entry, so re-scoping and revocation reach them live.
#[derive(Debug)]
pub struct KeyEntry {
    key: String,
    scope: AtomicU8,
    revoked: AtomicBool,
    master: bool,
}

impl KeyEntry {
    fn new(key: &str, scope: Scope, master: bool) -> Self {
        KeyEntry {
            key: key.to_owned(),
            scope: AtomicU8::new(scope as u8),
            revoked: AtomicBool::new(false),
            master,
        }
    }

    pub fn scope(&self) -> Scope {
        Scope::from_u8(self.scope.load(Ordering::Acquire))
    }

    pub fn is_master(&self) -> bool {
        self.master
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }
}

/// The permission check of docs/protocol.md#how-errors-are-chosen: scope first, then (for `keys`)
/// the master key.
pub fn authorize(entry: &KeyEntry, permission: Permission) -> Result<(), &'static str> {
    if !entry.scope().allows(permission) {
        return Err("permission denied");
    }
    if permission == Permission::ManageKeys && !entry.is_master() {
        return Err("only the master key may manage API keys");
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveError {
    NotFound,
    NotRemovable,
}

/// A listed key: `(key, scope, deletable)`.
pub type KeyListing = (String, Scope, bool);

pub struct KeyRing {
    master: Arc<KeyEntry>,
    keys: RwLock<BTreeMap<String, Arc<KeyEntry>>>,
    /// Held by one change of the keys at a time, from the change through its save (or undo).
    changes: Mutex<()>,
}

impl KeyRing {
    pub fn new(master_key: &str) -> Self {
        KeyRing {
            master: Arc::new(KeyEntry::new(master_key, Scope::ReadWriteDelete, true)),
            keys: Default::default(),
            changes: Mutex::new(()),
        }
    }

    /// Serialises changes of the keys: whoever changes them holds this until the change is
    /// saved or undone. Without it two changes saved at once could write their copies of the
    /// keys in the other order, and a restart would bring back the older set (a revoked key
    /// back, an added one gone), and an undo could follow another change's save.
    pub fn changing(&self) -> MutexGuard<'_, ()> {
        self.changes.lock()
    }

    /// The entry a connection authenticates with.
    pub fn lookup(&self, key: &str) -> Option<Arc<KeyEntry>> {
        if key == self.master.key {
            return Some(self.master.clone());
        }
        self.keys.read().get(key).cloned()
    }

    /// Adds or re-scopes a key; returns the scope now in effect. The master key is left as it
    /// is (its effective scope is returned).
    pub fn add(&self, key: &str, scope: Scope) -> Scope {
        if key == self.master.key {
            return Scope::ReadWriteDelete;
        }
        let mut keys = self.keys.write();
        match keys.get(key) {
            Some(entry) => entry.scope.store(scope as u8, Ordering::Release),
            None => {
                keys.insert(key.to_owned(), Arc::new(KeyEntry::new(key, scope, false)));
            }
        }
        scope
    }

    /// Removes a scoped key and marks its entry revoked.
    pub fn remove(&self, key: &str) -> Result<Arc<KeyEntry>, RemoveError> {
        if key == self.master.key {
            return Err(RemoveError::NotRemovable);
        }
        let entry = self.keys.write().remove(key).ok_or(RemoveError::NotFound)?;
        entry.revoked.store(true, Ordering::Release);
        Ok(entry)
    }

    /// Undoes an `add` that could not be saved: `prior` is the key's scope before it (`None`:
    /// the key did not exist, and an entry a client may have taken meanwhile is revoked).
    pub fn restore_scope(&self, key: &str, prior: Option<Scope>) {
        let mut keys = self.keys.write();
        match prior {
            Some(scope) => {
                if let Some(entry) = keys.get(key) {
                    entry.scope.store(scope as u8, Ordering::Release);
                }
            }
            None => {
                if let Some(entry) = keys.remove(key) {
                    entry.revoked.store(true, Ordering::Release);
                }
            }
        }
    }

    /// Undoes a `remove` that could not be saved: the same entry is listed again, unrevoked.
    pub fn reinstate(&self, entry: Arc<KeyEntry>) {
        entry.revoked.store(false, Ordering::Release);
        self.keys.write().insert(entry.key.clone(), entry);
    }

    /// Every key, the master included, sorted by key.
    pub fn list(&self) -> Vec<KeyListing> {
        let keys = self.keys.read();
        let mut out: Vec<KeyListing> = keys
            .values()
            .map(|e| (e.key.clone(), e.scope(), true))
            .collect();
        out.push((self.master.key.clone(), Scope::ReadWriteDelete, false));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The scoped keys (never the master), for persistence.
    pub fn scoped(&self) -> Vec<(String, Scope)> {
        self.keys
            .read()
            .values()
            .map(|e| (e.key.clone(), e.scope()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_aliases() {
        for s in [
            "readonly",
            "read_only",
            "Read-Only",
            "read only",
            " \tREADONLY\n",
        ] {
            assert_eq!(Scope::parse(s), Some(Scope::ReadOnly), "{s}");
        }
        for s in ["read_write", "read-write", "ReadWrite", "read,write"] {
            assert_eq!(Scope::parse(s), Some(Scope::ReadWrite), "{s}");
        }
        for s in [
            "read_write_delete",
            "read, write, delete",
            "READ-WRITE-DELETE",
        ] {
            assert_eq!(Scope::parse(s), Some(Scope::ReadWriteDelete), "{s}");
        }
        assert_eq!(Scope::parse("admin"), None);
        assert_eq!(Scope::parse(""), None);
    }

    #[test]
    fn ring() {
        let ring = KeyRing::new("m");
        assert_eq!(ring.add("m", Scope::ReadOnly), Scope::ReadWriteDelete);
        assert_eq!(ring.add("k", Scope::ReadOnly), Scope::ReadOnly);
        let held = ring.lookup("k").unwrap();
        ring.add("k", Scope::ReadWrite);
        assert_eq!(
            held.scope(),
            Scope::ReadWrite,
            "re-scope reaches live holders"
        );
        assert_eq!(ring.remove("m").unwrap_err(), RemoveError::NotRemovable);
        assert_eq!(ring.remove("x").unwrap_err(), RemoveError::NotFound);
        ring.remove("k").unwrap();
        assert!(held.is_revoked());
        assert!(ring.lookup("k").is_none());
        assert_eq!(
            ring.list(),
            vec![("m".into(), Scope::ReadWriteDelete, false)]
        );
    }
}
