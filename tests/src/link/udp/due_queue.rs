//! Datagrams waiting for their delivery time, released in due order (ties in
//! the order they were queued), so equal deadlines never reorder.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

/// One queued item.
#[derive(Debug)]
struct Entry<T> {
    due: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    /// Reversed: `BinaryHeap` is a max-heap, the earliest must come first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// A min-heap on (due time, insertion order).
#[derive(Debug)]
pub(crate) struct DueQueue<T> {
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
}

impl<T> DueQueue<T> {
    pub(crate) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    pub(crate) fn push(&mut self, due: Instant, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { due, seq, item });
    }

    /// When the earliest item is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|entry| entry.due)
    }

    /// The earliest item if it is due by `now`, with its due time.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.next_due()? > now {
            return None;
        }
        self.heap.pop().map(|entry| (entry.due, entry.item))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn releases_by_due_time_then_insertion_order() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut queue = DueQueue::new();
        for (offset, name) in [(ms(30), "c"), (ms(10), "a1"), (ms(20), "b"), (ms(10), "a2")] {
            queue.push(t0 + offset, name);
        }
        assert_eq!(queue.next_due(), Some(t0 + ms(10)));
        assert_eq!(queue.pop_due(t0 + ms(5)), None);
        let released: Vec<&str> = std::iter::from_fn(|| queue.pop_due(t0 + ms(20)))
            .map(|(_, name)| name)
            .collect();
        assert_eq!(released, ["a1", "a2", "b"]);
        assert_eq!(queue.pop_due(t0 + ms(30)).map(|(_, name)| name), Some("c"));
        assert_eq!(queue.next_due(), None);
    }
}
