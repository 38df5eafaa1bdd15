//! Renders estimates as a fixed-width table (for people and CI logs) or as JSON (for tools).

use std::fmt::Write as _;

use crate::estimate::Estimate;

/// The table of one estimate: every line, the subtotal per component, total and budget.
pub fn table(e: &Estimate) -> String {
    let mut out = String::new();
    let width = e.lines.iter().map(|l| l.item.chars().count()).max().unwrap_or(0).max(40);
    let _ = writeln!(out, "{} ({}), USD per month, 730 hours", e.environment, e.region);
    let _ = writeln!(out, "{:<14} {:<width$} {:>12}", "component", "item", "monthly");
    let _ = writeln!(out, "{}", "-".repeat(14 + 1 + width + 1 + 12));
    for (component, subtotal) in &e.components {
        for line in e.lines.iter().filter(|l| l.component == component) {
            let _ = writeln!(out, "{:<14} {:<width$} {:>12.2}", line.component, line.item, line.monthly_usd);
        }
        let _ = writeln!(out, "{:<14} {:<width$} {:>12.2}", "", format!("= {component}"), subtotal);
    }
    let _ = writeln!(out, "{}", "-".repeat(14 + 1 + width + 1 + 12));
    let _ = writeln!(out, "{:<14} {:<width$} {:>12.2}", "total", "", e.total_usd);
    let verdict = if e.within_budget { "within budget" } else { "OVER BUDGET" };
    let _ = writeln!(out, "{:<14} {:<width$} {:>12.2}  {verdict}", "budget", "monthly_budget_usd", e.budget_usd);
    out
}

/// The estimates as one JSON document.
pub fn json(estimates: &[Estimate]) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&serde_json::json!({ "estimates": estimates }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::Line;

    fn sample(total: f64, budget: f64) -> Estimate {
        Estimate {
            environment: "lab".into(),
            region: "us-east-1".into(),
            lines: vec![Line {
                component: "compute",
                item: "single host".into(),
                quantity: 730.0,
                unit: "instance-hour".into(),
                unit_usd: total / 730.0,
                monthly_usd: total,
            }],
            components: vec![("compute".into(), total)],
            total_usd: total,
            budget_usd: budget,
            within_budget: total <= budget,
        }
    }

    #[test]
    fn the_table_shows_lines_total_and_verdict() {
        let t = table(&sample(12.26, 30.0));
        assert!(t.contains("single host"));
        assert!(t.contains("12.26"));
        assert!(t.contains("within budget"));
        assert!(table(&sample(42.0, 30.0)).contains("OVER BUDGET"));
    }

    #[test]
    fn json_round_trips() {
        let doc: serde_json::Value = serde_json::from_str(&json(&[sample(12.26, 30.0)]).unwrap()).unwrap();
        assert_eq!(doc["estimates"][0]["environment"], "lab");
        assert_eq!(doc["estimates"][0]["within_budget"], true);
        assert_eq!(doc["estimates"][0]["lines"][0]["component"], "compute");
    }
}
