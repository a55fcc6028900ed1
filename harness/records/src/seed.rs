//! The seed article's experiment: four Node.js workers sharing one
//! listening handle, and what each got.

/// The seed's table: connections per worker.
pub const SEED: [u64; 4] = [14561, 8329, 2356, 4885];
/// About as many connections as the seed's run had (30131).
pub const CONNECTIONS: u64 = 30_000;
/// Connections in flight: at this load the workers are rarely all waiting
/// at once, so whoever is back in epoll_wait first wins (see the README).
pub const CONCURRENCY: usize = 2;
