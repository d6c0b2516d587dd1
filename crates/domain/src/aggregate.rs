//! The thin event-sourcing core: an aggregate is `decide` + `evolve`, wrapped in a [`Root`]
//! that counts versions. Shapes kept from `eventually` 0.4: `Check`, `ConflictError`.

use crate::error::DomainError;

/// A consistency boundary. `decide` and `evolve` are pure and synchronous.
pub trait Aggregate: Clone + Default + std::fmt::Debug {
    /// Stable aggregate type name, used in subjects (`mc.events.<TYPE>.<id>`).
    const TYPE: &'static str;
    type Command;
    type Event: Clone + std::fmt::Debug;

    /// Decide which events a command produces against the current state.
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, DomainError>;
    /// Fold one event into the state. Must accept every event `decide` ever produced.
    fn evolve(self, event: &Self::Event) -> Self;
}

/// Optimistic concurrency expectation on the aggregate version (`If-Match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Check {
    #[default]
    Any,
    MustBe(u64),
}

/// The version the caller expected differs from the one in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("version conflict: expected {expected}, actual {actual}")]
pub struct ConflictError {
    pub expected: u64,
    pub actual: u64,
}

/// An aggregate's state with its version (number of events folded) and the uncommitted
/// events of the decision in progress.
#[derive(Debug, Clone)]
pub struct Root<A: Aggregate> {
    state: A,
    version: u64,
    uncommitted: Vec<A::Event>,
}

impl<A: Aggregate> Default for Root<A> {
    fn default() -> Self {
        Self {
            state: A::default(),
            version: 0,
            uncommitted: Vec::new(),
        }
    }
}

impl<A: Aggregate> Root<A> {
    /// Rehydrate from a known state and version (a cache entry).
    pub fn from_state(state: A, version: u64) -> Self {
        Self {
            state,
            version,
            uncommitted: Vec::new(),
        }
    }

    /// Rehydrate from history.
    pub fn from_history<'a>(events: impl IntoIterator<Item = &'a A::Event>) -> Self
    where
        A::Event: 'a,
    {
        let mut root = Self::default();
        for event in events {
            root.apply(event);
        }
        root
    }

    pub fn state(&self) -> &A {
        &self.state
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Fold an already committed event.
    pub fn apply(&mut self, event: &A::Event) {
        self.state = std::mem::take(&mut self.state).evolve(event);
        self.version += 1;
    }

    pub fn check(&self, check: Check) -> Result<(), ConflictError> {
        match check {
            Check::MustBe(expected) if expected != self.version => Err(ConflictError {
                expected,
                actual: self.version,
            }),
            _ => Ok(()),
        }
    }

    /// Decide and fold the resulting events into the state as uncommitted.
    pub fn handle(&mut self, command: &A::Command) -> Result<&[A::Event], DomainError> {
        let events = self.state.decide(command)?;
        for event in &events {
            self.apply(event);
        }
        self.uncommitted.extend(events);
        Ok(&self.uncommitted)
    }

    pub fn uncommitted(&self) -> &[A::Event] {
        &self.uncommitted
    }

    /// Mark the uncommitted events as committed (after a successful append).
    pub fn take_uncommitted(&mut self) -> Vec<A::Event> {
        std::mem::take(&mut self.uncommitted)
    }
}
