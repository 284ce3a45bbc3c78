//! The egress guard: sinks accept only [`Redacted`] events, and only the
//! redaction stage can make one. Un-redacted data cannot reach a sink by
//! mistake — the type system refuses the code that would do it.

use crate::event::Event;

/// An event that has passed every configured redactor.
#[derive(Debug, Clone, PartialEq)]
pub struct Redacted(Event);

impl Redacted {
    /// Seals an event. Only the redaction stage calls this.
    pub(crate) fn seal(event: Event) -> Redacted {
        Redacted(event)
    }

    /// The redacted event.
    pub fn event(&self) -> &Event {
        &self.0
    }

    /// Gives up the seal (e.g. to serialize).
    pub fn into_event(self) -> Event {
        self.0
    }
}
