//! The parts of protobuf's JSON mapping that LiveKit's messages need.
//!
//! LiveKit writes protobuf JSON two ways: its webhooks use the lowerCamelCase
//! JSON names (`egressInfo`), its Twirp answers the proto names
//! (`egress_info`). 64-bit integers may come as strings (`"1700000000"`),
//! enums as names (`"EGRESS_ACTIVE"`) or numbers. Readers here accept all of
//! these; unknown fields are ignored.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;

/// A nested message: a JSON object (or null for none). Serde alone would
/// also take an array for a struct, which protobuf JSON does not.
pub(crate) fn message<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Option::<Map<String, Value>>::deserialize(deserializer)? {
        None => Ok(None),
        Some(object) => object_into(object).map(Some).map_err(de::Error::custom),
    }
}

/// A repeated message field: an array of JSON objects.
pub(crate) fn messages<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Vec::<Map<String, Value>>::deserialize(deserializer)?
        .into_iter()
        .map(|object| object_into(object).map_err(de::Error::custom))
        .collect()
}

fn object_into<T: DeserializeOwned>(object: Map<String, Value>) -> Result<T, serde_json::Error> {
    serde_json::from_value(Value::Object(object))
}

/// An integer field (`int64`, `uint32`, …) written as a JSON number or a
/// decimal string, as protobuf JSON allows.
pub(crate) fn integer<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    struct IntegerVisitor;

    impl Visitor<'_> for IntegerVisitor {
        type Value = i128;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("an integer or a string holding one")
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<i128, E> {
            Ok(i128::from(value))
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<i128, E> {
            Ok(i128::from(value))
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<i128, E> {
            // `1e3` or `5.0` are integers in protobuf JSON; `1.5` is not.
            if value.fract() == 0.0 && value.abs() < 1e30 {
                Ok(value as i128)
            } else {
                Err(E::custom(format!("{value} is not an integer")))
            }
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<i128, E> {
            value
                .parse::<i128>()
                .map_err(|_| E::custom(format!("{value:?} is not an integer")))
        }
    }

    let wide = deserializer.deserialize_any(IntegerVisitor)?;
    T::try_from(wide).map_err(|_| de::Error::custom(format!("{wide} is out of range")))
}

/// Declares a protobuf enum: its variants with their numbers and names, an
/// `Other` variant for values this crate does not know (a newer server),
/// reading from a name or a number, writing as the name.
macro_rules! proto_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $number:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
            /// A value (name or number) this version does not know.
            Other,
        }

        impl $name {
            /// The protobuf name, e.g. as sent in JSON; `None` for `Other`.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($text), )+
                    $name::Other => None,
                }
            }

            /// The protobuf number; `None` for `Other`.
            pub fn number(self) -> Option<i32> {
                match self {
                    $( $name::$variant => Some($number), )+
                    $name::Other => None,
                }
            }

            pub fn from_name(name: &str) -> $name {
                match name {
                    $( $text => $name::$variant, )+
                    _ => $name::Other,
                }
            }

            pub fn from_number(number: i64) -> $name {
                match number {
                    $( $number => $name::$variant, )+
                    _ => $name::Other,
                }
            }
        }

        impl Default for $name {
            /// The zero value, which protobuf JSON leaves out.
            fn default() -> $name {
                $name::from_number(0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self.name() {
                    Some(name) => serializer.serialize_str(name),
                    None => Err(serde::ser::Error::custom(concat!(
                        "an unknown ",
                        stringify!($name),
                        " cannot be sent"
                    ))),
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                struct EnumVisitor;

                impl serde::de::Visitor<'_> for EnumVisitor {
                    type Value = $name;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        formatter.write_str(concat!("a ", stringify!($name), " name or number"))
                    }

                    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<$name, E> {
                        Ok($name::from_name(value))
                    }

                    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<$name, E> {
                        Ok($name::from_number(value))
                    }

                    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<$name, E> {
                        Ok(i64::try_from(value).map($name::from_number).unwrap_or($name::Other))
                    }
                }

                deserializer.deserialize_any(EnumVisitor)
            }
        }
    };
}

pub(crate) use proto_enum;

/// `bytes` fields: standard base64 with padding.
pub(crate) fn encode_bytes(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Numbers {
        #[serde(default, deserialize_with = "integer")]
        wide: i64,
        #[serde(default, deserialize_with = "integer")]
        narrow: u32,
    }

    fn numbers(json: &str) -> Result<Numbers, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn integers_come_as_numbers_or_strings() {
        let parsed = numbers(r#"{"wide": "1700000000000000000", "narrow": 7}"#).unwrap();
        assert_eq!(parsed.wide, 1_700_000_000_000_000_000);
        assert_eq!(parsed.narrow, 7);
        let parsed = numbers(r#"{"wide": -5, "narrow": "8"}"#).unwrap();
        assert_eq!((parsed.wide, parsed.narrow), (-5, 8));
        let parsed = numbers(r#"{"wide": 1e3, "narrow": 2.0}"#).unwrap();
        assert_eq!((parsed.wide, parsed.narrow), (1000, 2));
        assert_eq!(numbers("{}").unwrap().wide, 0);
    }

    #[test]
    fn bad_integers_are_errors_not_panics() {
        for json in [
            r#"{"wide": "x"}"#,
            r#"{"wide": 1.5}"#,
            r#"{"wide": true}"#,
            r#"{"wide": [1]}"#,
            r#"{"narrow": -1}"#,
            r#"{"narrow": 4294967296}"#,
            r#"{"wide": "99999999999999999999999"}"#,
            r#"{"wide": 1e300}"#,
        ] {
            assert!(numbers(json).is_err(), "{json}");
        }
    }

    proto_enum! {
        /// A test enum.
        pub enum Colour {
            Red = 0 => "RED",
            Blue = 2 => "BLUE",
        }
    }

    #[test]
    fn enums_read_names_and_numbers() {
        let read = |json: &str| serde_json::from_str::<Colour>(json);
        assert_eq!(read(r#""BLUE""#).unwrap(), Colour::Blue);
        assert_eq!(read("2").unwrap(), Colour::Blue);
        assert_eq!(read("0").unwrap(), Colour::Red);
        assert_eq!(read(r#""GREEN""#).unwrap(), Colour::Other);
        assert_eq!(read("1").unwrap(), Colour::Other);
        assert!(read("true").is_err());
        assert_eq!(Colour::default(), Colour::Red);
        assert_eq!(serde_json::to_string(&Colour::Blue).unwrap(), r#""BLUE""#);
        assert!(serde_json::to_string(&Colour::Other).is_err());
        assert_eq!(Colour::Blue.number(), Some(2));
    }

    #[test]
    fn bytes_are_padded_base64() {
        assert_eq!(encode_bytes(b"{\"a\"}"), "eyJhIn0=");
    }
}
