//! Synthetic populations (being written).
