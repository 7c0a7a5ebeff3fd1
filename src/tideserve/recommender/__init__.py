"""SageMaker Inference Recommender: jobs that load-test a model on candidate instance types on
this machine and rank them by cost per inference (service.py), with `tideserve recommend`
to show a job's table, replay it in the simulator and apply the cheapest (cli.py)."""
