//! Exit statuses, decided in one place so that a cron job running rbg-notify
//! can tell "all sent" from "still failing" from "fix the setup".

use std::process::ExitCode;

/// Names the outcomes a run can exit with, mildest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    /// Every delivery got a 2xx answer, or there was nothing to send.
    #[default]
    Success,
    /// At least one delivery failed.
    DeliveryFailed,
    /// The command line, the settings file or the input was wrong.
    Error,
}

impl ExitStatus {
    /// Returns the status that reports both outcomes: the worse one.
    pub fn merge(self, other: ExitStatus) -> ExitStatus {
        self.max(other)
    }

    /// Returns the number the process exits with.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::DeliveryFailed => 1,
            ExitStatus::Error => 2,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        ExitCode::from(status.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_the_worse_outcome() {
        use ExitStatus::*;
        assert_eq!(Success.merge(DeliveryFailed), DeliveryFailed);
        assert_eq!(DeliveryFailed.merge(Success), DeliveryFailed);
        assert_eq!(DeliveryFailed.merge(Error), Error);
        assert_eq!(Error.merge(Success), Error);
        assert_eq!(Success.merge(Success).code(), 0);
        assert_eq!(
            [Success, DeliveryFailed, Error].map(ExitStatus::code),
            [0, 1, 2]
        );
    }
}
