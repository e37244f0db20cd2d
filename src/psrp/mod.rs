//! PowerShell Remoting Protocol codec: fragments, defragmenter, messages, CLIXML, pipeline extraction, shell compression. Pure: no I/O.
