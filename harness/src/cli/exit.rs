//! Exit codes, one class per kind of outcome, so CI can act on them: 0 passed; 1 a scenario
//! failed (an expectation, a snapshot, an agent that exited before it registered) or `compare`
//! found changed behaviour; 2 bad input (usage, a scenario, image-set or site-config file, a
//! build context); 3 infrastructure (no engine, an image build or pull, a stack that never
//! became ready).

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

/// An error with the exit class it stands for.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub error: anyhow::Error,
}

impl CliError {
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        Self {
            exit,
            error: error.into(),
        }
    }
}

/// Attach an exit class to any error.
pub trait Classify<T> {
    fn or_exit(self, exit: Exit) -> Result<T, CliError>;
    fn bad_input(self) -> Result<T, CliError>
    where
        Self: Sized,
    {
        self.or_exit(Exit::BadInput)
    }
    fn infra(self) -> Result<T, CliError>
    where
        Self: Sized,
    {
        self.or_exit(Exit::Infrastructure)
    }
}

impl<T, E: Into<anyhow::Error>> Classify<T> for Result<T, E> {
    fn or_exit(self, exit: Exit) -> Result<T, CliError> {
        self.map_err(|e| CliError::new(exit, e))
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
