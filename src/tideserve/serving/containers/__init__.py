"""Multi-container instances: one instance process (the front, front.py) that starts one
model server per container of the model, answers the container contract for all of them, and
runs a serial inference pipeline or dispatches a direct invocation (chain.py). The router
checks TargetContainerHostname and publishes per-container metrics from the front's report
(report.py)."""
