//! Wire and file formats (being written).
