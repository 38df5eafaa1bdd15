//! QuantTrader domain core.
