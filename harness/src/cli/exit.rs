//! Exit codes, one class per kind of outcome, so CI can act on them: 0 passed; 1 a scenario
//! failed (an expectation, a snapshot, an agent that exited before it registered) or `compare`
//! found changed behaviour; 2 bad input (usage, a scenario, image-set or site-config file, a
//! build context); 3 infrastructure (no engine, an image build or pull, a stack that never
//! became ready).

pub use crate::suite::Exit;

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
