//! The variables of an environment: the defaults declared in the shared root module's
//! `variables.tf`, overridden by the environment's `.tfvars`, as Terraform itself merges
//! them. Only literal values are understood (the same restriction Terraform puts on
//! tfvars and variable defaults); anything else is an error, never a guess.

use std::collections::BTreeMap;
use std::path::Path;

use hcl::eval::{Context, Evaluate};
use serde::Deserialize;
use serde_json::Value;

/// Why the variables of an environment could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not valid HCL: {source}")]
    Parse { path: String, source: hcl::Error },
    #[error("{path}: the value of {name} is not a literal: {source}")]
    NotLiteral { path: String, name: String, source: hcl::Error },
    #[error("{path}: {name} is not declared in variables.tf")]
    Undeclared { path: String, name: String },
    #[error("{name} has no default and the tfvars do not set it")]
    Missing { name: String },
    #[error("the variables do not describe an environment: {0}")]
    Shape(serde_json::Error),
}

fn read(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path).map_err(|source| InputError::Read { path: path.display().to_string(), source })
}

fn literal(path: &str, name: &str, expr: &hcl::Expression) -> Result<Value, InputError> {
    let value = expr.evaluate(&Context::new()).map_err(|e| InputError::NotLiteral {
        path: path.to_owned(),
        name: name.to_owned(),
        source: hcl::Error::from(e),
    })?;
    serde_json::to_value(value).map_err(InputError::Shape)
}

/// Declared variables and their defaults (`None`: required) from HCL source.
pub fn declared_variables(path: &str, source: &str) -> Result<BTreeMap<String, Option<Value>>, InputError> {
    let body = hcl::parse(source).map_err(|source| InputError::Parse { path: path.to_owned(), source })?;
    let mut out = BTreeMap::new();
    for block in body.blocks().filter(|b| b.identifier() == "variable") {
        let Some(name) = block.labels().first().map(|l| l.as_str().to_owned()) else {
            continue;
        };
        let default = block
            .body()
            .attributes()
            .find(|a| a.key() == "default")
            .map(|a| literal(path, &name, a.expr()))
            .transpose()?;
        out.insert(name, default);
    }
    Ok(out)
}

/// Values set by a tfvars file, each of which must be a declared variable (Terraform only
/// warns there; for a cost estimate a misspelt switch would silently price the default).
pub fn tfvars_values(
    path: &str,
    source: &str,
    declared: &BTreeMap<String, Option<Value>>,
) -> Result<BTreeMap<String, Value>, InputError> {
    let body = hcl::parse(source).map_err(|source| InputError::Parse { path: path.to_owned(), source })?;
    let mut out = BTreeMap::new();
    for attr in body.attributes() {
        if !declared.contains_key(attr.key()) {
            return Err(InputError::Undeclared { path: path.to_owned(), name: attr.key().to_owned() });
        }
        out.insert(attr.key().to_owned(), literal(path, attr.key(), attr.expr())?);
    }
    Ok(out)
}

/// Defaults overridden by tfvars; every variable must end up with a value.
pub fn merge(
    declared: &BTreeMap<String, Option<Value>>,
    set: &BTreeMap<String, Value>,
) -> Result<serde_json::Map<String, Value>, InputError> {
    let mut out = serde_json::Map::new();
    for (name, default) in declared {
        let value = match (set.get(name), default) {
            (Some(v), _) => v.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => return Err(InputError::Missing { name: name.clone() }),
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Loads the settings of one environment from the shared `variables.tf` and a tfvars file.
pub fn load(variables_tf: &Path, tfvars: &Path) -> Result<Settings, InputError> {
    let declared = declared_variables(&variables_tf.display().to_string(), &read(variables_tf)?)?;
    let set = tfvars_values(&tfvars.display().to_string(), &read(tfvars)?, &declared)?;
    let merged = merge(&declared, &set)?;
    serde_json::from_value(Value::Object(merged)).map_err(InputError::Shape)
}

/// A managed node group's size and instance types.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct NodeGroup {
    pub instance_types: Vec<String>,
    pub min_size: u32,
    pub max_size: u32,
    pub desired_size: u32,
}

/// The variables that drive cost (names as in `variables.tf`).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub environment: String,
    pub monthly_budget_usd: f64,
    pub az_count: u32,
    pub nat_mode: String,
    pub interface_endpoints: Vec<String>,
    pub compute: String,
    pub use_spot_instances: bool,
    pub general_node: NodeGroup,
    pub trading_node: NodeGroup,
    pub enable_ml_nodes: bool,
    pub ml_node: NodeGroup,
    pub single_host_instance_type: String,
    pub single_host_use_spot: bool,
    pub enable_rds: bool,
    pub rds_instance_class: String,
    pub rds_multi_az: bool,
    pub rds_read_replicas: u32,
    pub rds_allocated_storage_gb: f64,
    pub enable_redis: bool,
    pub redis_node_type: String,
    pub redis_num_cache_clusters: u32,
    pub enable_msk: bool,
    pub enable_self_hosted_kafka: bool,
    pub kafka_broker_count: u32,
    pub msk_instance_type: String,
    pub kafka_ec2_instance_type: String,
    pub kafka_volume_size_gb: f64,
    pub enable_documentdb: bool,
    pub documentdb_instance_class: String,
    pub documentdb_instance_count: u32,
    pub external_secrets: BTreeMap<String, String>,
    pub enable_alb: bool,
    pub enable_s3_replication: bool,
    pub enable_backup: bool,
    pub log_retention_days: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARIABLES: &str = r#"
variable "environment" {
  description = "Environment."
  type        = string
}

variable "az_count" {
  type    = number
  default = 3
  validation {
    condition     = var.az_count >= 1
    error_message = "at least one"
  }
}

variable "node" {
  type = object({ instance_types = list(string), desired_size = number })
  default = {
    instance_types = ["m7i.large"]
    desired_size   = 2
  }
}

variable "certificate_arn" {
  type    = string
  default = null
}
"#;

    #[test]
    fn defaults_are_read_with_their_types() {
        let declared = declared_variables("variables.tf", VARIABLES).unwrap();
        assert_eq!(declared["environment"], None);
        assert_eq!(declared["az_count"], Some(serde_json::json!(3)));
        assert_eq!(declared["node"], Some(serde_json::json!({"instance_types": ["m7i.large"], "desired_size": 2})));
        assert_eq!(declared["certificate_arn"], Some(Value::Null));
    }

    #[test]
    fn tfvars_override_defaults() {
        let declared = declared_variables("variables.tf", VARIABLES).unwrap();
        let set = tfvars_values("dev.tfvars", "environment = \"dev\"\naz_count = 2 # two zones\n", &declared).unwrap();
        let merged = merge(&declared, &set).unwrap();
        assert_eq!(merged["environment"], "dev");
        assert_eq!(merged["az_count"], 2);
        assert_eq!(merged["node"]["desired_size"], 2);
    }

    #[test]
    fn a_required_variable_left_unset_is_an_error() {
        let declared = declared_variables("variables.tf", VARIABLES).unwrap();
        let err = merge(&declared, &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, InputError::Missing { ref name } if name == "environment"));
    }

    #[test]
    fn a_misspelt_variable_is_an_error() {
        let declared = declared_variables("variables.tf", VARIABLES).unwrap();
        let err = tfvars_values("dev.tfvars", "az_cuont = 2\n", &declared).unwrap_err();
        assert!(matches!(err, InputError::Undeclared { ref name, .. } if name == "az_cuont"));
    }

    #[test]
    fn a_reference_is_not_a_literal() {
        let declared = declared_variables("variables.tf", VARIABLES).unwrap();
        let err = tfvars_values("dev.tfvars", "az_count = var.other\n", &declared).unwrap_err();
        assert!(matches!(err, InputError::NotLiteral { .. }));
    }
}
