//! The OpenAPI 3 document, generated from the handlers' annotations and the response
//! structs they serialize (utoipa), served at `/openapi.json`.
//!
//! Contract: every route of [`super::router`] except the WebSocket and the web screen is
//! in the document; a test compares the routes and checks real responses against the
//! schemas' field names.

use super::{account, admin, error, market, orders, system, views};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "QuantTrader API", description = "Order management, risk, market data. Money and quantities are decimal strings on the symbol's grid; see docs/api.md."),
    paths(
        orders::place, orders::list, orders::get_one, orders::cancel, orders::mass_cancel, orders::amend,
        account::executions, account::balances, account::positions, account::limits, account::validate,
        market::symbols, market::price, market::orderbook, market::trades, market::candles,
        admin::create_user, admin::deposit, admin::ledger,
        system::health, system::ready, system::metrics,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail, views::OrderJson, views::ExecutionJson)),
    modifiers(&Security),
    tags((name = "orders"), (name = "account"), (name = "risk"), (name = "market-data"), (name = "admin"), (name = "system"))
)]
#[derive(Debug)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["api_key", "admin_token"] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
