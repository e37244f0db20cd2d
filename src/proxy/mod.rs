//! The request pipeline: target, decode, session, inspect, decide, audit, forward, relay.
