//! WS-Management SOAP envelopes: parse and build by namespace URI, typed actions, headers, bodies and faults. Pure: no I/O.
