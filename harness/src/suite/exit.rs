//! The outcome classes of a suite, ordered by precedence (the command line's exit codes, see
//! `cli::exit`): 0 passed, 1 failed, 2 bad input, 3 infrastructure.

use std::process::ExitCode;

use crate::report::{ErrorClass, FailureKind};

/// The outcome classes, ordered by precedence: a run's exit code is the highest of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Everything passed.
    Passed = 0,
    /// A scenario failed, or `compare` found changed behaviour.
    Failed = 1,
    /// Bad input.
    BadInput = 2,
    /// Infrastructure.
    Infrastructure = 3,
}

impl Exit {
    /// The process's exit code for this class.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

impl From<ErrorClass> for Exit {
    fn from(c: ErrorClass) -> Self {
        match c {
            ErrorClass::BadInput => Exit::BadInput,
            ErrorClass::Infrastructure => Exit::Infrastructure,
        }
    }
}

impl From<FailureKind> for Exit {
    fn from(k: FailureKind) -> Self {
        match k {
            FailureKind::Assertion | FailureKind::Snapshot => Exit::Failed,
            FailureKind::BadInput => Exit::BadInput,
            FailureKind::Infrastructure => Exit::Infrastructure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_class_wins() {
        let parts = [
            Exit::Failed,
            Exit::Infrastructure,
            Exit::Passed,
            Exit::BadInput,
        ];
        assert_eq!(parts.iter().copied().max(), Some(Exit::Infrastructure));
        assert_eq!(Exit::BadInput.code(), 2);
        assert_eq!(Exit::from(FailureKind::Snapshot), Exit::Failed);
    }
}
