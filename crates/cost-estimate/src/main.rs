//! `cost-estimate`: the monthly AWS cost of QuantTrader's Terraform environments, per
//! component and in total, from the environments' variables and a checked-in price table.
//!
//! Contract: exit 0 when every estimated environment is within the `monthly_budget_usd`
//! it declares, 1 when one is over (CI fails), 2 on any error (unreadable tfvars, an
//! instance type without a price: never priced as zero).

mod estimate;
mod inputs;
mod prices;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

/// Monthly AWS cost of Terraform environments, checked against their declared budgets.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Environments (lab, dev, staging, prod: envs/<name>/terraform.tfvars) or paths of
    /// .tfvars files (e.g. scenarios/*.tfvars).
    targets: Vec<String>,

    /// Every environment under envs/ and every scenario under scenarios/.
    #[arg(long, conflicts_with = "targets")]
    all: bool,

    /// The Terraform tree holding envs/ and scenarios/.
    #[arg(long, default_value = "deploy/terraform")]
    terraform_dir: PathBuf,

    /// Variable declarations with defaults [default: <terraform-dir>/envs/common/variables.tf].
    #[arg(long)]
    variables: Option<PathBuf>,

    /// A price table to use instead of the built-in us-east-1 one.
    #[arg(long)]
    prices: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Report budgets but exit 0 even when an environment is over its budget.
    #[arg(long)]
    no_budget_check: bool,
}

/// The tfvars files to estimate, in a stable order.
fn targets(cli: &Cli) -> Result<Vec<PathBuf>> {
    if cli.all {
        let mut files = Vec::new();
        let envs = cli.terraform_dir.join("envs");
        for entry in std::fs::read_dir(&envs).with_context(|| format!("reading {}", envs.display()))? {
            let tfvars = entry?.path().join("terraform.tfvars");
            if tfvars.is_file() {
                files.push(tfvars);
            }
        }
        let scenarios = cli.terraform_dir.join("scenarios");
        if scenarios.is_dir() {
            for entry in std::fs::read_dir(&scenarios)? {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "tfvars") {
                    files.push(path);
                }
            }
        }
        files.sort();
        if files.is_empty() {
            bail!("no tfvars under {}", cli.terraform_dir.display());
        }
        return Ok(files);
    }
    if cli.targets.is_empty() {
        bail!("name an environment, a .tfvars file, or --all");
    }
    Ok(cli
        .targets
        .iter()
        .map(|t| {
            let path = Path::new(t);
            if t.ends_with(".tfvars") || path.is_file() {
                path.to_path_buf()
            } else {
                cli.terraform_dir.join("envs").join(t).join("terraform.tfvars")
            }
        })
        .collect())
}

fn run(cli: &Cli) -> Result<bool> {
    let table = match &cli.prices {
        Some(path) => {
            let json = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            prices::PriceTable::parse(&json)?
        }
        None => prices::PriceTable::parse(prices::DEFAULT_TABLE)?,
    };
    let variables = cli.variables.clone().unwrap_or_else(|| cli.terraform_dir.join("envs/common/variables.tf"));
    let mut estimates = Vec::new();
    for tfvars in targets(cli)? {
        let settings = inputs::load(&variables, &tfvars)
            .with_context(|| format!("reading the variables of {}", tfvars.display()))?;
        let mut e =
            estimate::estimate(&settings, &table).with_context(|| format!("estimating {}", tfvars.display()))?;
        // A scenario is named after its file; an environment after its directory.
        if tfvars.file_name().is_some_and(|f| f != "terraform.tfvars") {
            if let Some(stem) = tfvars.file_stem() {
                e.environment = format!("{} ({})", stem.to_string_lossy(), e.environment);
            }
        }
        estimates.push(e);
    }
    match cli.format {
        Format::Table => {
            for e in &estimates {
                println!("{}", report::table(e));
            }
            println!("{:<40} {:>10} {:>10}", "environment", "monthly", "budget");
            for e in &estimates {
                println!(
                    "{:<40} {:>10.2} {:>10.2}{}",
                    e.environment,
                    e.total_usd,
                    e.budget_usd,
                    if e.within_budget { "" } else { "  OVER BUDGET" }
                );
            }
        }
        Format::Json => println!("{}", report::json(&estimates)?),
    }
    Ok(estimates.iter().all(|e| e.within_budget))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) if cli.no_budget_check => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("cost-estimate: an environment is over the budget it declares");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("cost-estimate: {e:#}");
            ExitCode::from(2)
        }
    }
}
