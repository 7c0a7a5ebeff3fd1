"""CloudFormation stacks: templates (JSON and YAML with short-form tags), their intrinsic
functions, resource providers that call tideserve's own services in-process, the stack
engine (create, update, rollback, delete, change sets) and the `cloudformation` API."""
