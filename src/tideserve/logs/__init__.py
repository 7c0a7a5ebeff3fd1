"""CloudWatch Logs: log groups and streams kept under the state dir, what instances and jobs
print ingested into them, the `logs` API (filter patterns, paging tokens, retention) and a
small Logs Insights."""
