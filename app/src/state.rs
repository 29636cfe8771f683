//! State the components share, as contexts: live data for every page ([`live`], with the
//! [`shadows`] of the devices a dashboard's controls drive) and what a dashboard's widgets
//! share ([`board`]). Plain signals and the rules that change them; what
//! feeds them from the browser is in `crate::browser`.

pub mod board;
pub mod live;
pub mod shadows;
