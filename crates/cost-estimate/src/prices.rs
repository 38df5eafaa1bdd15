//! The checked-in price table: list prices of one region, each with the date it was read
//! and where, the Spot discount assumed, and usage assumptions per environment for the
//! charges that depend on traffic rather than on what Terraform creates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The table shipped with the binary (`prices/us-east-1.json`).
pub const DEFAULT_TABLE: &str = include_str!("../prices/us-east-1.json");

/// Why a price could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error("the price table is not valid: {0}")]
    Invalid(#[from] serde_json::Error),
    #[error("no price for {0} in the price table: add it with its date and source")]
    Unknown(String),
    #[error("no usage assumptions for environment {0} in the price table")]
    NoUsage(String),
    #[error("price {key} is not a positive finite number")]
    Bad { key: String },
}

/// One price: what one unit costs, as of when and according to whom.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Price {
    pub usd: f64,
    pub unit: String,
    pub as_of: String,
    pub source: String,
}

/// Spot instances cost `price_factor` times the on-demand price.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Spot {
    pub price_factor: f64,
    pub as_of: String,
    pub source: String,
}

/// Monthly traffic-driven quantities assumed for an environment.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Usage {
    pub nat_processed_gb: f64,
    pub endpoint_processed_gb: f64,
    pub alb_lcu: f64,
    pub waf_requests_million: f64,
    pub log_ingest_gb: f64,
    pub s3_stored_gb: f64,
    pub s3_changed_gb: f64,
    pub ecr_stored_gb: f64,
    pub docdb_storage_gb: f64,
    pub docdb_io_million: f64,
    pub kms_requests_10k: f64,
    pub data_transfer_out_gb: f64,
}

/// The whole table.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PriceTable {
    pub region: String,
    pub currency: String,
    pub hours_per_month: f64,
    pub notes: String,
    pub prices: BTreeMap<String, Price>,
    pub spot: Spot,
    pub usage: BTreeMap<String, Usage>,
}

impl PriceTable {
    /// Parses and checks a table: every price positive and finite, the Spot factor in (0, 1].
    pub fn parse(json: &str) -> Result<Self, PriceError> {
        let table: Self = serde_json::from_str(json)?;
        for (key, price) in &table.prices {
            if !(price.usd.is_finite() && price.usd > 0.0) {
                return Err(PriceError::Bad { key: key.clone() });
            }
        }
        let f = table.spot.price_factor;
        if !(f.is_finite() && f > 0.0 && f <= 1.0) {
            return Err(PriceError::Bad { key: "spot.price_factor".into() });
        }
        Ok(table)
    }

    /// The price under `key` (e.g. `ec2:t4g.small`).
    pub fn get(&self, key: &str) -> Result<f64, PriceError> {
        self.prices.get(key).map(|p| p.usd).ok_or_else(|| PriceError::Unknown(key.to_owned()))
    }

    /// Usage assumptions of an environment.
    pub fn usage(&self, environment: &str) -> Result<&Usage, PriceError> {
        self.usage.get(environment).ok_or_else(|| PriceError::NoUsage(environment.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_is_valid_and_dated() {
        let table = PriceTable::parse(DEFAULT_TABLE).unwrap();
        assert_eq!(table.region, "us-east-1");
        for (key, price) in &table.prices {
            assert!(price.source.starts_with("https://aws.amazon.com/"), "{key} has no AWS source");
            assert_eq!(price.as_of.len(), 10, "{key}: as_of must be YYYY-MM-DD");
        }
        for env in ["lab", "dev", "staging", "prod"] {
            table.usage(env).unwrap();
        }
    }

    #[test]
    fn an_unknown_price_is_an_error_not_zero() {
        let table = PriceTable::parse(DEFAULT_TABLE).unwrap();
        let err = table.get("ec2:x99.huge").unwrap_err();
        assert!(err.to_string().contains("ec2:x99.huge"));
    }

    #[test]
    fn a_negative_price_is_refused() {
        let json = DEFAULT_TABLE.replacen("\"usd\": 0.10,", "\"usd\": -0.10,", 1);
        assert!(matches!(PriceTable::parse(&json), Err(PriceError::Bad { .. })));
    }
}
