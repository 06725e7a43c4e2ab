//! The SQLite store's read cache for the two reads on every My Account
//! request: whether a grant is revoked, and a user with their methods.
//!
//! With SQLite, `latchkey serve` is the only process that writes grants and
//! methods, so every write that can change a cached answer goes through this
//! store, which drops the entry once the write has committed. Writes by
//! another process on the same file (`latchkey tenant apply` while the
//! server runs) are seen when the entry expires: entries live for the
//! current second of the injected clock only (`TTL`).
//!
//! A read that raced a write must not put back what it read before the
//! write: every invalidation advances an epoch, and a read stores its answer
//! only if the epoch it saw before reading is still current.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::{MethodRow, UserRow};
use latchkey_core::clock::{SharedClock, Timestamp};

/// Seconds an entry is served for; 1 means "within the same second".
const TTL: i64 = 1;
/// Entries per map; past it, expired entries go, and if that is not enough
/// the map is emptied (a bounded memory, at the price of a cold start).
const CAPACITY: usize = 65_536;

pub(super) type UserWithMethods = Option<(UserRow, Vec<MethodRow>)>;

type Key = (String, String);

struct Entry<V> {
    at: Timestamp,
    value: V,
}

#[derive(Default)]
struct Maps {
    epoch: u64,
    users: HashMap<Key, Entry<UserWithMethods>>,
    grants: HashMap<Key, Entry<bool>>,
}

pub(super) struct ReadCache {
    clock: SharedClock,
    maps: Mutex<Maps>,
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache").finish_non_exhaustive()
    }
}

/// What a read must hand back to [`ReadCache::put_user`] or
/// [`ReadCache::put_grant`]: the epoch before it went to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticket(u64);

fn key(tenant_id: &str, id: &str) -> Key {
    (tenant_id.to_string(), id.to_string())
}

fn fresh<V>(e: &Entry<V>, now: Timestamp) -> bool {
    (0..TTL).contains(&(now - e.at))
}

fn insert<V>(map: &mut HashMap<Key, Entry<V>>, k: Key, e: Entry<V>, now: Timestamp) {
    if map.len() >= CAPACITY && !map.contains_key(&k) {
        map.retain(|_, e| fresh(e, now));
        if map.len() >= CAPACITY {
            map.clear();
        }
    }
    map.insert(k, e);
}

impl ReadCache {
    pub(super) fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            maps: Mutex::new(Maps::default()),
        }
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        // A panic while holding the lock leaves the maps consistent (every
        // update is a single insert or remove), so poisoning is ignored.
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached answer, or a ticket for storing the one about to be read.
    pub(super) fn user(&self, tenant_id: &str, user_id: &str) -> Result<UserWithMethods, Ticket> {
        let now = self.clock.now();
        let m = self.maps();
        match m.users.get(&(tenant_id.to_string(), user_id.to_string())) {
            Some(e) if fresh(e, now) => Ok(e.value.clone()),
            _ => Err(Ticket(m.epoch)),
        }
    }

    pub(super) fn put_user(
        &self,
        ticket: Ticket,
        tenant_id: &str,
        user_id: &str,
        value: &UserWithMethods,
    ) {
        let now = self.clock.now();
        let mut m = self.maps();
        if m.epoch == ticket.0 {
            let e = Entry {
                at: now,
                value: value.clone(),
            };
            insert(&mut m.users, key(tenant_id, user_id), e, now);
        }
    }

    pub(super) fn grant_revoked(&self, tenant_id: &str, grant_id: &str) -> Result<bool, Ticket> {
        let now = self.clock.now();
        let m = self.maps();
        match m.grants.get(&(tenant_id.to_string(), grant_id.to_string())) {
            Some(e) if fresh(e, now) => Ok(e.value),
            _ => Err(Ticket(m.epoch)),
        }
    }

    pub(super) fn put_grant(&self, ticket: Ticket, tenant_id: &str, grant_id: &str, revoked: bool) {
        let now = self.clock.now();
        let mut m = self.maps();
        if m.epoch == ticket.0 {
            let e = Entry {
                at: now,
                value: revoked,
            };
            insert(&mut m.grants, key(tenant_id, grant_id), e, now);
        }
    }

    /// After a committed write to the user's row or methods.
    pub(super) fn forget_user(&self, tenant_id: &str, user_id: &str) {
        let mut m = self.maps();
        m.epoch += 1;
        m.users.remove(&key(tenant_id, user_id));
    }

    /// After a committed write to grants that were not named one by one
    /// (all of a user's).
    pub(super) fn forget_grants(&self) {
        let mut m = self.maps();
        m.epoch += 1;
        m.grants.clear();
    }

    /// After a committed write to the grant.
    pub(super) fn forget_grant(&self, tenant_id: &str, grant_id: &str) {
        let mut m = self.maps();
        m.epoch += 1;
        m.grants.remove(&key(tenant_id, grant_id));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use latchkey_core::clock::ManualClock;

    fn cache() -> (Arc<ManualClock>, ReadCache) {
        let clock = Arc::new(ManualClock::new(1_800_000_000));
        (clock.clone(), ReadCache::new(clock))
    }

    #[test]
    fn serves_within_the_second_then_reads_again() {
        let (clock, c) = cache();
        let t = c.grant_revoked("t", "g").unwrap_err();
        c.put_grant(t, "t", "g", false);
        assert_eq!(c.grant_revoked("t", "g"), Ok(false));
        assert!(c.grant_revoked("t", "other").is_err());
        assert!(c.grant_revoked("other", "g").is_err());
        clock.advance(1);
        assert!(c.grant_revoked("t", "g").is_err());
    }

    #[test]
    fn a_clock_moved_back_does_not_serve_an_entry_from_the_future() {
        let (clock, c) = cache();
        let t = c.user("t", "u").unwrap_err();
        c.put_user(t, "t", "u", &None);
        assert_eq!(c.user("t", "u"), Ok(None));
        clock.advance(-1);
        assert!(c.user("t", "u").is_err());
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_stored() {
        let (_, c) = cache();
        // A read starts, a write commits and forgets the user, the read
        // finishes with what it saw before the write.
        let before = c.user("t", "u").unwrap_err();
        c.forget_user("t", "u");
        c.put_user(before, "t", "u", &None);
        assert!(c.user("t", "u").is_err(), "the stale answer was stored");
        // The same for grants: a revocation in between wins.
        let before = c.grant_revoked("t", "g").unwrap_err();
        c.forget_grant("t", "g");
        c.put_grant(before, "t", "g", false);
        assert!(c.grant_revoked("t", "g").is_err());
        // A read after the write stores its answer.
        let after = c.grant_revoked("t", "g").unwrap_err();
        c.put_grant(after, "t", "g", true);
        assert_eq!(c.grant_revoked("t", "g"), Ok(true));
    }

    #[test]
    fn forgetting_drops_the_entry() {
        let (_, c) = cache();
        let t = c.grant_revoked("t", "g").unwrap_err();
        c.put_grant(t, "t", "g", false);
        c.forget_grant("t", "g");
        assert!(c.grant_revoked("t", "g").is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let (clock, c) = cache();
        for i in 0..CAPACITY {
            let t = c.grant_revoked("t", &i.to_string()).unwrap_err();
            c.put_grant(t, "t", &i.to_string(), false);
        }
        assert_eq!(c.maps().grants.len(), CAPACITY);
        // Full of fresh entries: the next one empties the map first.
        let t = c.grant_revoked("t", "one more").unwrap_err();
        c.put_grant(t, "t", "one more", false);
        assert_eq!(c.maps().grants.len(), 1);
        // Full of expired entries: they go, the fresh one stays.
        for i in 0..CAPACITY - 1 {
            let t = c.grant_revoked("t", &i.to_string()).unwrap_err();
            c.put_grant(t, "t", &i.to_string(), false);
        }
        clock.advance(5);
        let t = c.grant_revoked("t", "late").unwrap_err();
        c.put_grant(t, "t", "late", true);
        assert_eq!(c.maps().grants.len(), 1);
        assert_eq!(c.grant_revoked("t", "late"), Ok(true));
    }
}
