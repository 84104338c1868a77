//! Source text: what both file parsers (`scenario` and `compose`) share. A file's text with
//! `${VAR}` expanded (`expand`), parsed into a tree of YAML nodes that know their position in
//! the file (`node`: the nodes, their positions, the decoding context and its typed
//! accessors), and the located error with the offending line and a caret (`error`).
//! It knows nothing of what the files mean.

pub mod error;
mod expand;
pub(crate) mod node;

pub use error::ScenarioError;

/// A position in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourcePos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    /// Width of the node on its line (at least 1).
    pub width: usize,
}
