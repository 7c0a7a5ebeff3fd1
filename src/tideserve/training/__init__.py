"""SageMaker training jobs: a user's script run as the SageMaker training toolkit runs it, on
an instance borrowed from the fleet (on demand or spot), its model packed for CreateModel.

    specs.py     CreateTrainingJob's input, checked into a frozen spec
    images.py    which framework a TrainingImage names
    toolkit.py   the /opt/ml layout, SM_* environment and `--key value` arguments
    transfer.py  channels, checkpoints and artifacts through the object store
    prepare.py   the blocking steps of an attempt (download, upload)
    process.py   FailureReason from a failed script
    runner.py    one job's attempts, spot interruptions and limits
    record.py    the stored job, its status moves and AWS-shaped views
    tables.py    its table
    service.py   the operations and the supervisor of running jobs
    rows.py      rows for the CLI's job listing
    cli.py       `tideserve spot interrupt`
"""
