//! The benchmarks' yardstick: what a minimal spin-sdk component costs.
//!
//! * `GET /baseline/constant`: a constant JSON body, no database.
//! * `GET /baseline/select?slug=<slug>`: one indexed `SELECT` on the app's
//!   database (`meet_room.slug` is UNIQUE, so indexed), answering the row.
//! * `POST /baseline/write?slug=<slug>`: one indexed `UPDATE` of that row
//!   (its `updated_at`, which no trigger watches): the cheapest write, the
//!   yardstick of endpoints that write.
//!
//! It uses spin-sdk directly, with none of the app's code, so the gap between
//! an app endpoint and its baseline is the app's own work.

use serde_json::json;
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::sqlite::{Connection, Value};

#[http_component]
fn handle(request: Request) -> Response {
    let path = request.path();
    if path.ends_with("/constant") {
        return json_response(200, &json!({"baseline": "constant"}));
    }
    let slug = request
        .query()
        .split('&')
        .find_map(|pair| pair.strip_prefix("slug="))
        .unwrap_or("")
        .to_string();
    if path.ends_with("/select") || path.ends_with("/write") {
        let statement = if path.ends_with("/write") {
            "UPDATE meet_room SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
             WHERE slug = ? RETURNING id, name"
        } else {
            "SELECT id, name FROM meet_room WHERE slug = ?"
        };
        return match room(statement, slug) {
            Ok(Some(room)) => json_response(200, &room),
            Ok(None) => json_response(404, &json!({"detail": "No room with this slug."})),
            Err(error) => json_response(500, &json!({"error": error.to_string()})),
        };
    }
    json_response(404, &json!({"detail": "Not found."}))
}

/// The `id` and `name` a one-statement `statement` answers for `slug`.
fn room(
    statement: &str,
    slug: String,
) -> Result<Option<serde_json::Value>, spin_sdk::sqlite::Error> {
    let connection = Connection::open_default()?;
    let result = connection.execute(statement, &[Value::Text(slug)])?;
    let room = result.rows().next().map(|row| {
        json!({
            "id": row.get::<&str>("id"),
            "name": row.get::<&str>("name"),
        })
    });
    Ok(room)
}

fn json_response(status: u16, body: &serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build()
}
