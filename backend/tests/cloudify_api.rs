//! What Cloudify's own client needs of the API, over real HTTP: discovery
//! (`cfy profiles use`), `/api/version`, the `Tenant` header, executions with
//! Cloudify's fields, `_include`, `_sort`, filters, its create body, and events.

mod common;

use common::{assert_error, TestApp, LONG};
use serde_json::{json, Value};
use shared::api::ListResponse;
use shared::{ErrorCode, MaintenanceState};

async fn json(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "{:?}", response.url().to_string());
    response.json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_describes_one_manager_that_is_its_own_broker_and_database_node() {
    let app = TestApp::spawn().await;
    let context = json(app.api.get("/provider/context").await).await;
    assert_eq!(context, json!({"name": "provider", "context": {}}));
    let managers = json(app.api.get("/managers").await).await;
    let brokers = json(app.api.get("/brokers").await).await;
    let db_nodes = json(app.api.get("/db-nodes").await).await;
    for list in [&managers, &brokers, &db_nodes] {
        assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
        assert_eq!(list["metadata"]["pagination"]["total"], 1);
    }
    // Cloudify's client calls this "all in one": one of each, on the same address.
    assert_eq!(managers["items"][0]["private_ip"], "127.0.0.1");
    assert_eq!(brokers["items"][0]["host"], "127.0.0.1");
    assert_eq!(db_nodes["items"][0]["host"], "127.0.0.1");
    assert_eq!(db_nodes["items"][0]["is_external"], false);
    let port = app.api.url("/").split(':').nth(2).unwrap().split('/').next().unwrap().parse::<u64>().unwrap();
    assert_eq!(brokers["items"][0]["port"], port);

    // Anonymous callers are refused, as for the rest of the API.
    let anonymous = common::Api::anonymous(app.api.url("/").split('/').nth(2).unwrap().parse().unwrap());
    assert_error(anonymous.get("/managers").await, 401, ErrorCode::Unauthorized).await;

    // During maintenance the discovery stays open, so a profile can be made to turn it off.
    app.api.activate(None).await;
    for path in ["/provider/context", "/managers", "/brokers", "/db-nodes", "/version", "/status"] {
        assert_eq!(app.api.get(path).await.status(), 200, "{path}");
    }
    assert_error(
        app.api.get("/events?execution_id=0b6e3f1c-0000-4000-8000-000000000000").await,
        503,
        ErrorCode::MaintenanceModeActive,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_version_is_also_where_cloudifys_client_asks_and_names_the_compatible_release() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let root = app.api.url("/").replace("/api/v3.1/", "");
    let version: Value = client.get(format!("{root}/api/version")).send().await.unwrap().json().await.unwrap();
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(version["edition"], "community");
    assert_eq!(version["cloudify_version"], "7.0.5");
    assert_eq!(version["api_version"], "v3.1");
    assert_eq!(json(app.api.get("/version").await).await, version);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_default_tenant_is_accepted() {
    let app = TestApp::spawn().await;
    let with_tenant = |tenant: &str| app.api.request(reqwest::Method::GET, "/executions").header("Tenant", tenant);
    assert_eq!(with_tenant("default_tenant").send().await.unwrap().status(), 200);
    let refused = assert_error(with_tenant("other").send().await.unwrap(), 404, ErrorCode::NotFound).await;
    assert!(refused.message.contains("`other`") && refused.message.contains("default_tenant"), "{}", refused.message);
    // Before anything is written: a create for another tenant creates nothing.
    let create = app
        .api
        .request(reqwest::Method::POST, "/executions")
        .header("Tenant", "other")
        .json(&json!({"workflow_id": "install", "deployment_id": "web"}))
        .send()
        .await
        .unwrap();
    assert_error(create, 404, ErrorCode::NotFound).await;
    assert_eq!(json(app.api.get("/executions").await).await["metadata"]["pagination"]["total"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_carry_cloudifys_fields_and_answer_include_sort_and_filters() {
    let app = TestApp::spawn().await;
    let create = |workflow: &'static str, deployment: &'static str| {
        let api = &app.api;
        async move {
            let body = json!({"workflow_id": workflow, "deployment_id": deployment,
                              "parameters": {"duration_seconds": LONG}});
            let response = api.post("/executions", Some(body)).await;
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.unwrap()
        }
    };
    let first = create("install", "web").await;
    let second = create("upgrade", "db").await;
    let third = create("heal", "web").await;
    assert_eq!(first["status_display"], "started");
    assert_eq!(first["tenant_name"], "default_tenant");
    assert_eq!(first["is_dry_run"], false);

    let ids = |list: &Value| -> Vec<String> {
        list["items"].as_array().unwrap().iter().map(|item| item["id"].as_str().unwrap().to_owned()).collect()
    };
    let id = |execution: &Value| execution["id"].as_str().unwrap().to_owned();
    let newest_first = json(app.api.get("/executions").await).await;
    assert_eq!(ids(&newest_first), [id(&third), id(&second), id(&first)]);
    let oldest_first = json(app.api.get("/executions?_sort=created_at").await).await;
    assert_eq!(ids(&oldest_first), [id(&first), id(&second), id(&third)]);
    let by_workflow = json(app.api.get("/executions?_sort=-workflow_id").await).await;
    assert_eq!(ids(&by_workflow), [id(&second), id(&first), id(&third)]);
    let two_keys = json(app.api.get("/executions?_sort=deployment_id&_sort=-created_at").await).await;
    assert_eq!(ids(&two_keys), [id(&second), id(&third), id(&first)]);
    let web = json(app.api.get("/executions?deployment_id=web&_sort=created_at&_size=1&_offset=1").await).await;
    assert_eq!(ids(&web), [id(&third)]);
    assert_eq!(web["metadata"]["pagination"]["total"], 2, "the total counts the filtered executions");

    let included = json(app.api.get("/executions?_include=id,status_display&_include=created_at").await).await;
    let item = included["items"][0].as_object().unwrap();
    assert_eq!(item.keys().collect::<Vec<_>>(), ["id", "created_at", "status_display"], "in the object's order");
    let one = json(app.api.get(&format!("/executions/{}?_include=workflow_id", id(&first))).await).await;
    assert_eq!(one, json!({"workflow_id": "install"}));
    // Cloudify's flags that change nothing here are accepted.
    assert_eq!(app.api.get("/executions?_include_system_workflows=False&_all_tenants=true").await.status(), 200);

    for (query, field) in [
        ("_include=id,colour", "_include"),
        ("_sort=colour", "_sort"),
        ("_size=0", "_size"),
        ("_offset=minus", "_offset"),
        ("status=started", "status"),
        ("deployment_id=a&deployment_id=b", "deployment_id"),
        (format!("_sort={}", vec!["id"; 2001].join(",")).as_str(), "_sort"),
    ] {
        let error = assert_error(app.api.get(&format!("/executions?{query}")).await, 400, ErrorCode::BadRequest).await;
        assert!(error.message.starts_with(&format!("{field}:")), "{query}: {}", error.message);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_body_cloudifys_client_sends_is_honoured_or_refused_by_name() {
    let app = TestApp::spawn().await;
    let cloudify_body = |parameters: Value, queue: &str| {
        json!({"deployment_id": "web", "workflow_id": "install", "parameters": parameters,
               "allow_custom_parameters": "false", "force": "false", "dry_run": "false", "queue": queue,
               "scheduled_time": null, "wait_after_fail": 600, "force_status": null, "created_by": null,
               "created_at": null, "started_at": null, "ended_at": null, "id": null,
               "is_system_workflow": null, "error": null})
    };
    let created = app.api.post("/executions", Some(cloudify_body(json!({"duration_seconds": "0.1"}), "false"))).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["parameters"]["duration_seconds"], "0.1", "parameters are kept as sent");

    app.api.start(LONG).await;
    app.api.activate(None).await;
    let queued = app.api.post("/executions", Some(cloudify_body(json!({}), "true"))).await;
    assert_eq!(queued.status(), 201, "queue: \"true\" is honoured");
    assert_eq!(queued.json::<Value>().await.unwrap()["status"], "queued");
    let refused = app.api.post("/executions", Some(cloudify_body(json!({}), "false"))).await;
    assert_error(refused, 503, ErrorCode::EnteringMaintenanceMode).await;

    for (field, value) in [
        ("dry_run", json!("true")),
        ("scheduled_time", json!("2030-01-01T00:00:00Z")),
        ("created_by", json!("mallory")),
    ] {
        let mut body = cloudify_body(json!({}), "true");
        body[field] = value;
        let error = assert_error(app.api.post("/executions", Some(body)).await, 400, ErrorCode::BadRequest).await;
        assert!(error.message.contains(field), "{}", error.message);
    }
    assert_eq!(app.api.status().await.status, MaintenanceState::Activating);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_tell_an_executions_workflow_story_in_cloudifys_shape() {
    let app = TestApp::spawn().await;
    let execution = app.api.start(0.05).await;
    let ended = app.api.wait_for_end(execution.id).await;
    let list = |query: String| {
        let api = &app.api;
        let id = execution.id;
        async move {
            let page: ListResponse<Value> =
                api.get(&format!("/events?execution_id={id}&{query}")).await.json().await.unwrap();
            let messages: Vec<String> =
                page.items.iter().map(|event| event["message"].as_str().unwrap().to_owned()).collect();
            (page, messages)
        }
    };
    // The workflow's steps alone, as Cloudify's client asks without logs.
    let (events, messages) = list("_sort=reported_timestamp&type=cloudify_event".into()).await;
    assert_eq!(messages, ["Starting 'install' workflow execution", "'install' workflow execution succeeded"]);
    assert_eq!(events.metadata.pagination.total, 2);
    // With the program's lines between them, in order, paged across the seams.
    let (all, messages) = list("_sort=reported_timestamp&type=cloudify_event&type=cloudify_log".into()).await;
    assert_eq!(all.metadata.pagination.total, 10, "{messages:?}");
    assert_eq!(messages[2], "install: a demonstration workflow; nothing outside its working directory is changed");
    assert_eq!(messages[8], "install: done");
    assert_eq!(all.items[1]["type"], "cloudify_log");
    assert_eq!(all.items[1]["level"], "info");
    let (_, middle) = list("_offset=8&_size=5".into()).await;
    assert_eq!(middle, ["install: done", "'install' workflow execution succeeded"]);
    let (_, backwards) = list("_sort=-timestamp&_offset=1&_size=2".into()).await;
    assert_eq!(backwards, ["install: done", "install: step 5/5 report"]);
    let (_, logs) = list("type=cloudify_log&_size=1".into()).await;
    assert_eq!(logs.len(), 1);
    assert!(logs[0].starts_with("install: deployment web"), "{logs:?}");
    let first = &events.items[0];
    assert_eq!(first["type"], "cloudify_event");
    assert_eq!(first["event_type"], "workflow_started");
    assert_eq!(first["deployment_id"], "web");
    assert_eq!(first["timestamp"], serde_json::to_value(ended.started_at.unwrap()).unwrap());
    for field in ["node_instance_id", "node_name", "operation", "error_causes"] {
        assert!(first.get(field).is_some_and(Value::is_null), "{field} is present and null");
    }
    let newest: ListResponse<Value> = app
        .api
        .get(&format!("/events?execution_id={}&_sort=-timestamp&_size=1", execution.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(newest.items[0]["event_type"], "workflow_succeeded");

    assert_error(app.api.get("/events").await, 400, ErrorCode::BadRequest).await;
    assert_error(
        app.api.get(&format!("/events?execution_id={}&type=gossip", execution.id)).await,
        400,
        ErrorCode::BadRequest,
    )
    .await;
    assert_error(
        app.api.get("/events?execution_id=0b6e3f1c-0000-4000-8000-000000000000").await,
        404,
        ErrorCode::NotFound,
    )
    .await;
}
