//! State the components share, as contexts: live data for every page ([`live`]) and what a
//! dashboard's widgets share ([`board`]). Plain signals and the rules that change them; what
//! feeds them from the browser is in `crate::browser`.

pub mod board;
pub mod live;
