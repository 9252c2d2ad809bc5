//! The shape check: walks the parsed TOML tree against the rulebook's JSON
//! Schema and reports every unknown key, missing key, wrong type and unknown
//! enum value, each at its own position.
//!
//! serde stops at the first error of a value; an author fixing a file wants
//! all of them. So the shape is checked here first, for the whole file, and
//! what does not fit is cut out of the tree: unknown keys and optional values
//! of the wrong type are removed, and an array item (say one `[[record_type]]`)
//! that lacks a required key, or holds one that does not fit, is dropped. serde then deserializes what is left
//! and the semantic checks run on every element that survived.
//!
//! The schema is the one `schemars` derives from `raw.rs`, which is also the
//! published `docs/rulebook.schema.json`: this walker understands the subset
//! of JSON Schema that derive produces (`$ref`, `anyOf`/`oneOf`, `const`,
//! `enum`, `type`, `properties`, `required`, `additionalProperties`, `items`,
//! `minimum`/`maximum` and integer `format`s).

use serde_json::Value;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::source::Diagnostics;

pub(crate) struct ShapeCheck<'s, 'd, 't> {
    /// The whole schema, for resolving `$ref`s.
    root: &'s Value,
    diag: &'d mut Diagnostics<'t>,
    /// While trying which alternative of an `anyOf` fits, nothing is reported.
    quiet: bool,
    mismatches: usize,
}

impl<'s, 'd, 't> ShapeCheck<'s, 'd, 't> {
    pub(crate) fn new(root: &'s Value, diag: &'d mut Diagnostics<'t>) -> ShapeCheck<'s, 'd, 't> {
        ShapeCheck {
            root,
            diag,
            quiet: false,
            mismatches: 0,
        }
    }

    /// Checks the whole document against the root schema.
    pub(crate) fn check_document(&mut self, document: &mut Spanned<DeValue<'_>>) -> bool {
        let root = self.root;
        self.check(document, root, "", "")
    }

    fn report(&mut self, offset: usize, message: String) {
        self.mismatches += 1;
        if !self.quiet {
            self.diag.error_at(offset, message);
        }
    }

    /// Checks one value; false when it does not fit (what it contains that
    /// does not fit is removed either way).
    fn check(
        &mut self,
        value: &mut Spanned<DeValue<'_>>,
        schema: &Value,
        path: &str,
        key: &str,
    ) -> bool {
        let schema = self.resolve(schema);
        let alternatives = schema.get("anyOf").or_else(|| schema.get("oneOf"));
        if let Some(alternatives) = alternatives.and_then(Value::as_array) {
            return self.check_alternatives(value, alternatives, path, key);
        }
        if let Some(words) = string_choices(schema) {
            return self.check_choice(value, &words, key);
        }
        let types = schema_types(schema);
        if !types.is_empty() && !types.iter().any(|t| kind_fits(value.get_ref(), t)) {
            let expected = types
                .iter()
                .map(|t| describe_type(t))
                .collect::<Vec<_>>()
                .join(" or ");
            let found = describe_value(value.get_ref());
            self.report(
                value.span().start,
                format!("{} must be {expected}, found {found}", name(key)),
            );
            return false;
        }
        let span = value.span();
        match value.get_mut() {
            DeValue::Table(table) => self.check_table(table, span.start, schema, path),
            DeValue::Array(array) => {
                let Some(items) = schema.get("items") else {
                    return true;
                };
                let item_key = format!("{key}[]");
                let mut keep = Vec::with_capacity(array.len());
                for item in array.iter_mut() {
                    keep.push(self.check(item, items, path, &item_key));
                }
                let mut flags = keep.into_iter();
                array_retain(array, |_| flags.next().unwrap_or(true));
                true
            }
            DeValue::Integer(integer) => {
                let number = i128::from_str_radix(integer.as_str(), integer.radix()).ok();
                self.check_integer(number, schema, span.start, key)
            }
            _ => true,
        }
    }

    fn resolve<'v>(&self, schema: &'v Value) -> &'v Value
    where
        's: 'v,
    {
        let mut schema = schema;
        // A chain of references longer than this is a cycle: stop there.
        for _ in 0..16 {
            let Some(target) = schema.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let Some(name) = target.strip_prefix("#/$defs/") else {
                break;
            };
            match self.root.get("$defs").and_then(|defs| defs.get(name)) {
                Some(found) => schema = found,
                None => break,
            }
        }
        schema
    }

    fn check_alternatives(
        &mut self,
        value: &mut Spanned<DeValue<'_>>,
        alternatives: &[Value],
        path: &str,
        key: &str,
    ) -> bool {
        // TOML has no null: an `Option` is just a key left out.
        let options: Vec<&Value> = alternatives
            .iter()
            .map(|alternative| self.resolve(alternative))
            .filter(|alternative| schema_types(alternative) != ["null"])
            .collect();
        if let [only] = options.as_slice() {
            return self.check(value, only, path, key);
        }
        let mut words = Vec::new();
        for option in &options {
            match string_choices(option) {
                Some(choices) => words.extend(choices),
                None => {
                    words.clear();
                    break;
                }
            }
        }
        if !words.is_empty() {
            return self.check_choice(value, &words, key);
        }
        for option in &options {
            if self.fits_quietly(value, option, path, key) {
                return self.check(value, option, path, key);
            }
        }
        // None fits: when one alternative has the value's kind, its own
        // complaint is the most precise one.
        let same_kind: Vec<&&Value> = options
            .iter()
            .filter(|option| {
                schema_types(option)
                    .iter()
                    .any(|t| kind_fits(value.get_ref(), t))
            })
            .collect();
        if let [only] = same_kind.as_slice() {
            return self.check(value, only, path, key);
        }
        let expected: Vec<String> = options
            .iter()
            .flat_map(|option| schema_types(option))
            .map(|t| describe_type(&t).to_string())
            .collect();
        let found = describe_value(value.get_ref());
        self.report(
            value.span().start,
            format!(
                "{} must be {}, found {found}",
                name(key),
                expected.join(" or ")
            ),
        );
        false
    }

    fn fits_quietly(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        schema: &Value,
        path: &str,
        key: &str,
    ) -> bool {
        let mut trial = value.clone();
        let (quiet, mismatches) = (self.quiet, self.mismatches);
        self.quiet = true;
        let fits = self.check(&mut trial, schema, path, key) && self.mismatches == mismatches;
        self.quiet = quiet;
        self.mismatches = mismatches;
        fits
    }

    fn check_choice(&mut self, value: &Spanned<DeValue<'_>>, words: &[String], key: &str) -> bool {
        let choices = words
            .iter()
            .map(|w| format!("`{w}`"))
            .collect::<Vec<_>>()
            .join(", ");
        match value.get_ref() {
            DeValue::String(text) if words.iter().any(|w| w == text.as_ref()) => true,
            DeValue::String(text) => {
                let hint = suggestion(text, words.iter().map(String::as_str));
                self.report(
                    value.span().start,
                    format!(
                        "{} must be one of {choices}, found `{text}`{hint}",
                        name(key)
                    ),
                );
                false
            }
            other => {
                let found = describe_value(other);
                self.report(
                    value.span().start,
                    format!("{} must be one of {choices}, found {found}", name(key)),
                );
                false
            }
        }
    }

    fn check_integer(
        &mut self,
        number: Option<i128>,
        schema: &Value,
        offset: usize,
        key: &str,
    ) -> bool {
        let (format_min, format_max) = match schema.get("format").and_then(Value::as_str) {
            Some("uint32") => (0, i128::from(u32::MAX)),
            Some("uint64") | Some("uint") => (0, i128::from(u64::MAX)),
            Some("int32") => (i128::from(i32::MIN), i128::from(i32::MAX)),
            _ => (i128::from(i64::MIN), i128::from(i64::MAX)),
        };
        let minimum = schema
            .get("minimum")
            .and_then(Value::as_i64)
            .map(i128::from);
        let maximum = schema
            .get("maximum")
            .and_then(Value::as_i64)
            .map(i128::from);
        let low = minimum.map_or(format_min, |m| m.max(format_min));
        let high = maximum.map_or(format_max, |m| m.min(format_max));
        match number {
            Some(n) if n >= low && n <= high => true,
            _ => {
                self.report(
                    offset,
                    format!("{} must be a whole number from {low} to {high}", name(key)),
                );
                false
            }
        }
    }

    fn check_table(
        &mut self,
        table: &mut DeTable<'_>,
        offset: usize,
        schema: &Value,
        path: &str,
    ) -> bool {
        let empty = serde_json::Map::new();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|keys| keys.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let additional = schema.get("additionalProperties");
        let label = table_label(table, path);
        let mut valid = true;
        let mut cut: Vec<String> = Vec::new();
        for (key, value) in table.iter_mut() {
            let key_text: &str = key.get_ref();
            let child_path = if path.is_empty() {
                key_text.to_string()
            } else {
                format!("{path}.{key_text}")
            };
            let value_schema = match properties.get(key_text) {
                Some(property) => property,
                None => match additional {
                    Some(Value::Bool(false)) => {
                        let hint = suggestion(key_text, properties.keys().map(String::as_str));
                        let hint = if hint.is_empty() {
                            let known: Vec<&str> = properties.keys().map(String::as_str).collect();
                            format!(" (known keys: {})", known.join(", "))
                        } else {
                            hint
                        };
                        self.report(
                            key.span().start,
                            format!("unknown key `{key_text}` in {label}{hint}"),
                        );
                        cut.push(key_text.to_string());
                        continue;
                    }
                    Some(additional @ Value::Object(_)) => additional,
                    _ => continue,
                },
            };
            if !self.check(value, value_schema, &child_path, key_text) {
                // Cut either way; a table without one of its required keys
                // does not fit, and its own parent cuts it.
                valid &= !required.contains(&key_text);
                cut.push(key_text.to_string());
            }
        }
        for key in &required {
            if table.contains_key(*key) {
                continue;
            }
            valid = false;
            let message = if *key == "legal_basis" {
                format!(
                    "{label} has no `legal_basis`: every record type, list, measure and \
                     expectation must name the law or published rule it rests on"
                )
            } else {
                format!("{label} lacks the required key `{key}`")
            };
            self.report(offset, message);
        }
        for key in &cut {
            table.remove(key.as_str());
        }
        valid
    }
}

/// Removes the items for which `keep` says false.
fn array_retain(
    array: &mut toml::de::DeArray<'_>,
    mut keep: impl FnMut(&Spanned<DeValue<'_>>) -> bool,
) {
    let mut kept = toml::de::DeArray::new();
    for item in std::mem::replace(array, toml::de::DeArray::new()) {
        if keep(&item) {
            kept.push(item);
        }
    }
    *array = kept;
}

/// `record_type `judicial.x``, `model.rule `r1``, `rulebook`, …
fn table_label(table: &DeTable<'_>, path: &str) -> String {
    let path = if path.is_empty() {
        "the rulebook file"
    } else {
        path
    };
    match table.get("id").map(|id| id.get_ref()) {
        Some(DeValue::String(id)) => format!("{path} `{id}`"),
        _ => path.to_string(),
    }
}

fn name(key: &str) -> String {
    if key.is_empty() {
        "the file".to_string()
    } else {
        format!("`{key}`")
    }
}

/// The strings a schema allows, when it is a `const` or a string `enum`.
fn string_choices(schema: &Value) -> Option<Vec<String>> {
    if let Some(Value::String(word)) = schema.get("const") {
        return Some(vec![word.clone()]);
    }
    let words = schema.get("enum")?.as_array()?;
    words
        .iter()
        .map(|w| w.as_str().map(str::to_string))
        .collect()
}

fn schema_types(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn kind_fits(value: &DeValue<'_>, schema_type: &str) -> bool {
    matches!(
        (value, schema_type),
        (DeValue::String(_), "string")
            | (DeValue::Integer(_), "integer" | "number")
            | (DeValue::Float(_), "number")
            | (DeValue::Boolean(_), "boolean")
            | (DeValue::Array(_), "array")
            | (DeValue::Table(_), "object")
    )
}

fn describe_type(schema_type: &str) -> &'static str {
    match schema_type {
        "string" => "a string",
        "integer" => "a whole number",
        "number" => "a number",
        "boolean" => "true or false",
        "array" => "an array",
        "object" => "a table",
        _ => "something else",
    }
}

fn describe_value(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(text) => format!("the string \"{text}\""),
        DeValue::Integer(integer) => format!("the number {integer}"),
        DeValue::Float(float) => format!("the number {}", float.as_str()),
        DeValue::Boolean(flag) => format!("{flag}"),
        DeValue::Datetime(when) => format!("the date-time {when}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

/// ` (did you mean `x`?)` when one known word is close to `word`.
pub(crate) fn suggestion<'a>(word: &str, known: impl Iterator<Item = &'a str>) -> String {
    let mut best: Option<(usize, &str)> = None;
    let length = word.chars().count();
    for candidate in known {
        let mut distance = edit_distance(word, candidate);
        // A misspelt start of a longer name (`amout` for `amount_yuan`)
        // counts as close too.
        if length >= 4 {
            for prefix_length in [length, length + 1] {
                let prefix: String = candidate.chars().take(prefix_length).collect();
                distance = distance.min(edit_distance(word, &prefix));
            }
        }
        let limit = (length.min(candidate.chars().count()) / 3).max(1);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    match best {
        Some((_, candidate)) => format!(" (did you mean `{candidate}`?)"),
        None => String::new(),
    }
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            let deletion = previous[j + 1] + 1;
            let insertion = current[j] + 1;
            current.push(substitution.min(deletion).min(insertion));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_need_a_close_word() {
        let known = ["legal_basis", "retention", "title"];
        assert_eq!(
            suggestion("legal_basi", known.into_iter()),
            " (did you mean `legal_basis`?)"
        );
        assert_eq!(
            suggestion("retension", known.into_iter()),
            " (did you mean `retention`?)"
        );
        assert_eq!(suggestion("colour", known.into_iter()), "");
        let fields = ["amount_yuan", "case_no"];
        assert_eq!(
            suggestion("amout", fields.into_iter()),
            " (did you mean `amount_yuan`?)"
        );
        assert_eq!(suggestion("cas", fields.into_iter()), "");
    }
}
