//! The only place that talks to Docker: images (`images`), stacks of containers (`stack`)
//! and their logs (`logs`).

pub mod images;
pub mod logs;
pub mod stack;
