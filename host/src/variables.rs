//! `{{ name }}` templates and application variable resolution, as in Spin.

use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// An application-level variable declared in `[variables]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableDecl {
    pub default: Option<String>,
    pub required: bool,
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(String),
}

/// A string with `{{ variable }}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                bail!("unterminated `{{{{` in template {text:?}");
            };
            let name = after[..end].trim();
            if !is_valid_name(name) {
                bail!("invalid variable name {name:?} in template {text:?} (use lower case letters, digits and underscores, starting with a letter)");
            }
            parts.push(Part::Variable(name.to_string()));
            rest = &after[end + 2..];
        }
        if rest.contains("}}") {
            bail!("unmatched `}}}}` in template {text:?}");
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Self { parts })
    }

    /// The variable names the template refers to.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Variable(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Substitutes application variables; an unknown name is an error.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(name) => match values.get(name) {
                    Some(value) => out.push_str(value),
                    None => bail!("undefined variable `{name}`"),
                },
            }
        }
        Ok(out)
    }
}

/// Spin's rule for variable names: lower case ASCII letters, digits and
/// underscores, starting with a letter.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The environment variable that overrides an application variable.
pub fn env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

/// Resolves every application variable: `SPIN_VARIABLE_<NAME>` from `env`
/// wins over the manifest default. Errors never contain values, since a
/// variable may be secret.
pub fn resolve_app_variables(
    decls: &BTreeMap<String, VariableDecl>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    for (name, decl) in decls {
        let value = match (env(&env_name(name)), &decl.default) {
            (Some(value), _) => value,
            (None, Some(default)) => default.clone(),
            (None, None) => bail!(
                "variable `{name}` is required but has no value: set {}",
                env_name(name)
            ),
        };
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// Renders a component's `[component.<id>.variables]` templates.
pub fn resolve_component_variables(
    templates: &BTreeMap<String, Template>,
    app_values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    for (name, template) in templates {
        let value = template
            .render(app_values)
            .map_err(|e| anyhow::anyhow!("component variable `{name}`: {e}"))?;
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// Where application variable values come from (`SPIN_VARIABLE_<NAME>` in
/// production; a fixed map in tests).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A component's variables, resolved again on every `get` as Spin does:
/// the template is rendered and each application variable it uses is
/// looked up in the provider (the environment), falling back to its
/// default.
pub struct VariableResolver {
    templates: BTreeMap<String, Template>,
    app: Arc<BTreeMap<String, VariableDecl>>,
    env: EnvLookup,
}

impl VariableResolver {
    pub fn new(
        templates: BTreeMap<String, Template>,
        app: Arc<BTreeMap<String, VariableDecl>>,
        env: EnvLookup,
    ) -> Self {
        Self {
            templates,
            app,
            env,
        }
    }

    /// The value of component variable `name`; `Ok(None)` if the component
    /// has no such variable. Errors never contain values.
    pub fn get(&self, name: &str) -> Result<Option<String>> {
        let Some(template) = self.templates.get(name) else {
            return Ok(None);
        };
        let mut values = BTreeMap::new();
        for used in template.variables() {
            let value = match ((self.env)(&env_name(used)), self.app.get(used)) {
                (Some(value), _) => value,
                (
                    None,
                    Some(VariableDecl {
                        default: Some(default),
                        ..
                    }),
                ) => default.clone(),
                _ => bail!("variable `{used}` has no value: set {}", env_name(used)),
            };
            values.insert(used.to_string(), value);
        }
        template.render(&values).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(default: Option<&str>) -> VariableDecl {
        VariableDecl {
            default: default.map(str::to_string),
            required: default.is_none(),
            secret: false,
        }
    }

    #[test]
    fn templates_parse_and_render() {
        let t = Template::parse("https://{{ api_host }}/x/{{port}}").unwrap();
        assert_eq!(t.variables().collect::<Vec<_>>(), ["api_host", "port"]);
        let values = BTreeMap::from([
            ("api_host".to_string(), "example.com".to_string()),
            ("port".to_string(), "8".to_string()),
        ]);
        assert_eq!(t.render(&values).unwrap(), "https://example.com/x/8");
        assert!(Template::parse("{{ api_host").is_err());
        assert!(Template::parse("{{ Bad }}").is_err());
        let err = Template::parse("{{ nope }}")
            .unwrap()
            .render(&values)
            .unwrap_err();
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn env_overrides_default_and_required_needs_a_value() {
        let decls = BTreeMap::from([
            ("api_host".to_string(), decl(Some("default.example"))),
            ("language_code".to_string(), decl(Some("en-us"))),
        ]);
        let values = resolve_app_variables(&decls, |name| {
            (name == "SPIN_VARIABLE_API_HOST").then(|| "env.example".to_string())
        })
        .unwrap();
        assert_eq!(values["api_host"], "env.example");
        assert_eq!(values["language_code"], "en-us");

        let decls = BTreeMap::from([("secret_key".to_string(), decl(None))]);
        let err = resolve_app_variables(&decls, |_| None).unwrap_err();
        assert!(err.to_string().contains("SPIN_VARIABLE_SECRET_KEY"));
        let values = resolve_app_variables(&decls, |_| Some("s3cret".into())).unwrap();
        assert_eq!(values["secret_key"], "s3cret");
    }

    #[test]
    fn component_variables_render_over_app_values() {
        let app = BTreeMap::from([("api_host".to_string(), "a.example".to_string())]);
        let templates = BTreeMap::from([(
            "users_url".to_string(),
            Template::parse("https://{{ api_host }}/users").unwrap(),
        )]);
        let values = resolve_component_variables(&templates, &app).unwrap();
        assert_eq!(values["users_url"], "https://a.example/users");
    }

    #[test]
    fn the_resolver_reads_the_provider_on_every_get() {
        let app = Arc::new(BTreeMap::from([
            ("api_host".to_string(), decl(Some("default.example"))),
            ("token".to_string(), decl(None)),
        ]));
        let templates = BTreeMap::from([
            (
                "users_url".to_string(),
                Template::parse("https://{{ api_host }}/users").unwrap(),
            ),
            ("token".to_string(), Template::parse("{{ token }}").unwrap()),
        ]);
        let current = Arc::new(std::sync::Mutex::new(None::<String>));
        let seen = current.clone();
        let env: EnvLookup = Arc::new(move |name| {
            (name == "SPIN_VARIABLE_API_HOST")
                .then(|| seen.lock().unwrap().clone())
                .flatten()
        });
        let resolver = VariableResolver::new(templates, app, env);
        assert_eq!(
            resolver.get("users_url").unwrap().unwrap(),
            "https://default.example/users"
        );
        *current.lock().unwrap() = Some("env.example".into());
        assert_eq!(
            resolver.get("users_url").unwrap().unwrap(),
            "https://env.example/users"
        );
        assert!(resolver.get("missing").unwrap().is_none());
        let err = resolver.get("token").unwrap_err();
        assert!(err.to_string().contains("SPIN_VARIABLE_TOKEN"), "{err}");
    }
}
