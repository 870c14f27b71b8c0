//! `GET /probe/?url=<url>`: fetch `url` and say what happened. Lets the tests
//! check from the outside that the host enforces `allowed_outbound_hosts`.

use meet_core::ports::{HttpClient, OutboundRequest};
use meet_core::{ApiError, ApiRequest, ApiResponse};
use meet_spin::SpinHttp;
use serde_json::json;
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    meet_spin::serve(request, response_out, probe).await
}

fn probe(request: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let url = request
        .query_param("url")
        .ok_or_else(|| ApiError::NotFoundDetail("give ?url=".into()))?;
    let outcome = SpinHttp.send(OutboundRequest {
        method: "GET".into(),
        url,
        headers: Vec::new(),
        body: Vec::new(),
    });
    Ok(match outcome {
        Ok(response) => ApiResponse::json(
            200,
            &json!({"status": response.status, "body": String::from_utf8_lossy(&response.body)}),
        ),
        Err(error) => ApiResponse::json(502, &json!({"error": error.reason})),
    })
}
