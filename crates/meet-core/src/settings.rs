//! Typed access to the upstream settings, which Spin hands us as string
//! variables named like the setting in lower case (`LIVEKIT_API_KEY` →
//! `livekit_api_key`). Defaults live in `spin.toml`, one place for Spin and
//! for our host; here a value is only parsed, and a bad one names its variable.

use serde_json::{Map, Value};

/// Where variable values come from: Spin's variables interface in a
/// component, a map in tests.
pub trait Variables {
    /// The value of a variable, or an error when the component cannot see it.
    fn get(&self, name: &str) -> Result<String, SettingError>;
}

/// A setting that is missing or cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Spin variable `{variable}` {problem}")]
pub struct SettingError {
    pub variable: String,
    pub problem: String,
}

impl SettingError {
    pub fn new(variable: &str, problem: impl Into<String>) -> SettingError {
        SettingError {
            variable: variable.to_string(),
            problem: problem.into(),
        }
    }
}

/// Parses variables into the types the settings have upstream. The value
/// itself is never quoted in errors: it may be a secret.
pub struct Settings<'a> {
    variables: &'a dyn Variables,
}

impl<'a> Settings<'a> {
    pub fn new(variables: &'a dyn Variables) -> Settings<'a> {
        Settings { variables }
    }

    pub fn string(&self, name: &str) -> Result<String, SettingError> {
        self.variables.get(name)
    }

    /// A string that must be set (non-empty after trimming).
    pub fn required_string(&self, name: &str) -> Result<String, SettingError> {
        let value = self.string(name)?;
        if value.trim().is_empty() {
            return Err(SettingError::new(name, "must be set"));
        }
        Ok(value)
    }

    /// An optional upstream setting: the empty string stands for `None`.
    pub fn optional_string(&self, name: &str) -> Result<Option<String>, SettingError> {
        let value = self.string(name)?;
        Ok(if value.trim().is_empty() {
            None
        } else {
            Some(value)
        })
    }

    pub fn bool(&self, name: &str) -> Result<bool, SettingError> {
        parse_bool(&self.string(name)?)
            .ok_or_else(|| SettingError::new(name, "must be a boolean (true or false)"))
    }

    pub fn optional_u64(&self, name: &str) -> Result<Option<u64>, SettingError> {
        match self.optional_string(name)? {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| SettingError::new(name, "must be a non-negative integer or empty")),
        }
    }

    pub fn u64(&self, name: &str) -> Result<u64, SettingError> {
        self.optional_u64(name)?
            .ok_or_else(|| SettingError::new(name, "must be a non-negative integer"))
    }

    /// A comma-separated list; empty items are dropped.
    pub fn list(&self, name: &str) -> Result<Vec<String>, SettingError> {
        Ok(self
            .string(name)?
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// A dictionary setting: JSON object text, or `key=value` pairs separated
    /// by commas as django-configurations' `DictValue` also accepts. The empty
    /// string is the empty dictionary. Key order is kept.
    pub fn dict(&self, name: &str) -> Result<Map<String, Value>, SettingError> {
        let text = self.string(name)?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(Map::new());
        }
        if text.starts_with('{') {
            return match serde_json::from_str(text) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(SettingError::new(name, "must be a JSON object")),
            };
        }
        text.split(',')
            .map(|pair| match pair.split_once('=') {
                Some((key, value)) if !key.trim().is_empty() => Ok((
                    key.trim().to_string(),
                    Value::String(value.trim().to_string()),
                )),
                _ => Err(SettingError::new(
                    name,
                    "must be a JSON object or comma-separated key=value pairs",
                )),
            })
            .collect()
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "on" | "1" => Some(true),
        "false" | "no" | "n" | "off" | "0" | "" => Some(false),
        _ => None,
    }
}

/// Several settings read with one variable get: a component variable whose
/// template joins the settings' own variables with [`BUNDLE_SEPARATOR`]
/// (`"{{ a }}\u001F{{ b }}"` in `spin.toml`). Every get is a host call that
/// Spin resolves again, so an endpoint that needs many settings at once
/// (`config/`: 17) reads them as one. The operator still sets each setting
/// under its own name; the bundle is only the component's wiring.
#[derive(Debug, Clone)]
pub struct BundledVariables {
    names: &'static [&'static str],
    values: Vec<String>,
}

/// What separates the values of a [`BundledVariables`] (ASCII's unit
/// separator, which no setting contains).
pub const BUNDLE_SEPARATOR: char = '\u{1F}';

impl BundledVariables {
    /// Reads `bundle`, whose values are those of `names`, in order.
    pub fn read(
        variables: &dyn Variables,
        bundle: &str,
        names: &'static [&'static str],
    ) -> Result<BundledVariables, SettingError> {
        let values: Vec<String> = variables
            .get(bundle)?
            .split(BUNDLE_SEPARATOR)
            .map(str::to_string)
            .collect();
        if values.len() != names.len() {
            return Err(SettingError::new(
                bundle,
                format!(
                    "must join {} values with U+001F (one of them contains U+001F, or spin.toml's template is not {})",
                    names.len(),
                    Self::template(names)
                ),
            ));
        }
        Ok(BundledVariables { names, values })
    }

    /// The component variable's template for `names`, as `spin.toml` must
    /// declare it.
    pub fn template(names: &[&str]) -> String {
        names
            .iter()
            .map(|name| format!("{{{{ {name} }}}}"))
            .collect::<Vec<_>>()
            .join(&BUNDLE_SEPARATOR.to_string())
    }
}

impl Variables for BundledVariables {
    fn get(&self, name: &str) -> Result<String, SettingError> {
        self.names
            .iter()
            .position(|bundled| *bundled == name)
            .and_then(|index| self.values.get(index).cloned())
            .ok_or_else(|| SettingError::new(name, "is not in the bundle read for this request"))
    }
}

/// Variables from a fixed list, for tests and native tools.
#[derive(Debug, Clone, Default)]
pub struct StaticVariables(pub Vec<(String, String)>);

impl StaticVariables {
    pub fn new(pairs: &[(&str, &str)]) -> StaticVariables {
        StaticVariables(
            pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        )
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.0.retain(|(key, _)| key != name);
        self.0.push((name.to_string(), value.to_string()));
    }
}

impl Variables for StaticVariables {
    fn get(&self, name: &str) -> Result<String, SettingError> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .ok_or_else(|| SettingError::new(name, "is not defined for this component"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn booleans_accept_the_usual_spellings_and_name_the_variable_otherwise() {
        let vars = StaticVariables::new(&[("a", "True"), ("b", "0"), ("c", "maybe")]);
        let settings = Settings::new(&vars);
        assert_eq!(settings.bool("a"), Ok(true));
        assert_eq!(settings.bool("b"), Ok(false));
        let error = settings.bool("c").unwrap_err();
        assert_eq!(error.variable, "c");
        assert!(error.to_string().contains("`c`"));
        assert!(!error.to_string().contains("maybe"));
    }

    #[test]
    fn empty_means_unset_for_optional_settings() {
        let vars = StaticVariables::new(&[("days", ""), ("n", "7"), ("bad", "-3")]);
        let settings = Settings::new(&vars);
        assert_eq!(settings.optional_u64("days"), Ok(None));
        assert_eq!(settings.optional_u64("n"), Ok(Some(7)));
        assert!(settings.optional_u64("bad").is_err());
        assert!(settings.u64("days").is_err());
    }

    #[test]
    fn dictionaries_from_json_or_pairs_keep_their_order() {
        let vars = StaticVariables::new(&[
            ("json", r#"{"z": 1, "a": {"b": true}}"#),
            ("pairs", "id=abc, host=https://x.example"),
            ("empty", ""),
            ("list", "[1]"),
        ]);
        let settings = Settings::new(&vars);
        let json = settings.dict("json").unwrap();
        assert_eq!(json.keys().collect::<Vec<_>>(), ["z", "a"]);
        assert_eq!(
            Value::Object(settings.dict("pairs").unwrap()),
            json!({"id": "abc", "host": "https://x.example"})
        );
        assert!(settings.dict("empty").unwrap().is_empty());
        assert!(settings.dict("list").is_err());
    }

    #[test]
    fn bundles_read_their_settings_by_name_and_refuse_a_wrong_count() {
        const NAMES: &[&str] = &["a", "b", "c"];
        assert_eq!(
            BundledVariables::template(NAMES),
            "{{ a }}\u{1F}{{ b }}\u{1F}{{ c }}"
        );
        let vars =
            StaticVariables::new(&[("bundle", "x\u{1F}\u{1F}{\"k\": 1}"), ("bad", "x\u{1F}y")]);
        let bundled = BundledVariables::read(&vars, "bundle", NAMES).unwrap();
        let settings = Settings::new(&bundled);
        assert_eq!(settings.string("a").unwrap(), "x");
        assert_eq!(settings.optional_string("b").unwrap(), None);
        assert_eq!(settings.dict("c").unwrap().len(), 1);
        assert_eq!(settings.string("d").unwrap_err().variable, "d");
        let error = BundledVariables::read(&vars, "bad", NAMES).unwrap_err();
        assert_eq!(error.variable, "bad");
        assert!(error.problem.contains("3 values"), "{}", error.problem);
    }

    #[test]
    fn undefined_variables_are_errors() {
        let vars = StaticVariables::default();
        assert_eq!(Settings::new(&vars).string("x").unwrap_err().variable, "x");
    }
}
