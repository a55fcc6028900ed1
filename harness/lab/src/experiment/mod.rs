//! The experiments the README reports, each a sweep of a shipped scenario:
//! the seed article's table under every model ([`reproduce`]) and the real
//! servers beside the models that work as they do ([`external`]).

pub mod external;
pub mod reproduce;
