//! What every feature's `store` shares over the
//! [`Database`](crate::ports::Database) port: the timestamp format and rows
//! read by column name. Statements are few per request: in production each
//! one is a network round trip to libSQL.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::ports::{DbError, SqlRows, SqlValue};

/// Timestamps are stored as `YYYY-MM-DDTHH:MM:SS.ffffffZ` text, which sorts
/// in time order.
pub fn timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

pub fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// A row of a result, read by column name.
pub struct Row<'a> {
    rows: &'a SqlRows,
    values: &'a [SqlValue],
}

impl<'a> Row<'a> {
    pub fn value(&self, column: &str) -> Result<&'a SqlValue, DbError> {
        self.rows
            .column(column)
            .and_then(|index| self.values.get(index))
            .ok_or_else(|| DbError::Other(format!("no column {column} in the result")))
    }

    pub fn text(&self, column: &str) -> Result<String, DbError> {
        match self.value(column)? {
            SqlValue::Text(text) => Ok(text.clone()),
            other => Err(DbError::Other(format!(
                "column {column}: expected text, got {other:?}"
            ))),
        }
    }

    pub fn optional_text(&self, column: &str) -> Result<Option<String>, DbError> {
        match self.value(column)? {
            SqlValue::Null => Ok(None),
            _ => self.text(column).map(Some),
        }
    }

    pub fn integer(&self, column: &str) -> Result<i64, DbError> {
        self.value(column)?
            .as_i64()
            .ok_or_else(|| DbError::Other(format!("column {column}: expected an integer")))
    }

    pub fn boolean(&self, column: &str) -> Result<bool, DbError> {
        Ok(self.integer(column)? != 0)
    }
}

/// The rows of a result, each readable by column name.
pub fn rows(result: &SqlRows) -> impl Iterator<Item = Row<'_>> {
    result.rows.iter().map(move |values| Row {
        rows: result,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_have_fixed_width_and_round_trip() {
        let at = datetime!(2025-01-15 12:00:00.000042 UTC);
        let text = timestamp(at);
        assert_eq!(text, "2025-01-15T12:00:00.000042Z");
        assert_eq!(parse_timestamp(&text), Some(at));
    }
}
