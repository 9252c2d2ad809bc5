//! The OpenAPI 3.1 description served at `/openapi.json`, written by hand
//! from small helpers. A derive-based generator would tie every response
//! type to a proc-macro crate; instead a test checks that the paths and
//! methods here are exactly those of the router (`route_table`), so the
//! description cannot silently fall behind.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

/// The description as JSON text, built once.
pub fn openapi_json() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| serde_json::to_string_pretty(&document()).unwrap_or_default())
}

/// Whether the operation `method` `path` (a route template) has query
/// parameters in the description. The router refuses a query string on
/// the others (`routes::refuse_unexpected_query`).
pub(crate) fn takes_query(method: &str, path: &str) -> bool {
    // Path template to the methods whose operation has query parameters:
    // looked up on every API request, so without building a key.
    static WITH_QUERY: OnceLock<std::collections::HashMap<String, Vec<String>>> = OnceLock::new();
    WITH_QUERY
        .get_or_init(|| {
            let mut with_query: std::collections::HashMap<String, Vec<String>> =
                std::collections::HashMap::new();
            let document = document();
            for (path, methods) in document["paths"].as_object().into_iter().flatten() {
                for (method, operation) in methods.as_object().into_iter().flatten() {
                    let has_query = operation["parameters"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
                    if has_query {
                        with_query
                            .entry(path.clone())
                            .or_default()
                            .push(method.clone());
                    }
                }
            }
            with_query
        })
        .get(path)
        .is_some_and(|methods| methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

fn query_param(name: &str, required: bool, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": required, "description": description, "schema": schema })
}

fn paging(after_description: &str) -> Vec<Value> {
    vec![
        query_param(
            "after",
            false,
            after_description,
            json!({ "type": "string" }),
        ),
        query_param(
            "limit",
            false,
            "Rows per page: default 100; 0 is read as 1, and more than 1000 as 1000.",
            json!({ "type": "integer", "minimum": 0 }),
        ),
    ]
}

fn seq_paging() -> Vec<Value> {
    vec![
        query_param(
            "after",
            false,
            "Entries after this sequence number (`next_after` of the previous page).",
            json!({ "type": "integer", "minimum": 0 }),
        ),
        query_param(
            "limit",
            false,
            "Rows per page: default 100; 0 is read as 1, and more than 1000 as 1000.",
            json!({ "type": "integer", "minimum": 0 }),
        ),
    ]
}

/// One operation. `roles` empty: public (no token needed).
struct Op<'a> {
    summary: &'a str,
    description: &'a str,
    roles: &'a [&'a str],
    params: Vec<Value>,
    body: Option<Value>,
    ok_status: &'a str,
    ok: Value,
}

impl Op<'_> {
    fn to_json(&self) -> Value {
        let mut op = Map::new();
        op.insert("summary".into(), json!(self.summary));
        let mut description = self.description.to_string();
        if self.roles.is_empty() {
            op.insert("security".into(), json!([]));
        } else {
            op.insert("security".into(), json!([{ "bearer": [] }]));
            op.insert("x-roles".into(), json!(self.roles));
            description.push_str(&format!("\n\nRoles: {}.", self.roles.join(", ")));
        }
        op.insert("description".into(), json!(description));
        if !self.params.is_empty() {
            op.insert("parameters".into(), Value::Array(self.params.clone()));
        }
        if let Some(body) = &self.body {
            op.insert("requestBody".into(), body.clone());
        }
        let mut responses = Map::new();
        responses.insert(self.ok_status.to_string(), self.ok.clone());
        for status in [
            "400", "401", "403", "404", "408", "409", "413", "415", "500", "503",
        ] {
            responses.insert(
                status.into(),
                json!({ "$ref": "#/components/responses/Error" }),
            );
        }
        responses.insert(
            "414".into(),
            json!({ "description": "The request line is longer than the HTTP layer reads (about 64 KiB); the answer has no body." }),
        );
        op.insert("responses".into(), Value::Object(responses));
        Value::Object(op)
    }
}

/// A rulebook file: TOML, taken under any of its usual media types.
fn toml_body() -> Value {
    let text = json!({ "schema": { "type": "string" } });
    json!({ "required": true, "content": {
        "application/toml": text, "text/plain": text, "text/x-toml": text
    } })
}

fn json_body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn json_ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn text_ok(description: &str, media: &str) -> Value {
    json!({ "description": description, "content": { media: { "schema": { "type": "string" } } } })
}

fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    let mut add = |method: &str, path: &str, op: Op<'_>| {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        if let Some(methods) = entry.as_object_mut() {
            methods.insert(method.to_string(), op.to_json());
        }
    };
    let subject_param = || {
        path_param("id", "The subject's identifier (Resident Identity Card number or Unified Social Credit Code).")
    };

    add(
        "get",
        "/healthz",
        Op {
            summary: "Liveness",
            description: "The process is up. Does not touch the store.",
            roles: &[],
            params: vec![],
            body: None,
            ok_status: "200",
            ok: json_ok("Up.", json!({ "type": "object" })),
        },
    );
    add(
        "get",
        "/readyz",
        Op {
            summary: "Readiness",
            description: "The store answers; 503 when it does not.",
            roles: &[],
            params: vec![],
            body: None,
            ok_status: "200",
            ok: json_ok("Ready.", json!({ "type": "object" })),
        },
    );
    add("get", "/metrics", Op {
        summary: "Prometheus metrics",
        description: "Requests by route, method and status; latency histograms; ingest outcomes; decisions; store totals.",
        roles: &["admin"], params: vec![], body: None, ok_status: "200",
        ok: text_ok("Prometheus text exposition format 0.0.4.", "text/plain"),
    });
    add(
        "get",
        "/openapi.json",
        Op {
            summary: "This description",
            description: "OpenAPI 3.1.",
            roles: &[],
            params: vec![],
            body: None,
            ok_status: "200",
            ok: json_ok("The description.", json!({ "type": "object" })),
        },
    );
    add("get", "/v1/rulebook", Op {
        summary: "The rulebook in force",
        description: "Its label (`id@version`) and its TOML text: the catalog, scoring models, lists and measures with their legal bases.",
        roles: &[], params: vec![], body: None, ok_status: "200", ok: json_ok("The rulebook.", schema_ref("Rulebook")),
    });
    add("get", "/v1/public/companies/{uscc}", Op {
        summary: "A company's public credit information",
        description: "Grade, entries of public lists in force, and records inside their publicity window. Organisations only: a person's identifier is refused with `not_an_organisation`. A person's identifier anywhere in a record's texts (a legal representative, a number quoted in a document or in the record's id) or as the subject an entry reached the company through is shown without the month and day of birth.",
        roles: &[], params: vec![path_param("uscc", "Unified Social Credit Code.")], body: None, ok_status: "200",
        ok: json_ok("The public view.", schema_ref("Company")),
    });
    add(
        "get",
        "/v1/public/lists",
        Op {
            summary: "Public lists",
            description: "The lists the rulebook publishes.",
            roles: &[],
            params: vec![],
            body: None,
            ok_status: "200",
            ok: json_ok(
                "The lists.",
                json!({ "type": "object", "properties": { "lists": { "type": "array", "items": schema_ref("ListSummary") } } }),
            ),
        },
    );
    add("get", "/v1/public/lists/{id}", Op {
        summary: "Entries of a public list",
        description: "Entries in force today, in identifier order, paginated. A list entered by grade (a weekly red list) pages through the subjects of its last edition and shows those it names today, so a page may hold fewer entries than `limit` and still have a `next_after`. A person's identifier is shown without the month and day of birth (`1101051949****002X`), an organisation's whole. A list that is not public is `unknown_list` (404); an `after` that is not a cursor the registry gave out for this list is `invalid_cursor` (400).",
        roles: &[], params: [vec![path_param("id", "List id.")], paging("The opaque cursor to start after (`next_after` of the previous page); good for this list at any server of the registry, restarted or not.")].concat(),
        body: None, ok_status: "200", ok: json_ok("A page of entries.", schema_ref("ListPage")),
    });
    add("post", "/v1/records", Op {
        summary: "Ingest records and later facts",
        description: "NDJSON (`application/x-ndjson`, one item a line), JSON (`application/json`, an array of items or one item), or CSV (`text/csv`, records only, one a row under a header), in the wire format of docs/records.md. Every item gets a result: `index` is the 1-based line number for NDJSON and CSV (the CSV header is line 1) and the 0-based array index for JSON. Valid items commit together in one transaction; invalid or unauthorised ones are reported with a code and never stored. Idempotent on (provider, id): a replay answers `duplicate`. Body limit 64 MiB.",
        roles: &["provider", "reviewer"],
        params: vec![query_param("report", false, "`all` (default): a result per item; `problems`: only items not stored or duplicate.", json!({ "enum": ["all", "problems"] }))],
        body: Some(json!({ "required": true, "content": {
            "application/x-ndjson": { "schema": { "type": "string" } },
            "text/csv": { "schema": { "type": "string" } },
            "application/json": { "schema": { "oneOf": [ { "type": "array", "items": schema_ref("Item") }, schema_ref("Item") ] } }
        } })),
        ok_status: "200", ok: json_ok("Per-item results.", schema_ref("IngestResponse")),
    });
    add(
        "get",
        "/v1/review/pending",
        Op {
            summary: "Items waiting for review",
            description: "Oldest first.",
            roles: &["reviewer"],
            params: seq_paging(),
            body: None,
            ok_status: "200",
            ok: json_ok("A page of pending items.", schema_ref("PendingPage")),
        },
    );
    add("get", "/v1/me", Op {
        summary: "Who this token is",
        description: "The caller's own registration: id, name, role, scope (and, for a provider, its record types). Any valid token.",
        roles: &["admin", "provider", "reviewer", "agency", "subject", "auditor"], params: vec![],
        body: None, ok_status: "200", ok: json_ok("The principal.", schema_ref("Principal")),
    });
    add("get", "/v1/review/objections", Op {
        summary: "Open objections",
        description: "Subjects' objections to their records that no reviewer has resolved yet, as of today: a page of subjects in identifier order, each with the records it disputes, since when, the day a resolution is due (the rulebook's `objection_deadline` on, 20 days by default) and whether it is overdue. Resolve one with a `resolved` fact through `POST /v1/records`. Each subject listed is logged as a read of its file (`read_objection`, purpose `review`).",
        roles: &["reviewer"], params: paging("Subject identifier to start after (`next_after` of the previous page)."),
        body: None, ok_status: "200", ok: json_ok("A page of open objections.", schema_ref("ObjectionPage")),
    });
    add("post", "/v1/review/approve", Op {
        summary: "Approve a pending item",
        description: "The item takes effect and its subject's file is recomputed. The submitter may not approve its own item, nor may a record past its type's retention on the registry's day take effect (`review_refused`, 409: reject it).",
        roles: &["reviewer"], params: vec![], body: Some(json_body(schema_ref("ReviewRequest"))), ok_status: "200",
        ok: json_ok("The item approved.", schema_ref("Reviewed")),
    });
    add(
        "post",
        "/v1/review/reject",
        Op {
            summary: "Reject a pending item",
            description: "The item never takes effect; its key stays taken. Needs a `reason`.",
            roles: &["reviewer"],
            params: vec![],
            body: Some(json_body(schema_ref("RejectRequest"))),
            ok_status: "200",
            ok: json_ok("The item rejected.", schema_ref("Reviewed")),
        },
    );
    add("post", "/v1/decisions", Op {
        summary: "Decisions for many (subject, measure) pairs",
        description: "Each answer says whether the measure applies today, with its reasons, legal basis and rulebook version. An agency may ask only about the measures naming it (`measure_not_allowed`, 403), and only for a purpose the measure names when it names any (`purpose_not_allowed`, 403). Each answer is logged with the purpose, where the subject sees it. At most 1000 queries.",
        roles: &["agency"], params: vec![], body: Some(json_body(schema_ref("DecisionRequest"))), ok_status: "200",
        ok: json_ok("The decisions, in query order.", json!({ "type": "object", "properties": { "decisions": { "type": "array", "items": schema_ref("Decision") } } })),
    });
    add(
        "get",
        "/v1/decisions",
        Op {
            summary: "One decision",
            description: "As POST /v1/decisions, for one pair.",
            roles: &["agency"],
            params: vec![
                query_param(
                    "subject",
                    true,
                    "Subject identifier.",
                    json!({ "type": "string" }),
                ),
                query_param("measure", true, "Measure id.", json!({ "type": "string" })),
                query_param(
                    "purpose",
                    true,
                    "Why the agency asks; shown to the subject.",
                    json!({ "type": "string" }),
                ),
            ],
            body: None,
            ok_status: "200",
            ok: json_ok("The decision.", schema_ref("Decision")),
        },
    );
    add("get", "/v1/subjects/{id}", Op {
        summary: "The subject's own credit file",
        description: "Everything as of today: score, grade, lists, measures, records, effects with legal bases, and open items. A subject token reads only its own file (`not_your_file`, 403). The read is logged.",
        roles: &["subject"], params: vec![subject_param()], body: None, ok_status: "200", ok: json_ok("The file.", schema_ref("CreditFile")),
    });
    add("get", "/v1/subjects/{id}/explanation", Op {
        summary: "The file explained", description: "Every point and list entry with the record, rule and legal basis behind it, as text. The read is logged.",
        roles: &["subject"], params: vec![subject_param()], body: None, ok_status: "200", ok: text_ok("The explanation.", "text/plain"),
    });
    add(
        "get",
        "/v1/subjects/{id}/access-log",
        Op {
            summary: "Who read the file and why",
            description: "Every audit entry about the subject, oldest first.",
            roles: &["subject"],
            params: [vec![subject_param()], seq_paging()].concat(),
            body: None,
            ok_status: "200",
            ok: json_ok("A page of the access log.", schema_ref("AccessLog")),
        },
    );
    add(
        "post",
        "/v1/subjects/{id}/consent",
        Op {
            summary: "Grant or withdraw consent",
            description:
                "From today on. Records of types needing consent count only while it is granted. A withdrawal holds over the same day's grants: a grant on a day consent was withdrawn is 409 `withdrawn_today`.",
            roles: &["subject"],
            params: vec![subject_param()],
            body: Some(json_body(
                json!({ "type": "object", "required": ["granted"], "additionalProperties": false, "properties": { "granted": { "type": "boolean" } } }),
            )),
            ok_status: "200",
            ok: json_ok("The consent now.", schema_ref("Consent")),
        },
    );
    add(
        "post",
        "/v1/subjects/{id}/objections",
        Op {
            summary: "Object to a record",
            description: "The record is disputed from today (its effects follow the rulebook's dispute policy) until a reviewer resolves the objection, which is due within the rulebook's `objection_deadline` (20 days by default); the statement travels with the record. 404 `unknown_record` when the file holds no such record, 409 `already_disputed` while an objection to it is open, 409 `resolved_today` when an objection to it was resolved today (facts are dated by the day: one made that day would read as resolved by it).",
            roles: &["subject"],
            params: vec![subject_param()],
            body: Some(json_body(
                json!({ "type": "object", "required": ["record"], "additionalProperties": false, "properties": {
                    "record": { "type": "object", "required": ["provider", "id"], "properties": { "provider": { "type": "string" }, "id": { "type": "string" } } },
                    "statement": { "type": "string", "description": "At most 4096 bytes of UTF-8 (not characters: `text_too_long` past that)." } } }),
            )),
            ok_status: "200",
            ok: json_ok("The objection as recorded.", schema_ref("Objection")),
        },
    );
    add(
        "post",
        "/v1/subjects/{id}/repair-applications",
        Op {
            summary: "Apply for repair of a record",
            description: "With the correction made (and its proof) and a credit commitment, the subject asks that the record's publicity and the list entries it made (on lists that repair ends) end early. The application waits in the review queue (`outcome`: `pending_review`) under `key`; a reviewer approves it (the repair counts from the day of the application; list entries end no earlier than their minimum duration) or rejects it. 400 `incomplete_application` when a part is empty, 404 `unknown_record`, 409 `already_repaired`, `nothing_to_repair` (the record is not public and on no list that repair ends) or `applied_today` (another application for the record today, waiting with other words or refused: apply again from tomorrow).",
            roles: &["subject"],
            params: vec![subject_param()],
            body: Some(json_body(
                json!({ "type": "object", "required": ["record", "correction", "commitment"], "additionalProperties": false, "properties": {
                    "record": { "type": "object", "required": ["provider", "id"], "properties": { "provider": { "type": "string" }, "id": { "type": "string" } } },
                    "correction": { "type": "string", "description": "At most 2000 bytes of UTF-8." }, "commitment": { "type": "string", "description": "At most 2000 bytes of UTF-8." } } }),
            )),
            ok_status: "200",
            ok: json_ok("The application, waiting for a reviewer.", schema_ref("RepairApplication")),
        },
    );
    add(
        "get",
        "/v1/audit",
        Op {
            summary: "The audit log",
            description: "Entries in order, each with its hash; with `subject`, only the entries about that subject (its access log). The auditor's read is logged after it: about the subject when one is given.",
            roles: &["auditor"],
            params: {
                let mut params = seq_paging();
                params.push(query_param(
                    "subject",
                    false,
                    "Only the entries about this subject (18-character identifier).",
                    json!({ "type": "string" }),
                ));
                params
            },
            body: None,
            ok_status: "200",
            ok: json_ok(
                "A page of entries.",
                json!({ "type": "object", "properties": { "entries": { "type": "array", "items": schema_ref("AuditEntry") }, "next_after": { "type": "integer" } } }),
            ),
        },
    );
    add(
        "get",
        "/v1/audit/verify",
        Op {
            summary: "Verify the audit log's hash chain",
            description: "From entry 1 to the stored head; reports the first break.",
            roles: &["auditor"],
            params: vec![],
            body: None,
            ok_status: "200",
            ok: json_ok(
                "The verdict.",
                json!({ "type": "object", "required": ["ok", "entries"], "properties": { "ok": { "type": "boolean" }, "entries": { "type": "integer" }, "broken": { "type": "object", "properties": { "seq": { "type": "integer" }, "reason": { "type": "string" } } } } }),
            ),
        },
    );
    add(
        "get",
        "/v1/admin/principals",
        Op {
            summary: "Principals",
            description: "Every principal, revoked ones included (never a token).",
            roles: &["admin"],
            params: vec![],
            body: None,
            ok_status: "200",
            ok: json_ok(
                "The principals.",
                json!({ "type": "object", "properties": { "principals": { "type": "array", "items": schema_ref("Principal") } } }),
            ),
        },
    );
    add("post", "/v1/admin/principals", Op {
        summary: "Create or replace a principal",
        description: "Registers a provider (scope = provider id, with its record types), an agency (scope = agency id), a subject (scope = its identifier), or an admin, reviewer or auditor. Issues a new token, shown once; a replaced principal's old token stops working. With `valid_until`, the token works through that day and is refused from the next with `token_expired` (401).",
        roles: &["admin"], params: vec![], body: Some(json_body(schema_ref("PrincipalRequest"))), ok_status: "201",
        ok: json_ok("The principal and its token.", schema_ref("IssuedToken")),
    });
    add(
        "delete",
        "/v1/admin/principals/{id}",
        Op {
            summary: "Revoke a principal's token",
            description:
                "The principal stays (the audit log names it); its token no longer authenticates.",
            roles: &["admin"],
            params: vec![path_param("id", "Principal id.")],
            body: None,
            ok_status: "200",
            ok: json_ok("Revoked.", json!({ "type": "object" })),
        },
    );
    add(
        "get",
        "/v1/admin/dashboard",
        Op {
            summary: "The operator's dashboard",
            description: "The registry's totals (subjects, records and facts in effect, items waiting for review, audit entries, principals, rulebook versions), the rulebook in force, the audit log's head, and what this process answered since it started (requests by class of status, ingest outcomes, decisions, erasure runs and what they erased, panics). No credit file is read.",
            roles: &["admin"],
            params: vec![],
            body: None,
            ok_status: "200",
            ok: json_ok("The dashboard.", json!({ "type": "object", "required": ["as_of", "rulebook", "store", "since_start"],
                "properties": { "as_of": { "type": "string", "format": "date" }, "rulebook": { "type": "string" },
                    "store": { "type": "object" }, "audit_head": { "type": "object", "properties": { "seq": { "type": "integer" }, "hash": { "type": "string" } } },
                    "since_start": { "type": "object" } } })),
        },
    );
    add(
        "get",
        "/v1/admin/rulebooks",
        Op {
            summary: "Rulebook versions",
            description: "Every version uploaded, oldest first, and the current label.",
            roles: &["admin"],
            params: vec![],
            body: None,
            ok_status: "200",
            ok: json_ok("The versions.", json!({ "type": "object" })),
        },
    );
    add("put", "/v1/admin/rulebook", Op {
        summary: "Upload a rulebook",
        description: "Validated first: every problem is returned with its line and column (`invalid_rulebook`). Earlier versions stay stored; every file is recomputed with the new rulebook, which then takes over at once. Reusing a label with other text is `rulebook_conflict` (409). A catalog that leaves out a record type the registry still holds records of is `record_types_still_held` (409); one that changes a type's fields or subject kinds so that held records (in effect or waiting for review) or their corrections would be refused if sent now is `records_no_longer_valid` (409), naming each type, the counts and each problem by code and field.",
        roles: &["admin"], params: vec![],
        body: Some(toml_body()),
        ok_status: "200",
        ok: json_ok("Installed.", json!({ "type": "object", "properties": { "label": { "type": "string" }, "recomputed": { "type": "integer" } } })),
    });
    add("post", "/v1/admin/rulebook/impact", Op {
        summary: "What a draft rulebook would do",
        description: "The what-if report of a draft rulebook against the one in force, on the registry's history as of today, before installing anything: subjects by grade, on each list and under each measure under both, who would move between grades, enter or leave each list and measure, whose score would rise or fall, and the same by group (kind, province, sex, decade of birth), with groups of fewer than `group_min` subjects pooled as `other` (docs/research.md). Counts only; nothing is installed or changed. Records in effect that the draft's catalog refuses count under the rulebook in force only (`refused`). The request is validated as an upload is (`invalid_rulebook` with every problem). One audit entry (`rulebook_impact`) records who asked and what it found.",
        roles: &["admin"],
        params: vec![query_param("group_min", false, "The fewest subjects a group of the report may count.", json!({ "type": "integer", "minimum": 10, "default": 10 }))],
        body: Some(toml_body()),
        ok_status: "200",
        ok: json_ok("The report.", json!({ "type": "object", "required": ["as_of", "group_min", "subjects", "base", "other", "grade_moves", "scores", "lists", "measures", "changed", "groups", "refused"],
            "properties": { "as_of": { "type": "string", "format": "date" }, "group_min": { "type": "integer" }, "subjects": { "type": "integer" },
                "base": { "type": "object", "description": "The rulebook in force: rulebook, grades, lists, measures." },
                "other": { "type": "object", "description": "The draft, likewise." },
                "grade_moves": { "type": "object" }, "scores": { "type": "object" },
                "lists": { "type": "object", "description": "By list: entered, left." },
                "measures": { "type": "object", "description": "By measure: entered, left." },
                "changed": { "type": "integer" }, "groups": { "type": "object" },
                "refused": { "type": "integer", "description": "Records in effect the draft's catalog refuses." } } })),
    });
    add("post", "/v1/admin/erasure", Op {
        summary: "Erase records past their retention",
        description: "Erases now what the end of retention allows on the registry's day (the server also does it once a day). A record past its retention is erased, with the facts about it, unless a record still in the file depends on it (it made a later offence a repeat, used up a cap a later record met, named the profession a rule applied to a later record for, named a relation through which an entry in force reaches someone, or a later record ended its list entry); such records are held back until the records depending on them are past retention too. Records never in effect (rejected in review, or still waiting for it) go when the retention of their type, counted from the day they say they were decided, has ended. The facts about an erased record go with it, those waiting for review or refused too. An erased record leaves a tombstone of its key and subject, so that a resent copy is refused (`conflict`). Each subject that lost records gets an audit entry (action `erase`), shown in its access log. Then, when the rulebook sets `audit_retention`, the audit entries appended before the first day it keeps are removed, oldest first, after an entry (action `prune_audit`) that names the last one removed and its hash, from which the log's new start chains.",
        roles: &["admin"], params: vec![], body: None,
        ok_status: "200",
        ok: json_ok("What was erased.", json!({ "type": "object", "required": ["as_of", "subjects_examined", "subjects", "records", "facts", "rejected", "pending", "held_back", "audit_entries_removed"],
            "properties": { "as_of": { "type": "string", "format": "date" },
                "subjects_examined": { "type": "integer", "description": "Subjects with a record past its retention." },
                "subjects": { "type": "integer", "description": "Subjects that lost records." },
                "records": { "type": "integer" }, "facts": { "type": "integer" },
                "rejected": { "type": "integer", "description": "Records a reviewer rejected, erased once the retention of their type has ended." },
                "pending": { "type": "integer", "description": "Records still waiting for review when the retention of their type ended: they leave the review queue." },
                "held_back": { "type": "integer", "description": "Records past their retention kept because a record still in the file depends on them." },
                "audit_entries_removed": { "type": "integer", "description": "Audit entries removed at the end of the rulebook's `audit_retention`." } } })),
    });

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "socred registry API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "An auditable social credit registry. Errors are `{\"error\": {\"code\", \"message\"}}` with stable codes (docs/api.md). Every read of a credit file is logged where its subject sees it.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        },
        "paths": paths,
        "components": components(),
    })
}

fn components() -> Value {
    let string = json!({ "type": "string" });
    let last_day = json!({ "type": "string", "format": "date",
        "description": "The token's last day, the registry's day (China Standard Time); absent: until revoked or replaced." });
    json!({
        "securitySchemes": {
            "bearer": { "type": "http", "scheme": "bearer", "description": "A token issued by the operator (64 hex characters). Roles: admin, provider, reviewer, agency, subject, auditor." }
        },
        "responses": {
            "Error": { "description": "An error with a stable code.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
        },
        "schemas": {
            "Error": {
                "type": "object", "required": ["error"],
                "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": {
                    "code": { "type": "string", "description": "Stable snake_case machine code (docs/api.md)." },
                    "message": { "type": "string" },
                    "problems": { "type": "array", "items": { "type": "object", "properties": { "line": { "type": "integer" }, "column": { "type": "integer" }, "message": string } } }
                } } }
            },
            "Rulebook": { "type": "object", "required": ["label", "text"], "properties": { "label": string, "text": string } },
            "Item": {
                "type": "object",
                "description": "A record or a later fact in the wire format of docs/records.md (`provider`, `id`, `subject`, `type`, `occurred_at`, `decided_at`, `fields`, `document`; or `fact`, `provider`, `record`, `subject`, `at`, and the fact's own keys, such as a correction's `type` and `fields`). Items waiting for review are shown the same way, as their provider sent them."
            },
            "ItemResult": {
                "type": "object", "required": ["index", "status"],
                "properties": {
                    "index": { "type": "integer", "description": "NDJSON: 1-based line number. JSON: 0-based array index." },
                    "status": { "enum": ["stored", "duplicate", "conflict", "pending_review", "unknown_record", "rejected"] },
                    "code": string, "field": string, "message": string, "warning": string
                }
            },
            "IngestResponse": {
                "type": "object", "required": ["counts", "results"],
                "properties": {
                    "counts": { "type": "object", "properties": {
                        "stored": { "type": "integer" }, "duplicate": { "type": "integer" }, "conflict": { "type": "integer" },
                        "pending_review": { "type": "integer" }, "unknown_record": { "type": "integer" }, "rejected": { "type": "integer" } } },
                    "results": { "type": "array", "items": { "$ref": "#/components/schemas/ItemResult" } }
                }
            },
            "ItemKey": {
                "type": "object", "required": ["item"],
                "description": "`{\"item\": \"record\", \"provider\", \"id\"}` or `{\"item\": \"fact\", \"subject\", \"kind\", \"record\", \"at\", \"by\"}`.",
                "properties": { "item": { "enum": ["record", "fact"] } }
            },
            "PendingItem": {
                "type": "object",
                "properties": { "seq": { "type": "integer" }, "key": { "$ref": "#/components/schemas/ItemKey" }, "subject": string,
                    "item": { "$ref": "#/components/schemas/Item" }, "submitted_by": string, "submitted_at_ms": { "type": "integer" } }
            },
            "PendingPage": { "type": "object", "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/PendingItem" } }, "next_after": { "type": "integer" } } },
            "ReviewRequest": { "type": "object", "required": ["key"], "additionalProperties": false, "properties": { "key": { "$ref": "#/components/schemas/ItemKey" } } },
            "RejectRequest": { "type": "object", "required": ["key", "reason"], "additionalProperties": false, "properties": { "key": { "$ref": "#/components/schemas/ItemKey" }, "reason": string } },
            "Reviewed": { "allOf": [ { "$ref": "#/components/schemas/PendingItem" }, { "type": "object", "properties": { "status": { "enum": ["approved", "rejected"] } } } ] },
            "DecisionRequest": {
                "type": "object", "required": ["purpose", "queries"], "additionalProperties": false,
                "properties": {
                    "purpose": { "type": "string", "description": "Why the agency asks (e.g. ticket_sale); shown to the subject." },
                    "queries": { "type": "array", "maxItems": 1000, "items": { "type": "object", "required": ["subject", "measure"], "additionalProperties": false, "properties": { "subject": string, "measure": string } } }
                }
            },
            "Decision": {
                "type": "object", "required": ["subject", "measure", "kind", "applies", "as_of", "rulebook", "legal_basis", "reasons"],
                "properties": {
                    "subject": string, "measure": string, "kind": { "enum": ["reward", "punishment"] }, "applies": { "type": "boolean" },
                    "as_of": { "type": "string", "format": "date" }, "rulebook": string, "legal_basis": string,
                    "reasons": { "type": "array", "items": { "type": "object", "required": ["reason"], "properties": { "reason": { "enum": ["not_for_subject_kind", "applies", "no_condition_holds", "not_scored", "exception"] } } } }
                }
            },
            "CreditFile": {
                "type": "object",
                "description": "The full credit file (subject, kind, as_of, rulebook, score, grade, lists, measures, models, profession, consent, list_entries, records, effects, warnings), `open_items` (open objections) and `pending` (what waits for a reviewer about the subject: records not yet in effect, its own repair applications).",
                "properties": { "subject": string, "as_of": { "type": "string", "format": "date" }, "score": { "type": ["integer", "null"] }, "grade": { "type": ["string", "null"] },
                    "open_items": { "type": "array", "items": { "type": "object" } },
                    "pending": { "type": "array", "items": { "type": "object", "properties": { "seq": { "type": "integer" }, "key": { "type": "object" }, "subject": string, "item": { "type": "object" }, "submitted_by": string, "submitted_at_ms": { "type": "integer" } } } } }
            },
            "Company": {
                "type": "object",
                "properties": { "subject": string, "as_of": { "type": "string", "format": "date" }, "rulebook": string, "grade": { "type": ["string", "null"] },
                    "grades": { "type": "array", "items": { "type": "object" } }, "list_entries": { "type": "array", "items": { "type": "object" } }, "records": { "type": "array", "items": { "type": "object" } } }
            },
            "ListSummary": { "type": "object", "properties": { "id": string, "title": string, "kind": { "enum": ["black", "red"] }, "legal_basis": string,
                "schedule": { "enum": ["weekly", "monthly"], "description": "For a list entered by grade: when its editions come out." },
                "published": { "type": "string", "format": "date", "description": "For a list entered by grade: the publication day of its last edition (absent until the first)." } } },
            "ListPage": {
                "type": "object",
                "properties": { "list": string, "title": string, "as_of": { "type": "string", "format": "date" },
                    "published": { "type": "string", "format": "date", "description": "For a list entered by grade: the publication day of the edition the page reads (absent before the first)." },
                    "entries": { "type": "array", "items": { "type": "object", "properties": { "subject": { "type": "string", "description": "The identifier's public form: a person's without the month and day of birth." }, "kind": { "enum": ["person", "organisation"] }, "since": { "type": "string", "format": "date" }, "until": { "type": "string", "format": "date" } } } },
                    "next_after": string }
            },
            "AuditEntry": {
                "type": "object",
                "properties": { "seq": { "type": "integer" }, "at_ms": { "type": "integer" }, "actor": string, "role": string, "purpose": string,
                    "action": string, "subject": string, "detail": string, "hash": string }
            },
            "AccessLog": { "type": "object", "properties": { "subject": string, "entries": { "type": "array", "items": { "$ref": "#/components/schemas/AuditEntry" } }, "next_after": { "type": "integer" } } },
            "ObjectionPage": { "type": "object", "properties": { "as_of": { "type": "string", "format": "date" }, "next_after": string,
                "objections": { "type": "array", "items": { "type": "object", "properties": { "subject": string, "record": { "type": "object", "properties": { "provider": string, "id": string } },
                    "record_type": string, "since": { "type": "string", "format": "date" }, "resolve_by": { "type": "string", "format": "date" }, "overdue": { "type": "boolean" }, "statement": string } } } } },
            "RepairApplication": { "type": "object", "properties": { "subject": string, "record": { "type": "object", "properties": { "provider": string, "id": string } }, "outcome": { "enum": ["pending_review", "duplicate"] }, "key": { "type": "object" } } },
            "Objection": { "type": "object", "properties": { "subject": string, "record": { "type": "object", "properties": { "provider": string, "id": string } }, "outcome": { "enum": ["stored"] }, "since": { "type": "string", "format": "date" }, "resolve_by": { "type": "string", "format": "date" } } },
            "Consent": { "type": "object", "properties": { "subject": string, "granted": { "type": "boolean" }, "outcome": { "enum": ["stored", "duplicate"] }, "consent": { "type": "boolean" } } },
            "Principal": {
                "type": "object", "required": ["id", "name", "role"],
                "properties": { "id": string, "name": string, "role": { "enum": ["admin", "provider", "reviewer", "agency", "subject", "auditor"] },
                    "scope": string, "record_types": { "type": "array", "items": string }, "revoked": { "type": "boolean" },
                    "valid_until": last_day }
            },
            "PrincipalRequest": {
                "type": "object", "required": ["id", "name", "role"], "additionalProperties": false,
                "properties": { "id": string, "name": string, "role": { "enum": ["admin", "provider", "reviewer", "agency", "subject", "auditor"] },
                    "scope": string, "record_types": { "type": "array", "items": string },
                    "valid_until": last_day }
            },
            "IssuedToken": { "type": "object", "properties": { "principal": { "$ref": "#/components/schemas/Principal" }, "token": string, "warnings": { "type": "array", "items": string } } }
        }
    })
}
