//! Apple's App Store Connect OpenAPI spec, loaded once, with the two things tests need from it:
//! query-parameter rules per operation, and a small JSON-schema validator for response shapes.
//!
//! The validator covers the subset the spec uses: `$ref`, `type`, `properties`, `required`,
//! `enum`, `items`, `oneOf`/`anyOf`/`allOf`, `nullable`, `additionalProperties`,
//! `minimum`/`maximum` (`format`, `title`, `deprecated` and `discriminator` are annotations here).

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

/// Where the spec lives beside the repository.
pub fn spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/asc-api/openapi-4.4.1.json")
}

/// The parsed spec (loaded on first use; panics with a clear message if it is missing).
pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = spec_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the App Store Connect OpenAPI spec is required at {} ({e}); it ships beside the repository in shared/asc-api/",
                path.display()
            )
        });
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
    })
}

/// `components.schemas.<name>`.
pub fn schema(name: &str) -> &'static Value {
    spec()
        .pointer(&format!("/components/schemas/{name}"))
        .unwrap_or_else(|| panic!("the spec has no schema `{name}`"))
}

/// A GET operation matched to a concrete request path.
#[derive(Debug, Clone)]
pub struct Operation {
    pub template: String,
    pub operation: &'static Value,
}

impl Operation {
    /// The declared query parameter, if any.
    pub fn query_parameter(&self, name: &str) -> Option<&'static Value> {
        self.operation
            .get("parameters")?
            .as_array()?
            .iter()
            .find(|p| p["in"] == "query" && p["name"] == name)
    }

    /// The schema name of the response for `status` (e.g. `AppsResponse`).
    pub fn response_schema_name(&self, status: u16) -> Option<&'static str> {
        let reference = self
            .operation
            .pointer(&format!(
                "/responses/{status}/content/application~1json/schema/$ref"
            ))?
            .as_str()?;
        reference.strip_prefix("#/components/schemas/")
    }
}

/// Finds the spec operation for `method` and a concrete `path` such as `/v1/apps/123/appStoreVersions`.
pub fn find_operation(method: &str, path: &str) -> Option<Operation> {
    let method = method.to_ascii_lowercase();
    let wanted: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let paths = spec().get("paths")?.as_object()?;
    let mut best: Option<(usize, Operation)> = None;
    for (template, item) in paths {
        let segments: Vec<&str> = template.split('/').collect();
        if segments.len() != wanted.len() {
            continue;
        }
        let mut placeholders = 0;
        let matches = segments.iter().zip(&wanted).all(|(t, w)| {
            if t.starts_with('{') && t.ends_with('}') {
                placeholders += 1;
                !w.is_empty()
            } else {
                t == w
            }
        });
        let Some(operation) = item.get(&method) else {
            continue;
        };
        // Prefer literal segments over placeholders when both match.
        if matches && best.as_ref().is_none_or(|(p, _)| placeholders < *p) {
            best = Some((
                placeholders,
                Operation {
                    template: template.clone(),
                    operation,
                },
            ));
        }
    }
    best.map(|(_, op)| op)
}

/// Why a query is invalid, as Apple would say it (`source.parameter` + detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterProblem {
    pub parameter: String,
    pub detail: String,
}

/// Checks a request's decoded query pairs against the operation: only declared parameters
/// (plus Apple's pagination `cursor`), enum members for enum arrays, integer bounds, booleans.
pub fn validate_query(
    operation: &Operation,
    pairs: &[(String, String)],
) -> Result<(), ParameterProblem> {
    for (name, value) in pairs {
        if name == "cursor" {
            continue;
        }
        let Some(parameter) = operation.query_parameter(name) else {
            return Err(ParameterProblem {
                parameter: name.clone(),
                detail: format!("'{name}' is not a valid parameter for this endpoint"),
            });
        };
        let schema = &parameter["schema"];
        let problem = |detail: String| ParameterProblem {
            parameter: name.clone(),
            detail,
        };
        match schema["type"].as_str() {
            Some("array") => {
                let allowed = schema["items"]["enum"].as_array();
                for item in value.split(',') {
                    if item.is_empty() {
                        return Err(problem(format!("'{name}' has an empty value")));
                    }
                    if let Some(allowed) = allowed
                        && !allowed.iter().any(|a| a == item)
                    {
                        return Err(problem(format!(
                            "'{item}' is not a valid value for '{name}'"
                        )));
                    }
                }
            }
            Some("integer") => {
                let number: i64 = value
                    .parse()
                    .map_err(|_| problem(format!("'{value}' is not an integer")))?;
                if let Some(max) = schema["maximum"].as_i64()
                    && number > max
                {
                    return Err(problem(format!("'{name}' must be no greater than {max}")));
                }
                let min = schema["minimum"].as_i64().unwrap_or(1);
                if number < min {
                    return Err(problem(format!("'{name}' must be at least {min}")));
                }
            }
            Some("boolean") => {
                if value != "true" && value != "false" {
                    return Err(problem(format!("'{value}' is not a boolean")));
                }
            }
            _ => {
                if let Some(allowed) = schema["enum"].as_array()
                    && !allowed.iter().any(|a| a == value.as_str())
                {
                    return Err(problem(format!(
                        "'{value}' is not a valid value for '{name}'"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Validates `instance` against `components.schemas.<schema_name>`; returns every violation.
pub fn validate_against(schema_name: &str, instance: &Value) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    validate(schema(schema_name), instance, "$", &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Validates `instance` against an inline schema (whose `$ref`s point into the spec).
pub fn validate(schema: &Value, instance: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| spec().pointer(pointer));
        match target {
            Some(target) => validate(target, instance, at, errors),
            None => errors.push(format!("{at}: unresolvable $ref {reference}")),
        }
        return;
    }
    if instance.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) && !schema_is_empty(schema) {
            errors.push(format!("{at}: null is not allowed"));
        }
        return;
    }
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let ok = match kind {
            "object" => instance.is_object(),
            "array" => instance.is_array(),
            "string" => instance.is_string(),
            "integer" => instance.is_i64() || instance.is_u64(),
            "number" => instance.is_number(),
            "boolean" => instance.is_boolean(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: expected {kind}, got {instance}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(instance)
    {
        errors.push(format!("{at}: {instance} is not one of the enum values"));
    }
    if let Some(number) = instance.as_f64() {
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && number > max
        {
            errors.push(format!("{at}: {number} is above the maximum {max}"));
        }
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && number < min
        {
            errors.push(format!("{at}: {number} is below the minimum {min}"));
        }
    }
    if let Some(object) = instance.as_object() {
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    errors.push(format!("{at}: required property `{name}` is missing"));
                }
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, value) in object {
            let path = format!("{at}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(property) => validate(property, value, &path, errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{path}: additional property is not allowed"))
                    }
                    Some(extra @ Value::Object(_)) => validate(extra, value, &path, errors),
                    // JSON Schema's default allows extra properties; the spec relies on that.
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), instance.as_array()) {
        for (index, item) in array.iter().enumerate() {
            validate(items, item, &format!("{at}[{index}]"), errors);
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for sub in all {
            validate(sub, instance, at, errors);
        }
    }
    for (keyword, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        if let Some(options) = schema.get(keyword).and_then(Value::as_array) {
            let matching = options
                .iter()
                .filter(|option| {
                    let mut sub_errors = Vec::new();
                    validate(option, instance, at, &mut sub_errors);
                    sub_errors.is_empty()
                })
                .count();
            let ok = if exactly_one {
                matching == 1
            } else {
                matching >= 1
            };
            if !ok {
                errors.push(format!(
                    "{at}: {matching} of the {keyword} alternatives match (value: {})",
                    truncate(instance)
                ));
            }
        }
    }
}

fn schema_is_empty(schema: &Value) -> bool {
    schema.as_object().is_some_and(|o| o.is_empty())
}

fn truncate(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 200 {
        format!("{}...", text.chars().take(200).collect::<String>())
    } else {
        text
    }
}
