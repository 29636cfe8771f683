//! How much time one readings partition holds.

use telemetry::Millis;

const HOUR: Millis = 3_600_000;

/// How much time one partition holds: whole hours, 1 hour to 31 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(Millis);

impl Span {
    pub const DAY: Span = Span(24 * HOUR);

    pub fn from_hours(hours: u32) -> Option<Span> {
        (1..=744).contains(&hours).then(|| Span(Millis::from(hours) * HOUR))
    }

    pub fn hours(self) -> u32 {
        u32::try_from(self.0 / HOUR).expect("at most 744")
    }

    pub fn millis(self) -> Millis {
        self.0
    }

    /// The start of the partition holding `ts`.
    pub fn start_of(self, ts: Millis) -> Millis {
        ts.div_euclid(self.0) * self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_whole_hours_up_to_31_days() {
        assert_eq!(Span::from_hours(0), None);
        assert_eq!(Span::from_hours(745), None);
        assert_eq!(Span::from_hours(24), Some(Span::DAY));
        assert_eq!(Span::from_hours(744).unwrap().hours(), 744);
    }
}
