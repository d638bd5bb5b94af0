//! What a socket source tells the user while it runs (a reconnection, a
//! producer that came or went), typed: the library words it in its own
//! terms ([`Display`](std::fmt::Display)); a front end with other names for
//! the limits involved (the `engine` binary's flags) matches on the variants.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::format_duration;

/// Something a source tells that is neither data nor an error
/// ([`SourceEvent::Notice`](super::SourceEvent::Notice)).
#[derive(Debug)]
#[non_exhaustive]
pub enum SourceNotice {
    /// A connection attempt to a server failed; the source retries.
    CannotConnect {
        /// The server's address.
        origin: Arc<str>,
        /// Failed attempts since the connection was lost (1: the first).
        attempts: u64,
        /// How long there has been no connection.
        down: Duration,
        /// Why the last attempt failed.
        error: std::io::Error,
    },
    /// Connected again after a connection ended.
    Reconnected {
        /// The server's address.
        origin: Arc<str>,
    },
    /// Connected for the first time, after failed attempts.
    ConnectedAfter {
        /// The server's address.
        origin: Arc<str>,
        /// The failed attempts before.
        failures: u64,
    },
    /// The connection to a server ended; the source reconnects.
    ConnectionEnded {
        /// The server's address.
        origin: Arc<str>,
        /// How it ended.
        why: StreamClosed,
    },
    /// More reconnections than were told, during the last `period`.
    MoreReconnections {
        /// The server's address.
        origin: Arc<str>,
        /// Reconnections not told one by one.
        count: u64,
        /// The period they were counted in.
        period: Duration,
    },
    /// Accepting producers failed (out of descriptors or memory); the
    /// listener pauses and tries again.
    AcceptFailed {
        /// The listening address.
        local: std::net::SocketAddr,
        /// What the OS said.
        error: std::io::Error,
        /// The pause before the next attempt.
        retry_in: Duration,
    },
    /// A producer was refused: the listener has as many as it accepts.
    ProducerRefused {
        /// The producer's address.
        peer: std::net::SocketAddr,
        /// Producers connected (the limit).
        connected: usize,
    },
    /// A producer connected.
    ProducerConnected {
        /// The producer's address.
        peer: std::net::SocketAddr,
    },
    /// A producer's connection ended.
    ProducerEnded {
        /// The producer (its address).
        origin: Arc<str>,
        /// How it ended.
        why: StreamClosed,
    },
    /// More producers refused than were told, during the last `period`.
    MoreRefused {
        /// Refusals not told one by one.
        count: u64,
        /// The period they were counted in.
        period: Duration,
        /// The most producers accepted at once.
        max_connections: usize,
    },
    /// More producers connected than were told, during the last `period`.
    MoreConnected {
        /// Connections not told one by one.
        count: u64,
        /// The period they were counted in.
        period: Duration,
        /// Producers connected now.
        live: usize,
    },
    /// More producers disconnected than were told, during the last `period`.
    MoreDisconnected {
        /// Disconnections not told one by one.
        count: u64,
        /// The period they were counted in.
        period: Duration,
        /// Producers connected now.
        live: usize,
    },
    /// More failed accepts than were told, during the last `period`.
    MoreFailedAccepts {
        /// Failures not told one by one.
        count: u64,
        /// The period they were counted in.
        period: Duration,
    },
}

/// How a connection ended ([`SourceNotice::ConnectionEnded`],
/// [`SourceNotice::ProducerEnded`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamClosed {
    /// The peer closed it.
    Clean,
    /// It broke.
    Broken(std::io::Error),
    /// The peer sent nothing for the idle timeout, this long.
    Idle(Duration),
}

impl fmt::Display for SourceNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, &library_words)
    }
}

/// A limit of a source that a notice mentions, to be named by whoever words
/// the notice ([`SourceNotice::text_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// The idle timeout after which a silent peer is dropped.
    IdleTimeout,
    /// The most producers connected at once, with its value when the
    /// notice gives it.
    MaxConnections(Option<usize>),
}

/// The library's names of the limits.
fn library_words(limit: Limit) -> String {
    match limit {
        Limit::IdleTimeout => "the idle timeout".into(),
        Limit::MaxConnections(None) => "the connection limit".into(),
        Limit::MaxConnections(Some(n)) => format!("the connection limit is {n}"),
    }
}

impl SourceNotice {
    /// The notice with the limits it mentions named by `name`: a front
    /// end's way to word it with its own names (flags), the rest unchanged.
    #[must_use]
    pub fn text_with(&self, name: &dyn Fn(Limit) -> String) -> String {
        struct With<'n, 'l>(&'n SourceNotice, &'l dyn Fn(Limit) -> String);
        impl fmt::Display for With<'_, '_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write(f, self.1)
            }
        }
        With(self, name).to_string()
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, name: &dyn Fn(Limit) -> String) -> fmt::Result {
        match self {
            SourceNotice::CannotConnect {
                origin,
                attempts: 1,
                error,
                ..
            } => write!(f, "cannot connect to {origin} ({error}); retrying"),
            SourceNotice::CannotConnect {
                origin,
                attempts,
                down,
                error,
            } => write!(
                f,
                "still cannot connect to {origin} after {attempts} attempts in {:.0} s ({error}); \
                 retrying",
                down.as_secs_f64()
            ),
            SourceNotice::Reconnected { origin } => write!(f, "reconnected to {origin}"),
            SourceNotice::ConnectedAfter { origin, failures } => {
                write!(f, "connected to {origin} after {failures} failed attempts")
            }
            SourceNotice::ConnectionEnded { origin, why } => {
                let why = match why {
                    StreamClosed::Clean => "closed the connection".to_string(),
                    StreamClosed::Broken(e) => format!("failed ({e})"),
                    StreamClosed::Idle(d) => format!(
                        "sent nothing for {} ({})",
                        format_duration(*d),
                        name(Limit::IdleTimeout)
                    ),
                };
                write!(f, "{origin} {why}; reconnecting")
            }
            SourceNotice::AcceptFailed {
                local,
                error,
                retry_in,
            } => write!(
                f,
                "accepting producers on {local} failed ({error}); retrying in {}",
                format_duration(*retry_in)
            ),
            SourceNotice::ProducerRefused { peer, connected } => write!(
                f,
                "refused producer {peer}: {connected} producers connected already ({})",
                name(Limit::MaxConnections(None))
            ),
            SourceNotice::ProducerConnected { peer } => write!(f, "producer {peer} connected"),
            SourceNotice::ProducerEnded { origin, why } => {
                let why = match why {
                    StreamClosed::Clean => "disconnected".to_string(),
                    StreamClosed::Broken(e) => format!("failed ({e})"),
                    StreamClosed::Idle(d) => format!(
                        "sent nothing for {}: disconnected ({})",
                        format_duration(*d),
                        name(Limit::IdleTimeout)
                    ),
                };
                write!(f, "producer {origin} {why}")
            }
            _ => self.write_counts(f, name),
        }
    }

    /// The notices that count what was not told one by one.
    fn write_counts(
        &self,
        f: &mut fmt::Formatter<'_>,
        name: &dyn Fn(Limit) -> String,
    ) -> fmt::Result {
        match self {
            SourceNotice::MoreReconnections {
                origin,
                count,
                period,
            } => write!(
                f,
                "{origin}: {count} more reconnections in the last {} s",
                period.as_secs()
            ),
            SourceNotice::MoreRefused {
                count,
                period,
                max_connections,
            } => write!(
                f,
                "refused {count} more producers in the last {} s ({})",
                period.as_secs(),
                name(Limit::MaxConnections(Some(*max_connections)))
            ),
            SourceNotice::MoreConnected {
                count,
                period,
                live,
            } => write!(
                f,
                "{count} more producers connected in the last {} s ({live} connected now)",
                period.as_secs()
            ),
            SourceNotice::MoreDisconnected {
                count,
                period,
                live,
            } => write!(
                f,
                "{count} more producers disconnected in the last {} s ({live} connected now)",
                period.as_secs()
            ),
            SourceNotice::MoreFailedAccepts { count, period } => write!(
                f,
                "{count} more failed accepts in the last {} s",
                period.as_secs()
            ),
            // The others are written by `write`.
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_notices_name_limits_in_library_words_unless_told_otherwise() {
        let idle = SourceNotice::ProducerEnded {
            origin: "127.0.0.1:5000".into(),
            why: StreamClosed::Idle(Duration::from_millis(1_500)),
        };
        assert_eq!(
            idle.to_string(),
            "producer 127.0.0.1:5000 sent nothing for 1.5s: disconnected (the idle timeout)"
        );
        let flags = |limit| match limit {
            Limit::IdleTimeout => "--idle-timeout".to_string(),
            Limit::MaxConnections(None) => "--max-connections".into(),
            Limit::MaxConnections(Some(n)) => format!("--max-connections {n}"),
        };
        assert_eq!(
            idle.text_with(&flags),
            "producer 127.0.0.1:5000 sent nothing for 1.5s: disconnected (--idle-timeout)"
        );
        let refused = SourceNotice::MoreRefused {
            count: 3,
            period: Duration::from_secs(10),
            max_connections: 2,
        };
        assert_eq!(
            refused.to_string(),
            "refused 3 more producers in the last 10 s (the connection limit is 2)"
        );
        assert_eq!(
            refused.text_with(&flags),
            "refused 3 more producers in the last 10 s (--max-connections 2)"
        );
    }
}
