-- Cloudify's client lists one deployment's executions (`cfy executions list -d DEP`).
CREATE INDEX executions_by_deployment ON executions (deployment_id, seq);
