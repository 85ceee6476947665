//! The shared table: per-key counters and token buckets, with an LRU order
//! over idle keys so the table can stay bounded.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

/// Why a connection was refused by the [per-IP limit](super).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerIpReason {
    /// The address already has the maximum of live connections.
    TooManyConnections,
    /// The address opened connections faster than the rate allows.
    RateLimited,
    /// Every tracked address has live connections and the table is full.
    TableFull,
}

/// The error of a connection refused by the [per-IP limit](super).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("connection from {ip} refused by the per-IP limit ({reason:?})")]
pub struct PerIpRejected {
    /// The peer's address.
    pub ip: IpAddr,
    /// Which limit refused it.
    pub reason: PerIpReason,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) max_concurrent: Option<u32>,
    /// Tokens per second and bucket size.
    pub(crate) rate: Option<(f64, u32)>,
    pub(crate) max_tracked: usize,
    pub(crate) ipv6_prefix: u8,
}

#[derive(Debug)]
struct Entry {
    active: u32,
    tokens: f64,
    refilled: Instant,
    /// Position in the idle order, while `active == 0`.
    idle_stamp: Option<u64>,
}

#[derive(Debug, Default)]
struct Slots {
    map: HashMap<IpAddr, Entry>,
    /// Idle keys, oldest first.
    idle: BTreeMap<u64, IpAddr>,
    next_stamp: u64,
}

#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) config: Config,
    slots: Mutex<Slots>,
}

/// Holds one live connection of an address; dropping it releases it.
#[derive(Debug)]
pub struct PerIpGuard {
    table: Arc<Table>,
    key: IpAddr,
}

impl Drop for PerIpGuard {
    fn drop(&mut self) {
        let mut slots = self.table.lock();
        let slots = &mut *slots;
        if let Some(e) = slots.map.get_mut(&self.key) {
            e.active = e.active.saturating_sub(1);
            if e.active == 0 {
                mark_idle(&mut slots.idle, &mut slots.next_stamp, self.key, e);
            }
        }
    }
}

fn mark_idle(idle: &mut BTreeMap<u64, IpAddr>, next: &mut u64, key: IpAddr, e: &mut Entry) {
    if let Some(old) = e.idle_stamp.take() {
        idle.remove(&old);
    }
    *next += 1;
    idle.insert(*next, key);
    e.idle_stamp = Some(*next);
}

impl Table {
    pub(crate) fn new(config: Config) -> Self {
        Table {
            config,
            slots: Mutex::new(Slots::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        // The critical sections cannot panic half-way in a way that breaks
        // the table's invariants badly; keep serving after a poison.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The table key of `ip`.
    pub(crate) fn key(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u32::from(self.config.ipv6_prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
            v4 => v4,
        }
    }

    pub(crate) fn tracked(&self) -> usize {
        self.lock().map.len()
    }

    pub(crate) fn active(&self, ip: IpAddr) -> u32 {
        let key = self.key(ip);
        self.lock().map.get(&key).map_or(0, |e| e.active)
    }

    /// Admit one connection from `ip`, or say why not.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<PerIpGuard, PerIpRejected> {
        let key = self.key(ip);
        let now = Instant::now();
        let burst = self.config.rate.map_or(0.0, |(_, b)| f64::from(b));
        let mut slots = self.lock();
        let slots = &mut *slots;
        if !slots.map.contains_key(&key) {
            if slots.map.len() >= self.config.max_tracked {
                // Forget the longest-idle key; none idle means every slot
                // holds live connections: refuse rather than grow.
                match slots.idle.pop_first() {
                    Some((_, old)) => {
                        slots.map.remove(&old);
                    }
                    None => {
                        return Err(PerIpRejected {
                            ip,
                            reason: PerIpReason::TableFull,
                        })
                    }
                }
            }
            slots.map.insert(
                key,
                Entry {
                    active: 0,
                    tokens: burst,
                    refilled: now,
                    idle_stamp: None,
                },
            );
        }
        let Some(e) = slots.map.get_mut(&key) else {
            return Err(PerIpRejected {
                ip,
                reason: PerIpReason::TableFull,
            });
        };
        if let Some((per_sec, _)) = self.config.rate {
            let elapsed = now.saturating_duration_since(e.refilled).as_secs_f64();
            e.tokens = (e.tokens + elapsed * per_sec).min(burst);
            e.refilled = now;
        }
        let refused = if self.config.max_concurrent.is_some_and(|m| e.active >= m) {
            Some(PerIpReason::TooManyConnections)
        } else if self.config.rate.is_some() && e.tokens < 1.0 {
            Some(PerIpReason::RateLimited)
        } else {
            None
        };
        if let Some(reason) = refused {
            if e.active == 0 {
                // A refused address is recent: keep it (and its empty
                // bucket) from being the next one forgotten.
                mark_idle(&mut slots.idle, &mut slots.next_stamp, key, e);
            }
            return Err(PerIpRejected { ip, reason });
        }
        if self.config.rate.is_some() {
            e.tokens -= 1.0;
        }
        e.active += 1;
        if let Some(stamp) = e.idle_stamp.take() {
            slots.idle.remove(&stamp);
        }
        Ok(PerIpGuard {
            table: self.clone(),
            key,
        })
    }
}
