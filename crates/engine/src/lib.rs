//! QuantTrader engine.
