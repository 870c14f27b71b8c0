//! A minimal libSQL client speaking Hrana over HTTP (`POST <url>/v2/pipeline`
//! with `Authorization: Bearer <token>`), for `type = "libsql"` databases.
//!
//! One [`Stream`] per opened connection; the server's baton ties the
//! statements of a stream together, so `BEGIN`/`COMMIT` across calls work.
//! Calls block: callers run them on a blocking thread.

use crate::bindings::sqlite::{Error, QueryResult, RowResult, Value};
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use serde_json::{json, Value as Json};
use std::sync::Arc;
use std::time::Duration;

/// A libSQL server and the credentials to reach it.
pub struct Client {
    agent: ureq::Agent,
    url: String,
    token: String,
}

impl Client {
    pub fn new(url: &str, token: &str) -> Arc<Self> {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        Arc::new(Self {
            agent: ureq::Agent::new_with_config(config),
            url: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }
}

/// A Hrana stream: the server-side connection behind one `open`.
pub struct Stream {
    client: Arc<Client>,
    baton: Option<String>,
    base_url: Option<String>,
}

fn encode(value: Value) -> Json {
    match value {
        Value::Integer(i) => json!({"type": "integer", "value": i.to_string()}),
        Value::Real(f) => json!({"type": "float", "value": f}),
        Value::Text(s) => json!({"type": "text", "value": s}),
        Value::Blob(b) => json!({
            "type": "blob",
            "base64": base64::engine::general_purpose::STANDARD_NO_PAD.encode(b),
        }),
        Value::Null => json!({"type": "null"}),
    }
}

fn decode(value: &Json) -> Result<Value> {
    let kind = value["type"].as_str().unwrap_or("");
    Ok(match kind {
        "null" => Value::Null,
        "integer" => Value::Integer(match &value["value"] {
            Json::String(s) => s.parse().context("bad integer")?,
            other => other.as_i64().context("bad integer")?,
        }),
        "float" => Value::Real(value["value"].as_f64().context("bad float")?),
        "text" => Value::Text(value["value"].as_str().context("bad text")?.to_string()),
        "blob" => {
            let text = value["base64"].as_str().context("bad blob")?;
            Value::Blob(
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(text.trim_end_matches('='))
                    .context("bad blob")?,
            )
        }
        other => bail!("unknown value type {other:?}"),
    })
}

impl Stream {
    pub fn open(client: Arc<Client>) -> Self {
        Self {
            client,
            baton: None,
            base_url: None,
        }
    }

    /// Sends one pipeline of requests and returns each request's response,
    /// or the first error the server reported.
    fn pipeline(&mut self, requests: Vec<Json>) -> Result<Vec<Json>> {
        let base = self.base_url.as_deref().unwrap_or(&self.client.url);
        let url = format!("{base}/v2/pipeline");
        let body = json!({"baton": self.baton, "requests": requests}).to_string();
        let mut response = self
            .client
            .agent
            .post(&url)
            .header("Authorization", format!("Bearer {}", self.client.token))
            .content_type("application/json")
            .send(body.as_bytes())
            .map_err(|e| anyhow!("libSQL request failed: {e}"))?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| anyhow!("libSQL response unreadable: {e}"))?;
        if !status.is_success() {
            // The body is the server's message; it never echoes the token.
            bail!("libSQL server answered {status}: {}", text.trim());
        }
        let parsed: Json = serde_json::from_str(&text).context("libSQL response is not JSON")?;
        self.baton = parsed["baton"].as_str().map(str::to_string);
        if let Some(base_url) = parsed["base_url"].as_str() {
            self.base_url = Some(base_url.trim_end_matches('/').to_string());
        }
        let results = parsed["results"]
            .as_array()
            .context("libSQL response has no results")?;
        let mut responses = Vec::new();
        for result in results {
            match result["type"].as_str() {
                Some("ok") => responses.push(result["response"].clone()),
                Some("error") => bail!(
                    "{}",
                    result["error"]["message"]
                        .as_str()
                        .unwrap_or("libSQL error")
                ),
                _ => bail!("unexpected libSQL result {result}"),
            }
        }
        Ok(responses)
    }

    /// Runs one statement with positional parameters.
    pub fn execute(&mut self, sql: &str, parameters: Vec<Value>) -> Result<QueryResult, Error> {
        self.try_execute(sql, parameters)
            .map_err(|e| Error::Io(format!("{e:#}")))
    }

    fn try_execute(&mut self, sql: &str, parameters: Vec<Value>) -> Result<QueryResult> {
        let args: Vec<Json> = parameters.into_iter().map(encode).collect();
        let request =
            json!({"type": "execute", "stmt": {"sql": sql, "args": args, "want_rows": true}});
        let responses = self.pipeline(vec![request])?;
        let result = &responses.first().context("empty libSQL response")?["result"];
        let columns = result["cols"]
            .as_array()
            .context("libSQL result has no cols")?
            .iter()
            .map(|c| c["name"].as_str().unwrap_or("").to_string())
            .collect();
        let mut rows = Vec::new();
        for row in result["rows"]
            .as_array()
            .context("libSQL result has no rows")?
        {
            let values = row
                .as_array()
                .context("libSQL row is not a list")?
                .iter()
                .map(decode)
                .collect::<Result<Vec<_>>>()?;
            rows.push(RowResult { values });
        }
        Ok(QueryResult { columns, rows })
    }

    /// Runs a script of several statements (a migration).
    pub fn sequence(&mut self, sql: &str) -> Result<()> {
        self.pipeline(vec![json!({"type": "sequence", "sql": sql})])?;
        Ok(())
    }

    /// Ends the stream on the server; best effort.
    pub fn close(&mut self) {
        if self.baton.is_some() {
            let _ = self.pipeline(vec![json!({"type": "close"})]);
            self.baton = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_hrana_json() {
        for value in [
            Value::Integer(-42),
            Value::Real(1.25),
            Value::Text("é".into()),
            Value::Blob(vec![0, 1, 255]),
            Value::Null,
        ] {
            let back = decode(&encode(value.clone())).unwrap();
            assert_eq!(format!("{back:?}"), format!("{value:?}"));
        }
        let padded = json!({"type": "blob", "base64": "AAH/"});
        assert!(matches!(decode(&padded).unwrap(), Value::Blob(b) if b == [0, 1, 255]));
        let numeric = json!({"type": "integer", "value": "9007199254740993"});
        assert!(matches!(
            decode(&numeric).unwrap(),
            Value::Integer(9007199254740993)
        ));
    }

    /// A stand-in libSQL server: one rusqlite connection behind a
    /// one-request-per-connection HTTP loop, enough to exercise the client.
    fn fake_server(token: &'static str) -> String {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let db = rusqlite::Connection::open_in_memory().unwrap();
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (mut length, mut authorized) = (0, false);
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    authorized |= line.trim() == format!("Authorization: Bearer {token}")
                        || lower.trim() == format!("authorization: bearer {token}");
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let request: Json = serde_json::from_slice(&body).unwrap();
                let results: Vec<Json> = request["requests"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| match r["type"].as_str().unwrap() {
                        "execute" => {
                            let sql = r["stmt"]["sql"].as_str().unwrap();
                            let args: Vec<Value> =
                                r["stmt"]["args"].as_array().unwrap().iter().map(|a| decode(a).unwrap()).collect();
                            match crate::sqlite::execute(&db, sql, args) {
                                Ok(result) => {
                                    let cols: Vec<Json> = result.columns.iter().map(|c| json!({"name": c})).collect();
                                    let rows: Vec<Json> = result
                                        .rows
                                        .into_iter()
                                        .map(|row| Json::Array(row.values.into_iter().map(encode).collect()))
                                        .collect();
                                    json!({"type": "ok", "response": {"type": "execute", "result": {"cols": cols, "rows": rows}}})
                                }
                                Err(e) => json!({"type": "error", "error": {"message": format!("{e:?}")}}),
                            }
                        }
                        "sequence" => match db.execute_batch(r["sql"].as_str().unwrap()) {
                            Ok(()) => json!({"type": "ok", "response": {"type": "sequence"}}),
                            Err(e) => json!({"type": "error", "error": {"message": e.to_string()}}),
                        },
                        _ => json!({"type": "ok", "response": {"type": "close"}}),
                    })
                    .collect();
                let (status, text) = if authorized {
                    (
                        "200 OK",
                        json!({"baton": "b", "base_url": null, "results": results}).to_string(),
                    )
                } else {
                    ("401 Unauthorized", "bad token".to_string())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        url
    }

    #[test]
    fn statements_and_migrations_over_hrana_http() {
        let url = fake_server("sekret");
        let mut stream = Stream::open(Client::new(&url, "sekret"));
        stream
            .execute("CREATE TABLE t (x INTEGER, y TEXT)", vec![])
            .unwrap();
        stream
            .execute(
                "INSERT INTO t VALUES (?, ?)",
                vec![Value::Integer(5), Value::Text("five".into())],
            )
            .unwrap();
        let result = stream.execute("SELECT x, y FROM t", vec![]).unwrap();
        assert_eq!(result.columns, ["x", "y"]);
        assert!(matches!(result.rows[0].values[0], Value::Integer(5)));
        let err = stream.execute("SELECT nope FROM t", vec![]).unwrap_err();
        assert!(matches!(err, Error::Io(m) if m.contains("nope")));

        let migrations = vec![crate::migrations::Migration {
            version: "0001".into(),
            name: "initial".into(),
            sql: "CREATE TABLE a (x TEXT); CREATE INDEX a_x ON a (x);".into(),
        }];
        let client = Client::new(&url, "sekret");
        let first = crate::migrations::apply_to_libsql(client.clone(), &migrations).unwrap();
        assert_eq!(first.len(), 1);
        let second = crate::migrations::apply_to_libsql(client, &migrations).unwrap();
        assert!(second.is_empty());

        let mut wrong = Stream::open(Client::new(&url, "wrong"));
        let err = wrong.execute("SELECT 1", vec![]).unwrap_err();
        assert!(matches!(err, Error::Io(m) if m.contains("401") && !m.contains("wrong")));
    }
}
