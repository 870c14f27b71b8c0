//! Translated email strings. The catalogues are flat JSON objects in
//! `locales/<language>.json` (key → text with `{name}` placeholders), built
//! into the binary; a key missing from a catalogue falls back to English.

use std::collections::HashMap;

/// The languages upstream offers (`LANGUAGES`: en-us, fr-fr, nl-nl, de-de).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Language {
    #[default]
    En,
    Fr,
    Nl,
    De,
}

impl Language {
    pub const ALL: [Language; 4] = [Language::En, Language::Fr, Language::Nl, Language::De];

    /// Upstream's language code (`en-us`, `fr-fr`, `nl-nl`, `de-de`).
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en-us",
            Language::Fr => "fr-fr",
            Language::Nl => "nl-nl",
            Language::De => "de-de",
        }
    }

    /// A language tag or code in any usual spelling (`fr`, `fr-FR`, `fr_fr`,
    /// `fr-CA`): matched on its primary subtag.
    pub fn from_code(code: &str) -> Option<Language> {
        let primary = code
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Language::En),
            "fr" => Some(Language::Fr),
            "nl" => Some(Language::Nl),
            "de" => Some(Language::De),
            _ => None,
        }
    }

    /// The supported language an `Accept-Language` value prefers most
    /// (highest `q`, earliest on ties); `None` when it names none of them.
    pub fn from_accept_language(header: &str) -> Option<Language> {
        let mut best: Option<(f32, Language)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let quality = parts
                .find_map(|parameter| {
                    let (name, value) = parameter.split_once('=')?;
                    (name.trim().eq_ignore_ascii_case("q"))
                        .then(|| value.trim().parse::<f32>().ok())?
                })
                .unwrap_or(1.0);
            if quality.is_nan() || quality <= 0.0 {
                continue;
            }
            if let Some(language) = Language::from_code(tag) {
                if best.is_none_or(|(best_quality, _)| quality > best_quality) {
                    best = Some((quality, language));
                }
            }
        }
        best.map(|(_, language)| language)
    }

    /// The first of `preferences` (language codes, e.g. a user's language
    /// then `language_code`) that is supported; English otherwise.
    pub fn first_supported<'a>(preferences: impl IntoIterator<Item = Option<&'a str>>) -> Language {
        preferences
            .into_iter()
            .flatten()
            .find_map(Language::from_code)
            .unwrap_or_default()
    }

    fn catalogue_source(self) -> &'static str {
        match self {
            Language::En => include_str!("../locales/en.json"),
            Language::Fr => include_str!("../locales/fr.json"),
            Language::Nl => include_str!("../locales/nl.json"),
            Language::De => include_str!("../locales/de.json"),
        }
    }
}

/// One language's strings, with English behind it.
pub struct Catalogue {
    language: Language,
    strings: HashMap<String, String>,
    english: HashMap<String, String>,
}

impl Catalogue {
    pub fn new(language: Language) -> Catalogue {
        Catalogue {
            language,
            strings: parse(language),
            english: parse(Language::En),
        }
    }

    pub fn language(&self) -> Language {
        self.language
    }

    /// The raw text of `key` (the key itself if no catalogue has it).
    pub fn text<'a>(&'a self, key: &'a str) -> &'a str {
        self.strings
            .get(key)
            .or_else(|| self.english.get(key))
            .map_or(key, String::as_str)
    }

    /// `key`'s text with each `{name}` replaced by its value.
    pub fn render(&self, key: &str, arguments: &[(&str, &str)]) -> String {
        fill(self.text(key), arguments)
    }

    /// Like [`Catalogue::render`] for HTML: the text is escaped, the
    /// arguments are inserted as given (escape them, or pass markup).
    pub fn render_html(&self, key: &str, arguments: &[(&str, &str)]) -> String {
        fill(&escape_html(self.text(key)), arguments)
    }
}

fn parse(language: Language) -> HashMap<String, String> {
    // The catalogues are part of the build and checked by the tests.
    serde_json::from_str(language.catalogue_source()).unwrap_or_default()
}

/// Replaces `{name}` placeholders in one pass (values are never re-scanned).
pub fn fill(template: &str, arguments: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            arguments
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (close, *value))
        });
        match value {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn placeholders(text: &str) -> BTreeSet<String> {
        text.split('{')
            .skip(1)
            .filter_map(|part| part.split_once('}').map(|(name, _)| name.to_string()))
            .collect()
    }

    #[test]
    fn every_catalogue_has_every_key_with_the_same_placeholders() {
        let english: HashMap<String, String> =
            serde_json::from_str(Language::En.catalogue_source()).unwrap();
        for language in Language::ALL {
            let strings: HashMap<String, String> =
                serde_json::from_str(language.catalogue_source()).expect("catalogue is valid JSON");
            assert_eq!(
                strings.keys().collect::<BTreeSet<_>>(),
                english.keys().collect::<BTreeSet<_>>(),
                "{language:?} keys"
            );
            for (key, text) in &strings {
                assert_eq!(
                    placeholders(text),
                    placeholders(&english[key]),
                    "{language:?} {key}"
                );
                if language != Language::En && !["recording.open"].contains(&key.as_str()) {
                    assert_ne!(text, &english[key], "{language:?} {key} is not translated");
                }
            }
        }
    }

    #[test]
    fn codes_and_accept_language_are_negotiated() {
        assert_eq!(Language::from_code("fr-fr"), Some(Language::Fr));
        assert_eq!(Language::from_code("nl_NL"), Some(Language::Nl));
        assert_eq!(Language::from_code("de"), Some(Language::De));
        assert_eq!(Language::from_code("en-us"), Some(Language::En));
        assert_eq!(Language::from_code("es-es"), None);
        assert_eq!(Language::from_code(""), None);

        let accept = Language::from_accept_language;
        assert_eq!(
            accept("fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7"),
            Some(Language::Fr)
        );
        assert_eq!(accept("es-ES, de;q=0.5, nl;q=0.6"), Some(Language::Nl));
        assert_eq!(accept("en;q=0.2, de"), Some(Language::De));
        assert_eq!(accept("fr;q=0, de;q=0.1"), Some(Language::De));
        assert_eq!(accept("es, it, *"), None);
        assert_eq!(accept(""), None);
        assert_eq!(accept("de;q=bogus"), Some(Language::De));

        assert_eq!(
            Language::first_supported([None, Some("xx"), Some("nl-nl")]),
            Language::Nl
        );
        assert_eq!(Language::first_supported([None]), Language::En);
        assert_eq!(Language::Fr.code(), "fr-fr");
    }

    #[test]
    fn placeholders_are_filled_once() {
        assert_eq!(
            fill("{a} and {b}", &[("a", "{b}"), ("b", "x")]),
            "{b} and x"
        );
        assert_eq!(fill("{unknown} {", &[]), "{unknown} {");
        let catalogue = Catalogue::new(Language::Fr);
        assert_eq!(
            catalogue.render("common.thanks", &[("brand", "Visio")]),
            "Merci d'utiliser Visio."
        );
        assert_eq!(
            catalogue.render_html("common.thanks", &[("brand", "<b>V</b>")]),
            "Merci d&#x27;utiliser <b>V</b>."
        );
        assert_eq!(catalogue.text("no.such.key"), "no.such.key");
    }
}
