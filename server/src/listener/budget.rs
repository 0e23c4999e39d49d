//! Connection budgets: how many admitted connections a listener holds in
//! total, per bounded class, and per client.
//!
//! Admission is decided once, right after the class is known, and never
//! waits: a connection either gets a [`Permit`] (released when dropped) or
//! is refused with the reason. The registration and `other` classes can
//! never hold more than their share, so devices always find at least
//! `total - registration - other` slots that nobody else can take (the
//! configuration checks that this reserve is positive). Devices (and the
//! admin class) may also use any free slot of the shared part.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::metrics::gauge::Gauge;

use super::class::{Class, ClientKey};
use crate::metrics::{ConnectionLabels, Metrics, RefusalLabels};

/// The sizes of a listener's budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Admitted connections in total.
    pub total: usize,
    /// Most connections the registration class may hold.
    pub registration: usize,
    /// Most connections the `other` class may hold.
    pub other: usize,
    /// Most connections one client (device id or certificate) may hold.
    pub per_client: usize,
}

impl Limits {
    /// The most `class` may hold.
    fn class_cap(&self, class: Class) -> usize {
        match class {
            Class::Registration => self.registration,
            Class::Other => self.other,
            Class::Device | Class::Admin => self.total,
        }
    }
}

/// Why a connection was not admitted. Always worth retrying later: the
/// slots free up as connections finish or hit their deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Every slot of the listener is taken.
    #[error("every connection slot is taken")]
    ListenerFull,
    /// The client's class has used up its share.
    #[error("the {0} class holds its share of connections")]
    ClassFull(Class),
    /// This client already holds as many connections as one client may.
    #[error("this client already holds its share of connections")]
    ClientFull,
}

impl Refused {
    /// Whether retrying may succeed (always: slots free up).
    pub fn is_retriable(&self) -> bool {
        true
    }

    /// The label used in metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::ListenerFull => "listener_full",
            Refused::ClassFull(_) => "class_full",
            Refused::ClientFull => "client_full",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_class: [usize; Class::ALL.len()],
    by_client: HashMap<ClientKey, usize>,
}

/// One listener's budgets; see the module documentation.
#[derive(Debug)]
pub struct Budgets {
    limits: Limits,
    listener: &'static str,
    metrics: Arc<Metrics>,
    counts: Mutex<Counts>,
}

impl Budgets {
    /// Budgets of `listener` (`api`, `admin`: the metrics label).
    pub fn new(limits: Limits, listener: &'static str, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            limits,
            listener,
            metrics,
            counts: Mutex::new(Counts::default()),
        })
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn gauge(&self, class: Class) -> Gauge {
        self.metrics
            .connections
            .get_or_create(&ConnectionLabels {
                listener: self.listener.into(),
                class: class.as_str().into(),
            })
            .clone()
    }

    /// Admit a connection of `class` from `client`, or say why not (and
    /// count the refusal in the metrics).
    pub fn try_admit(
        self: &Arc<Self>,
        class: Class,
        client: Option<ClientKey>,
    ) -> Result<Permit, Refused> {
        let decision = {
            let mut counts = self.counts();
            let held = client
                .as_ref()
                .and_then(|c| counts.by_client.get(c).copied());
            if counts.total >= self.limits.total {
                Err(Refused::ListenerFull)
            } else if counts.by_class[class.index()] >= self.limits.class_cap(class) {
                Err(Refused::ClassFull(class))
            } else if held.unwrap_or(0) >= self.limits.per_client {
                Err(Refused::ClientFull)
            } else {
                counts.total += 1;
                counts.by_class[class.index()] += 1;
                if let Some(c) = &client {
                    *counts.by_client.entry(c.clone()).or_default() += 1;
                }
                Ok(())
            }
        };
        match decision {
            Ok(()) => {
                let gauge = self.gauge(class);
                gauge.inc();
                Ok(Permit {
                    budgets: self.clone(),
                    class,
                    client,
                    gauge,
                })
            }
            Err(refused) => {
                self.metrics
                    .connections_refused
                    .get_or_create(&RefusalLabels {
                        listener: self.listener.into(),
                        class: class.as_str().into(),
                        reason: refused.reason().into(),
                    })
                    .inc();
                Err(refused)
            }
        }
    }

    /// Connections of `class` admitted and not yet released.
    pub fn open(&self, class: Class) -> usize {
        self.counts().by_class[class.index()]
    }

    fn release(&self, class: Class, client: Option<&ClientKey>) {
        let mut counts = self.counts();
        counts.total = counts.total.saturating_sub(1);
        let n = &mut counts.by_class[class.index()];
        *n = n.saturating_sub(1);
        if let Some(c) = client
            && let Some(n) = counts.by_client.get_mut(c)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.by_client.remove(c);
            }
        }
    }
}

/// An admitted connection's place in the budgets; given back when dropped.
#[derive(Debug)]
pub struct Permit {
    budgets: Arc<Budgets>,
    class: Class,
    client: Option<ClientKey>,
    gauge: Gauge,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.budgets.release(self.class, self.client.as_ref());
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(total: usize, registration: usize, other: usize, per_client: usize) -> Arc<Budgets> {
        let limits = Limits {
            total,
            registration,
            other,
            per_client,
        };
        Budgets::new(limits, "api", Metrics::shared())
    }

    fn key(s: &str) -> Option<ClientKey> {
        Some(ClientKey(s.into()))
    }

    #[test]
    fn bounded_classes_never_take_the_device_reserve() {
        let b = budgets(10, 3, 2, 100);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(b.try_admit(Class::Registration, None).unwrap());
        }
        assert_eq!(
            b.try_admit(Class::Registration, None).unwrap_err(),
            Refused::ClassFull(Class::Registration)
        );
        for i in 0..2 {
            held.push(b.try_admit(Class::Other, key(&format!("o{i}"))).unwrap());
        }
        assert_eq!(
            b.try_admit(Class::Other, key("o9")).unwrap_err(),
            Refused::ClassFull(Class::Other)
        );
        // The five slots nobody else could take are the devices'.
        for i in 0..5 {
            held.push(b.try_admit(Class::Device, key(&format!("d{i}"))).unwrap());
        }
        assert_eq!(
            b.try_admit(Class::Device, key("d9")).unwrap_err(),
            Refused::ListenerFull
        );
        let refused = b.metrics.encode();
        assert!(
            refused.contains(
                r#"flotta_connections_refused_total{listener="api",class="registration",reason="class_full"} 1"#
            ),
            "{refused}"
        );
        // Releasing a slot lets the next one in.
        held.pop();
        assert!(b.try_admit(Class::Device, key("d9")).is_ok());
    }

    #[test]
    fn devices_may_use_the_shared_part_too() {
        let b = budgets(4, 2, 1, 100);
        let held: Vec<_> = (0..4)
            .map(|i| b.try_admit(Class::Device, key(&format!("d{i}"))).unwrap())
            .collect();
        assert_eq!(b.open(Class::Device), 4);
        assert_eq!(
            b.try_admit(Class::Registration, None).unwrap_err(),
            Refused::ListenerFull
        );
        drop(held);
        assert_eq!(b.open(Class::Device), 0);
        assert!(b.try_admit(Class::Registration, None).is_ok());
    }

    #[test]
    fn one_client_holds_at_most_its_cap_and_gets_it_back() {
        let b = budgets(100, 10, 10, 2);
        let first = b.try_admit(Class::Device, key("d1")).unwrap();
        let _second = b.try_admit(Class::Device, key("d1")).unwrap();
        assert_eq!(
            b.try_admit(Class::Device, key("d1")).unwrap_err(),
            Refused::ClientFull
        );
        // An expired certificate of the same device counts with it.
        assert_eq!(
            b.try_admit(Class::Other, key("d1")).unwrap_err(),
            Refused::ClientFull
        );
        assert!(b.try_admit(Class::Device, key("d2")).is_ok());
        drop(first);
        assert!(b.try_admit(Class::Device, key("d1")).is_ok());
        // The registration certificate is shared by every new device: no per-client cap.
        let _r: Vec<_> = (0..5)
            .map(|_| b.try_admit(Class::Registration, None).unwrap())
            .collect();
    }
}
