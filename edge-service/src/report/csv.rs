//! CSV export placeholder.
