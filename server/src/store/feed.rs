//! Reading events and log lines with a cursor ([`Store::feed`]), per device
//! or (events) fleet-wide, in one of two stable orders:
//!
//! - [`FeedOrder::DeviceTime`], newest first, for history: what happened,
//!   by the device's clock (`at_ms`), whenever it was uploaded;
//! - [`FeedOrder::Arrival`], oldest first, for following: by `received_ms`
//!   (when the server stored it). A device that uploads hours of queued
//!   records after an outage shows them now, not hours back.
//!
//! Both break ties by the row's identity, so an order is total and a
//! [`FeedKey`] (the position of a row) is an exact cursor: `(t, device,
//! source, a, b)` where `t` is `at_ms` or `received_ms`, `source` 0 for a
//! batch record (`a` = its seq) and 1 for an event of a Flotta JSON
//! heartbeat (`a` = its sent time, `b` = its position). Two JSON events of
//! one device with the same sent time and position but different payloads
//! (two different heartbeats claiming the same `sent`) share a key; a page
//! boundary between them would skip one.
//!
//! Arrival order is not commit order: `received_ms` is taken before the
//! writing transaction commits (before SQLite's write lock, or inside a
//! PostgreSQL READ COMMITTED transaction), so a row may become visible with
//! a `received_ms` below one a reader already passed. [`Follower`] covers
//! that by re-reading [`OVERLAP_MS`] behind its position and dropping what
//! it already delivered.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::device_id::DeviceId;

/// Which rows a feed reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedKind {
    /// Event records of batches and events of Flotta JSON heartbeats.
    Events,
    /// Log records (one device at a time).
    Logs,
}

/// The order of a feed (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedOrder {
    /// By device time, newest first.
    DeviceTime,
    /// By the time the server stored the row, oldest first.
    Arrival,
}

/// The position of a row in a feed's order (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FeedKey {
    /// `at_ms` (device time) or `received_ms` (arrival), by the order.
    pub t: u64,
    /// The device id.
    pub device: String,
    /// 0: a batch record; 1: an event of a Flotta JSON heartbeat.
    pub source: u8,
    /// The record's seq, or the heartbeat's sent time.
    pub a: u64,
    /// 0, or the event's position in its heartbeat.
    pub b: u64,
}

impl FeedKey {
    /// The first position at or after time `t` in ascending order (before
    /// every row of `t`).
    pub fn start_of(t: u64) -> Self {
        Self {
            t,
            device: String::new(),
            source: 0,
            a: 0,
            b: 0,
        }
    }

    /// The last position of time `t` in ascending order (after every row
    /// of `t`: no device id sorts after `char::MAX`).
    pub fn end_of(t: u64) -> Self {
        Self {
            t,
            device: char::MAX.to_string(),
            source: u8::MAX,
            a: i64::MAX as u64,
            b: i64::MAX as u64,
        }
    }
}

/// What one [`Store::feed`] call reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedQuery {
    /// Events or logs.
    pub kind: FeedKind,
    /// One device, or (events only) every device.
    pub device: Option<DeviceId>,
    /// The order.
    pub order: FeedOrder,
    /// Only rows after this position in the order (exclusive).
    pub after: Option<FeedKey>,
    /// Only rows with a device time at or after this.
    pub since_ms: u64,
    /// At most this many rows.
    pub limit: usize,
}

/// One row of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRow {
    /// Its position in the query's order.
    pub key: FeedKey,
    /// Device time, ms since the Unix epoch.
    pub at_ms: u64,
    /// When the server stored it, ms since the Unix epoch.
    pub received_ms: u64,
    /// `Payload::Event` or `Payload::Log`, postcard.
    pub payload: Vec<u8>,
}

/// How far behind its position a [`Follower`] reads again for rows that
/// committed late: longer than a writer holds its `received_ms` before
/// committing (SQLite waits at most 5 s for its write lock).
pub const OVERLAP_MS: u64 = 10_000;
/// Rows one [`Follower::poll`] reads, at most.
pub const POLL_SCAN: usize = 5_000;
const PAGE: usize = 500;

/// Follows a feed in arrival order: every row once, late ones included
/// (those that commit within [`OVERLAP_MS`] of their `received_ms`).
///
/// Its position is the greatest key delivered. Rows at or before the
/// position that exist when the follower is made count as delivered (a new
/// stream starts "now"; a resumed one after what it sent); any row that
/// shows up later inside the overlap window is delivered then, once.
#[derive(Debug)]
pub struct Follower {
    query: FeedQuery,
    position: FeedKey,
    /// Keys at or after `position.t - OVERLAP_MS` already delivered (or
    /// there when the follower started).
    seen: BTreeSet<FeedKey>,
}

impl Follower {
    /// A follower of `query` (its order and `after` are replaced) from
    /// `position`: what exists up to it now counts as delivered.
    pub fn start(
        store: &dyn Store,
        query: FeedQuery,
        position: FeedKey,
    ) -> Result<Self, StoreError> {
        let mut follower = Self {
            query: FeedQuery {
                order: FeedOrder::Arrival,
                after: None,
                ..query
            },
            position,
            seen: BTreeSet::new(),
        };
        let mut after = follower.window_start();
        let mut scanned = 0;
        loop {
            let page = follower.page(store, &after)?;
            scanned += page.len();
            let full = page.len() == PAGE;
            for row in page {
                if row.key > follower.position {
                    return Ok(follower);
                }
                after = row.key.clone();
                follower.seen.insert(row.key);
            }
            if !full || scanned >= POLL_SCAN {
                return Ok(follower);
            }
        }
    }

    /// The position: the greatest key delivered (or the start).
    pub fn position(&self) -> &FeedKey {
        &self.position
    }

    /// Just before the window (an exclusive bound: rows of its first
    /// millisecond are in).
    fn window_start(&self) -> FeedKey {
        match self.position.t.saturating_sub(OVERLAP_MS) {
            0 => FeedKey::start_of(0),
            t => FeedKey::end_of(t - 1),
        }
    }

    fn page(&self, store: &dyn Store, after: &FeedKey) -> Result<Vec<FeedRow>, StoreError> {
        store.feed(&FeedQuery {
            after: Some(after.clone()),
            limit: PAGE,
            ..self.query.clone()
        })
    }

    /// Rows not delivered yet, oldest first: late ones inside the overlap
    /// window, then new ones; at most [`POLL_SCAN`] rows read (call again
    /// at once when the answer is long).
    pub fn poll(&mut self, store: &dyn Store) -> Result<Vec<FeedRow>, StoreError> {
        let mut out = Vec::new();
        let mut after = self.window_start();
        let mut scanned = 0;
        // Late rows first: the window behind the position. When it holds
        // more than a poll may read, go on from the position (rows that
        // commit that late in such a flood are missed).
        loop {
            let page = self.page(store, &after)?;
            scanned += page.len();
            let full = page.len() == PAGE;
            let mut past = false;
            for row in page {
                if row.key > self.position {
                    past = true;
                    break;
                }
                after = row.key.clone();
                if self.seen.insert(row.key.clone()) {
                    out.push(row);
                }
            }
            if past || !full {
                break;
            }
            if scanned >= POLL_SCAN / 2 {
                after = self.position.clone();
                break;
            }
        }
        if after < self.position {
            after = self.position.clone();
        }
        // New rows, beyond the position.
        while scanned < POLL_SCAN {
            let page = self.page(store, &after)?;
            scanned += page.len();
            let full = page.len() == PAGE;
            for row in page {
                after = row.key.clone();
                if self.seen.insert(row.key.clone()) {
                    out.push(row);
                }
            }
            if !full {
                break;
            }
        }
        if after > self.position {
            self.position = after;
        }
        let floor = self.window_start();
        self.seen = self.seen.split_off(&floor);
        Ok(out)
    }
}
