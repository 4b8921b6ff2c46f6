//! TCP stream reassembly: segments in any order in, in-order bytes out, bounded memory.
//! STUB: the real implementation replaces this file.
